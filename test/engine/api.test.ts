// The library API (src/index.ts) without the CLI: open a document, ask and follow up, stream and
// await an answer, events in order, the session cache, cancellation by an AbortSignal, a model shared
// by two documents, summaries, citations — on the tiny fixture model (reference backend) — and a
// plain script that imports the built package by name and answers the demo document.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { isCtxError, loadModel, openDocument, summarizeDocument, type DocumentOptions, type RunEvent } from '../../src/index.js';
import { REPO_ROOT, scratchDir } from '../helpers/fixtures.js';
import { wideTinyModel } from './summarize/wide-model.js';

const dir = scratchDir('api');
const docPath = join(dir, 'doc.txt');
writeFileSync(docPath, 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(8));

/** Options for the tiny model on the reference backend, with its own cache folder; events into `events`. */
function options(events: RunEvent[], over: Partial<DocumentOptions> = {}): DocumentOptions {
  return {
    inputs: [docPath],
    model: fixtureModel('tiny'),
    backend: 'reference',
    strategy: { strategy: 'select' },
    maxTokens: 6,
    cache: false,
    env: { ...process.env, CTX_CACHE_DIR: join(dir, 'cache') },
    onEvent: (e) => events.push(e),
    ...over,
  };
}

const types = (events: RunEvent[]) => events.map((e) => e.type).filter((t, i, all) => t !== all[i - 1]);

describe('openDocument and ask', () => {
  it('reports each stage as a typed event, streams the answer and resolves to it', async () => {
    const events: RunEvent[] = [];
    const doc = await openDocument(options(events));
    try {
      assert.deepEqual(types(events), ['source', 'model', 'tokenize', 'plan', 'progress', 'read']);
      assert.match(doc.plan.description, /^select/);
      const reply = doc.ask('What is the answer?');
      const pieces: string[] = [];
      for await (const text of reply) pieces.push(text);
      const answer = await reply;
      assert.equal(pieces.join(''), answer.answer);
      assert.equal(answer.generatedTokens, 6);
      assert.equal(answer.reason, 'length');
      const asked = events.slice(events.findIndex((e) => e.type === 'question'));
      assert.deepEqual(types(asked), ['question', 'token', 'answer']);
      assert.deepEqual(asked.at(-1), { type: 'answer', ...answer });
    } finally {
      await doc.close();
    }
  });

  it('follow-ups see the conversation; clear() goes back to the document alone', async () => {
    const events: RunEvent[] = [];
    const doc = await openDocument(options(events));
    try {
      const first = await doc.ask('What is the answer?');
      const follow = await doc.ask('And the fox?');
      assert.ok(follow.promptTokens < first.promptTokens + 20, 'a follow-up feeds the question only');
      assert.equal(events.filter((e) => e.type === 'read').length, 1, 'the document is read once');
      doc.clear();
      assert.equal((await doc.ask('What is the answer?')).answer, first.answer);
      assert.throws(() => {
        doc.ask('one');
        doc.ask('two');
      }, /one question at a time/);
    } finally {
      await doc.close().catch(() => {});
    }
  });

  it('history() and resume(): a conversation put back into a fresh open continues as it would have', async () => {
    const first = await openDocument(options([]));
    await first.ask('What is the answer?');
    const together = await first.ask('And the fox?');
    const history = first.history().slice(0, 1);
    await first.close();
    assert.equal(history[0]!.question, 'What is the answer?');
    const kept = history[0]!;
    assert.equal(kept.answerTokens!.length + (kept.deferredToken === null ? 0 : 1), 6, 'the answer is kept as the tokens the session holds');
    const second = await openDocument(options([]));
    try {
      await second.resume(history);
      assert.equal((await second.ask('And the fox?')).answer, together.answer);
      await assert.rejects(second.resume(history), /before the first question/);
    } finally {
      await second.close();
    }
  });

  it('the session cache: the second open restores the read document and answers the same', async () => {
    const cacheDir = join(dir, 'cache-on');
    const run = async () => {
      const events: RunEvent[] = [];
      const doc = await openDocument(options(events, { cache: {}, env: { ...process.env, CTX_CACHE_DIR: cacheDir } }));
      const answer = await doc.ask('What is the answer?');
      await doc.close();
      return { answer, read: events.find((e) => e.type === 'read') as Extract<RunEvent, { type: 'read' }>, progress: events.filter((e) => e.type === 'progress').length };
    };
    const first = await run();
    const second = await run();
    assert.equal(first.read.cached, false);
    assert.deepEqual([second.read.cached, second.progress], [true, 0]);
    assert.equal(second.answer.answer, first.answer.answer);
  });

  it('an AbortSignal cancels reading: the promise rejects with AbortError and nothing is cached', async () => {
    const cacheDir = join(dir, 'cache-cancel');
    const stop = new AbortController();
    const events: RunEvent[] = [];
    const opening = openDocument(
      options(events, {
        cache: {},
        env: { ...process.env, CTX_CACHE_DIR: cacheDir },
        strategy: { strategy: 'select', chunk: 16 },
        signal: stop.signal,
        onEvent: (e) => {
          events.push(e);
          if (e.type === 'progress') stop.abort();
        },
      }),
    );
    await assert.rejects(opening, { name: 'AbortError' });
    assert.equal(events.some((e) => e.type === 'read'), false);
    const sessions = join(cacheDir, 'sessions');
    assert.deepEqual(existsSync(sessions) ? readdirSync(sessions).filter((f) => f.endsWith('.ctxs')) : [], []);
  });

  it('an answer is stopped by its own signal, and a stop signal keeps the conversation whole', async () => {
    const doc = await openDocument(options([], { maxTokens: 200 }));
    try {
      const stop = new AbortController();
      const reply = doc.ask('Tell me everything.', { stop: stop.signal });
      for await (const _ of reply) stop.abort();
      assert.equal((await reply).reason, 'aborted');
      assert.equal((await doc.ask('Go on.', { maxTokens: 3 })).reason, 'length');
      const cancel = new AbortController();
      cancel.abort();
      await assert.rejects(doc.ask('Never.', { signal: cancel.signal }), { name: 'AbortError' });
    } finally {
      await doc.close();
    }
  });

  it('a model loaded once serves two documents; closing them leaves it open', async () => {
    const model = await loadModel(fixtureModel('tiny'), { backend: 'reference' });
    try {
      const a = await openDocument(options([], { model }));
      const b = await openDocument(options([], { model }));
      const [x, y] = [await a.ask('What is the answer?'), await b.ask('What is the answer?')];
      assert.equal(x.answer, y.answer);
      await a.close();
      await b.close();
      const c = await openDocument(options([], { model }));
      assert.equal((await c.ask('What is the answer?')).answer, x.answer, 'the model still works');
      await c.close();
    } finally {
      await model.close();
    }
  });

  it('failures a user can cause are CtxErrors with their exit code', async () => {
    await assert.rejects(openDocument(options([], { inputs: [join(dir, 'missing.txt')] })), (e) => isCtxError(e) && e.exitCode === 3);
    await assert.rejects(openDocument(options([], { strategy: { strategy: 'full' }, maxTokens: 100 })), (e) => isCtxError(e) && e.kind === 'doesNotFit' && /^the document does not fit/.test(e.message));
    const huge = options([], { maxTokens: 100_000_000, maxKvMemory: 1 << 20 });
    await assert.rejects(openDocument(huge), (e) => isCtxError(e) && e.kind === 'doesNotFit' && /^the answer budget of 100,000,000 tokens \(--max-tokens\)/.test(e.message));
  });

  it('cite: the document gets source markers and the answer its checked citations', async () => {
    const events: RunEvent[] = [];
    const doc = await openDocument(options(events, { cite: true }));
    try {
      assert.ok(events.some((e) => e.type === 'markers'));
      const answer = await doc.ask('Where is the answer?');
      assert.ok(Array.isArray(answer.citations));
      assert.ok(events.some((e) => e.type === 'citations'));
      const question = events.find((e) => e.type === 'question') as Extract<RunEvent, { type: 'question' }>;
      assert.equal(question.text, 'Where is the answer?', 'the event carries the question as asked, without the citation instruction');
    } finally {
      await doc.close();
    }
  });
});

