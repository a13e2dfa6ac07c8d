// A small GGUF (v3) writer for the benchmark: the same random Qwen2 weights ctx reads from
// safetensors, written for llama.cpp in F32 or Q8_0, with a real tokenizer in the metadata.
//
// File layout (all little-endian):
//   "GGUF" u32 version=3, u64 tensor_count, u64 kv_count
//   kv_count × (string key, u32 value_type, value)           string = u64 length + UTF-8 bytes
//   tensor_count × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml_type, u64 offset)
//   zero padding to `general.alignment` (32), then the tensor data, each tensor at its offset
// ne[0] is the fastest-varying dimension, so a Hugging Face Linear weight [out, in] (row-major) is
// ne = [in, out] with the same bytes. Q8_0: blocks of 32 values along ne[0], each stored as an
// f16 scale d = max|x| / 127 followed by 32 int8 codes round(x / d) — 34 bytes per block.

import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import type { Model } from '../../src/model/model.js';
import { EMBED, FINAL_NORM, layerTensors } from '../../src/model/model.js';
import { floatToHalf } from '../../src/model/safetensors-write.js';
import { readRows } from '../../src/backend/cpu/weights.js';

const VT = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;
const GGML = { F32: 0, Q8_0: 8 } as const;
const ALIGN = 32;

type Value =
  | { t: 'u32' | 'i32' | 'f32'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'string'; v: string }
  | { t: 'strings'; v: string[] }
  | { t: 'i32s'; v: number[] };

class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  value(v: Value): void {
    switch (v.t) {
      case 'u32': this.u32(VT.u32); this.u32(v.v); break;
      case 'i32': this.u32(VT.i32); this.i32(v.v); break;
      case 'f32': this.u32(VT.f32); this.f32(v.v); break;
      case 'bool': this.u32(VT.bool); this.push(Buffer.of(v.v ? 1 : 0)); break;
      case 'string': this.u32(VT.string); this.str(v.v); break;
      case 'strings': this.u32(VT.array); this.u32(VT.string); this.u64(v.v.length); for (const s of v.v) this.str(s); break;
      case 'i32s': this.u32(VT.array); this.u32(VT.i32); this.u64(v.v.length); for (const x of v.v) this.i32(x); break;
    }
  }
  buffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** The vocabulary of a Hugging Face BPE tokenizer.json, padded to `size` entries for GGUF. */
function tokenizerMetadata(tokenizerJson: string, size: number): Record<string, Value> {
  const t = JSON.parse(readFileSync(tokenizerJson, 'utf8'));
  const tokens: string[] = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const types: number[] = Array(size).fill(5); // 5 = unused
  for (const [piece, id] of Object.entries(t.model.vocab as Record<string, number>)) {
    tokens[id] = piece;
    types[id] = 1; // normal
  }
  for (const a of t.added_tokens as Array<{ id: number; content: string; special: boolean }>) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4; // control : user-defined
  }
  const merges = (t.model.merges as Array<string | [string, string]>).map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));
  const eos = (t.added_tokens as Array<{ id: number; content: string }>).find((a) => a.content === '<|endoftext|>')?.id ?? 0;
  return {
    'tokenizer.ggml.model': { t: 'string', v: 'gpt2' },
    'tokenizer.ggml.pre': { t: 'string', v: 'qwen2' },
    'tokenizer.ggml.tokens': { t: 'strings', v: tokens },
    'tokenizer.ggml.token_type': { t: 'i32s', v: types },
    'tokenizer.ggml.merges': { t: 'strings', v: merges },
    'tokenizer.ggml.eos_token_id': { t: 'u32', v: eos },
    'tokenizer.ggml.padding_token_id': { t: 'u32', v: eos },
    'tokenizer.ggml.bos_token_id': { t: 'u32', v: eos },
    'tokenizer.ggml.add_bos_token': { t: 'bool', v: false },
  };
}

/** Q8_0 encoding of one row (length a multiple of 32). */
function q8_0(row: Float32Array): Buffer {
  const nb = row.length / 32;
  const out = Buffer.alloc(nb * 34);
  for (let b = 0; b < nb; b++) {
    let m = 0;
    for (let i = 0; i < 32; i++) m = Math.max(m, Math.abs(row[b * 32 + i]));
    const d = m / 127;
    const id = d ? 1 / d : 0;
    out.writeUInt16LE(floatToHalf(d), b * 34);
    for (let i = 0; i < 32; i++) out.writeInt8(Math.round(row[b * 32 + i] * id), b * 34 + 2 + i);
  }
  return out;
}

