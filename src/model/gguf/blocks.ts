// The block layouts of the quantized ggml types, as ggml defines them (ggml-common.h for the bytes,
// ggml-quants.c dequantize_row_* for the values), read into one common form:
//
//   value[i] = fround(scale[g] · code[i] − min[g])      g = floor(i / groupValues)
//
// with integer codes and float32 group scales and mins. Every type's dequantization, the MatMulNBits
// re-encoding and the embedding-row gather are computed from this form, so the bit layouts live in
// this file only. For each type (d, dmin: the block's f16 scales; sc, m: the 6- or 8-bit sub-block
// scale and min):
//
//   type   group  code             scale       min       bytes per block (values)
//   Q8_0   32     int8 q           d           0         2 d + 32 q                          (32)
//   Q4_0   32     nibble − 8       d           0         2 d + 16 nibbles                    (32)
//   Q4_1   32     nibble 0..15     d           −m        2 d + 2 m + 16 nibbles              (32)
//   Q5_0   32     0..31 − 16       d           0         2 d + 4 fifth bits + 16 nibbles     (32)
//   Q5_1   32     0..31            d           −m        2 d + 2 m + 4 + 16                  (32)
//   Q4_K   32     nibble 0..15     d · sc      dmin · m  2 d + 2 dmin + 12 sc/m + 128 nibbles (256)
//   Q5_K   32     0..31            d · sc      dmin · m  as Q4_K + 32 bytes of fifth bits     (256)
//   Q6_K   16     0..63 − 32       d · sc      0         128 low nibbles + 64 bytes of 2-bit
//                                                        highs + 16 int8 sc + 2 d             (256)
//
// Exactness: scale · code is exact in float32 for every type (at most 11 + 7 + 5 = 23 significant
// bits), as are d · sc and dmin · m (at most 17), so the only rounding is the one subtraction, the
// same single rounding ggml's `d1 * q - m1` (Q4_1, Q5_1: `x0 * d + m`) makes (with or without a
// fused multiply-add, since the product is exact). Computing in doubles and rounding once with
// Math.fround is therefore identical.

import { halfToFloat } from '../safetensors.js';
import { GGML_TYPES, type SupportedType } from './ggml-types.js';

export type QuantType = Exclude<SupportedType, 'F32' | 'F16' | 'BF16'>;
export const QUANT_TYPES: QuantType[] = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];

/** Values per scale/min group. */
export const GROUP_VALUES: Record<QuantType, number> = { Q8_0: 32, Q4_0: 32, Q4_1: 32, Q5_0: 32, Q5_1: 32, Q4_K: 32, Q5_K: 32, Q6_K: 16 };

export function isQuantType(t: SupportedType): t is QuantType {
  return (QUANT_TYPES as string[]).includes(t);
}

/** `blocks` whole blocks of one type in the common form. */
export interface UnpackedBlocks {
  /** One code per value. */
  codes: Int8Array;
  /** One scale per group (float32 values). */
  scales: Float32Array;
  /** One min per group; all zero for the types without one. */
  mins: Float32Array;
}

function f16(bytes: Uint8Array, at: number): number {
  return halfToFloat(bytes[at] | (bytes[at + 1] << 8));
}

/**
 * The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at `s` of a Q4_K/Q5_K
 * block: sub-blocks 0–3 keep both in the low 6 bits of bytes j and j + 4; sub-blocks 4–7 keep their
 * low 4 bits in the nibbles of byte j + 4 and their top 2 bits in the top 2 bits of bytes j − 4
 * (scale) and j (min).
 */
export function kScaleMin(bytes: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [bytes[s + j] & 63, bytes[s + j + 4] & 63];
  const lowBits = bytes[s + j + 4];
  return [(lowBits & 15) | ((bytes[s + j - 4] >> 6) << 4), (lowBits >> 4) | ((bytes[s + j] >> 6) << 4)];
}

