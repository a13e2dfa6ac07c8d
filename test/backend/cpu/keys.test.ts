// The keys and values attention reads on the cpu backend (src/backend/cpu/keys.ts): the native loop
// (native/src/select_kernels.cc gatherRotated) writes what the ONNX Runtime graphs write and what a
// plain TypeScript computation gives — selected rows (gather) and rows [0, T) (widen), f16 and f32
// KV, full and partial rotary, a YaRN-like scale, softplus models' unit-length keys.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { KvRows } from '../../../src/backend/contract.js';
import { buildGatherGraph, buildWidenGraph, gatherSelected, widen, type GatherInput } from '../../../src/backend/cpu/keys.js';
import { nativeLoops } from '../../../src/backend/cpu/native-loops.js';
import { loadOrt, type Ort } from '../../../src/backend/cpu/sessions.js';
import { mulberry32 } from '../../../src/demo/rng.js';
import type { ModelConfig } from '../../../src/model/config.js';
import { randomHeads } from './helpers.js';

const native = nativeLoops(2);
const skip = native ? false : 'the native addon is absent or built without gatherRotated (npm run build:native)';

/** The fields of a model's config the keys graphs read. */
function config(Hkv: number, D: number, R: number, softplus: boolean): ModelConfig {
  return { numKvHeads: Hkv, headDim: D, rotaryDim: R, softplus: softplus ? {} : null } as unknown as ModelConfig;
}

/** A RoPE-like table: `rows` rows of R/2 cos and sin values. */
function table(rows: number, R: number, seed: number): { cos: Float32Array; sin: Float32Array } {
  const rng = mulberry32(seed);
  const angle = Float32Array.from({ length: rows * (R / 2) }, () => rng() * 2 * Math.PI);
  return { cos: angle.map(Math.cos), sin: angle.map(Math.sin) };
}

/**
 * Output row i: stored row rows[i] of `values` (float32 of the stored KV) rotated by table row i
 * times the scale as step/rope.ts rotate does it (the reference's rotation: dims past R as stored),
 * unit length if asked.
 */
function expectedKeys(values: Float32Array, rows: ArrayLike<number>, D: number, R: number, t: { cos: Float32Array; sin: Float32Array }, scale: number, unit: boolean): Float32Array {
  const h = R / 2;
  const out = new Float32Array(rows.length * D);
  for (let i = 0; i < rows.length; i++) {
    const x = values.subarray(rows[i] * D, (rows[i] + 1) * D);
    const k = out.subarray(i * D, (i + 1) * D);
    for (let d = 0; d < h; d++) {
      const c = t.cos[i * h + d] * scale;
      const s = t.sin[i * h + d] * scale;
      k[d] = x[d] * c - x[d + h] * s;
      k[d + h] = x[d + h] * c + x[d] * s;
    }
    for (let d = R; d < D; d++) k[d] = x[d];
    if (unit) {
      const norm = Math.hypot(...k);
      if (norm > 0) for (let d = 0; d < D; d++) k[d] /= norm;
    }
  }
  return out;
}

/** Rows of a [rows, D] float32 array. */
function pick(values: Float32Array, rows: ArrayLike<number>, D: number): Float32Array {
  const out = new Float32Array(rows.length * D);
  for (let i = 0; i < rows.length; i++) out.set(values.subarray(rows[i] * D, (rows[i] + 1) * D), i * D);
  return out;
}

function assertClose(got: Float32Array, want: Float32Array, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst <= tol, `${what}: max |Δ| ${worst} > ${tol}`);
}

const scratch = (heads: number, rows: number, D: number) => Array.from({ length: heads }, () => new Float32Array(rows * D).fill(NaN));

