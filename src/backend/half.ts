// IEEE 754 half precision (binary16) in JavaScript, for KV rows stored as f16 (cpu/kv-store.ts, snapshots). Node 20
// has no Float16Array: a half is its 16 bits in a Uint16Array, which ONNX Runtime reads as a
// 'float16' tensor in place.
//
//   float32 → half   round to nearest, ties to even (as ONNX Runtime's Cast does); overflow → ±inf,
//                    NaN stays NaN, tiny values become subnormal halves or ±0
//   half → float32   exact, by a 65,536-entry table (256 KB, made on first use)

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** 0.5 as float32 bits: adding it to a value below 2^-14 leaves the half's subnormal bits in the low mantissa. */
const DENORM_MAGIC = ((127 - 15) + (23 - 10) + 1) << 23;
const denormMagic = (() => {
  u32[0] = DENORM_MAGIC;
  return f32[0];
})();

/** The half bits of float32 bits `x` (round to nearest even). */
export function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  let a = x & 0x7fffffff;
  if (a >= 0x47800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00); // ≥ 65536 (or inf): inf; NaN: quiet NaN
  if (a < 0x38800000) {
    // Below the smallest normal half (2^-14): let float addition do the rounding to a subnormal.
    u32[0] = a;
    f32[0] += denormMagic;
    return sign | (u32[0] - DENORM_MAGIC);
  }
  const odd = (a >>> 13) & 1;
  a += ((15 - 127) << 23) + 0xfff + odd; // re-bias the exponent; round half to even
  return sign | (a >>> 13);
}

/** The bits of a float32 array (a view, no copy), for toHalf. */
export function floatBits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** dst[dstOff + i] = half(src[srcOff + i]) for i < n, `src` given as its floatBits. */
export function toHalf(src: Uint32Array, srcOff: number, dst: Uint16Array, dstOff: number, n: number): void {
  for (let i = 0; i < n; i++) dst[dstOff + i] = halfBits(src[srcOff + i]);
}

let table: Float32Array | null = null;

/** Float32 value of every half bit pattern. */
export function halfTable(): Float32Array {
  if (table) return table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const man = h & 0x3ff;
    t[h] = exp === 0 ? sign * man * 2 ** -24 : exp === 31 ? (man ? NaN : sign * Infinity) : sign * (1 + man / 1024) * 2 ** (exp - 15);
  }
  table = t;
  return t;
}

/** dst[dstOff + i] = float(src[srcOff + i]) for i < n. */
export function fromHalf(src: Uint16Array, srcOff: number, dst: Float32Array, dstOff: number, n: number): void {
  const t = halfTable();
  for (let i = 0; i < n; i++) dst[dstOff + i] = t[src[srcOff + i]];
}
