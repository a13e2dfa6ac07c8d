// Converted weights: the model's tensors rewritten once into one ONNX external-data file that every
// graph of the cpu backend refers to by offset, so ONNX Runtime loads (and may memory-map) them by
// path and no model ever passes whole through a JavaScript buffer.
//
// Folder:  <cache>/onnx/<fingerprint>-<dtype>-v<CONVERTER_VERSION>/
//            weights.bin     the tensors, each at a 64 KiB-aligned offset
//            layout.json     name -> { offset, length, dataType, dims } for every stored tensor
//            complete.json   written last: the sizes of the two files above (the "done" marker)
//            *.onnx          graphs (graphs.ts), named by a hash of their bytes, added on load
//
// A conversion writes into a temporary sibling folder and renames it into place, so a folder with
// a matching complete.json is whole; a folder without one (a crash mid-rename cannot make one) is
// removed and converted again.
//
// What is stored: every module of the model's tensor table (model/tensors.ts) under its role,
// "<l>.<role>" for layer l ("linear" = f32 [out, in], or 8/4-bit codes, see below; "+ .bias"
// where the module has one):
//   norms     f32 [dim]                      <l>.inputNorm, <l>.postNorm, finalNorm
//   linears   linear [out, in] (+ .bias)     <l>.o, <l>.gate, <l>.up, <l>.down, lmHead, ...
//   <l>.qkv   linear [qDim + 2 kvDim, H]     q, k, v stacked by rows: one GEMM (+ .bias when all have one)
//   <l>.beaconQkv                            beaconQ/K/V stacked likewise (beacon checkpoints)
//   embed     8-bit table [vocab, H]         quantized modes only, and only when no 8-bit lmHead
//                                            already is the embedding (tied weights in q8)
// A role that falls back to another (beaconO to o, lmHead to a tied embedding) is stored once,
// under the first role that needs it. In f32 mode embedding rows are read on demand from the
// safetensors (embedding.ts); in q8/q4 they are gathered from the 8-bit table named by
// `layout.embedTable` (the tied LM head itself in q8), so no float copy of the table is read.
//
// q8: every linear layer is 8-bit (attention projections, MLP, LM head — what llama.cpp's Q8_0
// does); the MLP and LM head in blocks of WIDE_BLOCK = 64, the attention projections in blocks of
// BLOCK = 32. Blocks of 64 take 10% less memory once ONNX Runtime has packed them (sessions.ts:
// 1.125 instead of 1.25 bytes per weight, and half the scales) — about 90 MiB for Qwen2.5-0.5B —
// at the same top-1 agreement with f32 on the goldens (93.3% vs 93.2%; blocks of 128: 92.4%).
// q4: the MLP and LM head (the modules the table marks quantizable, 90% of the weights) in 4 bits,
// the attention projections in 8: attention scores amplify their errors. Each quantized
// row is cut into blocks of `block` values along the input dimension; block b of row o keeps the
// scale s = max|w| / qmax and the codes round(w / s) + zero, qmax = 2^(bits−1) − 1 (127 or 7),
// zero = 2^(bits−1) (128 or 8) — the layout of com.microsoft.MatMulNBits without zero points
// (implied zero point 2^(bits−1)); 4-bit codes pack two per byte, the even element in the low nibble:
//   <name>.q       uint8 [out, ceil(in / block), block · bits / 8]   (the last block zero-padded)
//   <name>.scales  f32   [out * ceil(in / block)]
// layout.formats names each linear's bits and block.
//
// GGUF files (dtype "gguf"): their matrices are written as the file stores them, never quantized
// again — quantized types re-encoded for MatMulNBits with the file's own codes and scales, float
// types as f32 (gguf-weights.ts; `layout.nbits` and `layout.parts` describe what differs).

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CtxError, fsError } from '../../errors.js';
import { isRunning, ownerTag, parseTag } from '../../model/owner.js';
import { makePrivateDir } from '../../model/paths.js';
import { ggufWeights, safetensorsWeights, type Model } from '../../model/model.js';
import type { ModuleTensors, Modules } from '../../model/tensors.js';
import { DTYPE_BYTES, readTensorRange, toFloat32, type TensorInfo } from '../../model/safetensors.js';
import { writeGgufModel } from './gguf-weights.js';

