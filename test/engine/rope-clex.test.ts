// CLEX's scale factor, refusal, query factor and ODE table (src/engine/rope-clex.ts), and the table
// against the official code's `clex_scaled_inv_freq` in every clex case of ../shared/golden-seeds.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findGoldenCases, loadGoldenCase, readExpectedTensor, type ClexCaseSettings } from '../../src/engine/golden.js';
import { ClexRope, clexFrequencyTable, clexQueryScale, clexScaleFactor, type ClexWeights } from '../../src/engine/rope-clex.js';
import { parseClexScaling, type ClexScaling } from '../../src/model/clex-config.js';
import { CtxError } from '../../src/errors.js';
import { WeightStore } from '../../src/model/weights.js';
import { SHARED } from '../helpers/models.js';

const scaling = (extra: Partial<ClexScaling> = {}): ClexScaling => ({ type: 'clex', maxFactor: 16, paramFactor: 1, act: 'tanh', timeDt: 0.01, logScale: false, ...extra });

/** Random-ish but fixed weights for D = 8, p = 1 (values in ±0.1). */
function weights(D: number, p: number, down = true): ClexWeights {
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.2;
  const half = D / 2;
  return {
    invFreq: Float32Array.from({ length: half }, (_, i) => Math.fround(Math.pow(10000, -(2 * i) / D))),
    up: Float32Array.from({ length: half * p * D }, rnd),
    down: down ? Float32Array.from({ length: p * D * half }, rnd) : new Float32Array(p * D * half),
  };
}

describe('CLEX config and scale factor', () => {
  it('parses rope_scaling and log_scale; act and time_dt default to the October-2023 silu / 0.01', () => {
    const full = parseClexScaling({ type: 'clex', factor: 1, max_factor: 64, param_factor: 1, act: 'tanh', time_dt: 0.01 }, { log_scale: false }, 'c.json');
    assert.deepEqual(full, scaling({ maxFactor: 64 }));
    const old = parseClexScaling({ type: 'clex', max_factor: 16, param_factor: 1, factor: 1 }, { log_scale: true, use_flashattn: true }, 'c.json');
    assert.deepEqual(old, scaling({ act: 'silu', logScale: true }));
    assert.equal(parseClexScaling({ max_factor: 16, param_factor: 1 }, { log_scale: true, use_flashattn: false }, 'c.json').logScale, false);
  });
  it('rejects a missing max_factor and an unknown activation, naming the file', () => {
    assert.throws(() => parseClexScaling({ param_factor: 1 }, {}, 'm/config.json'), (e: CtxError) => e.exitCode === 5 && /m\/config.json: .*no "max_factor"/.test(e.message));
    assert.throws(() => parseClexScaling({ max_factor: 4, param_factor: 1, act: 'gelu' }, {}, 'c.json'), /"act" must be "tanh" or "silu", got "gelu"/);
    assert.throws(() => parseClexScaling({ max_factor: 4.5, param_factor: 1 }, {}, 'c.json'), /"max_factor" must be a positive integer, got 4.5/);
  });
  it('t = min(⌈L/P⌉, max_factor): 1 up to P, k exactly at k·P, k+1 one token later', () => {
    const s = scaling({ maxFactor: 8 });
    const cases: Array<[number, number]> = [[1, 1], [64, 1], [65, 2], [128, 2], [129, 3], [448, 7], [449, 8], [512, 8]];
    for (const [L, t] of cases) assert.equal(clexScaleFactor(L, 64, s), t, `L=${L}`);
  });
  it('refuses L past P·max_factor with exit 7 and the numbers', () => {
    assert.throws(
      () => clexScaleFactor(513, 64, scaling({ maxFactor: 8 }), 'models/clex'),
      (e: CtxError) => e.exitCode === 7 && e.message === "models/clex: 513 tokens exceed this CLEX model's reach of 512 (max_position_embeddings 64 × max_factor 8)",
    );
  });
  it('log_scale query factor is ln(L)/ln(P) in float32: 0 at L = 1, 1 at L = P, 2 at L = P²', () => {
    assert.equal(clexQueryScale(1, 64), 0);
    assert.equal(clexQueryScale(64, 64), 1);
    assert.ok(Math.abs(clexQueryScale(4096, 64) - 2) < 1e-6);
    assert.equal(clexQueryScale(100, 16), Math.fround(Math.fround(Math.log(100)) / Math.fround(Math.log(16))));
  });
});

