// CLEX in a run (src/engine/rope.ts runRope, the strategies, the session) on the tiny-clex random
// model (window P = 64, max_factor 8): which t each step gets, under every strategy that feeds raw
// tokens; that a prompt cut into chunks is one forward call; that past the reach the run refuses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend, RopeTable, Sequence } from '../../src/backend/contract.js';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { clexRope, runRope } from '../../src/engine/rope.js';
import { clexQueryScale } from '../../src/engine/rope-clex.js';
import { Session } from '../../src/engine/session.js';
import { buildStrategy, resolveStrategy, type StrategyOptions } from '../../src/engine/strategies/index.js';
import { CtxError } from '../../src/errors.js';
import { maxAbsDiff, tinyModel, tokens } from '../helpers/models.js';

const model = tinyModel('tiny-clex');
const modelLog = tinyModel('tiny-clex', { clex: { maxFactor: 8, logScale: true } });

/** A backend whose sequences record the RoPE table of every step. */
function recording(b: Backend, seen: RopeTable[]): Backend {
  return Object.assign(Object.create(b) as Backend, {
    newSequence: (): Sequence => {
      const seq = b.newSequence();
      const step = seq.step.bind(seq);
      seq.step = (req) => {
        seen.push(req.rope);
        return step(req);
      };
      return seq;
    },
  });
}

/** The t of a recorded table (the index of its frequency row in the model's CLEX table). */
const tOf = (m: typeof model, r: RopeTable) => clexRope(m).table.indexOf(r.invFreq) + 1;

async function run(m: typeof model, opts: StrategyOptions, doc: Int32Array, decode: number) {
  const seen: RopeTable[] = [];
  const backend = recording(await createReferenceBackend(m), seen);
  const session = new Session(backend, resolveStrategy(m.config, opts, doc.length + decode));
  const prefill = await session.feed(doc, { allLogits: true });
  const steps: Float32Array[] = [];
  for (let i = 0; i < decode; i++) steps.push(await session.feed(Int32Array.of(5 + i), { decoding: true }));
  session.dispose();
  return { seen, prefill, steps };
}

