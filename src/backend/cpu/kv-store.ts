// KV storage of one sequence, in the KV dtype (f16 by default, f32 for exact checks): for every
// layer and KV head, row-major [capacity, D] arrays
//   k    keys before RoPE (the contract's storage: positions can change)
//   v    values
//   kr   keys rotated at their storage index (position = row) under the current RoPE table — a cache
//        for dense attention, valid for rows [0, rotValid); allocated on first use (select never
//        needs it: its positions are ranks in a per-layer selection, and keys.ts rotates the
//        rows it selects)
// f16 rows are IEEE halves in Uint16Arrays (half.ts), which ONNX Runtime reads as 'float16'
// tensors; the graphs that read them cast them to float32 (keys.ts, vote.ts). One array per KV
// head, so the rows [0, T) of a head are one contiguous view that ONNX Runtime reads in place (no
// copy) as a [T, D] input.
//
// Capacity: a layer's k and v arrays share one buffer of INITIAL_ROWS rows at the start (kr a
// second one). A zero-filled typed array that large is only reserved address space (calloc of a
// large block → fresh pages): memory is committed as rows are written, so a large start costs
// nothing, spares the copy-on-growth transient (old + new buffers resident until the old ones are
// collected), and keeps the buffers out of the malloc heap, where the step's short-lived
// allocations live. Beyond it, buffers double.

import type * as ortTypes from 'onnxruntime-node';
import type { SequenceSnapshot } from '../contract.js';
import { floatBits, fromHalf, toHalf } from './half.js';

export type KvDtype = 'f32' | 'f16';
export type KvArray = Float32Array | Uint16Array;

/** Bytes per stored value. */
export const KV_BYTES: Record<KvDtype, number> = { f32: 4, f16: 2 };

/** Rows reserved (not committed) per array at the start: a 128K-token document without growing. */
export const INITIAL_ROWS = 1 << 17;

/** Rows [from, to) of a per-head KV array as a [to − from, D] tensor of its dtype, read in place. */
export function kvTensor(ort: typeof ortTypes, a: KvArray, D: number, from: number, to: number): ortTypes.Tensor {
  const rows = a.subarray(from * D, to * D);
  return rows instanceof Uint16Array ? new ort.Tensor('float16', rows, [to - from, D]) : new ort.Tensor('float32', rows, [to - from, D]);
}

/** `count` arrays of `length` values of `dtype`, views of one buffer. */
function arrays(dtype: KvDtype, count: number, length: number): KvArray[] {
  const buffer = new ArrayBuffer(count * length * KV_BYTES[dtype]);
  return Array.from({ length: count }, (_, i) => (dtype === 'f16' ? new Uint16Array(buffer, i * length * 2, length) : new Float32Array(buffer, i * length * 4, length)));
}

export class LayerKv {
  k: KvArray[];
  v: KvArray[];
  kr: KvArray[] | null = null;
  /** Rows of kr that hold RoPE(k_j, j) under the sequence's current table. */
  rotValid = 0;

  constructor(readonly dtype: KvDtype, readonly kvHeads: number, readonly headDim: number, capacity: number) {
    const kv = arrays(dtype, 2 * kvHeads, capacity * headDim);
    this.k = kv.slice(0, kvHeads);
    this.v = kv.slice(kvHeads);
  }

  capacity(): number {
    return this.k[0].length / this.headDim;
  }

  /** The rotated-key cache, allocated at the current capacity when first asked for. */
  rotated(): KvArray[] {
    if (!this.kr) this.kr = arrays(this.dtype, this.kvHeads, this.k[0].length);
    return this.kr;
  }

  /** Grows every array to hold at least `rows` rows (doubling), keeping the first `used` rows. */
  reserve(rows: number, used: number): void {
    const cap = this.capacity();
    if (rows <= cap) return;
    const length = Math.max(rows, cap * 2) * this.headDim;
    const n = used * this.headDim;
    const kv = arrays(this.dtype, 2 * this.kvHeads, length);
    kv.forEach((a, i) => a.set((i < this.kvHeads ? this.k[i] : this.v[i - this.kvHeads]).subarray(0, n) as never));
    this.k = kv.slice(0, this.kvHeads);
    this.v = kv.slice(this.kvHeads);
    if (this.kr) {
      const kr = arrays(this.dtype, this.kvHeads, length);
      kr.forEach((a, i) => a.set(this.kr![i].subarray(0, Math.min(n, this.rotValid * this.headDim)) as never));
      this.kr = kr;
    }
  }
}

export class KvStore {
  rows = 0;
  readonly layers: LayerKv[];

  constructor(readonly dtype: KvDtype, numLayers: number, readonly kvHeads: number, readonly headDim: number) {
    this.layers = Array.from({ length: numLayers }, () => new LayerKv(dtype, kvHeads, headDim, INITIAL_ROWS));
  }

  /** Bytes one stored row takes across every layer (keys and values). */
  static bytesPerRow(dtype: KvDtype, numLayers: number, kvHeads: number, headDim: number): number {
    return 2 * numLayers * kvHeads * headDim * KV_BYTES[dtype];
  }

