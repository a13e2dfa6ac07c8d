// `ctx chat` below the terminal: follow-ups reuse the read document and see the conversation; /clear
// goes back to the state right after reading; a stopped answer is kept, a question withdrawn
// before its answer leaves no trace; piped questions with slash commands.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { Chat } from '../../src/cli/chat.js';
import { documentOptions, type EngineCliOptions } from '../../src/cli/engine-options.js';
import { openDocument } from '../../src/engine/open.js';
import type { Renderer, RunEvent } from '../../src/ui/events.js';
import { scratchDir } from '../helpers/fixtures.js';
import { ctxHome, ctxSync } from '../ui/run-ctx.js';

const dir = scratchDir('chat');
const doc = join(dir, 'doc.txt');
writeFileSync(doc, 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(8));

class Recorder implements Renderer {
  events: RunEvent[] = [];
  onToken?: () => void;
  event(e: RunEvent): void {
    this.events.push(e);
    if (e.type === 'token') this.onToken?.();
  }
  finish(): void {}
  of<T extends RunEvent['type']>(type: T): Array<Extract<RunEvent, { type: T }>> {
    return this.events.filter((e): e is Extract<RunEvent, { type: T }> => e.type === type);
  }
}

function options(maxTokens: number): EngineCliOptions {
  return {
    model: fixtureModel('tiny'),
    strategy: 'select',
    backend: 'reference',
    maxTokens,
    temperature: 0,
    topK: 0,
    topP: 1,
    repetitionPenalty: 1,
    seed: 0,
    stream: true,
    maxFileBytes: 1 << 20,
    cache: false,
    cacheMaxSize: 1 << 30,
  };
}

async function openChat(maxTokens = 6) {
  const r = new Recorder();
  const o = options(maxTokens);
  const run = { stdin: process.stdin, env: process.env, signal: new AbortController().signal };
  const opened = await openDocument(documentOptions(o, { specs: [doc] }, run, r));
  return { chat: new Chat(opened, o, [doc]), opened, r };
}

const never = new AbortController().signal;

describe('chat session', () => {
  it('answers follow-ups without reading the document again; /clear returns to the state after reading', async () => {
    const { chat, opened, r } = await openChat();
    const first = await chat.ask('What is the answer?', never, never);
    const readEvents = r.events.length;
    const follow = await chat.ask('And the fox?', never, never);
    assert.ok(r.of('progress').length > 0, 'the document was read once, at the start');
    assert.equal(r.events.slice(readEvents).some((e) => e.type === 'progress' || e.type === 'read'), false, 'no reading for the follow-up');
    assert.ok(follow.promptTokens < first.promptTokens + 20, 'the follow-up prompt is the question only, not the document');

    await chat.clear();
    assert.equal(chat.turns.length, 0);
    const again = await chat.ask('What is the answer?', never, never);
    assert.equal(again.answer, first.answer, 'after /clear the same question gets the same answer');
    await opened.close();
  });

  it('a stopped answer stays in the conversation; stopped before it begins, it stops at its first piece', async () => {
    const { chat, opened, r } = await openChat(200);
    const stop = new AbortController();
    r.onToken = () => stop.abort();
    const partial = await chat.ask('Tell me everything.', stop.signal, never);
    assert.equal(partial.reason, 'aborted');
    assert.ok(partial.generatedTokens < 200);
    r.onToken = undefined;

    const early = new AbortController();
    early.abort();
    const from = r.events.length;
    const first = await chat.ask('Never mind.', early.signal, never);
    assert.equal(first.reason, 'aborted');
    const pieces = r.events.slice(from).filter((e) => e.type === 'token');
    assert.equal(pieces.length, 1, 'the answer stopped at its first piece of text');
    assert.deepEqual(chat.turns.map((t) => [t.question, t.reason]), [['Tell me everything.', 'aborted'], ['Never mind.', 'aborted']]);
    const next = await chat.ask('Go on.', never, never);
    assert.equal(next.reason, 'length', 'a follow-up after stopped answers runs to its end');
    await opened.close();
  });

  it('Ctrl-C that ends ctx stops the answer at once', async () => {
    const { chat, opened, r } = await openChat(200);
    const run = new AbortController();
    r.onToken = () => run.abort();
    const result = await chat.ask('Tell me everything.', never, run.signal);
    assert.equal(result.reason, 'aborted');
    await opened.close();
  });
});

describe('ctx chat with piped questions', () => {
  it('answers each line, runs /clear and /save, stops at /exit', () => {
    const home = ctxHome(join(dir, 'piped'));
    const transcript = join(dir, 'transcript.md');
    const input = ['first?', '/clear', 'second?', `/save ${transcript}`, '/exit', 'never asked?', ''].join('\n');
    const r = ctxSync(home, ['chat', doc, '-m', fixtureModel('tiny-beacon'), '--backend', 'reference', '--max-tokens', '3', '--json'], { input });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { turns: Array<{ question: string }> };
    assert.deepEqual(out.turns.map((t) => t.question), ['first?', 'second?']);
    const saved = readFileSync(transcript, 'utf8');
    assert.match(saved, /^# ctx chat: .*doc\.txt\n\n\*\*Q:\*\* second\?\n/);
    assert.doesNotMatch(saved, /first\?/, '/clear forgot the first exchange');
  });
});

describe('ctx chat -c/--continue', () => {
  const run = (home: ReturnType<typeof ctxHome>, questions: string[], ...more: string[]) => {
    const r = ctxSync(home, ['chat', doc, '-m', fixtureModel('tiny-beacon'), '--backend', 'reference', '--max-tokens', '8', '--json', ...more], { input: `${questions.join('\n')}\n` });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { turns: Array<{ question: string; answer: string }>; timings: { cached: boolean } };
  };

  it('continues the last conversation about the document: the next answer is the one it would have been', () => {
    const together = run(ctxHome(join(dir, 'together')), ['first?', 'second?']);
    const home = ctxHome(join(dir, 'continued'));
    run(home, ['first?']);
    const continued = run(home, ['second?'], '-c');
    assert.equal(continued.timings.cached, true, 'the document itself comes from the session cache');
    assert.deepEqual(continued.turns, [together.turns[1]], 'the follow-up sees the first exchange, token for token');
    const alone = run(ctxHome(join(dir, 'alone')), ['second?']);
    assert.deepEqual(run(home, ['second?']).turns, alone.turns, 'without -c the chat starts anew');
  });

  it('-c with nothing kept starts a new conversation and says so; /clear forgets what is kept; --no-cache refuses -c', () => {
    const home = ctxHome(join(dir, 'nothing'));
    const said = ctxSync(home, ['chat', doc, '-m', fixtureModel('tiny-beacon'), '--backend', 'reference', '--max-tokens', '3', '-c'], { input: 'q?\n/clear\n' });
    assert.equal(said.status, 0, said.stderr);
    assert.match(said.stderr, /^no earlier conversation about these inputs with this model and strategy: starting a new one$/m);
    const again = ctxSync(home, ['chat', doc, '-m', fixtureModel('tiny-beacon'), '--backend', 'reference', '--max-tokens', '3', '-c'], { input: 'q?\n' });
    assert.match(again.stderr, /no earlier conversation/, '/clear forgot the kept conversation');
    const refused = ctxSync(home, ['chat', doc, '-m', fixtureModel('tiny-beacon'), '-c', '--no-cache'], { input: '' });
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /^ctx: --continue finds the last conversation through the session cache, which --no-cache turns off\n$/);
  });
});
