// TokenSelect has no golden: it is checked against brute force written from its definition.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SelectSpec, StepRequest } from '../../src/backend/contract.js';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { linear, rmsNorm } from '../../src/backend/reference/math.js';
import { RopeTables } from '../../src/backend/step/rope.js';
import { ropeTable } from '../../src/engine/rope.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import { maxAbsDiff, tinyModel, tokens } from '../helpers/models.js';

const range = (a: number, n: number) => Int32Array.from({ length: n }, (_, i) => a + i);

describe('select (TokenSelect)', () => {
  it('with top-k covering every candidate equals full attention', async () => {
    const model = tinyModel('tiny', { maxPositions: 1024 });
    const backend = await createReferenceBackend(model);
    const doc = tokens(150);
    const full = new Session(backend, resolveStrategy(model.config, { strategy: 'full', chunk: 64 }, 150));
    const sel = new Session(backend, resolveStrategy(model.config, { strategy: 'select', nInit: 4, topK: 500, nLocal: 16 }, 150));
    const a = await full.feed(doc, { allLogits: true });
    const b = await sel.feed(doc, { allLogits: true });
    assert.ok(maxAbsDiff(a, b) < 1e-5, `max diff ${maxAbsDiff(a, b)}`);
  });

  // With one layer, a row's K/V depend only on its own token, so attending to the selected rows
  // at compact positions must equal full attention over just those tokens at positions 0..|S|-1.
  it('attends to init + top-k + local at compact positions (1-layer brute force)', async () => {
    const model = tinyModel('tiny', { layers: 1, seed: 3 });
    const c = model.config;
    const backend = await createReferenceBackend(model);
    const rope = ropeTable(c, null, 0);
    const spec: SelectSpec = { nInit: 4, topK: 10, nLocal: 8, reuseCosine: null };
    const doc = tokens(120, 11);
    const seq = backend.newSequence();
    for (let s = 0; s < doc.length; s += 8) {
      const piece = doc.subarray(s, s + 8);
      await seq.step({ tokens: piece, positions: range(s, piece.length), mask: { kind: 'causal' }, select: spec, logitRows: new Int32Array(0), rope });
    }
    const last = Int32Array.of(42);
    const res = await seq.step({
      tokens: last, positions: Int32Array.of(120), mask: { kind: 'causal' }, select: spec, logitRows: Int32Array.of(0), rope, reportSelection: true,
    });
    const S = res.selection![0];
    const T = 121;
    assert.equal(S.length, spec.nInit + spec.topK + spec.nLocal);
    assert.deepEqual([...S.subarray(0, 4)], [0, 1, 2, 3]);
    assert.deepEqual([...S.subarray(S.length - 8)], [...range(T - 8, 8)]);
    const top = [...S.subarray(4, 4 + spec.topK)];
    assert.deepEqual(top, [...top].sort((a, b) => a - b), 'top-k is ascending');

    // The explicit soft vote, computed from the weights.
    const H = c.hiddenSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads;
    const w = model.weights;
    const t = model.tensors.layers[0];
    const all = Int32Array.from([...doc, 42]);
    const embed = w.float32(model.tensors.model.embed.tensors.weight.name);
    const norm = w.float32(t.inputNorm.tensors.weight.name);
    const h = new Float32Array(T * H);
    for (let j = 0; j < T; j++) rmsNorm(embed.subarray(all[j] * H, (all[j] + 1) * H), 1, H, norm, c.rmsNormEps, h.subarray(j * H));
    const keys = new Float32Array(T * Hkv * D);
    const tensor = (ref: { name: string } | undefined) => (ref ? w.float32(ref.name) : undefined);
    linear(h, T, H, tensor(t.k.tensors.weight)!, tensor(t.k.tensors.bias), Hkv * D, keys);
    const q = new Float32Array(Hq * D);
    linear(h.subarray((T - 1) * H), 1, H, tensor(t.q.tensors.weight)!, tensor(t.q.tensors.bias), Hq * D, q);
    const table = new RopeTables(D);
    table.use(rope, spec.nLocal);
    table.rotate(q, 0, q, 0, Hq, spec.nLocal, 1);
    const cands = range(spec.nInit, T - spec.nLocal - spec.nInit);
    const vote = new Array(cands.length).fill(0);
    for (let hq = 0; hq < Hq; hq++) {
      const g = Math.floor(hq / (Hq / Hkv));
      const sc = [...cands].map((j) => {
        let d = 0;
        for (let k = 0; k < D; k++) d += q[hq * D + k] * keys[j * Hkv * D + g * D + k];
        return d;
      });
      const m = Math.max(...sc);
      const e = sc.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      e.forEach((x, i) => (vote[i] += x / z));
    }
    const want = [...cands].map((j, i) => [j, vote[i]] as const).sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, spec.topK).map(([j]) => j).sort((a, b) => a - b);
    assert.deepEqual(top, want);

    // Brute force: full attention over the selected tokens only, positions 0..|S|-1.
    const seq2 = backend.newSequence();
    const sub = Int32Array.from(S, (j) => all[j]);
    const ref = await seq2.step({ tokens: sub, positions: range(0, sub.length), mask: { kind: 'causal' }, logitRows: Int32Array.of(sub.length - 1), rope });
    assert.ok(maxAbsDiff(res.logits, ref.logits) < 1e-5, `diff ${maxAbsDiff(res.logits, ref.logits)}`);
  });

  it('reuses a layer selection while the mean query stays similar, and only then', async () => {
    const model = tinyModel('tiny', { seed: 5 });
    const backend = await createReferenceBackend(model);
    const rope = ropeTable(model.config, null, 0);
    const doc = tokens(100, 5);
    const run = async (reuseCosine: number | null) => {
      const seq = backend.newSequence();
      const spec: SelectSpec = { nInit: 2, topK: 6, nLocal: 8, reuseCosine };
      const base: Omit<StepRequest, 'tokens' | 'positions'> = { mask: { kind: 'causal' }, select: spec, logitRows: Int32Array.of(0), rope, reportSelection: true };
      let prefill!: Int32Array[];
      for (let s = 0; s < 96; s += 8) {
        const r = await seq.step({ ...base, tokens: doc.subarray(s, s + 8), positions: range(s, 8), select: { ...spec, reuseCosine: null } });
        prefill = r.selection!;
      }
      const a = await seq.step({ ...base, tokens: doc.subarray(96, 97), positions: Int32Array.of(96) });
      const b = await seq.step({ ...base, tokens: doc.subarray(97, 98), positions: Int32Array.of(97) });
      return [prefill, a.selection!, b.selection!];
    };
    const topOf = (S: Int32Array) => [...S.subarray(2, 8)];
    const [p1, a1, b1] = await run(-1); // cosine ≥ -1 always holds: every decode step reuses
    for (let l = 0; l < 2; l++) {
      assert.deepEqual(topOf(a1[l]), topOf(p1[l]));
      assert.deepEqual(topOf(b1[l]), topOf(p1[l]));
    }
    const never = await run(null);
    const unreachable = await run(1.01); // cosine never exceeds 1: never reuses
    assert.deepEqual(unreachable, never);
    assert.notDeepEqual(never.slice(1), [p1, p1], 'fresh selections differ from the reused ones');
  });

  it('keeps positions within init + top-k + local', async () => {
    const model = tinyModel('tiny');
    const r = resolveStrategy(model.config, { strategy: 'select' }, 100000);
    assert.equal(r.name, 'select');
    if (r.name === 'select') assert.ok(r.nInit + r.topK + Math.max(r.nLocal, r.chunk) <= model.config.maxPositions);
  });
});
