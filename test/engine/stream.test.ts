// StreamingLLM: sink + recent rows, positions = cache index. With one layer a row's K/V depend only
// on its token, so the last token's logits must equal full attention over [sink ; recent] tokens.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import { maxAbsDiff, tinyModel, tokens } from '../helpers/models.js';

it('stream keeps the sink and the recent window at cache-index positions', async () => {
  const model = tinyModel('tiny', { layers: 1, seed: 9 });
  const backend = await createReferenceBackend(model);
  const doc = tokens(100, 3);
  const stream = new Session(backend, resolveStrategy(model.config, { strategy: 'stream', sink: 4, recent: 32, chunk: 8 }, 100));
  const got = await stream.feed(doc);
  assert.equal(stream.stats().totalRows, 36);
  assert.equal(stream.stats().evicted, 64);
  const kept = Int32Array.from([...doc.subarray(0, 4), ...doc.subarray(100 - 32)]);
  const full = new Session(backend, resolveStrategy(model.config, { strategy: 'full' }, kept.length));
  const want = await full.feed(kept);
  assert.ok(maxAbsDiff(got, want) < 1e-5, `diff ${maxAbsDiff(got, want)}`);
});
