// Documents in the needle language that ctx's demo model (models/needle-demo) was trained on:
// filler words with one planted pair `<Name> <number>`; the question `recall <Name>`; the answer
// `<number>`. Deterministic from a seed, and the same algorithm as make_needle_document in
// models/recipes/needle/language.py (same seed, same text). One word is one token of the demo
// tokenizer, so lengths are exact in tokens.

import { mulberry32, randInt } from './rng.js';
import { FILLERS, KEYS, QUERY, VALUES } from './vocab.js';

export interface NeedleOptions {
  /** Length of the document in tokens of the demo tokenizer (the planted pair included); >= 2. */
  tokens: number;
  /** Where the pair sits: 0 = first words of the document, 1 = last words. Default 0.5. */
  depth?: number;
  /** Any integer; the same seed gives the same document. Default 1. */
  seed?: number;
}

export interface NeedleDocument {
  /** The document: words separated by spaces, a line break after every WORDS_PER_LINE words, ending in "\n". */
  text: string;
  /** What a user asks: `recall <key>`. */
  question: string;
  /** The expected answer: the value, e.g. "417". */
  answer: string;
  key: string;
  value: string;
  /** Document length in tokens (= words). */
  tokens: number;
  depth: number;
  /** Index (0-based, in tokens of the document) of the key word; the value follows it. */
  needleIndex: number;
}

export const WORDS_PER_LINE = 16;

export function makeNeedleDocument(opts: NeedleOptions): NeedleDocument {
  const { tokens, depth = 0.5, seed = 1 } = opts;
  if (!Number.isInteger(tokens) || tokens < 2) throw new RangeError(`tokens must be an integer >= 2, got ${tokens}`);
  if (!(depth >= 0 && depth <= 1)) throw new RangeError(`depth must be in [0, 1], got ${depth}`);
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const rng = mulberry32(seed);
  const key = KEYS[randInt(rng, KEYS.length)];
  const value = VALUES[randInt(rng, VALUES.length)];
  const nFill = tokens - 2;
  const at = Math.floor(depth * nFill + 0.5);
  const words: string[] = new Array(tokens);
  for (let i = 0, w = 0; i < nFill; i++, w++) {
    if (w === at) w += 2;
    words[w] = FILLERS[randInt(rng, FILLERS.length)];
  }
  words[at] = key;
  words[at + 1] = value;
  const lines: string[] = [];
  for (let i = 0; i < words.length; i += WORDS_PER_LINE) lines.push(words.slice(i, i + WORDS_PER_LINE).join(' '));
  return { text: lines.join('\n') + '\n', question: `${QUERY} ${key}`, answer: value, key, value, tokens, depth, needleIndex: at };
}
