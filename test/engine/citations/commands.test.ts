// Citations in the commands: a finished answer with valid, out-of-range and malformed citations is
// checked against the fixture PDF and repository (events, marked text, --json), and `ctx ask` puts
// markers in the document and reports them (--no-cite leaves them out).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { SourceMarking } from '../../../src/engine/citations/source-marking.js';
import type { AnswerResult } from '../../../src/engine/reader.js';
import { readInputs } from '../../../src/input/read.js';
import type { RunEvent } from '../../../src/ui/events.js';
import { JsonRenderer } from '../../../src/ui/json.js';
import { inputFixtures } from '../../helpers/fixtures.js';
import { wideTinyModel } from '../summarize/wide-model.js';

const BIN = join(import.meta.dirname, '../..', '..', 'bin', 'ctx.js');

class Recorder extends JsonRenderer {
  readonly events: RunEvent[] = [];
  constructor() {
    super(new PassThrough());
  }
  override event(e: RunEvent): void {
    this.events.push(e);
    super.event(e);
  }
}

function answer(text: string): AnswerResult {
  return { answer: text, reason: 'eos', generatedTokens: 10, promptTokens: 5, firstTokenSeconds: 0.1, seconds: 0.2 };
}

/** Marks the inputs as a command does, then finishes `text` as the model's answer. */
async function finish(specs: string[], text: string) {
  const sources = new SourceMarking(true);
  const marked = sources.mark(await readInputs(specs));
  const r = new Recorder();
  sources.finishAnswer(answer(text), (e) => r.event(e));
  const of = <T extends RunEvent['type']>(type: T) => r.events.filter((e) => e.type === type) as Array<Extract<RunEvent, { type: T }>>;
  return { marked, r, answerEvent: of('answer')[0]!, citations: of('citations')[0]!.citations, warnings: of('warning') };
}

describe('checking an answer against the inputs', () => {
  it('a PDF: pages resolved, out-of-range and malformed ones marked and listed in one warning', { skip: inputFixtures().skipPdf }, async () => {
    const pdf = inputFixtures().path('pdf/three-pages.pdf');
    const { marked, r, answerEvent, citations, warnings } = await finish([pdf], 'ALPHA is on [p. 1], BRAVO on [pp. 2–3]; not [p. 4] nor [p. x].');
    assert.ok(marked.segments[0]!.text.startsWith('[p. 1] Page 1 marker ALPHA'), 'the document the model reads has page markers');
    assert.equal(answerEvent.answer, 'ALPHA is on [p. 1], BRAVO on [pp. 2–3]; not [p. 4?] nor [p. x?].');
    assert.deepEqual(
      citations.map((c) => ({ text: c.text, path: c.path, page: c.page, valid: c.valid })),
      [
        { text: 'p. 1', path: pdf, page: 1, valid: true },
        { text: 'pp. 2–3', path: pdf, page: 2, valid: true },
        { text: 'p. 4', path: pdf, page: 4, valid: false },
        { text: 'p. x', path: undefined, page: undefined, valid: false },
      ],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /^2 of 4 citations do not match the inputs: \[p\. 4\] \(no page 4: .*three-pages\.pdf has 3 pages\); \[p\. x\] \(malformed/);
    const json = r.result as unknown as { answer: string; citations: unknown[] };
    assert.equal(json.answer, answerEvent.answer);
    assert.equal(json.citations.length, 4);
  });

  it('a repository: file and line resolved (a path suffix too), a missing file and a line past the end marked', async () => {
    const repo = inputFixtures().path('repo');
    const { citations, answerEvent } = await finish([repo], 'main [repo/src/main.ts:1] util [src/util.ts:1] gone [repo/src/nope.ts:1] far [repo/zeta.md:2]');
    assert.deepEqual(
      citations.map((c) => [c.path?.slice(repo.length - 4), c.line, c.valid]),
      [['repo/src/main.ts', 1, true], ['repo/src/util.ts', 1, true], [undefined, undefined, false], ['repo/zeta.md', 2, false]],
    );
    assert.match(answerEvent.answer, /gone \[repo\/src\/nope\.ts:1\?\] far \[repo\/zeta\.md:2\?\]$/);
  });

  it('an answer without citations: an empty list and no warning; --no-cite checks nothing', async () => {
    const doc = inputFixtures().path('text/utf8.txt');
    const none = await finish([doc], 'No sources here [0].');
    assert.deepEqual([none.citations, none.warnings.length], [[], 0]);

    const off = new SourceMarking(false);
    const read = await readInputs([doc]);
    assert.equal(off.mark(read), read);
    const r = new Recorder();
    off.finishAnswer(answer('[p. 9]'), (e) => r.event(e));
    assert.deepEqual(r.events.map((e) => e.type), ['answer']);
  });
});

describe('ctx ask with citations', () => {
  const run = (args: string[]) => {
    const env = { ...process.env, CTX_CONFIG_DIR: tmpdir(), CTX_CACHE_DIR: mkdtempSync(join(tmpdir(), 'ctx-cache-')) };
    const r = spawnSync(process.execPath, [BIN, 'ask', 'repo/src', 'What does main export?', '-m', wideTinyModel(1024), '--backend', 'reference', '--max-tokens', '4', '--json', ...args], {
      cwd: inputFixtures().dir,
      encoding: 'utf8',
      env,
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  it('marks the document, asks in the user\'s words, and lists the answer\'s citations', () => {
    const out = run([]);
    assert.ok(out.markers.count >= 5, 'a marker per file');
    assert.ok(Array.isArray(out.citations));
    assert.equal(out.turns[0].question, 'What does main export?');
    const plain = run(['--no-cite']);
    assert.equal(plain.markers, undefined);
    assert.equal(plain.citations, undefined);
    assert.ok(out.tokens.document > plain.tokens.document, 'markers cost tokens');
  });
});
