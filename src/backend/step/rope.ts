// RoPE cos/sin tables for the TypeScript backends, and the rotation that uses them.
//
// For a head vector x (D values) whose first R dims rotate (R = rotaryDim: D, or Phi's partial
// rotary), rotate-half layout within them, at position p and i < R/2:
//   a = fround(p · invFreq[i]),  c = fround(cos a) · scale,  s = fround(sin a) · scale
//   x'[i] = x[i]·c − x[i+R/2]·s,   x'[i+R/2] = x[i+R/2]·c + x[i]·s      (float64, stored as float32)
//   x'[j] = x[j]  for R ≤ j < D
// fround(cos a) and fround(sin a) are tabulated per position once per frequency table and reused by
// every layer and head; `scale` (YaRN's attention factor) multiplies them at rotation, so the same
// table serves TokenSelect's mean query, which rotates with scale 1. The inverse frequencies
// themselves come from engine/rope.ts; the native backend computes the same angles on its device.

import type { RopeTable } from '../contract.js';

export class RopeTables {
  private table: RopeTable | null = null;
  private cosT = new Float32Array(0);
  private sinT = new Float32Array(0);
  private rows = 0;
  /** R/2: the number of frequencies. */
  readonly half: number;

  constructor(
    readonly headDim: number,
    readonly rotaryDim = headDim,
  ) {
    this.half = rotaryDim >> 1;
  }

  /** The current table's cos/sin multiplier. */
  get scale(): number {
    return this.table?.scale ?? 1;
  }

  /** cos of positions 0..(rows made − 1), [rows, D/2] row-major, without the scale: for graphs that rotate. */
  get cos(): Float32Array {
    return this.cosT;
  }

  /** sin likewise. */
  get sin(): Float32Array {
    return this.sinT;
  }

  /** Whether `t` has the same frequencies and scale as the current table. */
  same(t: RopeTable): boolean {
    const cur = this.table;
    if (!cur) return false;
    if (cur === t) return true;
    if (cur.scale !== t.scale || cur.invFreq.length !== t.invFreq.length) return false;
    for (let i = 0; i < t.invFreq.length; i++) if (cur.invFreq[i] !== t.invFreq[i]) return false;
    return true;
  }

  /**
   * Makes positions 0..maxPos available under table `t`. Returns true when the table changed
   * (then keys rotated under the old table are stale).
   */
  use(t: RopeTable, maxPos: number): boolean {
    const changed = !this.same(t);
    if (changed) {
      this.table = { invFreq: Float32Array.from(t.invFreq), scale: t.scale };
      this.rows = 0;
    }
    if (maxPos >= this.rows) this.grow(Math.max(maxPos + 1, Math.ceil(this.rows * 1.5), 1024));
    return changed;
  }

  private grow(rows: number): void {
    const h = this.half;
    const { invFreq } = this.table!;
    const cosT = new Float32Array(rows * h);
    const sinT = new Float32Array(rows * h);
    cosT.set(this.cosT.subarray(0, this.rows * h));
    sinT.set(this.sinT.subarray(0, this.rows * h));
    for (let p = this.rows; p < rows; p++) {
      for (let i = 0; i < h; i++) {
        const a = Math.fround(p * invFreq[i]);
        cosT[p * h + i] = Math.cos(a);
        sinT[p * h + i] = Math.sin(a);
      }
    }
    this.cosT = cosT;
    this.sinT = sinT;
    this.rows = rows;
  }

  /**
   * Rotates `heads` consecutive head vectors of one row: src[srcOff + h·D + d] → dst[dstOff + h·D + d]
   * at position `pos` (src and dst may be the same array and offset), cos and sin × `scale`; dims
   * past the rotary ones are copied.
   */
  rotate(src: Float32Array, srcOff: number, dst: Float32Array, dstOff: number, heads: number, pos: number, scale = this.scale): void {
    const h2 = this.half;
    const D = this.headDim;
    const co = pos * h2;
    const cosT = this.cosT;
    const sinT = this.sinT;
    for (let h = 0; h < heads; h++) {
      const s0 = srcOff + h * D;
      const d0 = dstOff + h * D;
      for (let i = 0; i < h2; i++) {
        const c = cosT[co + i] * scale;
        const s = sinT[co + i] * scale;
        const x1 = src[s0 + i];
        const x2 = src[s0 + i + h2];
        dst[d0 + i] = x1 * c - x2 * s;
        dst[d0 + i + h2] = x2 * c + x1 * s;
      }
      for (let j = 2 * h2; j < D; j++) dst[d0 + j] = src[s0 + j];
    }
  }
}
