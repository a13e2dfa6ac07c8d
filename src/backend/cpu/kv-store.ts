// KV storage of one sequence, in the KV dtype (f16 by default, f32 for exact checks): for every
// layer and KV head, row-major [capacity, D] arrays
//   k    keys before RoPE (the contract's storage: positions can change)
//   v    values
//   kr   keys rotated at their storage index (position = row) under the current RoPE table — a cache
//        for dense attention with f32 KV, valid for rows [0, rotValid); allocated on first use (f16
//        KV never needs it: keys.ts rotates the keys a dense step reads as it casts them; nor does
//        select: its positions are ranks in a per-layer selection, and keys.ts rotates the rows it
//        selects)
// f16 rows are IEEE halves in Uint16Arrays (../half.ts), which ONNX Runtime reads as 'float16'
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
//
// Snapshots share these arrays (no copy): the rows [0, shared) a snapshot holds are never written
// again by this store — a retain that would move them, or an append below them, first copies the
// rows into fresh buffers (detach). Another store restoring that snapshot adopts the arrays (again
// no copy) once the store that wrote them is gone, and likewise writes only past the snapshot's rows.

import type * as ortTypes from 'onnxruntime-node';
import type { KvDtype, KvRows, SequenceSnapshot } from '../contract.js';
import { floatBits, toHalf } from '../half.js';
import { copyHeadRows } from '../step/snapshot.js';

export type { KvDtype };
export type KvArray = KvRows;

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

/** The arrays a store writes, and which store may write past the rows snapshots hold (null: none now). */
interface KvBuffers {
  writer: KvStore | null;
}

/** Which buffers a snapshot's arrays belong to (snapshots made by a KvStore). */
const snapshotBuffers = new WeakMap<SequenceSnapshot['keys'], KvBuffers>();

export class LayerKv {
  kr: KvArray[] | null = null;
  /** Rows of kr that hold RoPE(k_j, j) under the sequence's current table. */
  rotValid = 0;

  constructor(
    readonly dtype: KvDtype,
    readonly headDim: number,
    public k: KvArray[],
    public v: KvArray[],
  ) {}

  /** Rows every array can hold. */
  capacity(): number {
    return Math.min(...this.k.map((a) => a.length), ...this.v.map((a) => a.length)) / this.headDim;
  }

  /** The rotated-key cache, at the current capacity (grown with it; its first rotValid rows kept). */
  rotated(): KvArray[] {
    const length = this.capacity() * this.headDim;
    if (!this.kr || this.kr[0].length < length) {
      const kr = arrays(this.dtype, this.k.length, length);
      if (this.kr) kr.forEach((a, g) => a.set(this.kr![g].subarray(0, this.rotValid * this.headDim) as never));
      this.kr = kr;
    }
    return this.kr;
  }
}

export class KvStore {
  rows = 0;
  readonly layers: LayerKv[];
  private buffers: KvBuffers = { writer: this };
  /** Rows [0, shared) are held by a snapshot: never written in place. */
  private shared = 0;

  constructor(readonly dtype: KvDtype, numLayers: number, readonly kvHeads: number, readonly headDim: number) {
    this.layers = Array.from({ length: numLayers }, () => {
      const kv = arrays(dtype, 2 * kvHeads, INITIAL_ROWS * headDim);
      return new LayerKv(dtype, headDim, kv.slice(0, kvHeads), kv.slice(kvHeads));
    });
  }

  /** Bytes one stored row takes across every layer (keys and values). */
  static bytesPerRow(dtype: KvDtype, numLayers: number, kvHeads: number, headDim: number): number {
    return 2 * numLayers * kvHeads * headDim * KV_BYTES[dtype];
  }

  private capacity(): number {
    return Math.min(...this.layers.map((L) => L.capacity()));
  }

