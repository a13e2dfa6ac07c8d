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
      await a.feed(tokens(100, 4));
      const b = Session.restore(backend, a.snapshot());
      assert.deepEqual(b.stats(), a.stats());
      for (const t of tokens(10, 8)) {
        const la = await a.feed(Int32Array.of(t), { decoding: true });
        const lb = await b.feed(Int32Array.of(t), { decoding: true });
        assert.deepEqual(lb, la);
      }
      assert.deepEqual(b.tokens(), a.tokens());
    });
  }
});
