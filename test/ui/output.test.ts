// What a script gets from `ctx ask` when stdout is not a terminal: the answer alone (progress on
// stderr, nothing with -q), --json (one object), --events (JSON Lines, every line parsed, an error
// line last on failure), and the exit codes.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { scratchDir } from '../helpers/fixtures.js';
import { ctxHome, ctxSync } from './run-ctx.js';

const dir = scratchDir('ui-output');
const home = ctxHome(dir);
const folder = join(dir, 'docs');
let model: string;

const ask = (...args: string[]) => ctxSync(home, ['ask', folder, 'What is the answer?', '-m', model, '--backend', 'reference', '--max-tokens', '5', '--no-cache', ...args]);

function jsonLines(text: string): Array<Record<string, unknown> & { type: string }> {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'output ends with a newline');
  return lines.map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });
}

before(() => {
  model = fixtureModel('tiny-beacon');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'notes.txt'), 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(10));
  writeFileSync(join(folder, 'blob.bin'), Buffer.from([0, 1, 2, 3, 0, 0, 255, 254, 0, 7]));
});

describe('output for scripts', () => {
  it('piped: the answer alone on stdout, milestones on stderr; -q: nothing on stderr', () => {
    const json = JSON.parse(ask('--json').stdout) as { answer: string };
    const r = ask();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${json.answer}\n`);
    assert.match(r.stderr, /^reading [\d,]+\/[\d,]+ tokens \(100%\)/m);
    assert.match(r.stderr, /^read [\d,]+ tokens in /m);
    const q = ask('-q');
    assert.equal(q.status, 0);
    assert.equal(q.stdout, r.stdout);
    assert.equal(q.stderr, '');
  });

  it('--json: one object with answer, model, strategy, backend, token counts, timings, sources and skipped files', () => {
    const r = ask('--json');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(typeof j.answer, 'string');
    assert.equal(j.model.dir, model);
    assert.match(j.strategy, /^beacon v3/);
    assert.equal(j.backend, 'reference');
    assert.equal(j.numeric, 'f32');
    assert.ok(j.tokens.document > 0 && j.tokens.prompt > 0 && j.tokens.generated > 0);
    assert.ok(j.timings.readSeconds > 0 && j.timings.answerSeconds > 0);
    assert.equal(j.timings.cached, false);
    assert.deepEqual(j.sources.map((s: { path: string }) => s.path), [join(folder, 'notes.txt')]);
    assert.equal(j.skipped.length, 1);
    assert.equal(j.skipped[0].path, join(folder, 'blob.bin'));
  });

  it('--events: JSON Lines as things happen, the done line last', () => {
    const r = ask('--events');
    assert.equal(r.status, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    const types = lines.map((l) => l.type);
    const order = ['source', 'skipped', 'model', 'plan', 'progress', 'read', 'question', 'token', 'answer', 'done'];
    let at = -1;
    for (const t of order) {
      const i = types.indexOf(t);
      assert.ok(i > at, `${t} comes after ${order[order.indexOf(t) - 1] ?? 'the start'} (${types.join(' ')})`);
      at = i;
    }
    assert.equal(types.at(-1), 'done');
    const tokens = lines.filter((l) => l.type === 'token').map((l) => l.text).join('');
    assert.ok(tokens.length > 0, 'the answer streamed as token lines');
    const answer = lines.find((l) => l.type === 'answer')!;
    assert.equal(lines.at(-1)!.answer, answer.answer);
    const last = lines.filter((l) => l.type === 'progress').at(-1)!;
    assert.equal(last.done, last.total);
  });

  it('--events on failure: the error line last on stdout, the one-line message on stderr, the exit code', () => {
    const missing = ctxSync(home, ['ask', folder, 'q?', '-m', join(dir, 'no-model'), '--events']);
    assert.equal(missing.status, 5);
    const lines = jsonLines(missing.stdout);
    assert.deepEqual(lines.at(-1), { type: 'error', kind: 'model', code: 5, message: `${join(dir, 'no-model')}: model folder does not exist` });
    assert.equal(missing.stderr, `ctx: ${join(dir, 'no-model')}: model folder does not exist\n`);

    const input = ctxSync(home, ['ask', join(dir, 'nothing-here.txt'), 'q?', '-m', model, '--events']);
    assert.equal(input.status, 3);
    assert.deepEqual(jsonLines(input.stdout), [{ type: 'error', kind: 'input', code: 3, message: `${join(dir, 'nothing-here.txt')}: no such file or directory` }]);
  });

  it('--json with --events is a usage error (exit 2)', () => {
    const r = ask('--json', '--events');
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'ctx: --json and --events both print to stdout: choose one\n');
  });
});