/** Unpacks `count` blocks of `type` starting at byte `at` of `bytes` (into `into` at block `first`, when given). */
export function unpackBlocks(type: QuantType, bytes: Uint8Array, at: number, count: number, into?: { out: UnpackedBlocks; first: number }): UnpackedBlocks {
  const layout = GGML_TYPES[type];
  const group = GROUP_VALUES[type];
  const groupsPerBlock = layout.blockValues / group;
  const out = into?.out ?? {
    codes: new Int8Array(count * layout.blockValues),
    scales: new Float32Array(count * groupsPerBlock),
    mins: new Float32Array(count * groupsPerBlock),
  };
  const first = into?.first ?? 0;
  for (let b = 0; b < count; b++) {
    const p = at + b * layout.blockBytes;
    const v0 = (first + b) * layout.blockValues; // first value of the block
    const g0 = (first + b) * groupsPerBlock; // first group of the block
    const { codes, scales, mins } = out;
    switch (type) {
      case 'Q8_0': {
        scales[g0] = f16(bytes, p);
        mins[g0] = 0;
        for (let i = 0; i < 32; i++) codes[v0 + i] = (bytes[p + 2 + i] << 24) >> 24;
        break;
      }
      case 'Q4_0': {
        // Byte i holds value i (low nibble) and value i + 16 (high nibble).
        scales[g0] = f16(bytes, p);
        mins[g0] = 0;
        for (let i = 0; i < 16; i++) {
          const q = bytes[p + 2 + i];
          codes[v0 + i] = (q & 15) - 8;
          codes[v0 + i + 16] = (q >> 4) - 8;
        }
        break;
      }
      case 'Q4_1':
      case 'Q5_0':
      case 'Q5_1': {
        // Byte j of the 16 code bytes holds value j (low nibble) and value j + 16 (high nibble);
        // Q5_*: bit j of the 32-bit little-endian fifth-bit word is value j's 16.
        const withMin = type !== 'Q5_0';
        const five = type !== 'Q4_1';
        scales[g0] = f16(bytes, p);
        mins[g0] = withMin ? -f16(bytes, p + 2) : 0;
        const qh = p + (withMin ? 4 : 2);
        const qs = qh + (five ? 4 : 0);
        const high = five ? (bytes[qh] | (bytes[qh + 1] << 8) | (bytes[qh + 2] << 16) | (bytes[qh + 3] << 24)) >>> 0 : 0;
        const shift = type === 'Q5_0' ? 16 : 0;
        for (let j = 0; j < 16; j++) {
          const q = bytes[qs + j];
          codes[v0 + j] = ((q & 15) | (((high >>> j) & 1) << 4)) - shift;
          codes[v0 + j + 16] = ((q >> 4) | (((high >>> (j + 16)) & 1) << 4)) - shift;
        }
        break;
      }
      case 'Q4_K':
      case 'Q5_K': {
        // Values 64k..64k+31 are the low nibbles of code bytes 32k..32k+31, values 64k+32.. their high
        // nibbles. Q5_K adds bit 2k (low) / 2k+1 (high) of fifth-bit byte l as 16.
        const d = f16(bytes, p);
        const dmin = f16(bytes, p + 2);
        const fifth = type === 'Q5_K';
        const qh = p + 16;
        const qs = p + (fifth ? 48 : 16);
        for (let j = 0; j < 8; j++) {
          const [sc, m] = kScaleMin(bytes, p + 4, j);
          scales[g0 + j] = Math.fround(d * sc);
          mins[g0 + j] = Math.fround(dmin * m);
        }
        for (let k = 0; k < 4; k++) {
          for (let l = 0; l < 32; l++) {
            const q = bytes[qs + 32 * k + l];
            const high = fifth ? bytes[qh + l] : 0;
            codes[v0 + 64 * k + l] = (q & 15) + (((high >> (2 * k)) & 1) << 4);
            codes[v0 + 64 * k + 32 + l] = (q >> 4) + (((high >> (2 * k + 1)) & 1) << 4);
          }
        }
        break;
      }
      case 'Q6_K': {
        // Two halves of 128 values; in half h, value 32c + l (c = 0..3, l = 0..31) takes its low 4
        // bits from byte l (c even) or l + 32 (c odd) of the half's 64 low bytes — low nibble for
        // c < 2, high for c ≥ 2 — and its top 2 bits from bits 2c..2c+1 of the half's high byte l.
        const d = f16(bytes, p + 208);
        for (let g = 0; g < 16; g++) {
          scales[g0 + g] = Math.fround(d * ((bytes[p + 192 + g] << 24) >> 24));
          mins[g0 + g] = 0;
        }
        for (let h = 0; h < 2; h++) {
          const ql = p + 64 * h;
          const qh = p + 128 + 32 * h;
          for (let l = 0; l < 32; l++) {
            const high = bytes[qh + l];
            for (let c = 0; c < 4; c++) {
              const low = bytes[ql + l + (c & 1 ? 32 : 0)];
              const nibble = c < 2 ? low & 15 : low >> 4;
              codes[v0 + 128 * h + 32 * c + l] = (nibble | (((high >> (2 * c)) & 3) << 4)) - 32;
            }
          }
        }
        break;
      }
    }
  }
  return out;
}

/** Values from the common form: fround(scale · code − min), into `out` at `outAt`. */
export function valuesOf(type: QuantType, u: UnpackedBlocks, out: Float32Array, outAt = 0): void {
  const group = GROUP_VALUES[type];
  const n = u.codes.length;
  for (let i = 0; i < n; i++) {
    const g = (i / group) | 0;
    out[outAt + i] = u.scales[g] * u.codes[i] - u.mins[g];
  }
}

/**
 * Dequantizes `count` values of `type` from `bytes` (starting at byte `at`, whole blocks) into `out`
 * at `outAt`: float32 exactly as ggml's dequantize_row_* gives them.
 */
export function dequantize(type: SupportedType, bytes: Uint8Array, at: number, count: number, out: Float32Array, outAt = 0): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 'F32':
      for (let i = 0; i < count; i++) out[outAt + i] = view.getFloat32(at + 4 * i, true);
      return;
    case 'F16':
      for (let i = 0; i < count; i++) out[outAt + i] = halfToFloat(view.getUint16(at + 2 * i, true));
      return;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
      for (let i = 0; i < count; i++) bits[outAt + i] = view.getUint16(at + 2 * i, true) << 16;
      return;
    }
    default: {
      const blocks = count / GGML_TYPES[type].blockValues;
      valuesOf(type, unpackBlocks(type, bytes, at, blocks), out, outAt);
    }
  }
}