describe('CLEX frequency table', () => {
  it('with W_down = 0 the ODE is the closed-form NTK schedule inv_freq · (2t−1)^(−2i/(D−2))', () => {
    const D = 8;
    const w = weights(D, 1, false);
    const table = clexFrequencyTable(w, D, scaling({ maxFactor: 6 }));
    assert.equal(table.length, 6);
    assert.deepEqual(table[0], w.invFreq);
    for (let t = 2; t <= 6; t++) {
      for (let i = 0; i < D / 2; i++) {
        const want = w.invFreq[i] * Math.pow(2 * t - 1, -(2 * i) / (D - 2));
        assert.ok(Math.abs(table[t - 1][i] - want) <= 2e-7 * want, `t=${t} i=${i}: ${table[t - 1][i]} vs ${want}`);
      }
    }
  });
  it('the integrator is fourth order (halving the step cuts the error ~16×), and the learned term matters', () => {
    const D = 8;
    const w = weights(D, 2);
    const table = (timeDt: number) => clexFrequencyTable(w, D, scaling({ maxFactor: 5, paramFactor: 2, act: 'silu', timeDt }));
    const exact = table(0.01);
    const err = (dt: number) => {
      const got = table(dt);
      let m = 0;
      for (let t = 1; t < 5; t++) got[t].forEach((v, i) => (m = Math.max(m, Math.abs(v - exact[t][i]) / exact[t][i])));
      return m;
    };
    const ratio = err(0.25) / err(0.125);
    assert.ok(ratio > 10 && ratio < 24, `error ratio ${ratio} (Euler would give ~2, classic or 3/8 RK ~16)`);
    // A step that does not divide 1 reads whole t between two grid points (linear, as torchdiffeq).
    assert.ok(err(0.03) < 1e-4, `dt 0.03: ${err(0.03)}`);
    const ntk = clexFrequencyTable({ ...w, down: new Float32Array(w.down.length) }, D, scaling({ maxFactor: 5, paramFactor: 2, act: 'silu' }));
    assert.ok(exact[4].some((v, i) => Math.abs(ntk[4][i] - v) > 1e-3 * v));
  });
  it('ClexRope hands out one array per t, the query factor with log_scale, and refuses past the reach', () => {
    const rope = new ClexRope(weights(8, 1), 8, 16, scaling({ maxFactor: 4, logScale: true }));
    assert.equal(rope.reach, 64);
    const a = rope.forLength(17);
    assert.equal(a.t, 2);
    assert.equal(rope.forLength(32).invFreq, a.invFreq);
    assert.equal(a.queryScale, clexQueryScale(17, 16));
    assert.equal(rope.forLength(16).invFreq, rope.table[0]);
    assert.throws(() => rope.forLength(65), (e: CtxError) => e.exitCode === 7);
  });
  it('rejects tensors of the wrong size for D and param_factor', () => {
    const w = weights(8, 1);
    assert.throws(() => new ClexRope(w, 8, 16, scaling({ paramFactor: 2 }), 'm'), /m: CLEX ode_up_proj has 32 values, expected \[4, 16\]/);
  });
});

const ROOT = join(SHARED, 'golden-seeds');
const absent = existsSync(ROOT) ? false : `no golden seeds at ${ROOT} (../shared is absent)`;

describe('CLEX table against the official code (golden-seeds clex_scaled_inv_freq)', { skip: absent }, () => {
  const dirs = absent ? [] : findGoldenCases(ROOT).filter((d) => loadGoldenCase(d).kind === 'clex');
  it('finds the four clex cases', () => assert.equal(dirs.length, 4));
  for (const dir of dirs) {
    const gc = loadGoldenCase(dir);
    it(gc.name, (t) => {
      const s = gc.settings as unknown as ClexCaseSettings;
      const store = WeightStore.open(join(ROOT, gc.model));
      const w: ClexWeights = {
        invFreq: store.float32('model.clex_layer.inv_freq'),
        up: store.float32('model.clex_layer.proj_func.ode_up_proj'),
        down: store.float32('model.clex_layer.proj_func.ode_down_proj'),
      };
      const scaling = parseClexScaling(s.rope_scaling, { log_scale: s.log_scale, use_flashattn: s.log_scale }, dir);
      const rope = new ClexRope(w, s.head_dim, s.max_position_embeddings, scaling);
      const expected = readExpectedTensor(dir, 'clex_scaled_inv_freq');
      const half = s.head_dim / 2;
      assert.deepEqual(expected.shape, [scaling.maxFactor, half]);
      let maxRel = 0;
      for (let r = 0; r < scaling.maxFactor; r++) {
        for (let i = 0; i < half; i++) {
          const want = expected.data[r * half + i];
          maxRel = Math.max(maxRel, Math.abs(rope.table[r][i] - want) / want);
        }
      }
      const rtol = gc.tolerance!.suggested_rtol_clex_scaled_inv_freq!;
      t.diagnostic(`max relative difference ${maxRel.toExponential(2)} (case rtol ${rtol})`);
      assert.ok(maxRel <= rtol, `max relative difference ${maxRel} > ${rtol}`);
      // The scale factor of every call, as the reference chose it.
      assert.equal(rope.forLength(gc.n_input).t, s.scale_factor_prefill);
      assert.deepEqual(s.scale_factor_steps.map((_, i) => rope.forLength(gc.n_input + i + 1).t), s.scale_factor_steps);
    });
  }
});
