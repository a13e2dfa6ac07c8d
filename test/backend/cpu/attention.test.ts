// The attention graphs (both implementations, every mask variant), the addon's few-row causal
// attention and the query-tiling driver against attention written out in plain JavaScript (float64).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { attend, buildAttentionGraph, type AttentionImpl, type AttentionSessions, type TileMask } from '../../../src/backend/cpu/attention.js';
import { nativeLoops } from '../../../src/backend/cpu/native-loops.js';
import { loadAddon } from '../../../src/backend/native/addon.js';
import type { ModelConfig } from '../../../src/model/config.js';

const dir = mkdtempSync(join(tmpdir(), 'ctx-attention-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const c = { numHeads: 6, numKvHeads: 2, headDim: 8 } as ModelConfig;
const [Hq, Hkv, D] = [c.numHeads, c.numKvHeads, c.headDim];
const addon = loadAddon();
const loops = nativeLoops(2);
const noAddon = addon?.attendCausal && loops ? false : 'the native addon is not built (npm run build:native)';

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2;
  });
}

/** out[i, h] = Σ_j softmax_j(q·k/√D over the keys row i sees) v_j, GQA h → h / (Hq/Hkv). */
function plain(q: Float32Array, keys: Float32Array[], values: Float32Array[], n: number, T: number, sees: (i: number, j: number) => boolean, Hq = c.numHeads, D = c.headDim): Float32Array {
  const Hkv = keys.length;
  const out = new Float32Array(n * Hq * D);
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      const s: number[] = [];
      for (let j = 0; j < T; j++) {
        let d = 0;
        for (let k = 0; k < D; k++) d += q[i * Hq * D + h * D + k] * keys[g][j * D + k];
        s.push(sees(i, j) ? d / Math.sqrt(D) : -Infinity);
      }
      const m = s.reduce((a, b) => Math.max(a, b), -Infinity);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let k = 0; k < D; k++) {
        let acc = 0;
        for (let j = 0; j < T; j++) acc += (e[j] / z) * values[g][j * D + k];
        out[i * Hq * D + h * D + k] = acc;
      }
    }
  }
  return out;
}

let sessions: AttentionSessions | undefined;
async function open(): Promise<AttentionSessions> {
  if (sessions) return sessions;
  const s = {} as AttentionSessions;
  for (const impl of ['matmul', 'fused'] as AttentionImpl[]) {
    const path = join(dir, `${impl}.onnx`);
    writeFileSync(path, buildAttentionGraph(c, impl));
    s[impl] = await ort.InferenceSession.create(path);
  }
  return (sessions = s);
}

describe('attention graphs', () => {
  const n = 40;
  const M = 25;
  const T = M + n;
  const q = rand(n * Hq * D, 1);
  const keys = [rand(T * D, 2), rand(T * D, 3)];
  const values = [rand(T * D, 4), rand(T * D, 5)];
  const ranges = (i: number, j: number) => (j >= 3 && j < 12) || j === M + i || (i % 3 === 0 && j >= M && j < M + i);
  const cases: Array<[string, TileMask, (i: number, j: number) => boolean]> = [
    ['causal', { kind: 'causal', offset: M }, (i, j) => j <= M + i],
    ['bias (ranges)', { kind: 'bias', bias: (q0, q1, Tt) => Float32Array.from({ length: (q1 - q0) * Tt }, (_, k) => (ranges(q0 + Math.floor(k / Tt), k % Tt) ? 0 : -Infinity)) }, ranges],
  ];
  for (const [name, mask, sees] of cases) {
    // Budgets that give one tile of 40 rows (fused) and tiles of 3 rows (matmul).
    for (const budget of [1 << 20, Hq * T * 4 * 3]) {
      // The addon's loop is given but takes one-row tiles only: these run in ORT's graphs.
      it(`${name}, ${budget === 1 << 20 ? 'one fused tile' : 'tiles of 3 rows'}`, async () => {
        const out = new Float32Array(n * Hq * D);
        await attend(ort, await open(), c, { q, n, keys, values, T, mask, budget, native: loops }, out);
        assert.ok(maxDiff(out, plain(q, keys, values, n, T, sees)) < 1e-5);
      });
    }
  }
  for (const native of [false, true]) {
    it(`one row that sees every key (decoding, ${native ? 'addon' : 'ORT'})`, { skip: native ? noAddon : false }, async () => {
      const out = new Float32Array(Hq * D);
      const q1 = q.subarray(0, Hq * D);
      await attend(ort, await open(), c, { q: q1, n: 1, keys, values, T, mask: { kind: 'causal', offset: T - 1 }, native: native ? loops : null }, out);
      assert.ok(maxDiff(out, plain(q1, keys, values, 1, T, () => true)) < 1e-5);
    });
  }
});

describe('the addon\'s few-row causal attention', { skip: noAddon }, () => {
  // Head dims that take the AVX2 loops (multiples of 8) and one that takes the plain ones; long key
  // runs with spread scores exercise the vectorized exp over many keys and the tails.
  for (const [heads, kvHeads, headDim, T, rows, spread, threads] of [[14, 2, 64, 2701, 1, 4, 1], [14, 2, 64, 9001, 1, 4, 2], [14, 2, 64, 1003, 5, 8, 2], [4, 4, 12, 77, 3, 3, 1], [2, 1, 16, 9, 2, 20, 1]]) {
    it(`${heads}/${kvHeads} heads of ${headDim}, ${rows} row(s) over ${T} keys, ${threads} thread(s)`, () => {
      const q = rand(rows * heads * headDim, 7).map((x) => x * spread);
      const keys = Array.from({ length: kvHeads }, (_, g) => rand(T * headDim, 10 + g));
      const values = Array.from({ length: kvHeads }, (_, g) => rand(T * headDim, 20 + g));
      const offset = T - rows - 2;
      const out = new Float32Array(rows * heads * headDim).fill(NaN);
      addon!.attendCausal!(q, rows, heads, headDim, keys, values, T, offset, out, threads);
      const want = plain(q, keys, values, rows, T, (i, j) => j <= offset + i, heads, headDim);
      assert.ok(maxDiff(out, want) < 2e-6 * spread);
    });
  }
  it('rejects arrays shorter than the shapes say', () => {
    const q = new Float32Array(2 * 8);
    assert.throws(() => addon!.attendCausal!(q, 1, 2, 8, [new Float32Array(8 * 3)], [new Float32Array(8 * 4)], 4, 3, new Float32Array(16), 1), /keys is too short/);
    assert.throws(() => addon!.attendCausal!(q, 1, 3, 8, [new Float32Array(32), new Float32Array(32)], [new Float32Array(32), new Float32Array(32)], 4, 3, new Float32Array(24), 1), /q is too short|multiple/);
  });
});

/** max |a − b|, and fails on a NaN. */
function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let k = 0; k < a.length; k++) {
    const x = Math.abs(a[k] - b[k]);
    assert.ok(!Number.isNaN(x), `NaN at ${k}`);
    d = Math.max(d, x);
  }
  return d;
}