/** Bump when the stored layout changes: old folders are then simply not found. */
export const CONVERTER_VERSION = 6;
/** Values per quantization block (one scale each) of attention projections and 4-bit layers. */
export const BLOCK = 32;
/** Values per block of the 8-bit MLP and LM head (q8): see "q8 / q4" above. */
export const WIDE_BLOCK = 64;
const ALIGN = 64 * 1024;

/** f32, q8, q4: a safetensors model converted so; gguf: a GGUF file's weights as stored (gguf-weights.ts). */
export type WeightDType = 'f32' | 'q8' | 'q4' | 'gguf';

export interface StoredTensor {
  offset: number;
  length: number;
  dataType: 'float' | 'uint8';
  dims: number[];
}

/** How a linear layer is stored: float32 (bits 0), or `bits`-bit codes in blocks of `block` values. */
export interface LinearFormat {
  bits: 0 | 8 | 4;
  block: number;
}

export interface Layout {
  version: number;
  dtype: WeightDType;
  fingerprint: string;
  /** The external-data file name, relative to the folder. */
  file: string;
  tensors: Record<string, StoredTensor>;
  /** Shape of every linear layer by name: [out, in]. */
  linears: Record<string, [number, number]>;
  /** Safetensors conversions: the format of every linear layer by name. */
  formats?: Record<string, LinearFormat>;
  /** The stored 8-bit linear whose rows are the token embeddings (quantized modes), e.g. "lmHead" or "embed". */
  embedTable?: string;
  /** GGUF sources: the MatMulNBits form of each quantized linear (gguf-weights.ts). */
  nbits?: Record<string, NBitsFormat>;
  /** GGUF sources: a linear stored as row blocks of different forms (q, k, v of different types), by name. */
  parts?: Record<string, string[]>;
}

/** How a GGUF linear's MatMulNBits tensors are laid out (model/gguf/matmul-nbits.ts). */
export interface NBitsFormat {
  bits: 4 | 8;
  blockSize: number;
  /** `<name>.zp` holds explicit zero points. */
  zeroPoints: boolean;
  /** `<name>.mins` [out, in / blockSize] is subtracted as mins · blockSums(x). */
  mins: boolean;
}

/** A linear layer's stored form: one f32 matrix, or 8/4-bit codes + scales. */
export type StoredLinear =
  | { kind: 'f32'; w: StoredTensor; bias?: StoredTensor; out: number; in: number }
  | {
      kind: 'nbits';
      bits: 8 | 4;
      q: StoredTensor;
      scales: StoredTensor;
      bias?: StoredTensor;
      out: number;
      in: number;
      /** Values per block (BLOCK unless a GGUF format says otherwise). */
      blockSize: number;
      zeroPoints?: StoredTensor;
      mins?: StoredTensor;
    }
  | { kind: 'parts'; parts: string[]; out: number; in: number };

export interface ConvertedWeights {
  dir: string;
  layout: Layout;
}

/**
 * Reads `rows` rows starting at `row` of a source tensor as float32 (F32, F16, BF16 sources). A row
 * is everything after the first dimension; a 1-D tensor is a single row.
 */
export function readRows(t: TensorInfo, row: number, rows: number): Float32Array {
  const cols = t.shape.length === 1 ? t.shape[0] : t.shape.slice(1).reduce((a, b) => a * b, 1);
  const bytesPer = DTYPE_BYTES[t.dtype];
  const length = rows * cols * bytesPer;
  const buf = readTensorRange(t, row * cols * bytesPer, length);
  return toFloat32({ ...t, byteLength: length }, buf);
}

/** Appends tensors to weights.bin at aligned offsets and records them in the layout. */
export class WeightsFileWriter {
  private fd: number;
  private pos = 0;
  readonly tensors: Record<string, StoredTensor> = {};
  readonly linears: Record<string, [number, number]> = {};
  readonly nbits: Record<string, NBitsFormat> = {};
  readonly parts: Record<string, string[]> = {};
  readonly formats: Record<string, LinearFormat> = {};

  constructor(private readonly path: string) {
    this.fd = openSync(path, 'w', 0o600);
  }

  private align(): void {
    const pad = (ALIGN - (this.pos % ALIGN)) % ALIGN;
    if (pad) {
      writeSync(this.fd, Buffer.alloc(pad));
      this.pos += pad;
    }
  }

