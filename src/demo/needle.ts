// Documents in the needle language that ctx's demo model (models/needle-demo) was trained on:
// filler words with planted facts `<Name> <number>` and, optionally, distractor names that get no
// number; the question `recall <Name>` names one fact; the answer is that name's `<number>`.
// Deterministic from a seed, and the same algorithm as make_needle_document in
// models/recipes/needle/language.py (same seed, same text). One word is one token of the demo
// tokenizer, so lengths are exact in tokens.

import { mulberry32, randInt, type Rng } from './rng.js';
import { FILLERS, KEYS, QUERY, VALUES } from './vocab.js';

export interface NeedleOptions {
  /** Length of the document in tokens of the demo tokenizer (facts and distractors included). */
  tokens: number;
  /** Where the asked fact sits: 0 = first words of the document, 1 = last words. Default 0.5. */
  depth?: number;
  /** Any integer; the same seed gives the same document. Default 1. */
  seed?: number;
  /** Pairs `<Name> <number>` (distinct names, distinct numbers); the first is the one asked. Default 1. */
  facts?: number;
  /** Names that appear without a number (none of them is asked). Default 0. */
  distractors?: number;
}

/** A planted name: its number (empty for a distractor) and the index of the name in the document's words. */
export interface Fact {
  key: string;
  value: string;
  index: number;
}

export interface NeedleDocument {
  /** The document: words separated by spaces, a line break after every WORDS_PER_LINE words, ending in "\n". */
  text: string;
  /** What a user asks: `recall <key>`, about facts[0]. */
  question: string;
  /** The expected answer: facts[0]'s number, e.g. "417". */
  answer: string;
  key: string;
  value: string;
  /** Document length in tokens (= words). */
  tokens: number;
  depth: number;
  /** Index (0-based, in tokens of the document) of the asked key word; the value follows it. */
  needleIndex: number;
  /** Every fact; facts[0] is the asked one, at `depth`; the others sit at random depths. */
  facts: Fact[];
  /** Names without a number, at random depths (value ""). */
  distractors: Fact[];
}

export const WORDS_PER_LINE = 16;

/** Steps start..k−1 of a Fisher–Yates shuffle of `pool`, in place: pool[0..k) is a draw without replacement. */
function shufflePrefix(rng: Rng, pool: number[], start: number, k: number): void {
  for (let i = start; i < k; i++) {
    const j = i + randInt(rng, pool.length - i);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
}

/**
 * The draws, in order: name 0, number 0, the other names, the other numbers, the filler words, then
 * one slot per other item (a one-fact document is the same text as the first demo's needle document).
 * An item in slot s goes before filler word s; items sharing a slot keep their order.
 */
export function makeNeedleDocument(opts: NeedleOptions): NeedleDocument {
  const { tokens, depth = 0.5, seed = 1, facts = 1, distractors = 0 } = opts;
  for (const [name, v] of [['tokens', tokens], ['seed', seed], ['facts', facts], ['distractors', distractors]] as const) {
    if (!Number.isInteger(v)) throw new RangeError(`${name} must be an integer, got ${v}`);
  }
  if (facts < 1 || facts > VALUES.length || distractors < 0 || facts + distractors > KEYS.length) {
    throw new RangeError(`need 1 <= facts <= ${VALUES.length}, distractors >= 0 and facts + distractors <= ${KEYS.length}; got ${facts} and ${distractors}`);
  }
  if (tokens < Math.max(2, 2 * facts + distractors)) {
    throw new RangeError(`tokens must be >= ${Math.max(2, 2 * facts + distractors)} for ${facts} facts and ${distractors} distractors, got ${tokens}`);
  }
  if (!(depth >= 0 && depth <= 1)) throw new RangeError(`depth must be in [0, 1], got ${depth}`);
  const rng = mulberry32(seed);
  const items = facts + distractors;
  const names = KEYS.map((_, i) => i);
  const values = VALUES.map((_, i) => i);
  shufflePrefix(rng, names, 0, 1);
  shufflePrefix(rng, values, 0, 1);
  shufflePrefix(rng, names, 1, items);
  shufflePrefix(rng, values, 1, facts);
  const nFill = tokens - 2 * facts - distractors;
  const fill: string[] = new Array(nFill);
  for (let i = 0; i < nFill; i++) fill[i] = FILLERS[randInt(rng, FILLERS.length)];
  const slots = [Math.floor(depth * nFill + 0.5)];
  for (let i = 1; i < items; i++) slots.push(randInt(rng, nFill + 1));
  const bySlot = new Map<number, number[]>();
  slots.forEach((s, item) => bySlot.set(s, [...(bySlot.get(s) ?? []), item]));
  const words: string[] = [];
  const where: number[] = new Array(items);
  for (let s = 0; s <= nFill; s++) {
    for (const item of bySlot.get(s) ?? []) {
      where[item] = words.length;
      words.push(KEYS[names[item]]);
      if (item < facts) words.push(VALUES[values[item]]);
    }
    if (s < nFill) words.push(fill[s]);
  }
  const factList = Array.from({ length: facts }, (_, i) => ({ key: KEYS[names[i]], value: VALUES[values[i]], index: where[i] }));
  const distractorList = Array.from({ length: distractors }, (_, j) => ({ key: KEYS[names[facts + j]], value: '', index: where[facts + j] }));
  const lines: string[] = [];
  for (let i = 0; i < words.length; i += WORDS_PER_LINE) lines.push(words.slice(i, i + WORDS_PER_LINE).join(' '));
  const asked = factList[0];
  return {
    text: lines.join('\n') + '\n',
    question: `${QUERY} ${asked.key}`,
    answer: asked.value,
    key: asked.key,
    value: asked.value,
    tokens,
    depth,
    needleIndex: asked.index,
    facts: factList,
    distractors: distractorList,
  };
}

/** The same document asked about another of its facts (index into doc.facts). */
export function askAbout(doc: NeedleDocument, fact: number): { question: string; answer: string } {
  const f = doc.facts[fact];
  if (!f) throw new RangeError(`the document has ${doc.facts.length} facts, no fact ${fact}`);
  return { question: `${QUERY} ${f.key}`, answer: f.value };
}
