// The --json summary's timings (src/ui/summary.ts): each measured on its own, the wait between reading
// and the first answer token included, and the cache write's time and bytes when it happened.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RunSummary } from '../../src/ui/summary.js';

describe('run summary timings', () => {
  it('first token after reading is the wall time between the read and the first token; the cache save is its own entry', () => {
    let now = 1000;
    const s = new RunSummary(() => now);
    s.add({ type: 'read', tokens: 95, seconds: 2.5, cached: false });
    now = 1250;
    s.add({ type: 'question', text: 'q?' });
    s.add({ type: 'token', text: 'forty' });
    now = 1400;
    s.add({ type: 'token', text: '-two' });
    s.add({ type: 'answer', answer: 'forty-two', reason: 'eos', promptTokens: 5, generatedTokens: 2, firstTokenSeconds: 0.2, seconds: 0.4 });
    now = 3000;
    s.add({ type: 'saved', bytes: 4096, seconds: 1.5 });
    assert.deepEqual(s.result.timings, {
      readSeconds: 2.5,
      firstTokenSeconds: 0.2,
      firstTokenAfterReadSeconds: 0.25,
      answerSeconds: 0.4,
      cached: false,
      cacheSaveSeconds: 1.5,
      cacheSaveBytes: 4096,
    });
  });

  it('without a read (or a token) the wait is null, not zero', () => {
    const s = new RunSummary(() => 0);
    s.add({ type: 'token', text: 'x' });
    assert.equal(s.result.timings.firstTokenAfterReadSeconds, null);
    s.add({ type: 'read', tokens: 1, seconds: 0, cached: true });
    assert.equal(s.result.timings.firstTokenAfterReadSeconds, null);
  });
});
