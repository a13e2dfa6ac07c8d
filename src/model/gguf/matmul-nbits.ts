// GGUF blocks re-encoded for onnxruntime's com.microsoft.MatMulNBits, so a backend can multiply by
// a quantized GGUF matrix without expanding it to float32. Pure functions over bytes; no ONNX here.
//
// MatMulNBits computes y = x · Wᵀ for W [N, K] stored by rows in blocks of `blockSize` values
// along K, each block with a float scale and an integer zero point:
//     W[n, k] = (code[n, k] − zp[n, b]) · scale[n, b]            b = floor(k / blockSize)
//   B           uint8 [N, K / blockSize, blockSize · bits / 8]   codes packed low bits first:
//               4-bit: value 2i in the low nibble of byte i, value 2i + 1 in the high nibble
//   scales      float [N · K / blockSize]
//   zero_points uint8 [N · ceil((K / blockSize) · bits / 8)], packed like B, each row padded to a
//               byte; optional, 2^(bits − 1) when absent (8 or 128)
//
// blocks.ts reads every GGUF type as value = scale · code − min per group. Re-encoding keeps the
// codes and scales as they are (one MatMulNBits block per GGUF group), so
//   - types without a min (Q8_0, Q4_0, Q5_0, Q6_K): MatMulNBits alone gives W exactly: (code − zp) · scale
//     is one float multiplication of an exact product, the same value ggml's dequantization gives;
//   - Q4_K, Q5_K, Q4_1 and Q5_1 carry a per-group min m[n, b] that is not a multiple of the group's scale, so no
//     integer (or float32) zero point reproduces it. They are re-encoded as two terms:
//         y[., n] = MatMulNBits(x)[., n] − Σ_b m'[n, b] · blockSum(x)[., b]
//     with `mins` m' a float [N, K / blockSize] matrix multiplied by the block sums of x (a
//     ReduceSum over x reshaped to [., K / blockSize, blockSize]). The zero point z of each block is
//     the integer nearest m / scale (within the code range) and m' = m − z · scale: the first term
//     then multiplies by centred weights scale · (code − z) and the second carries only the small
//     remainder. Each z is chosen so that m' is exact in float32 (0 when none near is, which keeps
//     m' = m): the two terms are exact parts of each weight, so the re-encoding loses nothing — it
//     is the dot product llama.cpp itself computes for these types (scale-weighted code sums minus
//     min-weighted block sums). Centring matters for the int8-activation kernels (accuracy_level 4):
//     their error is proportional to the weights the first term holds, and uncentred K-quant
//     weights (all of one sign, as large as the min) doubled it (measured: 0.037 vs 0.021 on
//     products of magnitude 4.5, random 256 × 512 matrices).
// Per type (bits per weight, as stored by ctx / in the GGUF file):
//   Q8_0  8-bit, block 32, codes q + 128, default zero point 128              9     / 8.5
//   Q4_0  4-bit, block 32, codes repacked (GGUF puts values i and i + 16 in one byte), default zp 8
//                                                                              5     / 4.5
//   Q4_1  4-bit, block 32, codes repacked as Q4_0's, zero points z, mins m'    6.125 / 5
//   Q5_0  8-bit, block 32, codes c − 16 + 128, default zero point 128           9     / 5.5
//   Q5_1  8-bit, block 32, codes c + 128, zero points 128 + z, mins m'          10.25 / 6
//   Q4_K  4-bit, block 32, zero points z, float mins m'                        6.125 / 4.5
//   Q5_K  8-bit (no 5-bit MatMulNBits), block 32, codes c + 128, zero points
//         128 + z, float mins m'                                               10.25 / 5.5
//   Q6_K  8-bit, block 16, codes c − 32 + 128 (signed 6-bit → unsigned 8-bit)   10    / 6.5625
//   F32, F16, BF16: not block-quantized; a float32 matrix (F16/BF16 widen exactly, 2× their bytes).

import { GGML_TYPES, type SupportedType } from './ggml-types.js';
import { GROUP_VALUES, unpackBlocks, type QuantType } from './blocks.js';

