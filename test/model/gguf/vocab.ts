// Vocabularies for the GGUF tokenizer tests, as tokenizer.* metadata:
//  - small ones learned here from a training text (always available): a byte-level BPE and a
//    SentencePiece-style vocabulary with scores and <0xXX> byte tokens;
//  - real ones from ../shared when present: Qwen3's tokenizer.json and Llama 2's tokenizer.model.
// And the llama.cpp peer (node-llama-cpp in bench/cpu/peer), loaded when installed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bpeTokenizerMetadata } from '../../../src/model/gguf/from-model.js';
import { PRE_TOKENIZERS } from '../../../src/model/gguf/tokenizer.js';
import { gv, writeGguf, type GgufValue } from '../../../src/model/gguf/write.js';
import { REPO_ROOT } from '../../helpers/fixtures.js';
import { importLlamaCpp } from '../../helpers/llama-cpp.js';
import { scratchPath } from './helpers.js';

/** GPT-2's reversible map from bytes to printable characters (byte-level BPE token text). */
export function byteToChar(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : next++));
  return out;
}

/** Most frequent adjacent pair of a list of words (each a list of symbols) weighted by count. */
function bestPair(words: Map<string[], number>): [string, string] | null {
  const counts = new Map<string, number>();
  for (const [w, n] of words) for (let i = 0; i + 1 < w.length; i++) counts.set(`${w[i]}\u0000${w[i + 1]}`, (counts.get(`${w[i]}\u0000${w[i + 1]}`) ?? 0) + n);
  let best: string | null = null;
  let bestN = 1;
  for (const [k, n] of counts) if (n > bestN || (n === bestN && best !== null && k < best)) [best, bestN] = [k, n];
  return best === null ? null : (best.split('\u0000') as [string, string]);
}

function applyMerge(words: Map<string[], number>, [a, b]: [string, string]): Map<string[], number> {
  const out = new Map<string[], number>();
  for (const [w, n] of words) {
    const merged: string[] = [];
    for (let i = 0; i < w.length; i++) {
      if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
        merged.push(a + b);
        i++;
      } else merged.push(w[i]);
    }
    out.set(merged, n);
  }
  return out;
}

/** Words of `text` with counts, split by `re`. */
function wordCounts(text: string, re: RegExp, map: (w: string) => string[]): Map<string[], number> {
  const byText = new Map<string, number>();
  for (const m of text.matchAll(re)) byText.set(m[0], (byText.get(m[0]) ?? 0) + 1);
  return new Map([...byText].map(([w, n]) => [map(w), n]));
}

export const TRAINING_TEXT = readFileSync(join(REPO_ROOT, 'fixtures/demo/needle-8k.txt'), 'utf8').slice(0, 20000) +
  ' The year 2024 had 366 days; café naïve résumé. function add(a, b) { return a + b; } // sum\n\tif (x >= 10) print("ten")\n';

/** A byte-level BPE (gpt2 model) learned from TRAINING_TEXT: 256 byte tokens, `merges` merges, 4 added tokens. */
export function smallBpe(merges = 300, pre = 'qwen2'): Record<string, GgufValue> {
  const b2c = byteToChar();
  const enc = new TextEncoder();
  let words = wordCounts(TRAINING_TEXT, new RegExp(PRE_TOKENIZERS[pre].regex, 'gu'), (w) => Array.from(enc.encode(w), (b) => b2c[b]));
  const tokens = [...b2c];
  const mergeList: string[] = [];
  for (let k = 0; k < merges; k++) {
    const pair = bestPair(words);
    if (!pair) break;
    words = applyMerge(words, pair);
    mergeList.push(`${pair[0]} ${pair[1]}`);
    if (!tokens.includes(pair[0] + pair[1])) tokens.push(pair[0] + pair[1]);
  }
  const types = tokens.map(() => 1);
  const added: Array<[string, number]> = [['<|endoftext|>', 3], ['<|im_start|>', 3], ['<|im_end|>', 3], ['<tool_call>', 4]];
  for (const [t, type] of added) {
    tokens.push(t);
    types.push(type);
  }
  const eos = tokens.indexOf('<|im_end|>');
  return {
    'tokenizer.ggml.model': gv.str('gpt2'),
    'tokenizer.ggml.pre': gv.str(pre),
    'tokenizer.ggml.tokens': gv.strings(tokens),
    'tokenizer.ggml.token_type': gv.i32s(types),
    'tokenizer.ggml.merges': gv.strings(mergeList),
    'tokenizer.ggml.bos_token_id': gv.u32(tokens.indexOf('<|endoftext|>')),
    'tokenizer.ggml.eos_token_id': gv.u32(eos),
    'tokenizer.ggml.padding_token_id': gv.u32(tokens.indexOf('<|endoftext|>')),
    'tokenizer.ggml.add_bos_token': gv.bool(false),
    'tokenizer.chat_template': gv.str(
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    ),
  };
}

/** A SentencePiece-style vocabulary (llama model) learned from TRAINING_TEXT, with scores and byte tokens. */
export function smallSentencePiece(merges = 300): Record<string, GgufValue> {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
    scores.push(0);
  }
  const text = TRAINING_TEXT.replace(/ /g, '▁');
  const chars = [...new Set(Array.from(`▁${text}`))].filter((c) => c !== '\n' && c !== '\t').sort();
  // Single characters score below every learned piece, so merges always win over them.
  chars.forEach((c, i) => {
    tokens.push(c);
    types.push(1);
    scores.push(-1000 - i);
  });
  let words = wordCounts(`▁${text}`, /▁?[^▁\n\t]+|▁/gu, (w) => Array.from(w));
  for (let k = 0; k < merges; k++) {
    const pair = bestPair(words);
    if (!pair) break;
    words = applyMerge(words, pair);
    if (!tokens.includes(pair[0] + pair[1])) {
      tokens.push(pair[0] + pair[1]);
      types.push(1);
      scores.push(-k);
    }
  }
  return llamaVocab(tokens, scores, types);
}

