// The Ink display's view of a run as a pure reducer: each event's effect on the committed lines and
// the live region, cut at the width given, with --no-stream and a fixed clock — no Ink, no store.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunEvent } from '../../../src/engine/events.js';
import { applyEvent, closeView, initialView, type RunView, type ViewContext } from '../../../src/ui/ink/run-view.js';
import { cellWidth } from '../../../src/ui/format.js';

function run(events: RunEvent[], ctx: Partial<ViewContext> = {}, from: RunView = initialView(80)): RunView {
  return events.reduce((view, e) => applyEvent(view, e, { columns: 80, stream: true, now: 1000, ...ctx }), from);
}

const lines = (v: RunView) => v.lines.map((l) => `${l.kind}: ${l.text}`);

describe('run view', () => {
  it('opening → reading → answered: phases, counts and the committed summary', () => {
    const reading = run([
      { type: 'source', path: 'a.txt', kind: 'text', bytes: 10 },
      { type: 'source', path: 'b.txt', kind: 'text', bytes: 10 },
      { type: 'model', name: 'm', dir: '/m', backend: 'cpu', numeric: 'f32' },
      { type: 'plan', strategy: 'select (k 2048)', strategyReason: 'past its window', documentTokens: 900, kvRows: 1000, kvBytes: 4096, nativeWindow: 128, notes: ['a note'], sourceEnds: [400, 900] },
      { type: 'progress', done: 450, total: 900, elapsedSeconds: 1, tokensPerSecond: 450, etaSeconds: 1, kvRows: 450, kvBytes: 2048, compression: 1 },
    ]);
    assert.deepEqual([reading.phase, reading.sources, reading.backend, reading.progress?.done], ['reading', 2, 'cpu f32', 450]);
    assert.equal('type' in reading.progress!, false, 'the progress is the numbers, not the event');
    const read = run([{ type: 'read', tokens: 900, seconds: 2, cached: false }], {}, reading);
    assert.equal(read.phase, 'idle');
    assert.deepEqual(lines(read), [
      'info: 900 tokens · select (k 2048), auto: past its window · KV 4 KiB',
      'note: note: a note',
      'info: read 900 tokens in 2.0 s (450 tok/s) · KV 2 KiB · select (k 2048) · cpu f32',
    ]);
    assert.deepEqual(read.lines.map((l) => l.id), [0, 1, 2], 'each line has its own id');
  });

  it('an answer is committed row by row at the width given; the last row when it ends', () => {
    const asked = run([{ type: 'question', text: 'why?\nreally' }, { type: 'token', text: 'word '.repeat(30) }], { columns: 40, now: 5 });
    assert.equal(asked.phase, 'answering');
    assert.equal(asked.answerStartedAt, 5);
    const rows = asked.lines.filter((l) => l.kind === 'answer');
    assert.ok(rows.length >= 3 && rows.every((l) => cellWidth(l.text) <= 40));
    assert.ok(asked.lines.some((l) => l.kind === 'question' && l.text === '❯ why? really'));
    const done = run([{ type: 'answer', answer: '…', reason: 'length', promptTokens: 3, generatedTokens: 30, firstTokenSeconds: 0.1, seconds: 1 }], { columns: 40 }, asked);
    assert.equal(done.partial, '');
    assert.deepEqual(lines(done).slice(-3), [`answer: ${asked.partial}`, 'note: 30 tokens in 1.0 s · first after 0.1 s', 'note: the answer stopped at the token limit (30); raise --max-tokens for more']);
  });

  it('--no-stream holds the text until the answer is complete', () => {
    const held = run([{ type: 'question', text: 'q' }, { type: 'token', text: 'hello ' }, { type: 'token', text: 'world' }], { stream: false });
    assert.deepEqual([held.lines.some((l) => l.kind === 'answer'), held.answerPieces], [false, 2]);
    const done = run([{ type: 'answer', answer: 'hello world', reason: 'aborted', promptTokens: 1, generatedTokens: 2, firstTokenSeconds: NaN, seconds: 0.5 }], { stream: false }, held);
    assert.deepEqual(lines(done).slice(-2), ['answer: hello world', 'note: (answer stopped) 2 tokens in 0.5 s']);
  });

  it('closing commits a partial row and leaves nothing live; the input view is not changed', () => {
    const before = run([{ type: 'question', text: 'q' }, { type: 'token', text: 'half a row' }]);
    const closed = closeView(before);
    assert.deepEqual([closed.phase, closed.partial, lines(closed).at(-1)], ['idle', '', 'answer: half a row']);
    assert.equal(before.partial, 'half a row', 'a reducer does not change the view it was given');
  });
});