describe('CLEX in a run', () => {
  it('full: every chunk of the prompt takes t of the whole prompt; each decode call t of its length', async () => {
    const { seen } = await run(model, { strategy: 'full', chunk: 40 }, tokens(190, 3, 3, 320), 5);
    // 5 prefill chunks at t(190) = 3, then calls of length 191 … 195: t 3, 3, 4, 4, 4.
    assert.deepEqual(seen.map((r) => tOf(model, r)), [3, 3, 3, 3, 3, 3, 3, 4, 4, 4]);
    assert.ok(seen.every((r) => r.queryScale === 1));
  });

  it('a prompt cut into chunks gives the logits of one call; with a t per chunk it would not', async () => {
    const doc = tokens(190, 3, 3, 320);
    const one = await run(model, { strategy: 'full', chunk: 190 }, doc, 3);
    const chunked = await run(model, { strategy: 'full', chunk: 40 }, doc, 3);
    assert.ok(maxAbsDiff(chunked.prefill, one.prefill) <= 1e-6, `chunked prefill differs by ${maxAbsDiff(chunked.prefill, one.prefill)}`);
    for (let i = 0; i < 3; i++) assert.ok(maxAbsDiff(chunked.steps[i], one.steps[i]) <= 1e-6);
    // The same chunks with each chunk's own length (t 1, 2, 2, 3, 3) land elsewhere: the rule matters.
    const backend = await createReferenceBackend(model);
    const seq = backend.newSequence();
    const r = runRope(model, null);
    const perChunk = buildStrategy({ seq, newSequence: () => backend.newSequence(), config: model.config, rope: r.table, ropePerCall: false }, resolveStrategy(model.config, { strategy: 'full', chunk: 40 }, 190));
    const own = await perChunk.feed(doc, { allLogits: true });
    assert.ok(maxAbsDiff(own, one.prefill) > 1e-2, `per-chunk t moved the logits by only ${maxAbsDiff(own, one.prefill)}`);
  });

  it('log_scale: the query factor is ln(L)/ln(P) of each call (L = the length the call reaches)', async () => {
    const { seen } = await run(modelLog, { strategy: 'full', chunk: 64 }, tokens(100, 3, 3, 320), 2);
    assert.deepEqual(seen.map((r) => r.queryScale), [100, 100, 101, 102].map((L) => clexQueryScale(L, 64)));
  });

  it('select and stream use positions within the window: t = 1, the log factor of the positions used', async () => {
    const doc = tokens(200, 3, 3, 320);
    const sel = await run(modelLog, { strategy: 'select', nInit: 4, topK: 16, nLocal: 16, chunk: 16, reuseCosine: null }, doc, 2);
    assert.ok(sel.seen.every((r) => tOf(modelLog, r) === 1));
    // Chunks of 16: while T ≤ 36 every row is selected (L = T); then L = 4 + 16 + 16 = 36.
    assert.deepEqual(sel.seen.slice(0, 4).map((r) => r.queryScale), [16, 32, 36, 36].map((L) => clexQueryScale(L, 64)));
    const str = await run(modelLog, { strategy: 'stream', sink: 4, recent: 56, chunk: 24 }, doc, 2);
    assert.ok(str.seen.every((r) => tOf(modelLog, r) === 1));
    assert.equal(str.seen.at(-1)!.queryScale, clexQueryScale(60, 64));
  });

  it('full refuses a feed past the reach P·max_factor with exit 7 and the numbers', async () => {
    const backend = await createReferenceBackend(model);
    const session = new Session(backend, resolveStrategy(model.config, { strategy: 'full' }, 600));
    await assert.rejects(session.feed(tokens(513, 3, 3, 320)), (e: CtxError) => e.exitCode === 7 && /full attention holds 512 tokens; 513 were needed/.test(e.message));
    assert.throws(() => runRope(model, null).table(513), (e: CtxError) => e.exitCode === 7 && /reach of 512 \(max_position_embeddings 64 × max_factor 8\)/.test(e.message));
  });

  it('resolves full on a CLEX model to the model\'s CLEX (auto and --rope clex alike), capacity = reach', () => {
    const auto = resolveStrategy(model.config, {}, 300, 50);
    const asked = resolveStrategy(model.config, { strategy: 'full', rope: { type: 'clex', factor: 2 } }, 300, 50);
    assert.deepEqual(auto, { name: 'full', chunk: 512, capacity: 512, rope: { type: 'clex', factor: 8 } });
    assert.deepEqual(asked, auto);
    assert.equal(resolveStrategy(model.config, {}, 480, 50).name, 'select');
    assert.throws(() => resolveStrategy(tinyModel('tiny').config, { strategy: 'full', rope: { type: 'clex', factor: 2 } }, 100), (e: CtxError) => e.exitCode === 2);
    // A strategy built without resolveStrategy (the efficacy benchmark's `full` past the window) too.
    assert.throws(() => runRope(tinyModel('tiny'), { type: 'clex', factor: 4 }), (e: CtxError) => e.exitCode === 2 && /CLEX needs a CLEX checkpoint/.test(e.message));
  });

  it('the efficacy benchmark\'s hook: full with rope clex (any factor, any capacity) runs the model\'s CLEX up to the reach', async () => {
    const seen: RopeTable[] = [];
    const backend = recording(await createReferenceBackend(model), seen);
    const session = new Session(backend, { name: 'full', chunk: 256, capacity: Number.MAX_SAFE_INTEGER, rope: { type: 'clex', factor: 300 / 64 } });
    await session.feed(tokens(300, 3, 3, 320));
    assert.deepEqual(seen.map((r) => tOf(model, r)), [5, 5]);
    await assert.rejects(session.feed(tokens(213, 3, 3, 320)), (e: CtxError) => e.exitCode === 7 && /513 tokens exceed this CLEX model's reach of 512/.test(e.message));
  });

  it('a snapshot restored mid-decode continues with the same logits (keys stored before RoPE)', async () => {
    const backend = await createReferenceBackend(model);
    const resolved = resolveStrategy(model.config, { strategy: 'full', chunk: 64 }, 200);
    const a = new Session(backend, resolved);
    await a.feed(tokens(190, 3, 3, 320));
    await a.feed(Int32Array.of(7), { decoding: true });
    const b = Session.restore(backend, a.snapshot());
    for (const id of [8, 9, 10]) {
      // L = 192, 193 (t 3 → 4), 194
      assert.deepEqual(await b.feed(Int32Array.of(id), { decoding: true }), await a.feed(Int32Array.of(id), { decoding: true }));
    }
  });
});
