// The Ink display: reading progress at 80 columns, the answer committed row by row (a long answer
// is never redrawn), resizing, --no-stream, and the chat prompt's keys. Components are driven
// through ink-testing-library; the renderer class through a fake 80-column terminal.
import React from 'react';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { render } from 'ink-testing-library';
import { App } from '../../src/ui/ink/app.js';
import { InkRenderer } from '../../src/ui/ink/renderer.js';
import { UiStore, type PromptResult } from '../../src/ui/ink/store.js';
import type { RunEvent } from '../../src/ui/events.js';
import { cellWidth } from '../../src/ui/format.js';

/** A terminal that records what is written to it. */
class FakeTerminal extends EventEmitter {
  isTTY = true;
  rows = 24;
  writes: string[] = [];
  constructor(public columns = 80) {
    super();
  }
  write(s: string): boolean {
    this.writes.push(s);
    return true;
  }
  get text(): string {
    return this.writes.join('');
  }
}

const asStream = (t: FakeTerminal) => t as unknown as NodeJS.WriteStream;

// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

const reading: RunEvent[] = [
  ...Array.from({ length: 7 }, (_, i): RunEvent => ({ type: 'source', path: `doc${i}.txt`, kind: 'text', bytes: 1000 })),
  { type: 'model', name: 'tiny-beacon', dir: '/m', backend: 'reference', numeric: 'f32' },
  { type: 'plan', strategy: 'beacon v3 (ratio 8, window 32)', documentTokens: 20000, kvRows: 3000, kvBytes: 800_000, nativeWindow: 128, notes: [], sourceEnds: [3000, 6000, 9000, 12000, 15000, 18000, 20011] },
  { type: 'progress', done: 10432, total: 20011, elapsedSeconds: 8.4, tokensPerSecond: 1234, etaSeconds: 7.8, kvRows: 1320, kvBytes: 1_258_291, compression: 7.9 },
];

function newStore(columns = 80, stream = true) {
  const hard: string[] = [];
  const store = new UiStore({ columns: () => columns, stream, onHardInterrupt: () => hard.push('exit') });
  return { store, hard };
}

describe('Ink display', () => {
  it('shows sources, tokens, a bar, rate, ETA, KV held, compression, strategy and backend within 80 columns', async () => {
    const { store } = newStore(80);
    const ui = render(<App store={store} interactive={false} />);
    for (const e of reading) store.apply(e);
    await tick();
    const frame = ui.lastFrame()!;
    ui.unmount();
    assert.match(frame, /reading █+░+\s+52% · 3\/7 sources/);
    assert.match(frame, /10,432\/20,011 tokens · 1,234 tok\/s · ETA 7\.8 s/);
    assert.match(frame, /KV 1\.2 MiB · ×7\.9 condensed · beacon v3 \(ratio 8, window 32\) · reference f32/);
    for (const line of frame.split('\n')) assert.ok(cellWidth(plain(line)) <= 80, `fits 80 columns: ${line}`);
  });

  it('commits the answer row by row: a long answer costs the same per token as a short one', async () => {
    const term = new FakeTerminal(80);
    const r = new InkRenderer({ stdout: asStream(term), stderr: asStream(new FakeTerminal(80)), stream: true });
    for (const e of reading) r.event(e);
    r.event({ type: 'read', tokens: 20011, seconds: 16.2, cached: false });
    r.event({ type: 'question', text: 'What happens?' });
    const words = Array.from({ length: 400 }, (_, i) => `word${i} `);
    const bytesPerToken: number[] = [];
    for (const w of words) {
      const before = term.text.length;
      r.event({ type: 'token', text: w });
      await tick();
      bytesPerToken.push(term.text.length - before);
    }
    const lateStart = term.text.length - bytesPerToken.slice(-100).reduce((a, b) => a + b, 0);
    r.event({ type: 'answer', answer: words.join(''), reason: 'eos', promptTokens: 9, generatedTokens: 400, firstTokenSeconds: 0.05, seconds: 3 });
    r.finish();
    const late = bytesPerToken.slice(-100).reduce((a, b) => a + b, 0) / 100;
    // About 35 rows are on screen by then; redrawing them would write thousands of bytes per token.
    assert.ok(late < 400, `a token late in the answer writes ${late} bytes on average`);
    const out = plain(term.text);
    // A word is redrawn only while its row is being written (about a dozen tokens), never after.
    for (const w of ['word0 ', 'word199 ', 'word399']) {
      const times = out.split(w).length - 1;
      assert.ok(times >= 1 && times <= 14, `${w.trim()} is drawn ${times} times`);
    }
    assert.equal(plain(term.text.slice(lateStart)).includes('word0 '), false, 'the first row is not drawn again at the end');
    for (const line of ['read 20,011 tokens in 16 s (1,235 tok/s) · KV 1.2 MiB ×7.9', '❯ What happens?', '400 tokens in 3.0 s · first after 0.1 s']) {
      assert.ok(out.includes(line), `shows "${line}"`);
    }
  });

  it('after a resize, new rows are cut at the new width', async () => {
    let columns = 80;
    const store = new UiStore({ columns: () => columns, stream: true, onHardInterrupt: () => {} });
    store.apply({ type: 'question', text: 'q' });
    store.apply({ type: 'token', text: 'x '.repeat(100) });
    const wide = store.getState().lines.filter((l) => l.kind === 'answer');
    assert.ok(wide.every((l) => cellWidth(l.text) <= 80) && wide.some((l) => cellWidth(l.text) > 50));
    columns = 50;
    store.apply({ type: 'token', text: 'y '.repeat(100) });
    const narrow = store.getState().lines.filter((l) => l.kind === 'answer').slice(wide.length);
    assert.ok(narrow.length >= 3 && narrow.every((l) => cellWidth(l.text) <= 50));
    assert.equal(store.getState().columns, 50);
  });

  it('--no-stream shows the answer only when it is complete', () => {
    const { store } = newStore(80, false);
    store.apply({ type: 'question', text: 'q' });
    store.apply({ type: 'token', text: 'hello ' });
    store.apply({ type: 'token', text: 'world' });
    assert.equal(store.getState().lines.some((l) => l.kind === 'answer'), false);
    assert.equal(store.getState().answerPieces, 2);
    store.apply({ type: 'answer', answer: 'hello world', reason: 'eos', promptTokens: 3, generatedTokens: 2, firstTokenSeconds: 0.1, seconds: 0.2 });
    assert.deepEqual(store.getState().lines.filter((l) => l.kind === 'answer').map((l) => l.text), ['hello world']);
  });

  it('a cached read says so; warnings and skipped files are shown', () => {
    const { store } = newStore();
    store.apply({ type: 'skipped', path: 'big.bin', reason: 'binary file' });
    store.apply({ type: 'warning', message: 'cache: could not save' });
    store.apply({ type: 'read', tokens: 514, seconds: 0.01, cached: true });
    const lines = store.getState().lines.map((l) => `${l.kind}: ${l.text}`);
    assert.deepEqual(lines, ['warning: skipped big.bin: binary file', 'warning: warning: cache: could not save', 'info: document read from cache · 514 tokens in 0.0 s']);
  });
});

