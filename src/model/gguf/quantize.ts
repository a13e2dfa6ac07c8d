// Quantizers for every type ctx reads, for test fixtures and the benchmark's files: float32 values
// → a GGUF tensor's bytes. Each type's block is first chosen as plain fields (the f16 scales, the
// sub-block scales and mins, the integer codes) and then packed into ggml's byte layout by
// `packBlock`, the inverse of blocks.ts's unpacking.
//
// Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 follow ggml's reference quantizers (quantize_row_q8_0_ref, ...)
// step for step in float32, so their bytes equal what llama.cpp's own converter writes. The K-quants
// use a plain min/max choice per sub-block (ggml's reference adds an iterative search for a better
// scale): the blocks are valid and decode by the same definition; they are only somewhat less accurate.

import { floatToHalf } from '../safetensors-write.js';
import { halfToFloat } from '../safetensors.js';
import { GGML_TYPES, SUPER_BLOCK, type SupportedType } from './ggml-types.js';
import type { QuantType } from './blocks.js';

/**
 * One block as fields. `d`, `dmin` are f16 bits (for Q4_1 and Q5_1 `dmin` is their offset m, the
 * value code 0 stands for); `sc`, `m` the sub-block scales and mins (K-quants).
 */
export interface BlockFields {
  d: number;
  dmin?: number;
  sc?: ArrayLike<number>;
  m?: ArrayLike<number>;
  /** Stored codes, as the format keeps them: Q8_0 −128..127, Q4_0, Q4_1, Q4_K 0..15, Q5_0, Q5_1, Q5_K 0..31, Q6_K 0..63. */
  codes: ArrayLike<number>;
}

/** C's roundf: halves away from zero (Math.round rounds them up). */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

const f32 = Math.fround;

/** Packs one block's fields into `out` at `at`, in ggml's byte layout. */
export function packBlock(type: QuantType, f: BlockFields, out: Uint8Array, at: number): void {
  const put16 = (v: number, p: number) => {
    out[p] = v & 255;
    out[p + 1] = (v >> 8) & 255;
  };
  const codes = f.codes;
  switch (type) {
    case 'Q8_0':
      put16(f.d, at);
      for (let i = 0; i < 32; i++) out[at + 2 + i] = codes[i] & 255;
      return;
    case 'Q4_0':
      put16(f.d, at);
      for (let i = 0; i < 16; i++) out[at + 2 + i] = codes[i] | (codes[i + 16] << 4);
      return;
    case 'Q4_1':
    case 'Q5_0':
    case 'Q5_1': {
      // d (, m), the fifth bits as one little-endian 32-bit word (bit i: value i), then the low nibbles.
      put16(f.d, at);
      if (type !== 'Q5_0') put16(f.dmin!, at + 2);
      let p = at + (type === 'Q5_0' ? 2 : 4);
      if (type !== 'Q4_1') {
        let qh = 0;
        for (let i = 0; i < 32; i++) qh |= (codes[i] >> 4) << i;
        for (let k = 0; k < 4; k++) out[p + k] = (qh >>> (8 * k)) & 255;
        p += 4;
      }
      for (let i = 0; i < 16; i++) out[p + i] = (codes[i] & 15) | ((codes[i + 16] & 15) << 4);
      return;
    }
    case 'Q4_K':
    case 'Q5_K': {
      put16(f.d, at);
      put16(f.dmin!, at + 2);
      const s = at + 4;
      for (let i = 0; i < 12; i++) out[s + i] = 0;
      for (let j = 0; j < 8; j++) {
        const sc = f.sc![j];
        const m = f.m![j];
        if (j < 4) {
          out[s + j] |= sc;
          out[s + j + 4] |= m;
        } else {
          out[s + j + 4] = (sc & 15) | ((m & 15) << 4);
          out[s + j - 4] |= (sc >> 4) << 6;
          out[s + j] |= (m >> 4) << 6;
        }
      }
      const fifth = type === 'Q5_K';
      const qh = at + 16;
      const qs = at + (fifth ? 48 : 16);
      if (fifth) for (let l = 0; l < 32; l++) out[qh + l] = 0;
      for (let k = 0; k < 4; k++) {
        for (let l = 0; l < 32; l++) {
          const lo = codes[64 * k + l];
          const hi = codes[64 * k + 32 + l];
          out[qs + 32 * k + l] = (lo & 15) | ((hi & 15) << 4);
          if (fifth) out[qh + l] |= ((lo >> 4) << (2 * k)) | ((hi >> 4) << (2 * k + 1));
        }
      }
      return;
    }
    case 'Q6_K': {
      for (let i = 0; i < 192; i++) out[at + i] = 0;
      for (let h = 0; h < 2; h++) {
        for (let l = 0; l < 32; l++) {
          for (let c = 0; c < 4; c++) {
            const q = codes[128 * h + 32 * c + l];
            const lowAt = at + 64 * h + l + (c & 1 ? 32 : 0);
            out[lowAt] |= c < 2 ? q & 15 : (q & 15) << 4;
            out[at + 128 + 32 * h + l] |= (q >> 4) << (2 * c);
          }
        }
      }
      for (let g = 0; g < 16; g++) out[at + 192 + g] = f.sc![g] & 255;
      put16(f.d, at + 208);
      return;
    }
  }
}