export interface NBitsPlan {
  bits: 4 | 8;
  blockSize: 16 | 32;
  /** Explicit zero points (the centring z of types with mins); otherwise the default 2^(bits − 1) applies. */
  zeroPoints: boolean;
  /** A float mins matrix is needed (the second term above). */
  mins: boolean;
  /** Bits per weight as re-encoded (codes, f32 scales, zero points, f32 mins). */
  bitsPerWeight: number;
  /** Bits per weight in the GGUF file. */
  ggufBitsPerWeight: number;
}

export const NBITS_PLANS: Record<QuantType, NBitsPlan> = (() => {
  const plan = (type: QuantType, bits: 4 | 8, zeroPoints: boolean, mins: boolean): NBitsPlan => {
    const blockSize = GROUP_VALUES[type] as 16 | 32;
    const perBlock = blockSize * bits + 32 + (zeroPoints ? bits : 0) + (mins ? 32 : 0);
    const l = GGML_TYPES[type];
    return { bits, blockSize, zeroPoints, mins, bitsPerWeight: perBlock / blockSize, ggufBitsPerWeight: (l.blockBytes * 8) / l.blockValues };
  };
  return {
    Q8_0: plan('Q8_0', 8, false, false),
    Q4_0: plan('Q4_0', 4, false, false),
    Q4_1: plan('Q4_1', 4, true, true),
    Q5_0: plan('Q5_0', 8, false, false),
    Q5_1: plan('Q5_1', 8, true, true),
    Q4_K: plan('Q4_K', 4, true, true),
    Q5_K: plan('Q5_K', 8, true, true),
    Q6_K: plan('Q6_K', 8, false, false),
  };
})();

/** A matrix [N, K] in MatMulNBits form (see the top of this file). */
export interface NBitsMatrix {
  bits: 4 | 8;
  blockSize: number;
  N: number;
  K: number;
  /** uint8 [N, K / blockSize, blockSize · bits / 8]. */
  b: Uint8Array;
  /** float32 [N · K / blockSize]. */
  scales: Float32Array;
  /** Packed uint8 zero points, or null for the default 2^(bits − 1). */
  zeroPoints: Uint8Array | null;
  /** float32 [N, K / blockSize], subtracted as mins · blockSums(x); null when the type has no mins. */
  mins: Float32Array | null;
}

/**
 * Re-encodes `rows` rows of K values of a quantized GGUF tensor (the rows' stored bytes, one after
 * another, e.g. GgufWeights.rawRows) for MatMulNBits.
 */
export function toMatMulNBits(type: QuantType, bytes: Uint8Array, rows: number, K: number): NBitsMatrix {
  const plan = NBITS_PLANS[type];
  const layout = GGML_TYPES[type];
  if (K % layout.blockValues !== 0) throw new Error(`${type} rows of ${K} values are not whole blocks`);
  const blocksPerRow = K / layout.blockValues;
  if (bytes.length !== rows * blocksPerRow * layout.blockBytes) throw new Error(`${rows} rows of ${K} ${type} values need ${rows * blocksPerRow * layout.blockBytes} bytes, got ${bytes.length}`);
  const u = unpackBlocks(type, bytes, 0, rows * blocksPerRow);
  const kBlocks = K / plan.blockSize;
  const blob = (plan.blockSize * plan.bits) / 8;
  const b = new Uint8Array(rows * kBlocks * blob);
  // Stored code = GGUF code + 2^(bits − 1) for 8 bits (unsigned bytes for signed or 5-bit codes);
  // 4-bit codes of types with mins (0..15) are stored as they are, Q4_0's (−8..7) + 8.
  const offset = plan.bits === 8 ? 128 : plan.zeroPoints ? 0 : 8;
  if (plan.bits === 8) {
    for (let i = 0; i < u.codes.length; i++) b[i] = u.codes[i] + offset;
  } else {
    for (let i = 0; i < u.codes.length; i += 2) b[i >> 1] = (u.codes[i] + offset) | ((u.codes[i + 1] + offset) << 4);
  }
  if (!plan.zeroPoints) return { bits: plan.bits, blockSize: plan.blockSize, N: rows, K, b, scales: u.scales, zeroPoints: null, mins: null };

  // Types with mins: centre each block (see the top of this file). Zero points [N · ceil(kBlocks · bits / 8)], packed like B.
  const maxCode = plan.bits === 4 ? 15 : 31;
  const zpRow = Math.ceil((kBlocks * plan.bits) / 8);
  const zeroPoints = new Uint8Array(rows * zpRow);
  const mins = new Float32Array(u.mins.length);
  for (let n = 0; n < rows; n++) {
    for (let blk = 0; blk < kBlocks; blk++) {
      const g = n * kBlocks + blk;
      const z = centre(u.scales[g], u.mins[g], maxCode);
      mins[g] = u.mins[g] - z * u.scales[g];
      if (plan.bits === 8) zeroPoints[n * zpRow + blk] = z + offset;
      else zeroPoints[n * zpRow + (blk >> 1)] |= blk & 1 ? z << 4 : z;
    }
  }
  return { bits: plan.bits, blockSize: plan.blockSize, N: rows, K, b, scales: u.scales, zeroPoints, mins };
}