interface Entry {
  name: string;
  source: string;
  ne: number[];
  type: number;
  bytes: number;
}

/** Writes the Qwen2 `model` as GGUF (`F32` or `Q8_0` for every matrix; vectors stay F32). */
export function writeQwen2Gguf(model: Model, path: string, type: 'F32' | 'Q8_0', tokenizerJson: string): void {
  const c = model.config;
  if (c.arch !== 'qwen2') throw new Error(`the GGUF writer handles qwen2 models, not ${c.arch}`);
  const entries: Entry[] = [];
  const add = (name: string, source: string) => {
    const shape = model.weights.info(source).shape;
    const ne = [...shape].reverse();
    const matrix = shape.length === 2 && type === 'Q8_0';
    const n = shape.reduce((a, b) => a * b, 1);
    entries.push({ name, source, ne, type: matrix ? GGML.Q8_0 : GGML.F32, bytes: matrix ? (n / 32) * 34 : n * 4 });
  };
  add('token_embd.weight', EMBED);
  for (let l = 0; l < c.numLayers; l++) {
    const t = layerTensors(model, l);
    const p = `blk.${l}`;
    add(`${p}.attn_norm.weight`, t.inputNorm);
    for (const [k, proj] of [['q', t.q], ['k', t.k], ['v', t.v]] as const) {
      add(`${p}.attn_${k}.weight`, proj.weight);
      if (proj.bias) add(`${p}.attn_${k}.bias`, proj.bias);
    }
    add(`${p}.attn_output.weight`, t.o.weight);
    add(`${p}.ffn_norm.weight`, t.postNorm);
    add(`${p}.ffn_gate.weight`, t.gate);
    add(`${p}.ffn_up.weight`, t.up);
    add(`${p}.ffn_down.weight`, t.down);
  }
  add('output_norm.weight', FINAL_NORM);
  if (!c.tieWordEmbeddings) add('output.weight', 'lm_head.weight');

  const meta: Record<string, Value> = {
    'general.architecture': { t: 'string', v: 'qwen2' },
    'general.name': { t: 'string', v: 'ctx-bench random qwen2' },
    'general.alignment': { t: 'u32', v: ALIGN },
    'general.file_type': { t: 'u32', v: type === 'F32' ? 0 : 7 },
    'qwen2.context_length': { t: 'u32', v: c.maxPositions },
    'qwen2.embedding_length': { t: 'u32', v: c.hiddenSize },
    'qwen2.block_count': { t: 'u32', v: c.numLayers },
    'qwen2.feed_forward_length': { t: 'u32', v: c.intermediateSize },
    'qwen2.attention.head_count': { t: 'u32', v: c.numHeads },
    'qwen2.attention.head_count_kv': { t: 'u32', v: c.numKvHeads },
    'qwen2.rope.freq_base': { t: 'f32', v: c.ropeTheta },
    'qwen2.attention.layer_norm_rms_epsilon': { t: 'f32', v: c.rmsNormEps },
    ...tokenizerMetadata(tokenizerJson, c.vocabSize),
  };

  const head = new Bytes();
  head.push(Buffer.from('GGUF', 'ascii'));
  head.u32(3);
  head.u64(entries.length);
  head.u64(Object.keys(meta).length);
  for (const [k, v] of Object.entries(meta)) {
    head.str(k);
    head.value(v);
  }
  let offset = 0;
  for (const e of entries) {
    head.str(e.name);
    head.u32(e.ne.length);
    for (const d of e.ne) head.u64(d);
    head.u32(e.type);
    head.u64(offset);
    offset += Math.ceil(e.bytes / ALIGN) * ALIGN;
  }
  const header = head.buffer();
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, header);
    writeSync(fd, Buffer.alloc((ALIGN - (header.length % ALIGN)) % ALIGN));
    for (const e of entries) {
      const info = model.weights.info(e.source);
      const rows = info.shape.length === 2 ? info.shape[0] : 1;
      const step = Math.max(1, Math.floor((4 << 20) / (e.ne[0] * 4)));
      let written = 0;
      for (let r = 0; r < rows; r += step) {
        const f = readRows(info, r, Math.min(step, rows - r));
        const b = e.type === GGML.Q8_0 ? q8_0(f) : Buffer.from(f.buffer, f.byteOffset, f.byteLength);
        writeSync(fd, b);
        written += b.length;
      }
      writeSync(fd, Buffer.alloc(Math.ceil(written / ALIGN) * ALIGN - written));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
