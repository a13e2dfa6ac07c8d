// A GGUF file's tensors under ctx's (Hugging Face) names, offered the way a model folder's
// WeightStore offers safetensors: by name, lazily, with the shape in Hugging Face order ([out, in]).
// Quantized tensors stay quantized on disk; `float32` dequantizes a whole tensor (the reference
// backend's path), `rows`/`gatherRows` only the rows asked for (the embedding lookup), and
// `rawRows` hands a backend the stored blocks of some rows for re-encoding (matmul-nbits.ts).
// q/k rows of llama-architecture files are put back in Hugging Face order everywhere (names.ts).

import { createHash } from 'node:crypto';
import { CtxError, fsError } from '../../errors.js';
import type { ModelConfig } from '../config.js';
import { fileSha256 } from '../content-hash.js';
import { readExactly, withFileForReading } from '../file-io.js';
import type { ModelWeights } from '../weights.js';
import { dequantize } from './blocks.js';
import { ggufModelConfig } from './config.js';
import { GgufFile, type GgufTensor } from './file.js';
import { GGML_TYPES, type SupportedType } from './ggml-types.js';
import { hfName, llamaRowOrder, reorderedHeads } from './names.js';

/** GGUF tensors ctx reads but that are not weights of the forward pass (folded into the config). */
const CONFIG_TENSORS = new Set(['rope_freqs.weight']);

export interface GgufTensorInfo {
  /** ctx's (Hugging Face) name. */
  name: string;
  /** The name in the file. */
  ggufName: string;
  dtype: SupportedType;
  /** Hugging Face order: [out, in] for a matrix (the reverse of ggml's ne). */
  shape: number[];
  file: string;
  offset: number;
  byteLength: number;
  /** Bytes of one row (the last dimension of `shape`). */
  rowBytes: number;
  /** Hugging Face row r is stored as row rowOrder[r] of the file; null when the orders agree. */
  rowOrder: Int32Array | null;
}

export class GgufWeights implements ModelWeights {
  private readonly byName = new Map<string, GgufTensorInfo>();

  private constructor(
    readonly file: GgufFile,
    config: ModelConfig,
  ) {
    for (const t of file.tensors.values()) {
      if (CONFIG_TENSORS.has(t.name)) continue;
      const name = hfName(t.name);
      if (name === null) throw new CtxError('model', `GGUF tensor "${t.name}" is not part of a ${config.arch} model ctx can run`, { path: file.path });
      this.byName.set(name, infoOf(t, name, file.path, config));
    }
  }

  /** The weights of an opened file whose config has been read (ggufModelConfig). */
  static fromFile(file: GgufFile, config: ModelConfig): GgufWeights {
    return new GgufWeights(file, config);
  }

  static async open(path: string): Promise<GgufWeights> {
    const file = await GgufFile.open(path);
    return new GgufWeights(file, ggufModelConfig(file));
  }

  /** The file's path: a GGUF model is one file where a safetensors model is a folder. */
  get dir(): string {
    return this.file.path;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new CtxError('model', `the GGUF file has no tensor for "${name}"`, { path: this.file.path });
    return t;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The whole tensor dequantized to float32 (Hugging Face row order), with its shape checked when given. */
  float32(name: string, shape?: number[]): Float32Array {
    const t = this.info(name);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new CtxError('model', `tensor "${name}" (${t.ggufName}) has shape [${t.shape}] but the config implies [${shape}]`, { path: t.file });
    }
    return this.rows(name, 0, rowCount(t));
  }

  /** Rows [start, start + count) dequantized: count × rowLength float32 values. */
  rows(name: string, start: number, count: number): Float32Array {
    const t = this.info(name);
    const { bytes } = this.rawRows(name, start, count);
    const rowLength = rowLengthOf(t);
    const out = new Float32Array(count * rowLength);
    dequantize(t.dtype, bytes, 0, out.length, out);
    return out;
  }

  /** The rows `ids` (e.g. token ids of the embedding), dequantized one after another; only those rows are read. */
  gatherRows(name: string, ids: ArrayLike<number>): Float32Array {
    const t = this.info(name);
    const rows = rowCount(t);
    const rowLength = rowLengthOf(t);
    const out = new Float32Array(ids.length * rowLength);
    const buf = Buffer.allocUnsafe(t.rowBytes);
    withFileForReading(t.file, (fd) => {
      for (let k = 0; k < ids.length; k++) {
        const r = ids[k];
        if (!Number.isInteger(r) || r < 0 || r >= rows) throw new RangeError(`row ${r} is outside "${name}" (${rows} rows)`);
        readExactly(fd, buf, t.offset + storedRow(t, r) * t.rowBytes, t.file, ` reading "${t.ggufName}"`);
        dequantize(t.dtype, buf, 0, rowLength, out, k * rowLength);
      }
    });
    return out;
  }

