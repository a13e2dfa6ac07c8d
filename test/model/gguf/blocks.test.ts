// Dequantization equals ggml's definition bit for bit, and the quantizers' blocks round-trip.
//
// The "definition" below is a second, independent transcription of ggml's dequantize_row_* loops
// (ggml-quants.c), reading the raw block bytes the way those loops do; blocks.ts instead unpacks
// into codes + group scales/mins. Both run over random bytes (every byte pattern is a valid block)
// and must agree on every float32 bit pattern.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dequantize, GROUP_VALUES, QUANT_TYPES, unpackBlocks, type QuantType } from '../../../src/model/gguf/blocks.js';
import { GGML_TYPES } from '../../../src/model/gguf/ggml-types.js';
import { floatToBf16, packBlock, quantize, roundHalfAway } from '../../../src/model/gguf/quantize.js';
import { halfToFloat } from '../../../src/model/safetensors.js';
import { floatToHalf } from '../../../src/model/safetensors-write.js';
import { mulberry32 } from '../../../src/demo/rng.js';

const f32 = Math.fround;

/** ggml's dequantize_row_<type> for one block at `p`, transcribed loop for loop. */
function definition(type: QuantType, x: Uint8Array, p: number): Float32Array {
  const y = new Float32Array(GGML_TYPES[type].blockValues);
  const h = (at: number) => halfToFloat(x[at] | (x[at + 1] << 8));
  const i8 = (v: number) => (v << 24) >> 24;
  const scaleMin = (j: number, q: number): [number, number] =>
    j < 4 ? [x[q + j] & 63, x[q + j + 4] & 63] : [(x[q + j + 4] & 0xf) | ((x[q + j - 4] >> 6) << 4), (x[q + j + 4] >> 4) | ((x[q + j] >> 6) << 4)];
  switch (type) {
    case 'Q8_0': {
      const d = h(p);
      for (let j = 0; j < 32; j++) y[j] = f32(i8(x[p + 2 + j]) * d);
      break;
    }
    case 'Q4_0': {
      const d = h(p);
      for (let j = 0; j < 16; j++) {
        y[j] = f32(((x[p + 2 + j] & 0x0f) - 8) * d);
        y[j + 16] = f32(((x[p + 2 + j] >> 4) - 8) * d);
      }
      break;
    }
    case 'Q4_1': {
      const d = h(p);
      const m = h(p + 2);
      for (let j = 0; j < 16; j++) {
        y[j] = f32(f32((x[p + 4 + j] & 0x0f) * d) + m);
        y[j + 16] = f32(f32((x[p + 4 + j] >> 4) * d) + m);
      }
      break;
    }
    case 'Q5_0':
    case 'Q5_1': {
      const one = type === 'Q5_1';
      const d = h(p);
      const m = one ? h(p + 2) : 0;
      const q = p + (one ? 4 : 2);
      const qh = (x[q] | (x[q + 1] << 8) | (x[q + 2] << 16) | (x[q + 3] << 24)) >>> 0;
      for (let j = 0; j < 16; j++) {
        const xh0 = ((qh >>> j) << 4) & 0x10;
        const xh1 = (qh >>> (j + 12)) & 0x10;
        const x0 = (x[q + 4 + j] & 0x0f) | xh0;
        const x1 = (x[q + 4 + j] >> 4) | xh1;
        y[j] = one ? f32(f32(x0 * d) + m) : f32((x0 - 16) * d);
        y[j + 16] = one ? f32(f32(x1 * d) + m) : f32((x1 - 16) * d);
      }
      break;
    }
    case 'Q4_K':
    case 'Q5_K': {
      const five = type === 'Q5_K';
      const d = h(p);
      const min = h(p + 2);
      let q = p + (five ? 48 : 16);
      const qh = p + 16;
      let is = 0;
      let u1 = 1;
      let u2 = 2;
      let out = 0;
      for (let j = 0; j < 256; j += 64) {
        let [sc, m] = scaleMin(is, p + 4);
        const d1 = f32(d * sc);
        const m1 = f32(min * m);
        [sc, m] = scaleMin(is + 1, p + 4);
        const d2 = f32(d * sc);
        const m2 = f32(min * m);
        for (let l = 0; l < 32; l++) y[out++] = f32(f32(d1 * ((x[q + l] & 0xf) + (five && x[qh + l] & u1 ? 16 : 0))) - m1);
        for (let l = 0; l < 32; l++) y[out++] = f32(f32(d2 * ((x[q + l] >> 4) + (five && x[qh + l] & u2 ? 16 : 0))) - m2);
        q += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
      }
      break;
    }
    case 'Q6_K': {
      const d = h(p + 208);
      let ql = p;
      let qh = p + 128;
      let sc = p + 192;
      for (let n = 0; n < 256; n += 128) {
        for (let l = 0; l < 32; l++) {
          const is = (l / 16) | 0;
          const q1 = ((x[ql + l] & 0xf) | (((x[qh + l] >> 0) & 3) << 4)) - 32;
          const q2 = ((x[ql + l + 32] & 0xf) | (((x[qh + l] >> 2) & 3) << 4)) - 32;
          const q3 = ((x[ql + l] >> 4) | (((x[qh + l] >> 4) & 3) << 4)) - 32;
          const q4 = ((x[ql + l + 32] >> 4) | (((x[qh + l] >> 6) & 3) << 4)) - 32;
          y[n + l] = f32(f32(d * i8(x[sc + is])) * q1);
          y[n + l + 32] = f32(f32(d * i8(x[sc + is + 2])) * q2);
          y[n + l + 64] = f32(f32(d * i8(x[sc + is + 4])) * q3);
          y[n + l + 96] = f32(f32(d * i8(x[sc + is + 6])) * q4);
        }
        ql += 64;
        qh += 32;
        sc += 8;
      }
      break;
    }
  }
  return y;
}