  /** Starts a tensor; `write` is then called with consecutive chunks of its bytes. */
  begin(name: string, dataType: StoredTensor['dataType'], dims: number[]): (chunk: Uint8Array) => void {
    this.align();
    const t: StoredTensor = { offset: this.pos, length: 0, dataType, dims };
    this.tensors[name] = t;
    return (chunk) => {
      writeSync(this.fd, chunk);
      this.pos += chunk.length;
      t.length += chunk.length;
    };
  }

  close(): number {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    return this.pos;
  }

  /** Closes the file after a failure, so a deleted weights.bin does not keep holding disk space. */
  abandon(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

const bytesOf = (a: Float32Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Rows per read while streaming a tensor: about 16 MiB of float32 at a time. */
function rowsPerChunk(cols: number): number {
  return Math.max(1, Math.floor((4 << 20) / cols));
}

/**
 * Writes one linear weight made of the row blocks `parts` (each a [rows_p, in] source tensor,
 * stacked in order), as f32 or quantized, plus the stacked bias when every part has one.
 */
function writeLinear(w: WeightsFileWriter, model: Model, name: string, parts: ModuleTensors[], format: LinearFormat): void {
  const infos = parts.map((p) => safetensorsWeights(model).info(p.tensors.weight.name));
  const inDim = infos[0].shape[1];
  const outDim = infos.reduce((n, t) => n + t.shape[0], 0);
  w.linears[name] = [outDim, inDim];
  w.formats[name] = format;
  const { bits, block } = format;
  if (bits === 0) {
    const write = w.begin(name, 'float', [outDim, inDim]);
    for (const t of infos) {
      const step = rowsPerChunk(inDim);
      for (let r = 0; r < t.shape[0]; r += step) write(bytesOf(readRows(t, r, Math.min(step, t.shape[0] - r))));
    }
  } else {
    const nb = Math.ceil(inDim / block);
    const blob = (block * bits) / 8;
    const scales = new Float32Array(outDim * nb);
    const write = w.begin(`${name}.q`, 'uint8', [outDim, nb, blob]);
    let o = 0;
    for (const t of infos) {
      const step = rowsPerChunk(inDim);
      for (let r = 0; r < t.shape[0]; r += step) {
        const rows = Math.min(step, t.shape[0] - r);
        const f = readRows(t, r, rows);
        const codes = new Uint8Array(rows * nb * blob);
        for (let i = 0; i < rows; i++, o++) quantizeRow(f.subarray(i * inDim, (i + 1) * inDim), bits, block, codes.subarray(i * nb * blob), scales.subarray(o * nb, (o + 1) * nb));
        write(codes);
      }
    }
    w.begin(`${name}.scales`, 'float', [outDim * nb])(bytesOf(scales));
  }
  const biases = parts.map((p) => p.tensors.bias);
  if (biases.every((b) => b !== undefined)) {
    const write = w.begin(`${name}.bias`, 'float', [outDim]);
    for (const b of biases) write(bytesOf(model.weights.float32(b!.name)));
  }
}

/**
 * Symmetric quantization of one row by blocks of `block`: s = max|w| / qmax, code = round(w / s) + zero
 * (qmax = 2^(bits−1) − 1, zero = 2^(bits−1)); 4-bit codes two per byte, even element low.
 * Padding past the row's end gets the zero code (value 0).
 */
export function quantizeRow(row: Float32Array, bits: 8 | 4, block: number, codes: Uint8Array, scales: Float32Array): void {
  const qmax = (1 << (bits - 1)) - 1;
  const zero = 1 << (bits - 1);
  for (let b = 0; b < scales.length; b++) {
    const lo = b * block;
    let m = 0;
    for (let i = lo; i < Math.min(lo + block, row.length); i++) m = Math.max(m, Math.abs(row[i]));
    const s = Math.fround(m / qmax);
    scales[b] = s;
    for (let j = 0; j < block; j++) {
      const i = lo + j;
      const code = i < row.length && s > 0 ? Math.max(-qmax, Math.min(qmax, Math.round(row[i] / s))) + zero : zero;
      if (bits === 8) codes[i] = code;
      else codes[i >> 1] |= (i & 1) === 0 ? code : code << 4;
    }
  }
}

/** A norm's tensors as f32 vectors: weight under `name`, any other (a bias) under `name.<key>`. */
function writeNorm(w: WeightsFileWriter, model: Model, name: string, m: ModuleTensors): void {
  for (const [key, t] of Object.entries(m.tensors)) {
    w.begin(key === 'weight' ? name : `${name}.${key}`, 'float', t.shape)(bytesOf(model.weights.float32(t.name)));
  }
}

/** Projections stacked by rows into one stored linear (one GEMM for the three). */
const STACKED: Record<string, string[]> = { qkv: ['q', 'k', 'v'], beaconQkv: ['beaconQ', 'beaconK', 'beaconV'] };

/**
 * How a linear layer is stored (see "q8 / q4" above): attention projections (not quantizable in the
 * table) 8-bit in blocks of BLOCK; the MLP and LM head 8-bit in blocks of WIDE_BLOCK (q8) or 4-bit
 * in blocks of BLOCK (q4).
 */
export function linearFormat(dtype: WeightDType, quantizable: boolean): LinearFormat {
  if (dtype === 'gguf') throw new Error('a GGUF model is written by gguf-weights.ts');
  if (dtype === 'f32') return { bits: 0, block: 0 };
  if (!quantizable) return { bits: 8, block: BLOCK };
  return dtype === 'q4' ? { bits: 4, block: BLOCK } : { bits: 8, block: WIDE_BLOCK };
}

/**
 * Writes the modules of one level of the table (the model's or a layer's) under `prefix<role>`,
 * in the bits linearBits gives (a tied LM head counts as quantizable: it is the LM head).
 */
function writeModules(w: WeightsFileWriter, model: Model, prefix: string, mods: Modules, dtype: WeightDType): void {
  const stored = new Set<ModuleTensors>();
  for (const [name, roles] of Object.entries(STACKED)) {
    if (!roles.every((r) => mods[r])) continue;
    writeLinear(w, model, `${prefix}${name}`, roles.map((r) => mods[r]), linearFormat(dtype, false));
    for (const r of roles) stored.add(mods[r]);
  }
  for (const [role, m] of Object.entries(mods)) {
    // Embeddings are read on demand (embedding.ts); host modules (CLEX's ODE) are the engine's.
    if (stored.has(m) || (m.kind === 'embedding' && role !== 'lmHead') || m.kind === 'host') continue;
    stored.add(m);
    if (m.kind === 'norm') writeNorm(w, model, `${prefix}${role}`, m);
    else writeLinear(w, model, `${prefix}${role}`, [m], linearFormat(dtype, m.quantizable || role === 'lmHead'));
  }
}

/**
 * Quantized modes: the 8-bit table embedding rows are gathered from — the LM head when it is the
 * tied embedding stored in 8 bits, else the embedding written here in 8 bits (not used by a graph).
 */
function writeEmbedTable(w: WeightsFileWriter, model: Model, dtype: WeightDType): string | undefined {
  if (dtype === 'f32') return undefined;
  const top = model.tensors.model;
  if (top.lmHead === top.embed && linearFormat(dtype, true).bits === 8) return 'lmHead';
  writeLinear(w, model, 'embed', [top.embed], { bits: 8, block: BLOCK });
  return 'embed';
}

/** Writes every tensor the graphs need into `dir` (weights.bin + layout.json). */
function convertInto(dir: string, model: Model, dtype: WeightDType, fingerprint: string): Layout {
  const w = new WeightsFileWriter(join(dir, 'weights.bin'));
  try {
    const gguf = ggufWeights(model);
    let embedTable: string | undefined;
    if (gguf) writeGgufModel(w, gguf, model.tensors);
    else {
      model.tensors.layers.forEach((mods, l) => writeModules(w, model, `${l}.`, mods, dtype));
      writeModules(w, model, '', model.tensors.model, dtype);
      embedTable = writeEmbedTable(w, model, dtype);
    }
    w.close();
    const layout: Layout = { version: CONVERTER_VERSION, dtype, fingerprint, file: 'weights.bin', tensors: w.tensors, linears: w.linears };
    if (Object.keys(w.formats).length) layout.formats = w.formats;
    if (embedTable) layout.embedTable = embedTable;
    if (Object.keys(w.nbits).length) layout.nbits = w.nbits;
    if (Object.keys(w.parts).length) layout.parts = w.parts;
    writeFileSync(join(dir, 'layout.json'), JSON.stringify(layout), { mode: 0o600 });
    return layout;
  } finally {
    w.abandon();
  }
}

interface Marker {
  fingerprint: string;
  sizes: Record<string, number>;
}

/** The folder's layout when its marker is present and every size matches; else null. */
function loadIfComplete(dir: string, fingerprint: string): Layout | null {
  try {
    const marker = JSON.parse(readFileSync(join(dir, 'complete.json'), 'utf8')) as Marker;
    if (marker.fingerprint !== fingerprint) return null;
    for (const [file, size] of Object.entries(marker.sizes)) {
      if (statSync(join(dir, file)).size !== size) return null;
    }
    const layout = JSON.parse(readFileSync(join(dir, 'layout.json'), 'utf8')) as Layout;
    return layout.version === CONVERTER_VERSION ? layout : null;
  } catch {
    return null;
  }
}

/**
 * The converted weights for `model` in `dtype`, converting them first if needed. `onProgress`
 * hears about a conversion (which takes a while for big models) before it starts; `signal` stops
 * hashing the weights (their identity names the folder).
 */
export async function convertedWeights(model: Model, dtype: WeightDType, cacheDir: string, onProgress?: (msg: string) => void, signal?: AbortSignal): Promise<ConvertedWeights> {
  const fingerprint = await model.weights.fingerprint(signal);
  const root = join(cacheDir, 'onnx');
  const dir = join(root, `${fingerprint.slice(0, 32)}-${dtype}-v${CONVERTER_VERSION}`);
  const ready = loadIfComplete(dir, fingerprint);
  if (ready) return { dir, layout: ready };
  onProgress?.(`converting weights to ${dtype} for onnxruntime (once per model) into ${dir}`);
  const tmp = join(root, `.tmp-${ownerTag()}-${randomBytes(4).toString('hex')}`);
  try {
    makePrivateDir(root);
    mkdirSync(tmp, { mode: 0o700 });
    const layout = convertInto(tmp, model, dtype, fingerprint);
    const sizes: Record<string, number> = {};
    for (const f of ['weights.bin', 'layout.json']) sizes[f] = statSync(join(tmp, f)).size;
    writeFileSync(join(tmp, 'complete.json'), JSON.stringify({ fingerprint, sizes } satisfies Marker), { mode: 0o600 });
    if (existsSync(dir)) {
      // Another process finished first (use its folder), or a stale incomplete folder is in the way.
      const other = loadIfComplete(dir, fingerprint);
      if (other) {
        rmSync(tmp, { recursive: true, force: true });
        return { dir, layout: other };
      }
      rmSync(dir, { recursive: true, force: true });
    }
    renameSync(tmp, dir);
    removeStale(root, fingerprint.slice(0, 32), dtype, dir);
    return { dir, layout };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof CtxError) throw e;
    throw fsError(e, dir, 'io');
  }
}

/**
 * Removes what earlier runs left for this model and dtype: folders of other converter versions,
 * and temporary folders of conversions whose process is gone (pid + start time: a reused pid does
 * not keep a dead conversion's folder alive).
 */
function removeStale(root: string, key: string, dtype: WeightDType, keep: string): void {
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if (path === keep) continue;
    const tmp = /^\.tmp-([\d.]+)-/.exec(name);
    const owner = tmp ? parseTag(tmp[1]) : null;
    if (name.startsWith(`${key}-${dtype}-v`) || (tmp && (!owner || !isRunning(owner)))) rmSync(path, { recursive: true, force: true });
  }
}

/** Looks up a linear layer's stored tensors. */
export function storedLinear(layout: Layout, name: string): StoredLinear {
  const t = layout.tensors;
  const shape = layout.linears[name];
  if (!shape) throw new Error(`converted weights lack "${name}"`);
  const [out, inDim] = shape;
  const bias = t[`${name}.bias`];
  const parts = layout.parts?.[name];
  if (parts) return { kind: 'parts', parts, out, in: inDim };
  if (t[name]) return { kind: 'f32', w: t[name], bias, out, in: inDim };
  const q = t[`${name}.q`];
  const scales = t[`${name}.scales`];
  const f = layout.nbits?.[name];
  if (f) return { kind: 'nbits', bits: f.bits, blockSize: f.blockSize, q, scales, zeroPoints: f.zeroPoints ? t[`${name}.zp`] : undefined, mins: f.mins ? t[`${name}.mins`] : undefined, bias, out, in: inDim };
  const format = layout.formats?.[name];
  if (!format || format.bits === 0) throw new Error(`converted weights lack the format of "${name}"`);
  return { kind: 'nbits', bits: format.bits, blockSize: format.block, q, scales, bias, out, in: inDim };
}