  /** The stored bytes of rows [start, start + count) in Hugging Face order, still in the tensor's type. */
  rawRows(name: string, start: number, count: number): { type: SupportedType; rowLength: number; bytes: Buffer } {
    const t = this.info(name);
    const rows = rowCount(t);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > rows) {
      throw new RangeError(`rows [${start}, ${start + count}) are outside "${name}" (${rows} rows)`);
    }
    const bytes = Buffer.allocUnsafe(count * t.rowBytes);
    withFileForReading(t.file, (fd) => {
      if (t.rowOrder === null) readExactly(fd, bytes, t.offset + start * t.rowBytes, t.file, ` reading "${t.ggufName}"`);
      else {
        for (let k = 0; k < count; k++) readExactly(fd, bytes.subarray(k * t.rowBytes, (k + 1) * t.rowBytes), t.offset + storedRow(t, start + k) * t.rowBytes, t.file, ` reading "${t.ggufName}"`);
      }
    });
    return { type: t.dtype, rowLength: rowLengthOf(t), bytes };
  }

  totalBytes(): number {
    let n = 0;
    for (const t of this.byName.values()) n += t.byteLength;
    return n;
  }

  /**
   * The file's identity for cache keys, as WeightStore.fingerprint: its full SHA-256, computed once
   * and remembered (content-hash.ts); a sampled fingerprint let models that differ elsewhere share
   * converted weights and sessions.
   */
  async fingerprint(signal?: AbortSignal): Promise<string> {
    let sha: string;
    try {
      sha = await fileSha256(this.file.path, { signal });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw fsError(e, this.file.path, 'model');
    }
    return createHash('sha256').update(`gguf\0${sha}`).digest('hex');
  }
}

function infoOf(t: GgufTensor, name: string, path: string, config: ModelConfig): GgufTensorInfo {
  const shape = [...t.ne].reverse();
  const rowBytes = (t.ne[0] / GGML_TYPES[t.type].blockValues) * GGML_TYPES[t.type].blockBytes;
  const heads = reorderedHeads(config.arch, name, config.numHeads, config.numKvHeads);
  let rowOrder: Int32Array | null = null;
  if (heads !== null) {
    const rows = t.ne.length === 1 ? t.ne[0] : t.ne[1];
    if (rows % heads !== 0 || (rows / heads) % 2 !== 0) {
      throw new CtxError('model', `tensor "${t.name}" has ${rows} rows, which do not split into ${heads} heads of even size`, { path });
    }
    // A bias is one value per row: its "rows" are single values, reordered the same way.
    rowOrder = llamaRowOrder(rows, heads).hfToGguf;
  }
  const info: GgufTensorInfo = { name, ggufName: t.name, dtype: t.type, shape, file: path, offset: t.offset, byteLength: t.byteLength, rowBytes, rowOrder };
  if (rowOrder && t.ne.length === 1) {
    // A 1-D tensor is one row of ne[0] values; reorder it as rows of one value (its type's block is 1 for F32/F16/BF16).
    if (GGML_TYPES[t.type].blockValues !== 1) throw new CtxError('model', `bias "${t.name}" is ${t.type}; ctx expects F32, F16 or BF16 biases`, { path });
    return { ...info, shape: [t.ne[0]], rowBytes: GGML_TYPES[t.type].blockBytes };
  }
  return info;
}

/** Rows in the Hugging Face sense: the first dimension of a matrix; a 1-D tensor is one row, unless reordered (one value per row). */
function rowCount(t: GgufTensorInfo): number {
  if (t.shape.length === 1) return t.rowOrder ? t.shape[0] : 1;
  return t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
}

/** Values per row: the last dimension (1 for a reordered bias). */
function rowLengthOf(t: GgufTensorInfo): number {
  return t.shape.length === 1 && t.rowOrder ? 1 : t.shape[t.shape.length - 1];
}

function storedRow(t: GgufTensorInfo, r: number): number {
  return t.rowOrder ? t.rowOrder[r] : r;
}