describe('the native gather and widen', { skip }, () => {
  let ort: Ort;
  before(async () => {
    ort = await loadOrt();
  });

  const cases: Array<[string, number, number, 'f16' | 'f32', number, boolean]> = [
    // name, D, R, dtype, scale, softplus
    ['f16 KV, full rotary', 64, 64, 'f16', 1, false],
    ['f32 KV, full rotary, scale 1.2 (YaRN)', 64, 64, 'f32', 1.2, false],
    ['f16 KV, partial rotary (Phi: 32 of 80 dims), scale 0.9', 80, 32, 'f16', 0.9, false],
    ['f32 KV, partial rotary, D 12 (not a multiple of 8)', 12, 4, 'f32', 1, false],
    ['f16 KV, softplus: unit-length keys', 64, 64, 'f16', 1.1, true],
  ];
  for (const [name, D, R, dtype, scale, softplus] of cases) {
    it(`gather, ${name}: the graph's rows and the plain computation's`, async () => {
      const Hkv = 2;
      const T = 5000;
      const keys = randomHeads(Hkv, T, D, dtype, D + R, 3);
      const values = randomHeads(Hkv, T, D, dtype, D + R + 1, 3);
      const rng = mulberry32(R);
      const rows = Int32Array.from(new Set(Array.from({ length: 2500 }, () => Math.floor(rng() * T)))).sort();
      rows[0] = 0;
      rows[rows.length - 1] = T - 1;
      const t = table(rows.length, R, D);
      const c = config(Hkv, D, R, softplus);
      const a: GatherInput = { keys: keys.stored, values: values.stored, T, rows, ...t, scale };
      const [sk, sv] = [scratch(Hkv, rows.length + 3, D), scratch(Hkv, rows.length + 3, D)];
      await gatherSelected(ort, await ort.InferenceSession.create(buildGatherGraph(c, dtype)), c, a, sk, sv, native);
      const [gk, gv] = [scratch(Hkv, rows.length, D), scratch(Hkv, rows.length, D)];
      await gatherSelected(ort, await ort.InferenceSession.create(buildGatherGraph(c, dtype)), c, a, gk, gv);
      for (let g = 0; g < Hkv; g++) {
        const want = expectedKeys(keys.values[g], rows, D, R, t, scale, softplus);
        assertClose(sk[g].subarray(0, rows.length * D), want, 2e-6, `head ${g} keys vs plain`);
        assertClose(sk[g].subarray(0, rows.length * D), gk[g], 2e-6, `head ${g} keys vs the graph`);
        assert.deepEqual(sv[g].subarray(0, rows.length * D), pick(values.values[g], rows, D), `head ${g} values`);
        assert.deepEqual(sv[g].subarray(0, rows.length * D), gv[g], `head ${g} values vs the graph`);
        // Rows past |S| are not written.
        assert.ok(Number.isNaN(sk[g][rows.length * D]) && Number.isNaN(sv[g][rows.length * D]));
      }
    });
  }

  for (const [name, D, R, scale, softplus] of [
    ['full rotary', 64, 64, 1, false],
    ['partial rotary, softplus', 80, 32, 1.3, true],
  ] as const) {
    it(`widen (rows [0, T), f16), ${name}: the graph's rows`, async () => {
      const Hkv = 2;
      const T = 4500;
      const keys = randomHeads(Hkv, T + 10, D, 'f16', 3, 2);
      const values = randomHeads(Hkv, T + 10, D, 'f16', 4, 2);
      const t = table(T, R, 5);
      const c = config(Hkv, D, R, softplus);
      const a = { keys: keys.stored, values: values.stored, T, ...t, scale };
      const [k32, v32] = [scratch(Hkv, T, D), scratch(Hkv, T, D)];
      await widen(ort, await ort.InferenceSession.create(buildWidenGraph(c)), c, a, k32, v32, native);
      const [gk, gv] = [scratch(Hkv, T, D), scratch(Hkv, T, D)];
      await widen(ort, await ort.InferenceSession.create(buildWidenGraph(c)), c, a, gk, gv);
      const all = Int32Array.from({ length: T }, (_, i) => i);
      for (let g = 0; g < Hkv; g++) {
        assertClose(k32[g], gk[g], 4e-6, `head ${g} keys vs the graph`);
        assertClose(k32[g], expectedKeys(keys.values[g], all, D, R, t, scale, softplus), 4e-6, `head ${g} keys vs plain`);
        assert.deepEqual(v32[g], gv[g], `head ${g} values`);
      }
    });
  }

  it('refuses rows past the stored arrays and scratch too small', () => {
    const keys: KvRows[] = randomHeads(1, 10, 8, 'f16', 1).stored;
    const t = table(4, 8, 1);
    const base = { keys, values: keys, D: 8, rotaryDim: 8, ...t, scale: 1, unitLength: false, outK: [new Float32Array(32)], outV: [new Float32Array(32)], threads: 1 };
    assert.throws(() => native!.gatherRotated({ ...base, rows: Int32Array.of(0, 1, 2, 10) }), /fewer rows/);
    assert.throws(() => native!.gatherRotated({ ...base, rows: Int32Array.of(0, 1, 2, 3, 4) }), /cos\/sin|fewer rows/);
    assert.throws(() => native!.gatherRotated({ ...base, rows: 4, outK: [new Float32Array(31)] }), /outK/);
    native!.gatherRotated({ ...base, rows: 4 });
  });
});