/** Random blocks whose f16 fields are finite (random bits elsewhere: codes, sub-block scales). */
function randomBlocks(type: QuantType, count: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  const { blockBytes } = GGML_TYPES[type];
  const bytes = new Uint8Array(count * blockBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  const halves: Record<QuantType, number[]> = { Q8_0: [0], Q4_0: [0], Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] };
  for (let b = 0; b < count; b++) {
    for (const at of halves[type]) {
      // Magnitudes from subnormal to about 2^8, either sign.
      const v = (rand() < 0.5 ? -1 : 1) * 2 ** (rand() * 34 - 26);
      const bits = floatToHalf(v);
      bytes[b * blockBytes + at] = bits & 255;
      bytes[b * blockBytes + at + 1] = bits >> 8;
    }
  }
  return bytes;
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe('GGUF block dequantization', () => {
  for (const type of QUANT_TYPES) {
    it(`${type}: equals ggml's definition bit for bit on 200 random blocks`, () => {
      const count = 200;
      const { blockBytes, blockValues } = GGML_TYPES[type];
      const bytes = randomBlocks(type, count, 7 + type.length);
      const got = new Float32Array(count * blockValues);
      dequantize(type, bytes, 0, count * blockValues, got);
      const want = new Float32Array(count * blockValues);
      for (let b = 0; b < count; b++) want.set(definition(type, bytes, b * blockBytes), b * blockValues);
      assert.deepEqual(bitsOf(got), bitsOf(want));
    });
  }

  it('Q4_K: a hand-made block gives the values its fields say', () => {
    // d = 0.5, dmin = 0.25; sub-block j has scale j + 1 and min 2j; every code is j + 3 (mod 16).
    const codes = Array.from({ length: 256 }, (_, i) => ((i >> 5) + 3) & 15);
    const out = new Uint8Array(144);
    packBlock('Q4_K', { d: floatToHalf(0.5), dmin: floatToHalf(0.25), sc: [1, 2, 3, 4, 5, 6, 7, 8].map((s) => s + 55), m: [0, 2, 4, 6, 8, 10, 12, 62], codes }, out, 0);
    const y = new Float32Array(256);
    dequantize('Q4_K', out, 0, 256, y);
    for (let i = 0; i < 256; i++) {
      const j = i >> 5;
      const m = [0, 2, 4, 6, 8, 10, 12, 62][j];
      assert.equal(y[i], 0.5 * (j + 56) * codes[i] - 0.25 * m, `value ${i}`);
    }
  });

  it('Q6_K: a hand-made block gives the values its fields say (signed scales, codes −32..31)', () => {
    const codes = Array.from({ length: 256 }, (_, i) => (i * 7) % 64);
    const sc = Array.from({ length: 16 }, (_, g) => (g % 2 ? -1 : 1) * (g * 8 + 1));
    const out = new Uint8Array(210);
    packBlock('Q6_K', { d: floatToHalf(0.125), sc, codes }, out, 0);
    const y = new Float32Array(256);
    dequantize('Q6_K', out, 0, 256, y);
    for (let i = 0; i < 256; i++) assert.equal(y[i], 0.125 * sc[i >> 4] * (codes[i] - 32), `value ${i}`);
  });

  it('F16 and BF16 widen exactly; F32 is read as stored', () => {
    const v = Float32Array.of(1, -2.5, 65504, 2 ** -24, 0.1, -0, 3.140625);
    const f16 = quantize('F16', v);
    const bf16 = quantize('BF16', v);
    const y = new Float32Array(v.length);
    dequantize('F16', f16, 0, v.length, y);
    v.forEach((x, i) => assert.equal(y[i], halfToFloat(floatToHalf(x))));
    dequantize('BF16', bf16, 0, v.length, y);
    assert.deepEqual([...y], [1, -2.5, 65536, 2 ** -24, 0.10009765625, -0, 3.140625]);
    dequantize('F32', quantize('F32', v), 0, v.length, y);
    assert.deepEqual(bitsOf(y), bitsOf(v));
    assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80, 'ties round to even');
    assert.equal(floatToBf16(1 + 3 * 2 ** -8), 0x3f82);
  });
});