  /**
   * Writes the new rows' pre-RoPE keys and values of one layer at rows [M, M + n), in the KV dtype.
   * `src` holds n float32 rows of `stride` values; keys start at column kOff and values at vOff,
   * [Hkv, D] each.
   */
  append(layer: number, M: number, n: number, src: Float32Array, stride: number, kOff: number, vOff: number): void {
    const L = this.layers[layer];
    L.reserve(M + n, M);
    const D = this.headDim;
    const bits = this.dtype === 'f16' ? floatBits(src) : null;
    for (let g = 0; g < this.kvHeads; g++) {
      const k = L.k[g];
      const v = L.v[g];
      for (let i = 0; i < n; i++) {
        const s = i * stride;
        if (bits) {
          toHalf(bits, s + kOff + g * D, k as Uint16Array, (M + i) * D, D);
          toHalf(bits, s + vOff + g * D, v as Uint16Array, (M + i) * D, D);
        } else {
          k.set(src.subarray(s + kOff + g * D, s + kOff + (g + 1) * D), (M + i) * D);
          (v as Float32Array).set(src.subarray(s + vOff + g * D, s + vOff + (g + 1) * D), (M + i) * D);
        }
      }
    }
  }

  /** Appends copies of `source`'s rows `rows` after the stored rows (rotated keys: untouched, they cover a prefix). */
  importRows(source: KvStore, rows: Int32Array): void {
    const D = this.headDim;
    this.layers.forEach((L, l) => {
      const from = source.layers[l];
      L.reserve(this.rows + rows.length, this.rows);
      for (let g = 0; g < this.kvHeads; g++) {
        rows.forEach((r, k) => {
          L.k[g].set(from.k[g].subarray(r * D, (r + 1) * D) as never, (this.rows + k) * D);
          L.v[g].set(from.v[g].subarray(r * D, (r + 1) * D) as never, (this.rows + k) * D);
        });
      }
    });
    this.rows += rows.length;
  }

  /** storage = storage[rows]; rotated keys stay valid only on the unchanged prefix. */
  retain(rows: Int32Array): void {
    const D = this.headDim;
    let same = 0;
    while (same < rows.length && rows[same] === same) same++;
    if (same === rows.length) {
      // A prefix (focus drops a chunk's candidate every token): nothing moves.
      this.rows = rows.length;
      for (const L of this.layers) L.rotValid = Math.min(L.rotValid, same);
      return;
    }
    const tmp = new Uint8Array(rows.length * D * KV_BYTES[this.dtype]);
    const gather = (a: KvArray) => {
      const t = a instanceof Uint16Array ? new Uint16Array(tmp.buffer) : new Float32Array(tmp.buffer);
      for (let r = same; r < rows.length; r++) t.set(a.subarray(rows[r] * D, (rows[r] + 1) * D) as never, r * D);
      a.set(t.subarray(same * D, rows.length * D) as never, same * D);
    };
    for (const L of this.layers) {
      for (let g = 0; g < this.kvHeads; g++) {
        gather(L.k[g]);
        gather(L.v[g]);
      }
      L.rotValid = Math.min(L.rotValid, same);
    }
    this.rows = rows.length;
  }

  /** Drops every array (the sequence is disposed). */
  release(): void {
    this.rows = 0;
    for (const L of this.layers) {
      L.k = L.k.map(() => new Float32Array(0));
      L.v = L.v.map(() => new Float32Array(0));
      L.kr = null;
      L.rotValid = 0;
    }
  }

  /** Forgets every rotated key (the RoPE table changed). */
  invalidateRotations(): void {
    for (const L of this.layers) L.rotValid = 0;
  }

  bytes(): number {
    return this.rows * KvStore.bytesPerRow(this.dtype, this.layers.length, this.kvHeads, this.headDim);
  }

  /** Per layer [rows, Hkv·D] row-major float32 keys and values (the contract's snapshot layout). */
  snapshot(): Pick<SequenceSnapshot, 'rows' | 'keys' | 'values'> {
    const D = this.headDim;
    const H = this.kvHeads;
    const interleave = (heads: KvArray[]) => {
      const out = new Float32Array(this.rows * H * D);
      for (let r = 0; r < this.rows; r++) {
        for (let g = 0; g < H; g++) {
          const a = heads[g];
          if (a instanceof Uint16Array) fromHalf(a, r * D, out, (r * H + g) * D, D);
          else out.set(a.subarray(r * D, (r + 1) * D), (r * H + g) * D);
        }
      }
      return out;
    };
    return { rows: this.rows, keys: this.layers.map((L) => interleave(L.k)), values: this.layers.map((L) => interleave(L.v)) };
  }

  restore(s: Pick<SequenceSnapshot, 'rows' | 'keys' | 'values'>): void {
    const D = this.headDim;
    const H = this.kvHeads;
    this.rows = s.rows;
    this.layers.forEach((L, l) => {
      const fresh = new LayerKv(this.dtype, H, D, Math.max(s.rows, INITIAL_ROWS));
      L.k = fresh.k;
      L.v = fresh.v;
      L.kr = null;
      L.rotValid = 0;
      const kb = floatBits(s.keys[l]);
      const vb = floatBits(s.values[l]);
      for (let r = 0; r < s.rows; r++) {
        for (let g = 0; g < H; g++) {
          const from = (r * H + g) * D;
          if (L.k[g] instanceof Uint16Array) {
            toHalf(kb, from, L.k[g] as Uint16Array, r * D, D);
            toHalf(vb, from, L.v[g] as Uint16Array, r * D, D);
          } else {
            L.k[g].set(s.keys[l].subarray(from, from + D), r * D);
            L.v[g].set(s.values[l].subarray(from, from + D), r * D);
          }
        }
      }
    });
  }
}
