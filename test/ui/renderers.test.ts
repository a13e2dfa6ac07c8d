// The renderers a script sees (--events, --json) and the rule that picks a renderer.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { CtxError } from '../../src/errors.js';
import type { RunEvent } from '../../src/ui/events.js';
import { JsonRenderer } from '../../src/ui/json.js';
import { EventsRenderer } from '../../src/ui/jsonl.js';
import { PlainRenderer } from '../../src/ui/plain.js';
import { DeferredRenderer, rendererKind } from '../../src/ui/pick.js';

class Sink extends Writable {
  text = '';
  isTTY?: boolean;
  constructor(tty = false) {
    super();
    if (tty) this.isTTY = true;
  }
  override _write(chunk: Buffer, _enc: string, done: () => void) {
    this.text += chunk.toString();
    done();
  }
  lines(): Array<Record<string, unknown>> {
    return this.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

const progress = (done: number): RunEvent => ({ type: 'progress', done, total: 100, elapsedSeconds: 1, tokensPerSecond: 10, etaSeconds: 1, kvRows: done, kvBytes: done * 8, compression: 1 });
const answer: RunEvent = { type: 'answer', answer: 'forty-two', reason: 'eos', promptTokens: 5, generatedTokens: 3, firstTokenSeconds: 0.1, seconds: 0.3 };

describe('--events renderer', () => {
  it('writes one JSON object per line, progress at most ten times a second, then a done line with the summary', () => {
    const out = new Sink();
    let clock = 0;
    const r = new EventsRenderer(out, () => clock);
    r.event({ type: 'source', path: 'a.txt', kind: 'text', bytes: 10 });
    for (const done of [10, 20, 30, 40, 100]) {
      r.event(progress(done));
      clock += 40; // 25 updates a second
    }
    r.event({ type: 'read', tokens: 100, seconds: 0.2, cached: false });
    r.event({ type: 'question', text: 'q?' });
    r.event({ type: 'token', text: 'forty' });
    r.event({ type: 'token', text: '-two' });
    r.event(answer);
    r.finish();
    r.event({ type: 'token', text: 'late' });
    const lines = out.lines();
    assert.deepEqual(lines.map((l) => l.type), ['source', 'progress', 'progress', 'progress', 'read', 'question', 'token', 'token', 'answer', 'done']);
    assert.deepEqual(lines.filter((l) => l.type === 'progress').map((l) => l.done), [10, 40, 100]);
    const done = lines.at(-1)!;
    assert.equal(done.answer, 'forty-two');
    assert.deepEqual(done.sources, [{ path: 'a.txt', kind: 'text', bytes: 10 }]);
  });

  it('ends with an error line carrying the exit code, and nothing after it', () => {
    const out = new Sink();
    const r = new EventsRenderer(out);
    r.event({ type: 'source', path: 'a.txt', kind: 'text', bytes: 10 });
    r.fail(new CtxError('doesNotFit', 'the document does not fit: 9,000 tokens'));
    r.fail(new Error('second failure is ignored'));
    r.finish();
    assert.deepEqual(out.lines().at(-1), { type: 'error', kind: 'doesNotFit', code: 7, message: 'the document does not fit: 9,000 tokens' });
    assert.equal(out.lines().length, 2);

    const internal = new Sink();
    new EventsRenderer(internal).fail(new TypeError('x is undefined'));
    assert.deepEqual(internal.lines(), [{ type: 'error', kind: 'internal', code: 1, message: 'internal error: x is undefined' }]);
  });
});

describe('--json renderer', () => {
  it('prints one object at the end with answer, model, strategy, tokens, timings, sources and skipped files', () => {
    const out = new Sink();
    const r = new JsonRenderer(out);
    r.event({ type: 'source', path: 'a.txt', kind: 'text', bytes: 10 });
    r.event({ type: 'skipped', path: 'b.bin', reason: 'binary' });
    r.event({ type: 'model', name: 'tiny', dir: '/m', backend: 'reference', numeric: 'f32' });
    r.event({ type: 'plan', strategy: 'full (window 128)', documentTokens: 90, kvRows: 100, kvBytes: 800, nativeWindow: 128, notes: [] });
    r.event({ type: 'read', tokens: 95, seconds: 0.5, cached: true });
    r.event({ type: 'question', text: 'q?' });
    r.event(answer);
    assert.equal(out.text, '');
    r.finish();
    const j = JSON.parse(out.text);
    assert.equal(j.answer, 'forty-two');
    assert.deepEqual(j.model, { name: 'tiny', dir: '/m' });
    assert.equal(j.backend, 'reference');
    assert.equal(j.strategy, 'full (window 128)');
    assert.deepEqual(j.tokens, { document: 90, prompt: 5, generated: 3 });
    assert.deepEqual(j.timings, { readSeconds: 0.5, firstTokenSeconds: 0.1, firstTokenAfterReadSeconds: null, answerSeconds: 0.3, cached: true, cacheSaveSeconds: null, cacheSaveBytes: null });
    assert.deepEqual(j.skipped, [{ path: 'b.bin', reason: 'binary' }]);
  });
});

describe('plain renderer', () => {
  function plain(quiet = false) {
    const stdout = new Sink();
    const stderr = new Sink();
    return { r: new PlainRenderer({ stdout, stderr, stderrIsTTY: false, quiet, stream: true }), stdout, stderr };
  }

  it('ends each answer with how fast it was written, on stderr; counts of one are singular', () => {
    const { r, stdout, stderr } = plain();
    r.event({ type: 'plan', strategy: 'full', documentTokens: 1, kvRows: 2, kvBytes: 64, nativeWindow: 128, notes: [] });
    r.event({ type: 'read', tokens: 1, seconds: 0.5, cached: false });
    r.event({ type: 'token', text: 'forty-two' });
    r.event(answer);
    r.event({ ...(answer as Extract<RunEvent, { type: 'answer' }>), generatedTokens: 1, seconds: 0.5 });
    r.finish();
    assert.equal(stdout.text, 'forty-two\n');
    assert.deepEqual(stderr.text.split('\n'), ['1 token · full · KV 64 B', 'read 1 token in 0.5 s', '3 tokens in 0.3 s (10.0 tok/s)', '1 token in 0.5 s (2.0 tok/s)', '']);
  });

  it('-q: no speed line', () => {
    const { r, stderr } = plain(true);
    r.event(answer);
    assert.equal(stderr.text, '');
  });
});

describe('renderer choice', () => {
  const tty = { stdout: new Sink(true), stderr: new Sink(true), env: { TERM: 'xterm' } };
  const piped = { stdout: new Sink(false), stderr: new Sink(true), env: { TERM: 'xterm' } };
  it('Ink on a terminal; plain when piped, quiet, --plain or TERM=dumb; JSON when asked', () => {
    assert.equal(rendererKind({ stream: true }, tty), 'ink');
    assert.equal(rendererKind({ stream: false }, tty), 'ink');
    assert.equal(rendererKind({ stream: true }, piped), 'plain');
    assert.equal(rendererKind({ stream: true, quiet: true }, tty), 'plain');
    assert.equal(rendererKind({ stream: true, plain: true }, tty), 'plain');
    assert.equal(rendererKind({ stream: true }, { ...tty, env: { TERM: 'dumb' } }), 'plain');
    assert.equal(rendererKind({ stream: true }, { ...tty, stderr: new Sink(false) }), 'plain');
    assert.equal(rendererKind({ stream: true, json: true }, tty), 'json');
    assert.equal(rendererKind({ stream: true, events: true }, piped), 'events');
    assert.throws(() => rendererKind({ stream: true, json: true, events: true }, piped), /--json and --events both print to stdout: choose one/);
  });
});

describe('the Ink display while it loads', () => {
  class Recording {
    calls: string[] = [];
    event(e: RunEvent) {
      this.calls.push(e.type);
    }
    finish() {
      this.calls.push('finish');
    }
    fail() {
      this.calls.push('fail');
    }
  }

  it('keeps events in order until the display is up, then passes them on', async () => {
    const shown = new Recording();
    let ready!: (make: () => Recording) => void;
    const r = new DeferredRenderer(new Promise((resolve) => (ready = resolve)), () => new Recording());
    r.event({ type: 'warning', message: 'w' });
    r.event(progress(10));
    ready(() => shown);
    await Promise.resolve();
    r.event(answer);
    r.finish();
    assert.deepEqual(shown.calls, ['warning', 'progress', 'answer', 'finish']);
  });

  it('a run that fails before the display is up never shows it', async () => {
    let made = 0;
    const r = new DeferredRenderer(Promise.resolve(() => (made++, new Recording())), () => new Recording());
    r.event(progress(10));
    r.fail(new CtxError('input', 'gone'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(made, 0);
  });

  it('falls back to plain text when the display cannot be loaded', async () => {
    const plain = new Recording();
    const r = new DeferredRenderer(Promise.reject(new Error('no yoga')), () => plain);
    r.event(progress(10));
    await new Promise((resolve) => setImmediate(resolve));
    r.finish();
    assert.deepEqual(plain.calls, ['progress', 'finish']);
  });
});
