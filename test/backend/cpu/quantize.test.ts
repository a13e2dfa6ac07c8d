// The 8- and 4-bit weight layouts the converter writes are the ones ONNX Runtime's MatMulNBits
// reads: its product equals the product with our own dequantized weights (up to its per-block
// activation quantization), and a whole model runs in every mode.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Graph } from '../../../src/backend/cpu/graph.js';
import { BLOCK, quantizeRow } from '../../../src/backend/cpu/weights.js';
import { Session } from '../../../src/engine/session.js';
import { resolveStrategy } from '../../../src/engine/strategies/index.js';
import { tinyModel, tokens } from '../../helpers/models.js';
import { argmaxRows, cpuBackend } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ctx-quantize-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

describe('quantized weight layout', () => {
  for (const bits of [8, 4] as const) {
    it(`MatMulNBits(bits ${bits}) reads the codes and scales as written`, async () => {
      const [K, N, m] = [80, 12, 3]; // K not a multiple of the block: the last block is padded
      const W = rand(N * K, 1);
      const X = rand(m * K, 2);
      const nb = Math.ceil(K / BLOCK);
      const blob = (BLOCK * bits) / 8;
      const codes = new Uint8Array(N * nb * blob);
      const scales = new Float32Array(N * nb);
      for (let o = 0; o < N; o++) quantizeRow(W.subarray(o * K, (o + 1) * K), bits, BLOCK, codes.subarray(o * nb * blob, (o + 1) * nb * blob), scales.subarray(o * nb, (o + 1) * nb));
      // Our reading of the layout: value = (code − 2^(bits−1)) · scale of its block.
      const deq = (o: number, k: number) => {
        const byte = codes[o * nb * blob + (bits === 8 ? k : k >> 1)];
        const code = bits === 8 ? byte : k & 1 ? byte >> 4 : byte & 15;
        return (code - (1 << (bits - 1))) * scales[o * nb + Math.floor(k / BLOCK)];
      };
      let wErr = 0;
      for (let o = 0; o < N; o++) for (let k = 0; k < K; k++) wErr = Math.max(wErr, Math.abs(deq(o, k) - W[o * K + k]) / scales[o * nb + Math.floor(k / BLOCK)]);
      assert.ok(wErr <= 0.5 + 1e-6, `a weight is off by ${wErr} steps (rounding allows 0.5)`);

      const g = new Graph('t');
      const x = g.input('x', 'float', [m, K]);
      const q = g.inline('q', 'uint8', [N, nb, blob], codes);
      const s = g.inline('s', 'float', [N * nb], new Uint8Array(scales.buffer));
      g.output(g.op('MatMulNBits', [x, q, s], { K, N, bits, block_size: BLOCK, accuracy_level: 4 }, { domain: 'com.microsoft' }), 'y', 'float', [m, N]);
      const path = join(dir, `nbits${bits}.onnx`);
      writeFileSync(path, g.encode());
      const session = await ort.InferenceSession.create(path);
      const y = (await session.run({ x: new ort.Tensor('float32', X, [m, K]) })).y.data as Float32Array;
      await session.release();
      for (let i = 0; i < m; i++) {
        for (let o = 0; o < N; o++) {
          let ref = 0;
          for (let k = 0; k < K; k++) ref += X[i * K + k] * deq(o, k);
          assert.ok(Math.abs(y[i * N + o] - ref) <= 0.02 * (1 + Math.abs(ref)), `y[${i},${o}] = ${y[i * N + o]}, dequantized product ${ref}`);
        }
      }
    });
  }
});

describe('quantized modes end to end', () => {
  for (const dtype of ['q8', 'q4'] as const) {
    it(`${dtype}: a beacon model reads a document and its top-1 tokens mostly follow f32`, async (t) => {
      const model = tinyModel('tiny-beacon', { hidden: 64, intermediate: 128, seed: 11 });
      const doc = tokens(200, 4, 3, model.config.vocabSize);
      const top: number[][] = [];
      for (const d of ['f32', dtype] as const) {
        const backend = await cpuBackend(model, d);
        const session = new Session(backend, resolveStrategy(model.config, { strategy: 'beacon' }, doc.length));
        top.push(argmaxRows(await session.feed(doc, { allLogits: true }), model.config.vocabSize));
        session.dispose();
        await backend.dispose();
      }
      const same = top[0].filter((v, i) => v === top[1][i]).length / doc.length;
      t.diagnostic(`${dtype} top-1 agreement with f32: ${(100 * same).toFixed(1)}%`);
      // Random tiny models are harsh on quantization (see golden.test.ts for the q8 criterion).
      assert.ok(same >= (dtype === 'q8' ? 0.9 : 0.4), `agreement ${same}`);
    });
  }
});
