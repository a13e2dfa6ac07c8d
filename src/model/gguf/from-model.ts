// A ctx model folder (config + safetensors) written as a GGUF file llama.cpp can load: the
// benchmark's peer files and the tests' fixtures in every type. The inverse of what config.ts,
// names.ts and weights.ts read, so a file written here and read back gives the same model.
//
// Tensors are read and encoded a few megabytes of rows at a time, so a 1.5B model never passes
// whole through memory. q/k rows of llama models are reordered as llama.cpp's converter does (names.ts).

import { readFileSync } from 'node:fs';
import type { ModelConfig } from '../config.js';
import { safetensorsWeights, type Model } from '../model.js';
import { readTensorRange, toFloat32, type TensorInfo } from '../safetensors.js';
import { GGML_TYPES, type SupportedType } from './ggml-types.js';
import { ggufName, llamaRowOrder, reorderedHeads } from './names.js';
import { quantize } from './quantize.js';
import { gv, writeGguf, type GgufTensorToWrite, type GgufValue } from './write.js';

export interface GgufExportOptions {
  /** The stored type of each tensor (default F32). Types with blocks need the row length to be a multiple of the block. */
  typeOf?: (hfName: string, shape: number[]) => SupportedType;
  /** tokenizer.* metadata (bpeTokenizerMetadata, or built by hand). */
  tokenizer: Record<string, GgufValue>;
  /** general.name (default "ctx model"). */
  name?: string;
}

/** The general.file_type ggml gives a file whose matrices are of `type` (llama_ftype). */
const FILE_TYPE: Record<SupportedType, number> = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q4_K: 15, Q5_K: 17, Q6_K: 18, BF16: 32 };

/**
 * The type llama.cpp's quantizer (llama_tensor_get_type) gives each tensor of a Q4_K_M file of a
 * dense qwen2/llama model, so the benchmark and the tests hold the files people download:
 *   vectors F32; the LM head (the embedding when tied) Q6_K; v_proj and down_proj Q6_K in the
 *   layers use_more_bits picks (the first and last eighth, and every third between), else Q4_K;
 *   everything else Q4_K. A matrix whose rows are not a multiple of 256 values cannot be a K-quant:
 *   Q4_K falls back to Q5_0 and Q6_K to Q8_0 (so Qwen2.5-0.5B's 896-wide rows are Q5_0 and Q8_0).
 */
export function q4kmType(c: ModelConfig): (hfName: string, shape: number[]) => SupportedType {
  const n = c.numLayers;
  // C integer arithmetic, as in llama.cpp.
  const useMoreBits = (i: number) => i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;
  return (name, shape) => {
    if (shape.length !== 2) return 'F32';
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    const head = name === 'lm_head.weight' || (name === 'model.embed_tokens.weight' && c.tieWordEmbeddings);
    const more = layer !== null && /\.(v_proj|down_proj)\.weight$/.test(name) && useMoreBits(Number(layer[1]));
    const type = head || more ? 'Q6_K' : 'Q4_K';
    if (shape[1] % 256 === 0) return type;
    return type === 'Q6_K' ? 'Q8_0' : 'Q5_0';
  };
}

/** Rows [row, row + rows) of a safetensors tensor as float32. */
function readRows(t: TensorInfo, row: number, rows: number): Float32Array {
  const cols = t.shape.length === 1 ? t.shape[0] : t.shape.slice(1).reduce((a, b) => a * b, 1);
  const bytesPer = t.byteLength / t.shape.reduce((a, b) => a * b, 1);
  const length = rows * cols * bytesPer;
  return toFloat32({ ...t, byteLength: length }, readTensorRange(t, row * cols * bytesPer, length));
}