/** The next f16 above a non-negative f16 (bits), so a scale rounded to f16 can be made to cover its range. */
function halfAtLeast(v: number): number {
  let h = floatToHalf(v);
  if (halfToFloat(h) < v) h++;
  return h;
}

function q8_0(x: Float32Array): BlockFields {
  let amax = 0;
  for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[i]));
  const d = f32(amax / 127);
  const id = d ? f32(1 / d) : 0;
  return { d: floatToHalf(d), codes: Array.from(x, (v) => roundHalfAway(f32(v * id))) };
}

/**
 * Q4_0 (8) and Q5_0 (16), ggml's quantize_row_q{4,5}_0_ref: 2·`half` levels around zero, the value of
 * largest magnitude, with its sign, at code 0 (−`half` after the offset).
 */
function largestAtZero(x: Float32Array, half: number): BlockFields {
  let amax = 0;
  let max = 0;
  for (let i = 0; i < 32; i++) {
    if (amax < Math.abs(x[i])) {
      amax = Math.abs(x[i]);
      max = x[i];
    }
  }
  const d = f32(max / -half);
  const id = d ? f32(1 / d) : 0;
  return { d: floatToHalf(d), codes: Array.from(x, (v) => Math.min(2 * half - 1, Math.trunc(f32(f32(v * id) + half + 0.5)))) };
}

/** Q4_1 (nmax 15) and Q5_1 (nmax 31), ggml's quantize_row_q{4,5}_1_ref: value = d · code + m, m the block's minimum. */
function affine(x: Float32Array, nmax: number): BlockFields {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < 32; i++) {
    min = Math.min(min, x[i]);
    max = Math.max(max, x[i]);
  }
  const d = f32((max - min) / nmax);
  const id = d ? f32(1 / d) : 0;
  return { d: floatToHalf(d), dmin: floatToHalf(min), codes: Array.from(x, (v) => Math.min(nmax, Math.trunc(f32(f32(f32(v - min) * id) + 0.5)))) };
}