describe('summarizeDocument', () => {
  it('streams a one-pass summary and says how it was made', async () => {
    const events: RunEvent[] = [];
    const reply = summarizeDocument({ ...options(events), model: wideTinyModel(1024), strategy: undefined, length: 'short', maxTokens: 4 });
    let text = '';
    for await (const piece of reply) text += piece;
    const summary = await reply;
    assert.equal(text, summary.answer);
    const made = events.find((e) => e.type === 'summary') as Extract<RunEvent, { type: 'summary' }>;
    assert.equal(made.mode, 'one-pass');
    assert.match(made.reason, /fits the model's window/);
  });
});

describe('a script importing the package', () => {
  it("runs the README's example as written: `import { openDocument } from 'ctx'` (the built dist/) answers the demo document", () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## ctx as a library'));
    const script = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(script, 'the README has a js example under "ctx as a library"');
    const facts = JSON.parse(readFileSync(join(REPO_ROOT, 'fixtures', 'demo', 'needle-8k.json'), 'utf8')) as { question: string; answer: string };
    assert.ok(script.includes('fixtures/demo/needle-8k.txt') && script.includes(`'${facts.question}'`), 'it asks the 8K demo document its question');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, CTX_CACHE_DIR: join(dir, 'script-cache') } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), facts.answer);
    assert.match(r.stderr, /\/\d+ tokens/, 'progress events reached the script');
    assert.match(r.stderr, /\d+ tokens \((eos|length)\)/);
  });
});
