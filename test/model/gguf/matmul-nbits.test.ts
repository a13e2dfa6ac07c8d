// The MatMulNBits re-encoding of every quantized GGUF type gives back exactly the GGUF's
// dequantized values — checked by our reading of the layout (nbitsRows) and by ONNX Runtime
// itself: MatMulNBits applied to the identity matrix returns Wᵀ, and for Q4_K/Q5_K the graph's
// second term (mins · block sums of x) completes it. The identity makes every product exact, so
// ONNX Runtime's values must equal ggml's bit for bit (zeros up to sign).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Graph } from '../../../src/backend/cpu/graph.js';
import { mulberry32 } from '../../../src/demo/rng.js';
import { dequantize, QUANT_TYPES, unpackBlocks, type QuantType } from '../../../src/model/gguf/blocks.js';
import { GGML_TYPES } from '../../../src/model/gguf/ggml-types.js';
import { NBITS_PLANS, nbitsRows, toMatMulNBits, type NBitsMatrix } from '../../../src/model/gguf/matmul-nbits.js';
import { quantize } from '../../../src/model/gguf/quantize.js';
import { scratchPath } from './helpers.js';

const N = 24;
const K = 512;

function ggufMatrix(type: QuantType, seed: number): { bytes: Uint8Array; values: Float32Array } {
  const rand = mulberry32(seed);
  // Rows with different offsets, so K-quant mins are not zero.
  const w = Float32Array.from({ length: N * K }, (_, i) => (rand() - 0.5) * 0.1 + (Math.floor(i / 64) % 3) * 0.05);
  const bytes = quantize(type, w);
  const values = new Float32Array(N * K);
  dequantize(type, bytes, 0, N * K, values);
  return { bytes, values };
}

/** y = MatMulNBits(x) − (blockSums(x) · minsᵀ when the type has mins), for x [rows, K]. */
async function runOrt(m: NBitsMatrix, x0: Float32Array, accuracyLevel: 1 | 4): Promise<Float32Array> {
  const rows = x0.length / K;
  const g = new Graph('nbits');
  const x = g.input('x', 'float', [rows, K]);
  const kBlocks = K / m.blockSize;
  const inputs = [
    x,
    g.inline('b', 'uint8', [m.N, kBlocks, (m.blockSize * m.bits) / 8], m.b),
    g.inline('scales', 'float', [m.N * kBlocks], new Uint8Array(m.scales.buffer, m.scales.byteOffset, m.scales.byteLength)),
  ];
  if (m.zeroPoints) inputs.push(g.inline('zp', 'uint8', [m.zeroPoints.length], m.zeroPoints));
  let y = g.op('MatMulNBits', inputs, { K, N: m.N, bits: m.bits, block_size: m.blockSize, accuracy_level: accuracyLevel }, { domain: 'com.microsoft' });
  if (m.mins) {
    const sums = g.op('ReduceSum', [g.op('Reshape', [x, g.ints([rows, kBlocks, m.blockSize])]), g.ints([2])], { keepdims: 0 });
    const mins = g.inline('mins', 'float', [m.N, kBlocks], new Uint8Array(m.mins.buffer, m.mins.byteOffset, m.mins.byteLength));
    y = g.op('Sub', [y, g.op('Gemm', [sums, mins], { transB: 1 })]);
  }
  g.output(y, 'y', 'float', [rows, m.N]);
  const path = scratchPath('nbits.onnx');
  writeFileSync(path, g.encode());
  const session = await ort.InferenceSession.create(path);
  try {
    return (await session.run({ x: new ort.Tensor('float32', x0, [rows, K]) })).y.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('MatMulNBits re-encoding', () => {
  for (const type of QUANT_TYPES) {
    const plan = NBITS_PLANS[type];
    it(`${type} → ${plan.bits}-bit, block ${plan.blockSize}${plan.zeroPoints ? ', centring zero points' : ''}${plan.mins ? ', + mins term' : ''}: exactly the GGUF values`, async () => {
      const { bytes, values } = ggufMatrix(type, 3 + type.length);
      const m = toMatMulNBits(type, bytes, N, K);
      assert.equal(m.b.length * 8, N * K * plan.bits);
      // Our reading of the MatMulNBits layout gives every value bit for bit.
      const rows = nbitsRows(m, Array.from({ length: N }, (_, n) => n));
      assert.deepEqual(new Uint32Array(rows.buffer), new Uint32Array(values.buffer));
      // An embedding lookup in this form reads the same rows.
      assert.deepEqual(nbitsRows(m, [7, 2]), Float32Array.from([...values.subarray(7 * K, 8 * K), ...values.subarray(2 * K, 3 * K)]));
      // ONNX Runtime's own reading, with float32 activations (accuracy_level 1) so that the identity
      // is not quantized: y[k, n] = W[n, k].
      const eye = new Float32Array(K * K);
      for (let i = 0; i < K; i++) eye[i * K + i] = 1;
      const y = await runOrt(m, eye, 1);
      let mismatches = 0;
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) if (y[k * N + n] !== values[n * K + k]) mismatches++;
      }
      assert.equal(mismatches, 0, `${mismatches} of ${N * K} values differ from the GGUF's`);
      if (plan.mins) {
        assert.ok(m.mins!.some((v) => v !== 0), 'the fixture exercises the mins');
        // The blocks are centred: where a block's values straddle 0 (its zero lies within the code
        // range), the remainder left to the mins term is within a code's step of 0, so the
        // int8-activation product holds weights of both signs — in all but rare blocks.
        const u = unpackBlocks(type, bytes, 0, (N * K) / GGML_TYPES[type].blockValues);
        const maxCode = plan.bits === 4 ? 15 : 31;
        const straddle = Array.from(u.mins.keys()).filter((g) => u.scales[g] > 0 && u.mins[g] >= 0 && u.mins[g] <= maxCode * u.scales[g]);
        const centred = straddle.filter((g) => Math.abs(m.mins![g]) <= u.scales[g]).length;
        assert.ok(straddle.length > 0.3 * u.mins.length && centred >= 0.99 * straddle.length, `${centred} of ${straddle.length} blocks centred`);
      }

      // The int8-activation kernels the cpu backend uses (accuracy_level 4) accept the layout too;
      // their per-block activation quantization costs about 1% of a product.
      const rand = mulberry32(5);
      const x = Float32Array.from({ length: 4 * K }, () => rand() - 0.5);
      const fast = await runOrt(m, x, 4);
      for (let r = 0; r < 4; r++) {
        for (let n = 0; n < N; n++) {
          let exact = 0;
          let scale = 0;
          for (let k = 0; k < K; k++) {
            exact += x[r * K + k] * values[n * K + k];
            scale += Math.abs(x[r * K + k] * values[n * K + k]);
          }
          assert.ok(Math.abs(fast[r * N + n] - exact) <= 0.02 * scale, `row ${r}, column ${n}: ${fast[r * N + n]} vs ${exact} (scale ${scale})`);
        }
      }
    });
  }

  it('states the storage cost of each re-encoding', () => {
    const bpw = Object.fromEntries(QUANT_TYPES.map((t) => [t, [NBITS_PLANS[t].bitsPerWeight, NBITS_PLANS[t].ggufBitsPerWeight]]));
    assert.deepEqual(bpw, { Q8_0: [9, 8.5], Q4_0: [5, 4.5], Q4_1: [6.125, 5], Q5_0: [9, 5.5], Q5_1: [10.25, 6], Q4_K: [6.125, 4.5], Q5_K: [10.25, 5.5], Q6_K: [10, 6.5625] });
  });
});
