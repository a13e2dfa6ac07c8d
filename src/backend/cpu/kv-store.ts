// KV storage of one sequence: for every layer and KV head, three row-major [capacity, D] arrays
//   k    keys before RoPE (the contract's storage: positions can change)
//   v    values
//   kr   keys rotated at their storage index (position = row) under the current RoPE table — a cache
//        for dense attention, valid for rows [0, rotValid); allocated on first use (select never
//        needs it: its positions are ranks in a per-layer selection, so it rotates what it gathers)
// One array per KV head, so the rows [0, T) of a head are one contiguous view that ONNX Runtime
// reads in place (no copy) as a [T, D] input.
//
// Capacity: arrays start at INITIAL_ROWS rows. A zero-filled typed array of that size is only
// reserved address space (calloc → fresh pages): memory is committed as rows are written, so a
// large start costs nothing, and it spares the copy-on-growth transient (old + new arrays resident
// until the old ones are collected) that would otherwise double the KV memory at each growth.
// Beyond it, arrays double.

import type { SequenceSnapshot } from '../contract.js';

/** Rows reserved (not committed) per array at the start. */
export const INITIAL_ROWS = 1 << 16;

export class LayerKv {
  k: Float32Array[];
  v: Float32Array[];
  kr: Float32Array[] | null = null;
  /** Rows of kr that hold RoPE(k_j, j) under the sequence's current table. */
  rotValid = 0;

  constructor(readonly kvHeads: number, readonly headDim: number, capacity: number) {
    this.k = Array.from({ length: kvHeads }, () => new Float32Array(capacity * headDim));
    this.v = Array.from({ length: kvHeads }, () => new Float32Array(capacity * headDim));
  }

  capacity(): number {
    return this.k[0].length / this.headDim;
  }

  /** The rotated-key cache, allocated at the current capacity when first asked for. */
  rotated(): Float32Array[] {
    if (!this.kr) this.kr = this.k.map((a) => new Float32Array(a.length));
    return this.kr;
  }

  /** Grows every array to hold at least `rows` rows (doubling, keeping the contents). */
  reserve(rows: number): void {
    const cap = this.capacity();
    if (rows <= cap) return;
    const next = Math.max(rows, cap * 2);
    const grow = (a: Float32Array) => {
      const b = new Float32Array(next * this.headDim);
      b.set(a);
      return b;
    };
    this.k = this.k.map(grow);
    this.v = this.v.map(grow);
    if (this.kr) this.kr = this.kr.map(grow);
  }
}

export class KvStore {
  rows = 0;
  readonly layers: LayerKv[];

  constructor(numLayers: number, readonly kvHeads: number, readonly headDim: number) {
    this.layers = Array.from({ length: numLayers }, () => new LayerKv(kvHeads, headDim, INITIAL_ROWS));
  }

  /**
   * Writes the new rows' pre-RoPE keys and values of one layer at rows [M, M + n). `src` holds n
   * rows of `stride` floats; keys start at column kOff and values at vOff, [Hkv, D] each.
   */
  append(layer: number, M: number, n: number, src: Float32Array, stride: number, kOff: number, vOff: number): void {
    const L = this.layers[layer];
    L.reserve(M + n);
    const D = this.headDim;
    for (let g = 0; g < this.kvHeads; g++) {
      const k = L.k[g];
      const v = L.v[g];
      for (let i = 0; i < n; i++) {
        const s = i * stride;
        k.set(src.subarray(s + kOff + g * D, s + kOff + (g + 1) * D), (M + i) * D);
        v.set(src.subarray(s + vOff + g * D, s + vOff + (g + 1) * D), (M + i) * D);
      }
    }
  }

  /** Appends copies of `source`'s rows `rows` after the stored rows (rotated keys: untouched, they cover a prefix). */
  importRows(source: KvStore, rows: Int32Array): void {
    const D = this.headDim;
    this.layers.forEach((L, l) => {
      const from = source.layers[l];
      L.reserve(this.rows + rows.length);
      for (let g = 0; g < this.kvHeads; g++) {
        rows.forEach((r, k) => {
          L.k[g].set(from.k[g].subarray(r * D, (r + 1) * D), (this.rows + k) * D);
          L.v[g].set(from.v[g].subarray(r * D, (r + 1) * D), (this.rows + k) * D);
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
    const tmp = new Float32Array(rows.length * D);
    const gather = (a: Float32Array) => {
      for (let r = 0; r < rows.length; r++) tmp.set(a.subarray(rows[r] * D, (rows[r] + 1) * D), r * D);
      a.set(tmp);
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
    return this.rows * this.layers.length * this.kvHeads * this.headDim * 2 * 4;
  }

  /** Per layer [rows, Hkv·D] row-major keys and values (the contract's snapshot layout). */
  snapshot(): Pick<SequenceSnapshot, 'rows' | 'keys' | 'values'> {
    const D = this.headDim;
    const H = this.kvHeads;
    const interleave = (heads: Float32Array[]) => {
      const out = new Float32Array(this.rows * H * D);
      for (let r = 0; r < this.rows; r++) {
        for (let g = 0; g < H; g++) out.set(heads[g].subarray(r * D, (r + 1) * D), (r * H + g) * D);
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
      L.k = Array.from({ length: H }, () => new Float32Array(Math.max(s.rows, INITIAL_ROWS) * D));
      L.v = Array.from({ length: H }, () => new Float32Array(Math.max(s.rows, INITIAL_ROWS) * D));
      L.kr = null;
      L.rotValid = 0;
      for (let r = 0; r < s.rows; r++) {
        for (let g = 0; g < H; g++) {
          L.k[g].set(s.keys[l].subarray((r * H + g) * D, (r * H + g + 1) * D), r * D);
          L.v[g].set(s.values[l].subarray((r * H + g) * D, (r * H + g + 1) * D), r * D);
        }
      }
    });
  }
}