/**
 * The zero point z of a K-quant block with this scale and min: the integer nearest min / scale in
 * [0, maxCode] (or its neighbours) for which min − z · scale is exact in float32; 0 when none is.
 * (scale · z is exact; the difference usually is too, since scale and min come from f16 values of
 * similar size times 6-bit integers.)
 */
function centre(scale: number, min: number, maxCode: number): number {
  if (!(scale > 0)) return 0;
  const near = Math.max(0, Math.min(maxCode, Math.round(min / scale)));
  for (const z of [near, near - 1, near + 1]) {
    if (z < 0 || z > maxCode) continue;
    const rest = min - z * scale; // in doubles: exact, both terms having at most 22 significant bits
    if (Math.fround(rest) === rest && rest + z * scale === min) return z;
  }
  return 0;
}

/** The zero point of block `blk` of row `n`. */
function zeroPointOf(m: NBitsMatrix, n: number, blk: number): number {
  if (!m.zeroPoints) return 1 << (m.bits - 1);
  const kBlocks = m.K / m.blockSize;
  if (m.bits === 8) return m.zeroPoints[n * kBlocks + blk];
  const rowBytes = Math.ceil(kBlocks / 2);
  const byte = m.zeroPoints[n * rowBytes + (blk >> 1)];
  return blk & 1 ? byte >> 4 : byte & 15;
}

/**
 * Rows `ids` of the matrix, as values: fround((code − zp) · scale − min), which is exactly the GGUF
 * tensor's dequantized value (the embedding lookup of a table kept in this form; also the
 * definition the tests check MatMulNBits against).
 */
export function nbitsRows(m: NBitsMatrix, ids: ArrayLike<number>): Float32Array {
  const kBlocks = m.K / m.blockSize;
  const out = new Float32Array(ids.length * m.K);
  for (let r = 0; r < ids.length; r++) {
    const n = ids[r];
    if (!Number.isInteger(n) || n < 0 || n >= m.N) throw new RangeError(`row ${n} is outside the ${m.N}-row matrix`);
    for (let k = 0; k < m.K; k++) {
      const blk = (k / m.blockSize) | 0;
      const g = n * kBlocks + blk;
      const flat = n * m.K + k;
      const code = m.bits === 8 ? m.b[flat] : flat & 1 ? m.b[flat >> 1] >> 4 : m.b[flat >> 1] & 15;
      out[r * m.K + k] = (code - zeroPointOf(m, n, blk)) * m.scales[g] - (m.mins ? m.mins[g] : 0);
    }
  }
  return out;
}

/** Whether `type` has a MatMulNBits form (the float types are multiplied as float32 matrices). */
export function hasNBitsForm(type: SupportedType): type is QuantType {
  return type in NBITS_PLANS;
}
