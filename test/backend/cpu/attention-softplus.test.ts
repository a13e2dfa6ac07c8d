// The softplus attention graph (src/backend/cpu/attention-softplus.ts) through the tiling driver,
// (keys at unit length) against the formulas of src/backend/attention-softplus.ts in float64: causal and `ranges` masks,
// one tile and many, LSSA and LSSAR; hidden keys get exactly zero weight; a row whose re-weighting
// maximum is 0 comes out uniform, not NaN.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { cosineSimilarity, softplusWeightsInPlace, toUnitLength } from '../../../src/backend/attention-softplus.js';
import { attend, type AttentionSessions, type TileMask } from '../../../src/backend/cpu/attention.js';
import { buildSoftplusAttentionGraph } from '../../../src/backend/cpu/attention-softplus.js';
import type { ModelConfig } from '../../../src/model/config.js';
import type { SoftplusAttention } from '../../../src/model/softplus-config.js';

const dir = mkdtempSync(join(tmpdir(), 'ctx-attention-softplus-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const [Hq, Hkv, D] = [6, 2, 8];
const config = (softplus: SoftplusAttention) => ({ numHeads: Hq, numKvHeads: Hkv, headDim: D, softplus }) as ModelConfig;
const LSSA: SoftplusAttention = { scale: 'log_head_dim_x_log_n', reweight: null };
const lssar = (p: number): SoftplusAttention => ({ scale: 'log_head_dim_x_log_n', reweight: { p, offset: 1, noOffsetFirstRows: 3 } });

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2;
  });
}

/** out[i, h] = Σ_j w_ij v_j with the weights of attention-softplus.ts over the keys row i sees. */
function plain(c: ModelConfig, q: Float32Array, keys: Float32Array[], values: Float32Array[], n: number, T: number, sees: (i: number, j: number) => boolean): Float32Array {
  const out = new Float32Array(n * Hq * D);
  for (let i = 0; i < n; i++) {
    const seen = Array.from({ length: T }, (_, j) => j).filter((j) => sees(i, j));
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      const w = Float64Array.from(seen, (j) => cosineSimilarity(q, (i * Hq + h) * D, keys[g], j * D, D));
      softplusWeightsInPlace(w, seen.length, D, c.softplus!);
      for (let k = 0; k < D; k++) out[(i * Hq + h) * D + k] = seen.reduce((acc, j, s) => acc + w[s] * values[g][j * D + k], 0);
    }
  }
  return out;
}

const sessions = new Map<string, AttentionSessions>();
async function open(c: ModelConfig): Promise<AttentionSessions> {
  const key = JSON.stringify(c.softplus);
  let s = sessions.get(key);
  if (!s) {
    const path = join(dir, `softplus-${sessions.size}.onnx`);
    writeFileSync(path, buildSoftplusAttentionGraph(c));
    sessions.set(key, (s = { softplus: await ort.InferenceSession.create(path) }));
  }
  return s;
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, k) => Math.max(m, Math.abs(x - b[k])), 0);

describe('softplus attention graph', () => {
  const n = 40;
  const M = 25;
  const T = M + n;
  const q = rand(n * Hq * D, 1);
  const keys = [rand(T * D, 2), rand(T * D, 3)];
  // The graph takes the keys at unit length (the cpu sequence stores them so); `plain` normalises itself.
  const unitKeys = keys.map((k) => {
    const u = k.slice();
    for (let j = 0; j < T; j++) toUnitLength(u, j * D, D);
    return u;
  });
  const values = [rand(T * D, 4), rand(T * D, 5)];
  const ranges = (i: number, j: number) => (j >= 3 && j < 12) || j === M + i || (i % 3 === 0 && j >= M && j < M + i);
  const masks: Array<[string, TileMask, (i: number, j: number) => boolean]> = [
    ['causal', { kind: 'causal', offset: M }, (i, j) => j <= M + i],
    ['ranges', { kind: 'bias', bias: (q0, q1, Tt) => Float32Array.from({ length: (q1 - q0) * Tt }, (_, k) => (ranges(q0 + Math.floor(k / Tt), k % Tt) ? 0 : -Infinity)) }, ranges],
  ];
  for (const [variant, sp] of [['LSSA', LSSA], ['LSSAR p=3', lssar(3)], ['LSSAR p=15', lssar(15)]] as const) {
    const c = config(sp);
    for (const [name, mask, sees] of masks) {
      for (const budget of [1 << 20, Hq * T * 4 * 3]) {
        it(`${variant}, ${name} mask, ${budget === 1 << 20 ? 'one tile' : 'tiles of 3 rows'}`, async () => {
          const out = new Float32Array(n * Hq * D);
          await attend(ort, await open(c), c, { q, n, keys: unitKeys, values, T, mask, budget }, out);
          const d = maxDiff(out, plain(c, q, keys, values, n, T, sees));
          assert.ok(d < (sp.reweight?.p === 15 ? 2e-5 : 2e-6), `max |Δ| ${d}`);
        });
      }
    }
  }

  it('hidden keys get exactly zero weight: huge values behind the mask do not leak', async () => {
    const c = config(lssar(15));
    // Under the `ranges` mask no row sees keys 0..2 and 12..M−1: give them values of 1e30.
    const loud = values.map((v) => v.slice());
    for (const v of loud) {
      v.fill(1e30, 0, 3 * D);
      v.fill(1e30, 12 * D, M * D);
    }
    const out = new Float32Array(n * Hq * D);
    await attend(ort, await open(c), c, { q, n, keys: unitKeys, values: loud, T, mask: masks[1][1] }, out);
    const d = maxDiff(out, plain(c, q, keys, values, n, T, ranges));
    assert.ok(d < 2e-5, `max |Δ| ${d}`);
  });

  it('a row whose re-weighting maximum is 0 is uniform over its keys (not 0/0)', async () => {
    // A zero query has cosine 0 with every key: equal LSSA weights 1/4 over 4 keys, so every
    // x = 4·¼ − 1 = 0 exactly; the row becomes the mean of the values it sees.
    const c = config(lssar(15));
    const zeroQ = new Float32Array(Hq * D);
    const out = new Float32Array(Hq * D);
    await attend(ort, await open(c), c, { q: zeroQ, n: 1, keys: unitKeys, values, T: 4, mask: { kind: 'causal', offset: 3 } }, out);
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      for (let k = 0; k < D; k++) {
        const mean = (values[g][k] + values[g][D + k] + values[g][2 * D + k] + values[g][3 * D + k]) / 4;
        assert.ok(Math.abs(out[h * D + k] - mean) < 1e-6, `head ${h}, dim ${k}: ${out[h * D + k]} vs ${mean}`);
      }
    }
  });
});
