// The key count n of softplus attention under `stream` and `select` (the rule documented in
// src/backend/attention-softplus.ts): n is the number of keys the query sees, not the query's place
// in the document. An independent decoder in this file computes softplus attention with either rule
// from the keys each token sees; the reference and cpu backends, driven by the real strategies,
// agree with the "seen" rule and are far from the "document" rule — so this test fails if a
// backend ever switches rule.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Backend, RopeTable } from '../../src/backend/contract.js';
import { RopeTables } from '../../src/backend/step/rope.js';
import { Session } from '../../src/engine/session.js';
import { baseInvFreq } from '../../src/engine/rope.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import type { Model } from '../../src/model/model.js';
import type { SoftplusAttention } from '../../src/model/softplus-config.js';
import { bothBackends } from './cpu/helpers.js';
import { oracleDecoder } from '../helpers/decoder-oracle.js';
import { maxAbsDiff, tinyModel, tokens } from '../helpers/models.js';

type KeyCount = 'seen' | 'document';

/**
 * A Qwen2 decoder fed one token per call, keeping every token's pre-RoPE K/V. `sees(l, t)` lists
 * the history indices token t attends to in layer l (ascending, ending with t); they are numbered
 * by rank for RoPE, as ctx's stream and select number them. The softplus weights are written out
 * here, with n = the keys seen or n = t + 1.
 */
function oracle(model: Model, sp: SoftplusAttention, keyCount: KeyCount) {
  const c = model.config;
  const decoder = oracleDecoder(c, model.weights);
  const { numHeads: Hq, numKvHeads: Hkv, headDim: D } = c;
  const rope = new RopeTables(D);
  const table: RopeTable = { invFreq: baseInvFreq(D, c.ropeTheta), scale: 1 };
  const unit = (x: Float32Array, o: number) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += x[o + d] * x[o + d];
    return Float64Array.from({ length: D }, (_, d) => x[o + d] / Math.sqrt(s));
  };

  return (token: number, sees: (l: number, t: number) => number[]): Float32Array => {
    const t = decoder.layers[0].keys.length;
    rope.use(table, t);
    const x = decoder.embed(token);
    decoder.layers.forEach((L, l) => {
      const { q, k, v } = decoder.qkv(L, x);
      L.keys.push(k);
      L.values.push(v);
      const idx = sees(l, t);
      const m = idx.length;
      assert.equal(idx[m - 1], t);
      const n = keyCount === 'seen' ? m : t + 1;
      const qr = new Float32Array(Hq * D);
      rope.rotate(q, 0, qr, 0, Hq, m - 1);
      const kr = idx.map((j, r) => {
        const out = new Float32Array(Hkv * D);
        rope.rotate(L.keys[j], 0, out, 0, Hkv, r);
        return out;
      });
      const attn = new Float32Array(Hq * D);
      for (let hq = 0; hq < Hq; hq++) {
        const g = Math.floor(hq / (Hq / Hkv)) * D;
        const qu = unit(qr, hq * D);
        const s = Math.log(D) * Math.log(n);
        const e = kr.map((key) => {
          const ku = unit(key, g);
          const cos = qu.reduce((acc, qd, d) => acc + qd * ku[d], 0);
          return Math.log1p(Math.exp(s * cos)); // |s·cos| is small here: no overflow
        });
        const sum = e.reduce((a, b) => a + b, 0);
        let w = e.map((ej) => ej / sum);
        const rw = sp.reweight;
        if (rw) {
          const o = n <= rw.noOffsetFirstRows ? 0 : rw.offset;
          const xs = w.map((a) => Math.max(0, n * a - o));
          const xp = xs.map((xj) => xj ** rw.p);
          const z = xp.reduce((a, b) => a + b, 0);
          w = z > 0 ? xp.map((xj) => xj / z) : xs.map(() => 1 / m);
        }
        for (let d = 0; d < D; d++) attn[hq * D + d] = w.reduce((acc, wj, r) => acc + wj * L.values[idx[r]][g + d], 0);
      }
      decoder.finishLayer(L, x, attn);
    });
    return decoder.logits(x);
  };
}

const lssar3: SoftplusAttention = { scale: 'log_head_dim_x_log_n', reweight: { p: 3, offset: 1, noOffsetFirstRows: 3 } };
const LSSA: SoftplusAttention = { scale: 'log_head_dim_x_log_n', reweight: null };

const disposers: Backend[] = [];
after(async () => {
  for (const b of disposers) await b.dispose();
});