/** The <arch>.* metadata of a config (and rope_freqs values for llama 3 scaling). */
export function ggufModelMetadata(c: ModelConfig): { meta: Record<string, GgufValue>; ropeFreqs: Float32Array | null } {
  const a = c.arch;
  if (a === 'phi') throw new Error('GGUF export: the phi architecture has no GGUF form here');
  const meta: Record<string, GgufValue> = {
    [`${a}.context_length`]: gv.u32(c.maxPositions),
    [`${a}.embedding_length`]: gv.u32(c.hiddenSize),
    [`${a}.block_count`]: gv.u32(c.numLayers),
    [`${a}.feed_forward_length`]: gv.u32(c.intermediateSize),
    [`${a}.attention.head_count`]: gv.u32(c.numHeads),
    [`${a}.attention.head_count_kv`]: gv.u32(c.numKvHeads),
    [`${a}.attention.key_length`]: gv.u32(c.headDim),
    [`${a}.attention.value_length`]: gv.u32(c.headDim),
    [`${a}.rope.dimension_count`]: gv.u32(c.headDim),
    [`${a}.rope.freq_base`]: gv.f32(c.ropeTheta),
    [`${a}.attention.layer_norm_rms_epsilon`]: gv.f32(c.rmsNormEps),
  };
  const rs = c.ropeScaling;
  let ropeFreqs: Float32Array | null = null;
  if (rs?.type === 'linear') {
    meta[`${a}.rope.scaling.type`] = gv.str('linear');
    meta[`${a}.rope.scaling.factor`] = gv.f32(rs.factor);
  } else if (rs?.type === 'yarn') {
    meta[`${a}.rope.scaling.type`] = gv.str('yarn');
    meta[`${a}.rope.scaling.factor`] = gv.f32(rs.factor);
    meta[`${a}.rope.scaling.original_context_length`] = gv.u32(rs.originalMaxPositions);
    meta[`${a}.rope.scaling.yarn_beta_fast`] = gv.f32(rs.betaFast);
    meta[`${a}.rope.scaling.yarn_beta_slow`] = gv.f32(rs.betaSlow);
  } else if (rs?.type === 'llama3') {
    // One divisor per frequency, as llama.cpp's converter writes for Llama 3.1+.
    const lowWavelen = rs.originalMaxPositions / rs.lowFreqFactor;
    const highWavelen = rs.originalMaxPositions / rs.highFreqFactor;
    ropeFreqs = Float32Array.from({ length: c.headDim / 2 }, (_, i) => {
      const wavelen = (2 * Math.PI) / (1 / c.ropeTheta ** ((2 * i) / c.headDim));
      if (wavelen < highWavelen) return 1;
      if (wavelen > lowWavelen) return rs.factor;
      const smooth = (rs.originalMaxPositions / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
      return 1 / ((1 - smooth) / rs.factor + smooth);
    });
  } else if (rs) {
    throw new Error(`GGUF export: rope scaling "${rs.type}" has no GGUF form here`);
  }
  return { meta, ropeFreqs };
}

/** Writes `model` as GGUF at `path` (atomically). */
export function writeModelGguf(model: Model, path: string, opts: GgufExportOptions): void {
  const c = model.config;
  if (c.beacon || c.focus) throw new Error('GGUF export: beacon and FocusLLM checkpoints have tensors llama.cpp does not know');
  const typeOf = opts.typeOf ?? (() => 'F32' as SupportedType);
  const tensors: GgufTensorToWrite[] = [];
  const { meta, ropeFreqs } = ggufModelMetadata(c);
  if (ropeFreqs) tensors.push({ name: 'rope_freqs.weight', ne: [ropeFreqs.length], type: 'F32', data: new Uint8Array(ropeFreqs.buffer) });

  let fileType: SupportedType = 'F32';
  const weights = safetensorsWeights(model);
  for (const hf of weights.names()) {
    const name = ggufName(hf);
    if (name === null) throw new Error(`GGUF export: tensor "${hf}" has no llama.cpp name`);
    if (hf === 'lm_head.weight' && c.tieWordEmbeddings) continue;
    const info = weights.info(hf);
    const type = typeOf(hf, info.shape);
    if (info.shape.length === 2 && hf !== 'model.embed_tokens.weight') fileType = type;
    const heads = reorderedHeads(c.arch, hf, c.numHeads, c.numKvHeads);
    const rows = info.shape.length === 2 ? info.shape[0] : 1;
    const cols = info.shape[info.shape.length - 1];
    const ne = [...info.shape].reverse();
    if (cols % GGML_TYPES[type].blockValues !== 0) throw new Error(`GGUF export: "${hf}" rows of ${cols} values cannot be ${type}`);
    const data = (): Iterable<Uint8Array> => {
      if (heads !== null) {
        // q/k: small; reorder the whole tensor (a bias reorders its values).
        const whole = weights.float32(hf);
        const n = info.shape[0];
        const width = whole.length / n;
        const { ggufToHf } = llamaRowOrder(n, heads);
        const out = new Float32Array(whole.length);
        for (let g = 0; g < n; g++) out.set(whole.subarray(ggufToHf[g] * width, (ggufToHf[g] + 1) * width), g * width);
        return [quantize(type, out)];
      }
      const step = Math.max(1, Math.floor((4 << 20) / (cols * 4)));
      return (function* () {
        for (let r = 0; r < rows; r += step) yield quantize(type, readRows(info, r, Math.min(step, rows - r)));
      })();
    };
    tensors.push({ name, ne, type, data });
  }

  writeGguf(
    path,
    {
      'general.architecture': gv.str(c.arch),
      'general.name': gv.str(opts.name ?? 'ctx model'),
      'general.alignment': gv.u32(32),
      'general.file_type': gv.u32(FILE_TYPE[fileType]),
      ...meta,
      ...opts.tokenizer,
    },
    tensors,
  );
}

/**
 * tokenizer.* metadata for a byte-level BPE tokenizer.json (GPT-2 style, as Qwen's), with the
 * token list padded to `size` entries as llama.cpp's converter pads it to the embedding's rows.
 * token_type: 1 normal, 3 control (special added tokens), 4 user-defined (other added tokens), 5 unused.
 */
export function bpeTokenizerMetadata(
  tokenizerJson: string,
  size: number,
  pre: string,
  extra: { chatTemplate?: string; addBos?: boolean; eos?: string } = {},
): Record<string, GgufValue> {
  const t = JSON.parse(readFileSync(tokenizerJson, 'utf8'));
  const tokens: string[] = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const types: number[] = Array(size).fill(5);
  for (const [piece, id] of Object.entries(t.model.vocab as Record<string, number>)) {
    tokens[id] = piece;
    types[id] = 1;
  }
  const added = (t.added_tokens ?? []) as Array<{ id: number; content: string; special: boolean }>;
  for (const a of added) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  const merges = (t.model.merges as Array<string | [string, string]>).map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));
  const eos = added.find((a) => a.content === (extra.eos ?? '<|endoftext|>'))?.id ?? 0;
  const meta: Record<string, GgufValue> = {
    'tokenizer.ggml.model': gv.str('gpt2'),
    'tokenizer.ggml.pre': gv.str(pre),
    'tokenizer.ggml.tokens': gv.strings(tokens),
    'tokenizer.ggml.token_type': gv.i32s(types),
    'tokenizer.ggml.merges': gv.strings(merges),
    'tokenizer.ggml.eos_token_id': gv.u32(eos),
    'tokenizer.ggml.padding_token_id': gv.u32(eos),
    'tokenizer.ggml.bos_token_id': gv.u32(eos),
    'tokenizer.ggml.add_bos_token': gv.bool(extra.addBos ?? false),
  };
  if (extra.chatTemplate !== undefined) meta['tokenizer.chat_template'] = gv.str(extra.chatTemplate);
  return meta;
}
