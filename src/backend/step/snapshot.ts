// Sequence snapshots (contract.ts, SequenceSnapshot: per layer and KV head, [rows, D] rows in the KV
// dtype) for backends that hold their rows otherwise: a layer's rows interleaved as float32
// [rows, Hkv·D] (the reference and native backends), or another KV dtype (a float32 snapshot
// restored into f16 storage and back). Every function here copies.

import type { KvRows, SequenceSnapshot } from '../contract.js';
import type { Model } from '../../model/model.js';
import { floatBits, fromHalf, toHalf } from '../half.js';

/** Rows [0, rows) of one head's array as float32 (a copy). */
export function headAsFloat32(a: KvRows, rows: number, D: number): Float32Array {
  if (a instanceof Float32Array) return a.slice(0, rows * D);
  const out = new Float32Array(rows * D);
  fromHalf(a, 0, out, 0, rows * D);
  return out;
}

/** Rows [0, rows) of one head's array in `dtype`, written into `out` from row 0. */
export function copyHeadRows(a: KvRows, rows: number, D: number, out: KvRows): void {
  const n = rows * D;
  if (a instanceof Float32Array === out instanceof Float32Array) out.set(a.subarray(0, n) as never);
  else if (a instanceof Float32Array) toHalf(floatBits(a), 0, out as Uint16Array, 0, n);
  else fromHalf(a, 0, out as Float32Array, 0, n);
}

/** A layer's keys or values interleaved as float32 [rows, Hkv·D] (a copy). */
export function layerAsFloat32(heads: KvRows[], rows: number, D: number): Float32Array {
  const H = heads.length;
  const out = new Float32Array(rows * H * D);
  heads.forEach((a, g) => {
    const f = headAsFloat32(a, rows, D);
    for (let r = 0; r < rows; r++) out.set(f.subarray(r * D, (r + 1) * D), (r * H + g) * D);
  });
  return out;
}

/** A layer's interleaved float32 rows [rows, H·D] split into H float32 heads [rows, D] (copies). */
export function splitLayer(layer: Float32Array, rows: number, H: number, D: number): Float32Array[] {
  return Array.from({ length: H }, (_, g) => {
    const out = new Float32Array(rows * D);
    for (let r = 0; r < rows; r++) out.set(layer.subarray((r * H + g) * D, (r * H + g + 1) * D), r * D);
    return out;
  });
}

/** A float32 snapshot from layers of interleaved rows [rows, Hkv·D] (the reference and native layout). */
export function snapshotFromLayers(rows: number, keys: Float32Array[], values: Float32Array[], H: number, D: number, selectCache: SequenceSnapshot['selectCache']): SequenceSnapshot {
  return { rows, kvDtype: 'f32', keys: keys.map((k) => splitLayer(k, rows, H, D)), values: values.map((v) => splitLayer(v, rows, H, D)), selectCache };
}

/** Bytes of a snapshot's KV rows (what a save writes for them). */
export function snapshotKvBytes(s: SequenceSnapshot, D: number): number {
  const heads = s.keys.reduce((n, l) => n + l.length, 0) * 2;
  return heads * s.rows * D * (s.kvDtype === 'f16' ? 2 : 4);
}

/**
 * Checks that a snapshot was taken of a sequence of this model: every layer, every KV head, each
 * array holding the rows it claims, in the dtype it claims.
 */
export function checkSnapshot(s: SequenceSnapshot, model: Model): void {
  const c = model.config;
  const L = c.numLayers;
  if (s.keys.length !== L || s.values.length !== L) throw new Error(`snapshot has ${s.keys.length} layers, model has ${L}`);
  const want = s.rows * c.headDim;
  for (const heads of [...s.keys, ...s.values]) {
    if (heads.length !== c.numKvHeads) throw new Error(`snapshot has ${heads.length} KV heads per layer, model has ${c.numKvHeads}`);
    for (const a of heads) {
      if (a.length < want) throw new Error(`snapshot array holds ${a.length} values, ${s.rows} rows need ${want}`);
      if ((a instanceof Uint16Array) !== (s.kvDtype === 'f16')) throw new Error(`snapshot array is not ${s.kvDtype}`);
    }
  }
}

