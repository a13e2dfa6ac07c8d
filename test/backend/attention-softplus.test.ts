// Softplus attention (src/backend/attention-softplus.ts): LSSA and LSSAR on hand-checked rows, the
// numerics (no epsilon, no overflow), the key-count rule for stream/select, and
// the formulas inside a small decoder against every softplus case of ../shared/golden-seeds.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  cosineSimilarity,
  lssaInPlace,
  reweightInPlace,
  softplus,
  softplusLengthScale,
  softplusWeightsInPlace,
} from '../../src/backend/attention-softplus.js';
import { RopeTables } from '../../src/backend/step/rope.js';
import { findGoldenCases, loadGoldenCase, readExpectedTensor } from '../../src/engine/golden.js';
import { baseInvFreq } from '../../src/engine/rope.js';
import { readModelConfig } from '../../src/model/config.js';
import { parseSoftplusAttention, type SoftplusAttention } from '../../src/model/softplus-config.js';
import { WeightStore } from '../../src/model/weights.js';
import { oracleDecoder } from '../helpers/decoder-oracle.js';
import { SHARED } from '../helpers/models.js';

const near = (got: ArrayLike<number>, want: number[], tol = 1e-12) => {
  assert.equal(got.length, want.length);
  want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= tol, `[${i}] ${got[i]} vs ${w}`));
};
const LSSA: SoftplusAttention = { scale: 'log_head_dim_x_log_n', reweight: null };
const lssar = (p: number): SoftplusAttention => ({ scale: 'log_head_dim_x_log_n', reweight: { p, offset: 1, noOffsetFirstRows: 3 } });

describe('softplus attention: the formulas on hand-checked rows', () => {
  it('softplus is ln(1 + eᶻ) without overflow', () => {
    assert.equal(softplus(0), Math.LN2);
    assert.equal(softplus(1000), 1000);
    assert.ok(softplus(-1000) >= 0 && softplus(-1000) < 1e-300);
  });
  it('the temperature is ln(D)·ln(n): 0 for the first row, 28.8 for D = 64 at n = 1024', () => {
    assert.equal(softplusLengthScale(64, 1), 0);
    assert.ok(Math.abs(softplusLengthScale(64, 1024) - 28.82718) < 1e-5);
  });
  it('LSSA: D = 4, n = 2, cosines [1, 0] → softplus(ln4·ln2) and ln 2, normalised', () => {
    // ln4·ln2 = 0.96091; softplus(0.96091) = 1.28454; softplus(0) = 0.69315; sum 1.97769.
    const v = Float64Array.of(1, 0);
    lssaInPlace(v, 2, 4);
    near(v, [0.6495681604947212, 0.35043183950527873]);
  });
  it('LSSA: D = 16, n = 3, cosines [0.5, −0.5, 0]', () => {
    const v = Float64Array.of(0.5, -0.5, 0);
    lssaInPlace(v, 3, 16);
    near(v, [0.6589354072917651, 0.07555817010306157, 0.26550642260517326]);
  });
  it('the first row has temperature 0 and weight 1 on its only key', () => {
    const v = Float64Array.of(-0.7);
    softplusWeightsInPlace(v, 1, 64, lssar(15));
    near(v, [1]);
  });
  it('re-weighting past the first 3 rows: x = relu(n·a − 1), w = x^p / Σ x^p', () => {
    // n = 4, a = [.4, .3, .2, .1] → x = [.6, .2, 0, 0]; p = 3 → [.216, .008] / .224.
    const v = Float64Array.of(0.4, 0.3, 0.2, 0.1);
    reweightInPlace(v, 4, lssar(3).reweight!);
    near(v, [0.216 / 0.224, 0.008 / 0.224, 0, 0]);
  });
  it('the first 3 rows use offset 0: x = n·a', () => {
    // n = 3, a = [.5, .3, .2] → x = [1.5, .9, .6]; p = 3 → [3.375, .729, .216] / 4.32.
    const v = Float64Array.of(0.5, 0.3, 0.2);
    reweightInPlace(v, 3, lssar(3).reweight!);
    near(v, [0.78125, 0.16875, 0.05]);
  });
  it('no epsilon: a row whose largest x is 0.29 keeps its full weight (x^15 ≈ 1e-8)', () => {
    // n = 10, one key at a = 0.129 (x = 0.29), one at 0.12 (x = 0.2), the rest share the remainder.
    const v = new Float64Array(10).fill((1 - 0.129 - 0.12) / 8);
    v[0] = 0.129;
    v[1] = 0.12;
    reweightInPlace(v, 10, lssar(15).reweight!);
    const r = Math.pow(0.2 / 0.29, 15);
    near(v.subarray(0, 2), [1 / (1 + r), r / (1 + r)], 1e-12);
    assert.ok(v.subarray(2).every((w) => w === 0));
  });
  it('no overflow: one dominant key in a long row (x^p beyond float64) still gives a distribution', () => {
    const n = 10000;
    const v = new Float64Array(n).fill(0.1 / (n - 1));
    v[7] = 0.9;
    reweightInPlace(v, n, { p: 200, offset: 1, noOffsetFirstRows: 3 });
    assert.equal(Math.pow(n * 0.9 - 1, 200), Infinity);
    assert.equal(v[7], 1);
    assert.equal(v.reduce((s, w) => s + w, 0), 1);
  });
  it('an exactly uniform row past the first rows stays uniform (the formula would be 0/0)', () => {
    const v = new Float64Array(5).fill(0.2);
    reweightInPlace(v, 5, lssar(15).reweight!);
    near(v, [0.2, 0.2, 0.2, 0.2, 0.2]);
  });
  it('qk-norm: scaling q or a key by a positive factor changes nothing', () => {
    const q = [0.3, -1.2, 0.5, 2];
    const k = [1, 0.5, -0.25, 0.1, /* second key */ -2, 0.3, 0.9, 1.1];
    const weights = (qs: number[], ks: number[]) => {
      const v = Float64Array.from([0, 1], (j) => cosineSimilarity(qs, 0, ks, 4 * j, 4));
      softplusWeightsInPlace(v, 2, 4, lssar(3));
      return v;
    };
    const base = weights(q, k);
    near(weights(q.map((x) => 7 * x), k), Array.from(base), 1e-12);
    near(weights(q, k.map((x, i) => (i < 4 ? 0.01 * x : x))), Array.from(base), 1e-12);
  });
});