  /**
   * Makes rows [this.rows, T) writable in every layer: room for T rows, and buffers this store may
   * write there (its own, or adopted ones whose snapshot rows end at or before this.rows).
   */
  prepare(T: number): void {
    const mine = this.buffers.writer === this && this.rows >= this.shared;
    if (mine && T <= this.capacity()) return;
    this.detach(Math.max(T, mine ? this.capacity() * 2 : this.capacity(), INITIAL_ROWS));
  }

  /** Copies the stored rows into fresh buffers of `capacity` rows that only this store writes. */
  private detach(capacity: number): void {
    const D = this.headDim;
    for (const L of this.layers) {
      const kv = arrays(this.dtype, 2 * this.kvHeads, capacity * D);
      kv.forEach((a, i) => a.set((i < this.kvHeads ? L.k[i] : L.v[i - this.kvHeads]).subarray(0, this.rows * D) as never));
      L.k = kv.slice(0, this.kvHeads);
      L.v = kv.slice(this.kvHeads);
    }
    this.leave();
    this.buffers = { writer: this };
    this.shared = 0;
  }

  /** Gives up writing the current buffers (a snapshot's store may then adopt them). */
  private leave(): void {
    if (this.buffers.writer === this) this.buffers.writer = null;
  }

  /**
   * Writes the new rows' pre-RoPE keys and values of one layer at rows [M, M + n), in the KV dtype
   * (after prepare(M + n)). `src` holds n float32 rows of `stride` values; keys start at column
   * kOff and values at vOff, [Hkv, D] each.
   */
  append(layer: number, M: number, n: number, src: Float32Array, stride: number, kOff: number, vOff: number): void {
    const L = this.layers[layer];
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
    this.prepare(this.rows + rows.length);
    this.layers.forEach((L, l) => {
      const from = source.layers[l];
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
    // Rows [same, …) are rewritten in place: not in rows a snapshot holds, nor in borrowed buffers.
    if (same < this.shared || this.buffers.writer !== this) this.detach(this.capacity());
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

  /** Drops every array (the sequence is disposed); snapshots keep theirs. */
  release(): void {
    this.leave();
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

  /** The stored rows as the contract's snapshot, sharing the arrays (see the top of this file). */
  snapshot(): Pick<SequenceSnapshot, 'rows' | 'kvDtype' | 'keys' | 'values'> {
    this.shared = Math.max(this.shared, this.rows);
    const keys = this.layers.map((L) => [...L.k]);
    snapshotBuffers.set(keys, this.buffers);
    return { rows: this.rows, kvDtype: this.dtype, keys, values: this.layers.map((L) => [...L.v]) };
  }

  /**
   * Takes a snapshot's rows: its arrays themselves when they are in this dtype and no live store
   * writes them (rows past the snapshot's are written into them later), else a converted copy.
   */
  restore(s: Pick<SequenceSnapshot, 'rows' | 'kvDtype' | 'keys' | 'values'>): void {
    const D = this.headDim;
    const owner = snapshotBuffers.get(s.keys);
    this.leave();
    this.rows = s.rows;
    if (s.kvDtype === this.dtype && (!owner || owner.writer === null)) {
      this.layers.forEach((L, l) => {
        L.k = [...s.keys[l]];
        L.v = [...s.values[l]];
      });
      this.buffers = owner ?? { writer: null };
      this.buffers.writer = this;
      snapshotBuffers.set(s.keys, this.buffers); // restoring the same snapshot again, meanwhile, copies
      this.shared = s.rows;
    } else {
      this.layers.forEach((L, l) => {
        const kv = arrays(this.dtype, 2 * this.kvHeads, Math.max(s.rows, INITIAL_ROWS) * D);
        kv.forEach((a, i) => copyHeadRows(i < this.kvHeads ? s.keys[l][i] : s.values[l][i - this.kvHeads], s.rows, D, a));
        L.k = kv.slice(0, this.kvHeads);
        L.v = kv.slice(this.kvHeads);
      });
      this.buffers = { writer: this };
      this.shared = 0;
    }
    for (const L of this.layers) {
      L.kr = null;
      L.rotValid = 0;
    }
  }
}