/** Q4_K (nmax 15) and Q5_K (nmax 31): per sub-block of 32, value ≈ dl · code − dm with dl, dm ≥ 0. */
function kQuant(x: Float32Array, nmax: number): BlockFields {
  const scales: number[] = [];
  const mins: number[] = [];
  for (let j = 0; j < 8; j++) {
    let lo = 0; // the min is never positive: code 0 stands for a value ≤ 0
    let hi = -Infinity;
    for (let i = 32 * j; i < 32 * j + 32; i++) {
      lo = Math.min(lo, x[i]);
      hi = Math.max(hi, x[i]);
    }
    scales.push((hi - lo) / nmax);
    mins.push(-lo);
  }
  // Super-block scales rounded up, so 63 steps cover the largest sub-block scale and min.
  const d = halfAtLeast(Math.max(...scales) / 63);
  const dmin = halfAtLeast(Math.max(...mins) / 63);
  const dF = halfToFloat(d);
  const dminF = halfToFloat(dmin);
  const sc = scales.map((s) => (dF ? Math.min(63, Math.ceil(s / dF)) : 0));
  const m = mins.map((v) => (dminF ? Math.min(63, Math.ceil(v / dminF)) : 0));
  const codes = new Array<number>(SUPER_BLOCK).fill(0);
  for (let j = 0; j < 8; j++) {
    const dl = f32(dF * sc[j]);
    const dm = f32(dminF * m[j]);
    if (!dl) continue;
    for (let i = 32 * j; i < 32 * j + 32; i++) codes[i] = Math.max(0, Math.min(nmax, roundHalfAway((x[i] + dm) / dl)));
  }
  return { d, dmin, sc, m, codes };
}

/** Q6_K: per sub-block of 16, value ≈ d · sc · (code − 32) with signed 8-bit sc. */
function q6K(x: Float32Array): BlockFields {
  const scales: number[] = [];
  for (let g = 0; g < 16; g++) {
    let amax = 0;
    for (let i = 16 * g; i < 16 * g + 16; i++) amax = Math.max(amax, Math.abs(x[i]));
    scales.push(amax / 31);
  }
  const d = halfAtLeast(Math.max(...scales) / 127);
  const dF = halfToFloat(d);
  const sc = scales.map((s) => (dF ? Math.min(127, Math.ceil(s / dF)) : 0));
  const codes = new Array<number>(SUPER_BLOCK).fill(32);
  for (let g = 0; g < 16; g++) {
    const dl = f32(dF * sc[g]);
    if (!dl) continue;
    for (let i = 16 * g; i < 16 * g + 16; i++) codes[i] = 32 + Math.max(-32, Math.min(31, roundHalfAway(x[i] / dl)));
  }
  return { d, sc, codes };
}

const CHOOSE: Record<QuantType, (x: Float32Array) => BlockFields> = {
  Q8_0: q8_0,
  Q4_0: (x) => largestAtZero(x, 8),
  Q4_1: (x) => affine(x, 15),
  Q5_0: (x) => largestAtZero(x, 16),
  Q5_1: (x) => affine(x, 31),
  Q4_K: (x) => kQuant(x, 15),
  Q5_K: (x) => kQuant(x, 31),
  Q6_K: q6K,
};

/** float32 → bf16 bits, round to nearest even (NaN kept a NaN). */
export function floatToBf16(v: number): number {
  const bits = new Uint32Array(Float32Array.of(v).buffer)[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** Encodes `values` (length a multiple of the type's block) as a tensor of `type`. */
export function quantize(type: SupportedType, values: Float32Array): Uint8Array {
  const layout = GGML_TYPES[type];
  if (values.length % layout.blockValues !== 0) throw new Error(`${type} needs a multiple of ${layout.blockValues} values, got ${values.length}`);
  const blocks = values.length / layout.blockValues;
  const out = new Uint8Array(blocks * layout.blockBytes);
  const view = new DataView(out.buffer);
  switch (type) {
    case 'F32':
      out.set(new Uint8Array(Float32Array.from(values).buffer));
      return out;
    case 'F16':
      values.forEach((v, i) => view.setUint16(2 * i, floatToHalf(v), true));
      return out;
    case 'BF16':
      values.forEach((v, i) => view.setUint16(2 * i, floatToBf16(v), true));
      return out;
    default:
      for (let b = 0; b < blocks; b++) {
        const x = values.subarray(b * layout.blockValues, (b + 1) * layout.blockValues);
        packBlock(type, CHOOSE[type](x), out, b * layout.blockBytes);
      }
      return out;
  }
}