describe('softplus attention: the key count n under stream and select', () => {
  // The rule (doc comment of attention-softplus.ts): n is the number of keys the row sees.
  const row = (m: number) => Float64Array.from({ length: m }, (_, j) => Math.sin(1.7 * j + 0.3));
  it('with n = keys seen, exactly the keys above the row mean survive re-weighting', () => {
    const m = 64; // e.g. 4 sinks + 60 window keys of a query at position 5000 under stream
    const v = row(m);
    lssaInPlace(v, m, 16);
    const mean = 1 / m;
    const above = Array.from(v, (a) => a > mean);
    reweightInPlace(v, m, lssar(15).reweight!);
    assert.deepEqual(Array.from(v, (w) => w > 0), above);
    assert.ok(above.filter(Boolean).length < m / 2 + 8);
  });
  it('n = position + 1 instead would keep keys far below the row mean: the threshold loses its meaning', () => {
    const m = 64;
    const position = 5000;
    const v = row(m);
    lssaInPlace(v, m, 16);
    const keptByPosition = Array.from(v).filter((a) => (position + 1) * a - 1 > 0);
    const keptBySeen = Array.from(v).filter((a) => m * a - 1 > 0);
    assert.ok(keptByPosition.length > keptBySeen.length, `${keptByPosition.length} vs ${keptBySeen.length}`);
    assert.ok(keptByPosition.some((a) => a < 1 / (10 * m)), 'a key with a tenth of the mean weight survives');
  });
});

/**
 * A Qwen2 / Llama decoder in float32 storage with softplus attention, fed one token per call with a
 * KV cache (so every row sees position + 1 keys), written only to check the formulas end to end
 * before the backends host them. Records the attention statistics the cases list.
 */
