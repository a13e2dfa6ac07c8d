// GGUF sources for the cpu backend: a GGUF file's tensors written into weights.bin (weights.ts) in
// the form the file stores them. Nothing is quantized a second time: every weight the graphs
// multiply by is exactly the file's dequantized value (model/gguf/matmul-nbits.ts says why).
//
//   quantized (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K): com.microsoft.MatMulNBits, the file's codes and scales
//     <name>.q       uint8 [out, in / bs, bs · bits / 8]
//     <name>.scales  f32   [out · in / bs]
//     <name>.zp      uint8 [out · ceil(in / bs · bits / 8)]   Q4_K, Q5_K: each block's centring
//     <name>.mins    f32   [out, in / bs]                     Q4_K, Q5_K: y −= blockSums(x) · minsᵀ
//     layout.nbits[name] = { bits, blockSize (bs), zeroPoints, mins }
//   F32, F16, BF16 matrices: f32 [out, in] (Gemm), as for a safetensors model
//   norms and biases: f32 vectors
//
// q, k and v are stacked into one <l>.qkv (one product) when the file stores them in the same
// type. A Q4_K_M file mixes types (q, k Q4_K; v Q6_K in some layers): <l>.qkv is then stored as
// row blocks <l>.qkv.0, <l>.qkv.1, … — runs of consecutive projections of one type — listed in
// layout.parts, and the graph concatenates their outputs (graphs.ts).
// The embedding table is not stored: its rows are read from the GGUF file (embedding.ts). A tied
// LM head is the embedding table, re-encoded here as lmHead. A change to what is written here
// needs a new CONVERTER_VERSION (weights.ts), as for the safetensors writer.

import { isQuantType } from '../../model/gguf/blocks.js';
import type { SupportedType } from '../../model/gguf/ggml-types.js';
import { NBITS_PLANS, toMatMulNBits } from '../../model/gguf/matmul-nbits.js';
import type { GgufWeights } from '../../model/gguf/weights.js';
import type { ModelTensors, Modules, ModuleTensors } from '../../model/tensors.js';
import type { WeightsFileWriter } from './weights.js';

const bytesOf = (a: Float32Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Bytes of GGUF rows read (and re-encoded) at a time. */
const CHUNK_BYTES = 4 << 20;

/** Writes every tensor of a GGUF model the graphs need: each layer's modules, then the model's. */
export function writeGgufModel(w: WeightsFileWriter, gguf: GgufWeights, t: ModelTensors): void {
  t.layers.forEach((mods, l) => writeLevel(w, gguf, `${l}.`, mods));
  writeLevel(w, gguf, '', t.model);
}

function writeLevel(w: WeightsFileWriter, gguf: GgufWeights, prefix: string, mods: Modules): void {
  const stored = new Set<ModuleTensors>();
  if (mods.q && mods.k && mods.v) {
    writeStacked(w, gguf, `${prefix}qkv`, [mods.q, mods.k, mods.v]);
    for (const m of [mods.q, mods.k, mods.v]) stored.add(m);
  }
  for (const [role, m] of Object.entries(mods)) {
    if (stored.has(m) || (m.kind === 'embedding' && role !== 'lmHead') || m.kind === 'host') continue;
    stored.add(m);
    if (m.kind === 'norm') {
      for (const [key, ref] of Object.entries(m.tensors)) {
        w.begin(key === 'weight' ? `${prefix}${role}` : `${prefix}${role}.${key}`, 'float', ref.shape)(bytesOf(gguf.float32(ref.name)));
      }
    } else writeLinear(w, gguf, `${prefix}${role}`, [m]);
  }
}

/** How a matrix of this type is stored: its GGUF type when quantized, f32 for the float types. */
function formOf(type: SupportedType): string {
  return isQuantType(type) ? type : 'f32';
}

/** Stacks `parts` by rows into one linear, or, when their types differ, into row blocks listed in layout.parts. */
function writeStacked(w: WeightsFileWriter, gguf: GgufWeights, name: string, parts: ModuleTensors[]): void {
  const runs: ModuleTensors[][] = [];
  let last: string | null = null;
  for (const p of parts) {
    const form = formOf(gguf.info(p.tensors.weight.name).dtype);
    if (form === last) runs[runs.length - 1].push(p);
    else runs.push([p]);
    last = form;
  }
  if (runs.length === 1) {
    writeLinear(w, gguf, name, parts);
    return;
  }
  const names = runs.map((run, i) => {
    writeLinear(w, gguf, `${name}.${i}`, run);
    return `${name}.${i}`;
  });
  w.parts[name] = names;
  w.linears[name] = [names.reduce((n, p) => n + w.linears[p][0], 0), w.linears[names[0]][1]];
}

/**
 * One linear made of the row blocks `parts` (all of one type, stacked in order) as its file stores
 * it, plus the stacked bias when every part has one.
 */
function writeLinear(w: WeightsFileWriter, gguf: GgufWeights, name: string, parts: ModuleTensors[]): void {
  const infos = parts.map((p) => gguf.info(p.tensors.weight.name));
  const type = infos[0].dtype;
  const K = infos[0].shape[1];
  const N = infos.reduce((n, t) => n + t.shape[0], 0);
  w.linears[name] = [N, K];
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / infos[0].rowBytes));
  const chunks = function* () {
    for (const t of infos) {
      for (let r = 0; r < t.shape[0]; r += rowsPerChunk) yield { name: t.name, start: r, rows: Math.min(rowsPerChunk, t.shape[0] - r) };
    }
  };

  if (!isQuantType(type)) {
    const write = w.begin(name, 'float', [N, K]);
    for (const c of chunks()) write(bytesOf(gguf.rows(c.name, c.start, c.rows)));
  } else {
    const plan = NBITS_PLANS[type];
    const kBlocks = K / plan.blockSize;
    const scales = new Float32Array(N * kBlocks);
    const mins = plan.mins ? new Float32Array(N * kBlocks) : null;
    const zpRow = Math.ceil((kBlocks * plan.bits) / 8);
    const zeroPoints = plan.zeroPoints ? new Uint8Array(N * zpRow) : null;
    const write = w.begin(`${name}.q`, 'uint8', [N, kBlocks, (plan.blockSize * plan.bits) / 8]);
    let row = 0;
    for (const c of chunks()) {
      const m = toMatMulNBits(type, gguf.rawRows(c.name, c.start, c.rows).bytes, c.rows, K);
      write(m.b);
      scales.set(m.scales, row * kBlocks);
      if (mins) mins.set(m.mins!, row * kBlocks);
      if (zeroPoints) zeroPoints.set(m.zeroPoints!, row * zpRow);
      row += c.rows;
    }
    w.begin(`${name}.scales`, 'float', [N * kBlocks])(bytesOf(scales));
    if (zeroPoints) w.begin(`${name}.zp`, 'uint8', [N * zpRow])(zeroPoints);
    if (mins) w.begin(`${name}.mins`, 'float', [N, kBlocks])(bytesOf(mins));
    w.nbits[name] = { bits: plan.bits, blockSize: plan.blockSize, zeroPoints: plan.zeroPoints, mins: plan.mins };
  }

  const biases = parts.map((p) => p.tensors.bias);
  if (biases.every((b) => b !== undefined)) {
    const write = w.begin(`${name}.bias`, 'float', [N]);
    for (const b of biases) write(bytesOf(gguf.float32(b!.name)));
  }
}