/** Llama 2's tokenizer.model (a sentencepiece ModelProto) as GGUF metadata, as llama.cpp's converter writes it. */
export function sentencePieceModelMetadata(path: string): Record<string, GgufValue> {
  const buf = readFileSync(path);
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  let p = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[p++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  const skip = (wire: number) => {
    if (wire === 0) varint();
    else if (wire === 1) p += 8;
    else if (wire === 2) {
      const n = varint();
      p += n;
    }
    else if (wire === 5) p += 4;
    else throw new Error(`protobuf wire type ${wire}`);
  };
  while (p < buf.length) {
    const key = varint();
    if (key >> 3 !== 1 || (key & 7) !== 2) {
      skip(key & 7);
      continue;
    }
    // ModelProto.pieces: { 1: piece (string), 2: score (float), 3: type (enum, default NORMAL = 1) }
    const length = varint();
    const end = p + length;
    let piece = '';
    let score = 0;
    let type = 1;
    while (p < end) {
      const k = varint();
      if (k === (1 << 3) + 2) {
        const n = varint();
        piece = buf.toString('utf8', p, p + n);
        p += n;
      } else if (k === (2 << 3) + 5) {
        score = buf.readFloatLE(p);
        p += 4;
      } else if (k === (3 << 3) + 0) type = varint();
      else skip(k & 7);
    }
    tokens.push(piece);
    scores.push(score);
    types.push(type);
  }
  return llamaVocab(tokens, scores, types);
}

const realVocabs = new Map<string, Record<string, GgufValue>>();

/** Qwen3's tokenizer.json from ../shared as GGUF metadata with the given pre-tokenizer (read once). */
export function qwen3Metadata(tokenizerJson: string, pre: string): Record<string, GgufValue> {
  let meta = realVocabs.get(tokenizerJson);
  if (!meta) {
    meta = readQwen3(tokenizerJson);
    realVocabs.set(tokenizerJson, meta);
  }
  return { ...meta, 'tokenizer.ggml.pre': gv.str(pre) };
}

function readQwen3(tokenizerJson: string): Record<string, GgufValue> {
  const t = JSON.parse(readFileSync(tokenizerJson, 'utf8'));
  const ids = [...Object.values(t.model.vocab as Record<string, number>), ...(t.added_tokens as Array<{ id: number }>).map((a) => a.id)];
  const size = ids.reduce((a, b) => Math.max(a, b), 0) + 1;
  return bpeTokenizerMetadata(tokenizerJson, size, 'qwen2', { eos: '<|im_end|>' });
}

/** A metadata-only GGUF (no tensors) holding `tokenizer`: enough for llama.cpp's vocab-only load and for ctx's tokenizer. */
export function vocabGguf(tokenizer: Record<string, GgufValue>, arch: 'qwen2' | 'llama' = 'qwen2'): string {
  const path = scratchPath('vocab.gguf');
  writeGguf(
    path,
    {
      'general.architecture': gv.str(arch),
      [`${arch}.context_length`]: gv.u32(256),
      [`${arch}.embedding_length`]: gv.u32(64),
      [`${arch}.block_count`]: gv.u32(1),
      [`${arch}.feed_forward_length`]: gv.u32(128),
      [`${arch}.attention.head_count`]: gv.u32(4),
      [`${arch}.attention.head_count_kv`]: gv.u32(4),
      [`${arch}.attention.layer_norm_rms_epsilon`]: gv.f32(1e-6),
      ...tokenizer,
    },
    [],
  );
  return path;
}

export interface LlamaPeer {
  /** llama.cpp's tokens for `text` (no BOS); `special` reads special-token text as those tokens. */
  tokenize(path: string, text: string, special: boolean): Promise<number[]>;
  dispose(): Promise<void>;
}

/** node-llama-cpp from bench/cpu/peer, or the reason it is not there (test/helpers/llama-cpp.ts). */
export async function loadLlamaPeer(): Promise<LlamaPeer | string> {
  const mod = await importLlamaCpp('compare tokenization with it');
  if (typeof mod === 'string') return mod;
  // 'fatal': a vocab-only load logs a harmless "failed to load model" at error level.
  const llama = await mod.getLlama({ gpu: false, build: 'never', logLevel: 'fatal' });
  const models = new Map<string, Awaited<ReturnType<typeof llama.loadModel>>>();
  return {
    async tokenize(path, text, special) {
      let m = models.get(path);
      if (!m) {
        m = await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 });
        models.set(path, m);
      }
      return Array.from(m.tokenize(text, special));
    },
    async dispose() {
      for (const m of models.values()) await m.dispose();
    },
  };
}

/** The metadata of a SentencePiece ("llama") vocabulary: pieces, scores and types; <unk> 0, <s> 1, </s> 2. */
function llamaVocab(tokens: string[], scores: number[], types: number[]) {
  return {
    'tokenizer.ggml.model': gv.str('llama'),
    'tokenizer.ggml.tokens': gv.strings(tokens),
    'tokenizer.ggml.scores': gv.f32s(scores),
    'tokenizer.ggml.token_type': gv.i32s(types),
    'tokenizer.ggml.bos_token_id': gv.u32(1),
    'tokenizer.ggml.eos_token_id': gv.u32(2),
    'tokenizer.ggml.unknown_token_id': gv.u32(0),
    'tokenizer.ggml.add_bos_token': gv.bool(true),
  };
}