function softplusDecoder(dir: string, sp: SoftplusAttention) {
  const c = readModelConfig(dir);
  const decoder = oracleDecoder(c, WeightStore.open(dir));
  const { numHeads: Hq, numKvHeads: Hkv, headDim: D } = c;
  const rope = new RopeTables(D);
  const invFreq = baseInvFreq(D, c.ropeTheta);
  const stats = { rows: 0, topWeight: 0, minRowMaxX: Infinity, maxRowMaxX: 0, keptShare: 0, keptRows: 0 };
  let pos = 0;

  return {
    stats,
    /** Feeds one token at the next position; returns its logits [V]. */
    feed(token: number): Float32Array {
      rope.use({ invFreq, scale: 1 }, pos);
      const x = decoder.embed(token);
      for (const L of decoder.layers) {
        const { q, k, v } = decoder.qkv(L, x);
        rope.rotate(q, 0, q, 0, Hq, pos);
        rope.rotate(k, 0, k, 0, Hkv, pos);
        L.keys.push(k);
        L.values.push(v);
        const n = L.keys.length;
        const attn = new Float32Array(Hq * D);
        const scores = new Float64Array(n);
        for (let hq = 0; hq < Hq; hq++) {
          const kv = Math.floor(hq / (Hq / Hkv)) * D;
          for (let j = 0; j < n; j++) scores[j] = cosineSimilarity(q, hq * D, L.keys[j], kv, D);
          lssaInPlace(scores, n, D);
          if (sp.reweight) {
            const o = n <= sp.reweight.noOffsetFirstRows ? 0 : sp.reweight.offset;
            let maxX = 0;
            let kept = 0;
            for (let j = 0; j < n; j++) {
              const xj = Math.max(0, n * scores[j] - o);
              maxX = Math.max(maxX, xj);
              if (xj > 0) kept++;
            }
            stats.minRowMaxX = Math.min(stats.minRowMaxX, maxX);
            stats.maxRowMaxX = Math.max(stats.maxRowMaxX, maxX);
            if (n > sp.reweight.noOffsetFirstRows) {
              stats.keptShare += kept / n;
              stats.keptRows++;
            }
            reweightInPlace(scores, n, sp.reweight);
          }
          let top = 0;
          for (let j = 0; j < n; j++) top = Math.max(top, scores[j]);
          stats.topWeight += top;
          stats.rows++;
          for (let d = 0; d < D; d++) {
            let acc = 0;
            for (let j = 0; j < n; j++) acc += scores[j] * L.values[j][kv + d];
            attn[hq * D + d] = acc;
          }
        }
        decoder.finishLayer(L, x, attn);
      }
      pos++;
      return decoder.logits(x);
    },
  };
}

const ROOT = join(SHARED, 'golden-seeds');
const absent = existsSync(ROOT) ? false : `no golden seeds at ${ROOT} (../shared is absent)`;

describe('softplus attention in a small decoder against the golden-seeds cases', { skip: absent }, () => {
  const dirs = absent ? [] : findGoldenCases(ROOT).filter((d) => loadGoldenCase(d).kind === 'softplus');
  it('finds the three softplus cases', () => assert.equal(dirs.length, 3));
  for (const dir of dirs) {
    const gc = loadGoldenCase(dir);
    it(gc.name, (t) => {
      const modelDir = join(ROOT, gc.model);
      const sp = parseSoftplusAttention(JSON.parse(JSON.stringify(gc.settings)), dir)!;
      const dec = softplusDecoder(modelDir, sp);
      const prefill = readExpectedTensor(dir, 'prefill_logits');
      const steps = readExpectedTensor(dir, 'step_logits');
      const V = prefill.shape[1];
      const diff = (a: Float32Array, b: Float32Array, off: number) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[off + i])), 0);
      let maxPrefill = 0;
      let last: Float32Array = new Float32Array(V);
      gc.input_ids.forEach((id, i) => {
        last = dec.feed(id);
        maxPrefill = Math.max(maxPrefill, diff(last, prefill.data, i * V));
      });
      const argmax = (v: Float32Array) => v.reduce((b, x, i) => (x > v[b] ? i : b), 0);
      const ids: number[] = [];
      let maxSteps = 0;
      for (let i = 0; i < gc.greedy_steps; i++) {
        ids.push(argmax(last));
        last = dec.feed(ids[i]);
        maxSteps = Math.max(maxSteps, diff(last, steps.data, i * V));
      }
      const atol = gc.tolerance!.suggested_atol!;
      t.diagnostic(`max |Δlogit| prefill ${maxPrefill.toExponential(2)} steps ${maxSteps.toExponential(2)} (atol ${atol})`);
      assert.deepEqual(ids, gc.expected_greedy_ids);
      assert.ok(maxPrefill <= atol && maxSteps <= atol, `max |Δlogit| ${maxPrefill} / ${maxSteps} > ${atol}`);
      // The statistics of the independent float64 run: same rows, same attention shape.
      const want = gc.softplus_stats as Record<string, number>;
      const s = dec.stats;
      assert.equal(s.rows, want.attention_rows);
      assert.ok(Math.abs(s.topWeight / s.rows - want.mean_top_weight) < 1e-4, `mean top weight ${s.topWeight / s.rows} vs ${want.mean_top_weight}`);
      if (sp.reweight) {
        assert.ok(Math.abs(s.minRowMaxX - want.min_row_max_x) < 1e-3, `min row max x ${s.minRowMaxX} vs ${want.min_row_max_x}`);
        assert.ok(Math.abs(s.maxRowMaxX - want.max_row_max_x) < 1e-3, `max row max x ${s.maxRowMaxX} vs ${want.max_row_max_x}`);
        assert.ok(Math.abs(s.keptShare / s.keptRows - want.mean_fraction_of_keys_kept) < 1e-4);
      }
    });
  }
});