describe('chat prompt keys', () => {
  it('typing, backspace and Enter ask; the prompt is drawn with a hint', async () => {
    const { store } = newStore();
    const ui = render(<App store={store} interactive />);
    const asked = store.prompt();
    await tick();
    for (const k of ['h', 'e', 'y', '\x7f', 'i', '?']) {
      ui.stdin.write(k);
      await tick();
    }
    assert.match(ui.lastFrame()!, /❯ hei\?/);
    assert.match(ui.lastFrame()!, /Enter asks · Ctrl-C stops an answer/);
    ui.stdin.write('\r');
    assert.deepEqual(await asked, { kind: 'line', text: 'hei?' } satisfies PromptResult);
    ui.unmount();
  });

  it('Ctrl-C: clears a typed line, leaves at an empty prompt, stops an answer, and ends ctx on the second', async () => {
    const { store, hard } = newStore();
    let p = store.prompt();
    store.key('a', {});
    store.key('c', { ctrl: true });
    assert.equal(store.getState().input, '');
    assert.equal(store.getState().phase, 'prompt');
    store.key('c', { ctrl: true });
    assert.deepEqual(await p, { kind: 'interrupt' });

    p = store.prompt();
    store.key('d', { ctrl: true });
    assert.deepEqual(await p, { kind: 'eof' });

    let stops = 0;
    store.apply({ type: 'question', text: 'q' });
    store.answering(() => stops++);
    store.key('c', { ctrl: true });
    assert.equal(stops, 1);
    assert.equal(store.getState().stopping, true);
    assert.deepEqual(hard, []);
    store.key('c', { ctrl: true });
    assert.equal(stops, 1);
    assert.deepEqual(hard, ['exit']);
  });

  it('lines that arrive in one chunk are asked one per prompt, in order', async () => {
    const { store } = newStore();
    const first = store.prompt();
    store.key('first\rsecond\r', {});
    assert.deepEqual(await first, { kind: 'line', text: 'first' });
    assert.deepEqual(await store.prompt(), { kind: 'line', text: 'second' });
    assert.equal(store.getState().input, '');
  });

  it('Ctrl-C while reading ends ctx; other keys are ignored until the prompt shows', () => {
    const { store, hard } = newStore();
    store.apply(reading[reading.length - 1]!);
    store.key('x', {});
    assert.equal(store.getState().input, '');
    store.key('c', { ctrl: true });
    assert.deepEqual(hard, ['exit']);
  });
});
