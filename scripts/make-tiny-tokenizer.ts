// Writes a small, deterministic byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) for
// the project's tiny random-weight fixture models. 300 ids by default:
//   0..255    one per byte (GPT-2 byte-to-unicode alphabet, so any text encodes)
//   256..295  40 merges learned here from a fixed English sample, so common words take fewer tokens
//   296..299  specials: <s> (BOS), </s> (end of text), <|im_start|>, <|im_end|> (end of turn, the EOS)
// with a ChatML-like chat template. Same options, same bytes out, on every machine.
//
//   node --import tsx scripts/make-tiny-tokenizer.ts <dir> [--merges N]

import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TinyTokenizerOptions {
  /** Number of BPE merges to learn (default 40, giving 300 ids in all). */
  merges?: number;
}

export interface TinyTokenizerInfo {
  vocabSize: number;
  bosId: number;
  /** </s>: end of text. */
  endOfTextId: number;
  imStartId: number;
  /** <|im_end|>: end of a turn; tokenizer_config's eos_token. */
  imEndId: number;
}

/** Text the merges are learned from. Changing it changes every fixture's tokenization. */
const SAMPLE = `The quick brown fox jumps over the lazy dog. The dog sleeps in the sun, and the fox runs
into the forest. There is a secret code in the document: the answer is in the middle of the text.
What is the answer? The answer is that the needle is hidden in the haystack. Read the text and then
answer the question. This is a test of the model and of the tokenizer, and it is only a test.`;

/**
 * GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for themselves, the other bytes get
 * code points from 256 up, so every byte is one visible character in the vocabulary.
 */
function byteAlphabet(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : 256 + extra++);
  return table;
}

/** The pre-tokenizer split GPT-2's ByteLevel uses, so learned merges match how text is encoded. */
const WORDS = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Plain BPE training: repeatedly merge the most frequent adjacent pair (ties: first in code-unit order). */
function learnMerges(sample: string, alphabet: string[], count: number): [string, string][] {
  const encoder = new TextEncoder();
  const words = new Map<string, { symbols: string[]; freq: number }>();
  for (const w of sample.match(WORDS) ?? []) {
    const entry = words.get(w);
    if (entry) entry.freq++;
    else words.set(w, { symbols: Array.from(encoder.encode(w), (b) => alphabet[b]), freq: 1 });
  }
  const merges: [string, string][] = [];
  while (merges.length < count) {
    const pairs = new Map<string, number>();
    for (const { symbols, freq } of words.values()) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + freq);
      }
    }
    let best: string | null = null;
    for (const [key, n] of pairs) {
      const bestN = best === null ? -1 : pairs.get(best)!;
      if (n > bestN || (n === bestN && key < best!)) best = key;
    }
    if (best === null) break; // the sample is exhausted
    const [a, b] = best.split('\u0000') as [string, string];
    merges.push([a, b]);
    for (const word of words.values()) {
      const out: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === a && word.symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(word.symbols[i]);
      }
      word.symbols = out;
    }
  }
  return merges;
}

const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Builds both files' contents without writing them. */
export function buildTinyTokenizer(opts: TinyTokenizerOptions = {}): { tokenizer: object; config: object; info: TinyTokenizerInfo } {
  const alphabet = byteAlphabet();
  const merges = learnMerges(SAMPLE, alphabet, opts.merges ?? 40);
  const vocab: Record<string, number> = {};
  alphabet.forEach((ch, b) => (vocab[ch] = b));
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const base = Object.keys(vocab).length;
  const specials = ['<s>', '</s>', '<|im_start|>', '<|im_end|>'];
  const addedTokens = specials.map((content, k) => ({
    id: base + k,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const bosId = base;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [bosId], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<s>',
    eos_token: '<|im_end|>',
    pad_token: '</s>',
    unk_token: null,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 1 << 20,
    chat_template: CHAT_TEMPLATE,
  };
  const info: TinyTokenizerInfo = {
    vocabSize: base + specials.length,
    bosId,
    endOfTextId: base + 1,
    imStartId: base + 2,
    imEndId: base + 3,
  };
  return { tokenizer, config, info };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (created if needed). */
export function writeTinyTokenizer(dir: string, opts: TinyTokenizerOptions = {}): TinyTokenizerInfo {
  const { tokenizer, config, info } = buildTinyTokenizer(opts);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer, null, 1) + '\n');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  return info;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const mergesAt = args.indexOf('--merges');
  const merges = mergesAt >= 0 ? Number(args[mergesAt + 1]) : undefined;
  const dir = args.find((a, i) => !a.startsWith('--') && (mergesAt < 0 || i !== mergesAt + 1));
  if (!dir || (merges !== undefined && !(Number.isInteger(merges) && merges >= 0))) {
    console.error('usage: node --import tsx scripts/make-tiny-tokenizer.ts <dir> [--merges N]');
    process.exit(2);
  }
  const info = writeTinyTokenizer(dir, { merges });
  console.log(`wrote ${join(dir, 'tokenizer.json')} and tokenizer_config.json: ${JSON.stringify(info)}`);
}