describe('softplus key count n under stream and select: the keys the query sees', () => {
  for (const [variant, sp] of [['LSSAR p=3', lssar3], ['LSSA', LSSA]] as const) {
    it(`stream (sink 4 + recent 28), ${variant}: n = sink + recent once the window is full, not position + 1`, async (t) => {
      const model = tinyModel('tiny', { seed: 4, softplus: sp });
      const { ref, cpu } = await bothBackends(model);
      disposers.push(ref, cpu);
      const [sink, recent] = [4, 28];
      const doc = tokens(120, 11, 3, model.config.vocabSize);
      const V = model.config.vocabSize;
      // Fed in chunks of 8: before the chunk [s, s + c), stream keeps the first `sink` tokens and
      // the last recent − c before s; token t sees those and the chunk's tokens up to itself.
      const chunk = 8;
      const sees = (_l: number, t: number) => {
        const s = t - (t % chunk);
        const c = Math.min(chunk, doc.length - s);
        return Array.from({ length: t + 1 }, (_, j) => j).filter((j) => j < sink || j >= s || (j >= s - (recent - c) && j < s));
      };
      const want = { seen: oracle(model, sp, 'seen'), document: oracle(model, sp, 'document') };
      const expected = { seen: [] as Float32Array[], document: [] as Float32Array[] };
      for (const id of doc) for (const rule of ['seen', 'document'] as const) expected[rule].push(want[rule](id, sees));
      for (const backend of [ref, cpu]) {
        const session = new Session(backend, resolveStrategy(model.config, { strategy: 'stream', sink, recent, chunk }, doc.length));
        const got = await session.feed(doc, { allLogits: true });
        session.dispose();
        // Rows past the first full window (t ≥ sink + recent) are where the rules part.
        const diff = (rule: KeyCount, from: number, to: number) =>
          Math.max(...expected[rule].slice(from, to).map((e, k) => maxAbsDiff(got.subarray((from + k) * V, (from + k + 1) * V), e)));
        const full = sink + recent;
        const seen = diff('seen', 0, doc.length);
        const document = diff('document', full, doc.length);
        t.diagnostic(`${backend.name}: max |Δlogit| vs n = keys seen ${seen.toExponential(2)}, vs n = position + 1 ${document.toExponential(2)}`);
        assert.ok(seen < 1e-4, `${backend.name}: ${seen}`);
        assert.ok(document > 100 * Math.max(seen, 1e-5), `${backend.name}: the rules differ by only ${document}`);
        assert.ok(diff('document', 0, full) < 1e-4, 'before any eviction both rules agree');
      }
    });
  }

  it('select (init 4 + top 12 + local 8), LSSAR p=3: n = the selected keys, not position + 1', async (t) => {
    const model = tinyModel('tiny', { seed: 6, maxPositions: 256, softplus: lssar3 });
    const { ref, cpu } = await bothBackends(model);
    disposers.push(ref, cpu);
    const V = model.config.vocabSize;
    const doc = tokens(90, 12, 3, V);
    const table: RopeTable = { invFreq: baseInvFreq(model.config.headDim, model.config.ropeTheta), scale: 1 };
    const spec = { nInit: 4, topK: 12, nLocal: 8, reuseCosine: null };
    for (const backend of [ref, cpu]) {
      const seq = backend.newSequence();
      const want = { seen: oracle(model, lssar3, 'seen'), document: oracle(model, lssar3, 'document') };
      let seen = 0;
      let document = 0;
      for (let i = 0; i < doc.length; i++) {
        // One token per step; the backend's own selection S per layer (the vote is not under test).
        const r = await seq.step({ tokens: doc.subarray(i, i + 1), positions: Int32Array.of(i), mask: { kind: 'causal' }, select: spec, logitRows: Int32Array.of(0), rope: table, reportSelection: true });
        const S = r.selection!.map((s) => Array.from(s));
        assert.ok(S.every((s) => s.at(-1) === i));
        const sees = (l: number) => S[l];
        seen = Math.max(seen, maxAbsDiff(r.logits, want.seen(doc[i], sees)));
        const byPosition = want.document(doc[i], sees);
        if (S[0].length < i + 1) document = Math.max(document, maxAbsDiff(r.logits, byPosition));
      }
      seq.dispose();
      t.diagnostic(`${backend.name}: max |Δlogit| vs n = keys seen ${seen.toExponential(2)}, vs n = position + 1 ${document.toExponential(2)}`);
      assert.ok(seen < 1e-4, `${backend.name}: ${seen}`);
      assert.ok(document > 100 * Math.max(seen, 1e-5), `${backend.name}: the rules differ by only ${document}`);
    }
  });
});
