// A saved session restored on a fresh sequence continues with identical logits, for every strategy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy, type StrategyOptions } from '../../src/engine/strategies/index.js';
import { tinyModel, tokens } from '../helpers/models.js';

const cases: Array<[string, string, StrategyOptions]> = [
  ['full', 'tiny', { strategy: 'full' }],
  ['stream', 'tiny', { strategy: 'stream', sink: 4, recent: 48, chunk: 16 }],
  ['select with reuse', 'tiny', { strategy: 'select', nInit: 4, topK: 16, nLocal: 16, reuseCosine: 0.5 }],
  ['beacon v3', 'tiny-beacon', { strategy: 'beacon' }],
  ['beacon v1', 'tiny-beacon-v1', { strategy: 'beacon' }],
];

describe('session snapshot and restore', () => {
  for (const [label, preset, opts] of cases) {
    it(label, async () => {
      const model = tinyModel(preset);
      const backend = await createReferenceBackend(model);
      const a = new Session(backend, resolveStrategy(model.config, opts, 110));
      await a.feed(tokens(80, 4));
      const snap = a.snapshot();
      const statsAtSnap = a.stats();
      // The snapshot is a copy: the live session moving on (across a window) must not change it.
      const aLogits: Float32Array[] = [];
      for (const t of tokens(40, 8)) aLogits.push(await a.feed(Int32Array.of(t), { decoding: true }));
      const b = Session.restore(backend, snap);
      assert.deepEqual(b.stats(), statsAtSnap);
      let i = 0;
      for (const t of tokens(40, 8)) assert.deepEqual(await b.feed(Int32Array.of(t), { decoding: true }), aLogits[i++]);
      assert.equal(b.fedTokens, a.fedTokens);
      assert.deepEqual(b.pendingTokens(), a.pendingTokens());
    });
  }
});