describe('GGUF quantizers', () => {
  const rand = mulberry32(11);
  // Rows with an offset and outliers, as real weights have.
  const values = Float32Array.from({ length: 256 * 16 }, (_, i) => (rand() - 0.45) * 0.2 + (i % 97 === 0 ? 1.5 : 0));

  for (const type of QUANT_TYPES) {
    it(`${type}: every value decodes within the error its block allows`, () => {
      const bytes = quantize(type, values);
      assert.equal(bytes.length, (values.length / GGML_TYPES[type].blockValues) * GGML_TYPES[type].blockBytes);
      const y = new Float32Array(values.length);
      dequantize(type, bytes, 0, values.length, y);
      const u = unpackBlocks(type, bytes, 0, values.length / GGML_TYPES[type].blockValues);
      const group = GROUP_VALUES[type];
      // Half a step, plus: Q8_0/Q4_0 codes are chosen with the float32 scale but decoded with its f16
      // rounding (ggml's rule; Q4_0 may also land one step off at its clamp; Q4_1/Q5_1's offset is
      // rounded to f16 too, within 2^-10 of itself); K-quant mins are
      // rounded up to the next 6-bit step, so a value may be off by that much more.
      for (let i = 0; i < values.length; i++) {
        const g = Math.floor(i / group);
        const step = Math.abs(u.scales[g]);
        const legacy = type === 'Q4_0' || type === 'Q4_1' || type === 'Q5_0' || type === 'Q5_1';
        const bound = legacy ? step + (u.mins[g] ? Math.abs(u.mins[g]) / 1024 : 0) : type === 'Q8_0' ? 0.6 * step : 0.5 * step + (type === 'Q6_K' ? 1e-7 : u.mins[g] / 8 + 1e-7);
        assert.ok(Math.abs(y[i] - values[i]) <= bound + Math.abs(values[i]) * 1e-6, `${type} value ${i}: ${values[i]} decoded as ${y[i]} (step ${step})`);
      }
      const rms = Math.sqrt(values.reduce((s, v, i) => s + (v - y[i]) ** 2, 0) / values.length);
      const limit = { Q8_0: 0.0025, Q4_0: 0.04, Q4_1: 0.04, Q5_0: 0.02, Q5_1: 0.02, Q4_K: 0.022, Q5_K: 0.011, Q6_K: 0.007 }[type];
      assert.ok(rms < limit, `${type} rms error ${rms}`);
    });
  }

  it("Q8_0 and Q4_0 follow ggml's reference quantizers on a worked block", () => {
    const x = Float32Array.from({ length: 32 }, (_, i) => (i - 12) / 8); // max |x| = 19/8, at i = 31
    const q8 = quantize('Q8_0', x);
    const d8 = Math.fround(Math.fround(19 / 8) / 127);
    assert.equal(q8[0] | (q8[1] << 8), floatToHalf(d8));
    const id = Math.fround(1 / d8);
    for (let i = 0; i < 32; i++) assert.equal((q8[2 + i] << 24) >> 24, roundHalfAway(Math.fround(x[i] * id)));
    const q4 = quantize('Q4_0', x);
    const d4 = Math.fround(Math.fround(19 / 8) / -8);
    assert.equal(q4[0] | (q4[1] << 8), floatToHalf(d4));
    assert.equal(q4[2 + 15] >> 4, 0, 'the largest value maps to code 0 (−8)');
    assert.equal(roundHalfAway(-2.5), -3);
    assert.equal(roundHalfAway(2.5), 3);
  });

  it('an all-zero block quantizes to zeros in every type', () => {
    for (const type of QUANT_TYPES) {
      const n = GGML_TYPES[type].blockValues;
      const y = new Float32Array(n);
      dequantize(type, quantize(type, new Float32Array(n)), 0, n, y);
      assert.ok(y.every((v) => v === 0), type);
    }
  });
});
