// The session cache through the CLI: a second question skips reading and answers the same; a
// changed input misses; a corrupt entry is discarded with a warning; LRU eviction under the size
// cap; a full disk keeps the cache as it was and the run still answers; Ctrl-C or SIGTERM while
// reading exits 130 at once and leaves no entry; `ctx cache ls|rm|clear`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { inputFixtures, isRoot, scratchDir } from '../helpers/fixtures.js';
import { ctxHome, ctxSpawn, ctxSync, type CtxHome } from '../ui/run-ctx.js';

const dir = scratchDir('cache-cli');
let model: string;
let docA: string;
let docB: string;

const ask = (home: CtxHome, doc: string, question: string, ...more: string[]) =>
  ctxSync(home, ['ask', doc, question, '-m', model, '--backend', 'reference', '--max-tokens', '6', '--json', ...more]);

function json(r: ReturnType<typeof ctxSync>) {
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { answer: string; timings: { cached: boolean; cacheSaveBytes: number | null; firstTokenAfterReadSeconds: number | null }; warnings: string[] };
}

function entries(home: CtxHome): string[] {
  return existsSync(home.sessions) ? readdirSync(home.sessions).sort() : [];
}

before(() => {
  model = fixtureModel('tiny-beacon');
  docA = join(dir, 'a.txt');
  docB = join(dir, 'b.txt');
  writeFileSync(docA, 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(10));
  writeFileSync(docB, 'A different document about the weather in spring.\n'.repeat(10));
});

describe('ctx ask with the session cache', () => {
  it('the entry is written after the first answer token, and reported before the run ends', () => {
    const home = ctxHome(join(dir, 'order'));
    const r = ctxSync(home, ['ask', docA, 'What is the answer?', '-m', model, '--backend', 'reference', '--max-tokens', '6', '--events']);
    assert.equal(r.status, 0, r.stderr);
    const types = r.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
    const token = types.indexOf('token');
    assert.ok(token > types.indexOf('read'), 'the answer has a token');
    assert.ok(types.indexOf('saved') > token, `saved after the first token: ${types.join(' ')}`);
    assert.equal(types.at(-1), 'done');
    assert.equal(entries(home).length, 1);
  });

  it('a second question about the same document is answered from the cache, with the same answer', () => {
    const home = ctxHome(join(dir, 'hit'));
    const first = json(ask(home, docA, 'What is the answer?'));
    assert.equal(first.timings.cached, false);
    assert.equal(entries(home).length, 1);
    assert.equal(first.timings.cacheSaveBytes, statSync(join(home.sessions, entries(home)[0])).size, 'the save is reported with the bytes it wrote');
    const second = json(ask(home, docA, 'What is the answer?'));
    assert.equal(second.timings.cached, true);
    assert.equal(second.timings.cacheSaveBytes, null, 'nothing written on a hit');
    assert.equal(second.answer, first.answer, 'a restored session answers token for token like a fresh read');
    // The state after reading does not depend on the question.
    assert.equal(json(ask(home, docA, 'And the fox?')).timings.cached, true);

    const plain = ctxSync(home, ['ask', docA, 'What is the answer?', '-m', model, '--backend', 'reference', '--max-tokens', '6']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stderr, /^document read from cache \(\d+ tokens\)$/m);
    assert.doesNotMatch(plain.stderr, /reading \d/);

    const events = ctxSync(home, ['ask', docA, 'What is the answer?', '-m', model, '--backend', 'reference', '--max-tokens', '6', '--events']);
    const lines = events.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; cached?: boolean });
    assert.equal(lines.some((l) => l.type === 'progress'), false, 'no reading progress on a hit');
    assert.deepEqual(lines.find((l) => l.type === 'read')?.cached, true);
  });

  it('--kv-dtype: f16 KV (the cpu default) and f32 KV are different numeric modes with their own entries', () => {
    const home = ctxHome(join(dir, 'kv-dtype'));
    const run = (...more: string[]) => {
      const r = ctxSync(home, ['ask', docA, 'What is the answer?', '-m', model, '--backend', 'cpu', '--max-tokens', '4', '--json', ...more]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { numeric: string; timings: { cached: boolean } };
    };
    const f16 = run();
    assert.equal(f16.numeric, 'f32 kv-f16');
    const f32 = run('--kv-dtype', 'f32');
    assert.equal(f32.numeric, 'f32');
    assert.equal(f32.timings.cached, false, 'an f16 entry is not restored into f32 KV');
    assert.equal(run('--kv-dtype', 'f32').timings.cached, true);
    assert.equal(entries(home).length, 2);
    const bad = ctxSync(home, ['ask', docA, 'q?', '-m', model, '--kv-dtype', 'f8']);
    assert.equal(bad.status, 2, bad.stderr);
  });

  it('select: another --select-reuse (used only while answering) is answered from the same entry', () => {
    const home = ctxHome(join(dir, 'select-reuse'));
    const select = (reuse: string) => json(ask(home, docA, 'What is the answer?', '--strategy', 'select', '--select-reuse', reuse));
    assert.equal(select('0.9').timings.cached, false);
    assert.equal(select('0.5').timings.cached, true);
    assert.equal(select('1.01').timings.cached, true, 'reuse off');
    assert.equal(entries(home).length, 1);
  });

  it('a changed input, or --no-cache, reads the document again', () => {
    const home = ctxHome(join(dir, 'miss'));
    const doc = join(dir, 'changing.txt');
    writeFileSync(doc, 'The answer is 42.\n'.repeat(20));
    json(ask(home, doc, 'q?'));
    writeFileSync(doc, 'The answer is 43.\n'.repeat(20));
    assert.equal(json(ask(home, doc, 'q?')).timings.cached, false);
    assert.equal(entries(home).length, 2);
    assert.equal(json(ask(home, doc, 'q?', '--no-cache')).timings.cached, false);
    const viaEnv = ctxSync(home, ['ask', doc, 'q?', '-m', model, '--backend', 'reference', '--max-tokens', '6', '--json'], { env: { CTX_NO_CACHE: '1' } });
    assert.equal(json(viaEnv).timings.cached, false);
    assert.equal(entries(home).length, 2, '--no-cache neither uses nor fills the cache');
  });

  it('a corrupt entry is discarded with a warning, the document read again, and the entry rewritten', () => {
    const home = ctxHome(join(dir, 'corrupt'));
    const first = json(ask(home, docA, 'What is the answer?'));
    const [name] = entries(home);
    const path = join(home.sessions, name!);
    const bytes = readFileSync(path);
    bytes[bytes.length - 200] ^= 0xff;
    writeFileSync(path, bytes);
    const r = json(ask(home, docA, 'What is the answer?'));
    assert.equal(r.timings.cached, false);
    assert.equal(r.answer, first.answer);
    assert.deepEqual(r.warnings, [`cache: ${path}: discarded a corrupt cache entry (checksum mismatch); reading the document instead`]);
    assert.equal(json(ask(home, docA, 'What is the answer?')).timings.cached, true);
  });

  it('keeps the cache under --cache-max-size by evicting the least recently used entry', () => {
    const home = ctxHome(join(dir, 'evict'));
    json(ask(home, docA, 'q?'));
    const size = statSync(join(home.sessions, entries(home)[0]!)).size;
    const cap = String(Math.floor(size * 1.5));
    json(ask(home, docB, 'q?', '--cache-max-size', cap));
    const ls = JSON.parse(ctxSync(home, ['cache', 'ls', '--json']).stdout) as { entries: Array<{ inputs: string[] }> };
    assert.deepEqual(ls.entries.map((e) => e.inputs), [[docB]]);
  });

  it('a full disk while saving: one warning, the answer still comes, the cache is as it was', () => {
    const home = ctxHome(join(dir, 'enospc'));
    json(ask(home, docA, 'q?'));
    const before = entries(home);
    const r = ctxSync(home, ['ask', docB, 'q?', '-m', model, '--backend', 'reference', '--max-tokens', '6'], { env: { CTX_TEST_CACHE_WRITE_ERROR: 'ENOSPC' } });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 0, 'the answer is printed');
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
    assert.deepEqual(warnings, [`warning: cache: could not save the document to the cache (${home.sessions}: no space left on device); the cache is unchanged`]);
    assert.deepEqual(entries(home), before, 'no new entry and no temp file');
    assert.equal(json(ask(home, docA, 'q?')).timings.cached, true, 'the earlier entry still works');
  });

  const tmpfsSkip = !isRoot ? 'needs root to mount a small tmpfs' : false;
  // 56 KiB: the first document's session (28 KiB), the remembered hash of the weights and the
  // document's token record (a 4 KiB page each) fit; a second session does not.
  it('a real full disk (a 56 KiB tmpfs) behaves the same', { skip: tmpfsSkip }, (t) => {
    const mnt = join(dir, 'tmpfs');
    mkdirSync(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=56k', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (e) {
      t.skip(`mount -t tmpfs failed here: ${(e as Error).message.split('\n')[0]}`);
      return;
    }
    try {
      const home: CtxHome = { config: join(dir, 'tmpfs-config'), cache: mnt, sessions: join(mnt, 'sessions') };
      mkdirSync(home.config, { recursive: true });
      json(ask(home, docA, 'q?')); // about 20 KiB: fits
      const before = entries(home);
      assert.equal(before.length, 1);
      const r = ctxSync(home, ['ask', docB, 'q?', '-m', model, '--backend', 'reference', '--max-tokens', '6']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /^warning: cache: could not save the document to the cache \(.*: no space left on device\); the cache is unchanged$/m);
      assert.deepEqual(entries(home), before);
      assert.equal(json(ask(home, docA, 'q?')).timings.cached, true);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('ctx cache ls | rm | clear', () => {
  it('lists entries with inputs, model, strategy, size and last use; removes by id prefix; clears', () => {
    const home = ctxHome(join(dir, 'manage'));
    json(ask(home, docA, 'q?'));
    json(ask(home, docB, 'q?'));
    const ls = JSON.parse(ctxSync(home, ['cache', 'ls', '--json']).stdout) as {
      dir: string;
      totalBytes: number;
      entries: Array<{ id: string; bytes: number; lastUsed: string; inputs: string[]; model: string; strategy: string; backend: string; numeric: string; tokens: number }>;
    };
    assert.equal(ls.dir, home.sessions);
    assert.equal(ls.entries.length, 2);
    assert.deepEqual(ls.entries[0]!.inputs, [docB], 'most recently used first');
    assert.equal(ls.totalBytes, ls.entries[0]!.bytes + ls.entries[1]!.bytes);
    assert.match(ls.entries[0]!.strategy, /^beacon v3/);
    assert.equal(ls.entries[0]!.backend, 'reference');
    assert.equal(ls.entries[0]!.model, model);

    const text = ctxSync(home, ['cache', 'ls']);
    assert.match(text.stdout, /^ID +SIZE +LAST USED +TOKENS +STRATEGY/);
    const rows = text.stdout.trimEnd().split('\n').slice(0, -1);
    for (const row of rows) assert.ok(row.length <= 100, `a row fits 100 columns: ${row}`);
    assert.ok(rows.slice(1).every((row) => row.includes(' tiny-beacon ')), `a model folder shows as its name:\n${rows.join('\n')}`);

    const noId = ctxSync(home, ['cache', 'rm']);
    assert.equal(noId.status, 2);
    assert.equal(noId.stderr, "ctx: missing required argument 'ids' (see ctx cache rm --help)\n");
    assert.match(text.stdout, /2 entries, .* of 4 GiB · /);

    const missing = ctxSync(home, ['cache', 'rm', 'zzzz']);
    assert.equal(missing.status, 2);
    assert.equal(missing.stderr, 'ctx: no cached document has the id zzzz (see ctx cache ls)\n');

    const rm = ctxSync(home, ['cache', 'rm', ls.entries[1]!.id.slice(0, 8)]);
    assert.equal(rm.status, 0, rm.stderr);
    assert.match(rm.stdout, /^removed 1 cached document \(.+\)\n$/);
    assert.equal(entries(home).length, 1);
    const clear = ctxSync(home, ['cache', 'clear', '--json']);
    assert.deepEqual(JSON.parse(clear.stdout).removed, [ls.entries[0]!.id]);
    assert.deepEqual(entries(home), []);
    assert.match(ctxSync(home, ['cache', 'ls']).stdout, /^no cached documents/);
  });
});

describe('the kept text of PDFs (issue 13.9)', { skip: inputFixtures().skipPdf }, () => {
  it('ask keeps a PDF\'s text and the next run (ask, inspect) uses it; --no-cache neither uses nor fills it; cache clear removes it', () => {
    const home = ctxHome(join(dir, 'pdf-text'));
    const pdf = inputFixtures().path('pdf/three-pages.pdf');
    const kept = join(home.cache, 'pdf-text');
    const texts = () => (existsSync(kept) ? readdirSync(kept) : []);
    const askPdf = (...more: string[]) => ctxSync(home, ['ask', pdf, 'What is on page 2?', '-m', model, '--backend', 'reference', '--max-tokens', '2', '--json', ...more]);

    const uncached = askPdf('--no-cache');
    assert.equal(uncached.status, 0, uncached.stderr);
    assert.deepEqual(texts(), [], '--no-cache keeps no text');
    const first = json(askPdf());
    assert.equal(texts().length, 1);
    // The entry's text replaced: a run that uses it reads other text (a parse would not).
    const entry = join(kept, texts()[0]!);
    const stored = JSON.parse(readFileSync(entry, 'utf8')) as { texts: Array<[number, string]> };
    stored.texts = stored.texts.map(([page]) => [page, `kept ${page} ${'x'.repeat(200)}\n`]);
    writeFileSync(entry, JSON.stringify(stored));
    const fromKept = JSON.parse(askPdf('--no-cite').stdout) as { tokens: { document: number } };
    const parsed = JSON.parse(askPdf('--no-cite', '--no-cache').stdout) as { tokens: { document: number } };
    assert.notEqual(fromKept.tokens.document, parsed.tokens.document, 'the kept text was read, not the PDF');
    assert.equal(first.timings.cached, false);
    const inspected = JSON.parse(ctxSync(home, ['inspect', '--json', '--no-cite', pdf]).stdout) as { tokens: { total: number } };
    assert.equal(inspected.tokens.total, Math.ceil((3 * (`kept 1 ${'x'.repeat(200)}\n`.length)) / 4), 'inspect reads the kept text too');

    const clear = ctxSync(home, ['cache', 'clear']);
    assert.equal(clear.status, 0, clear.stderr);
    assert.match(clear.stdout, /^removed \d+ cached documents? \(.+\) and the text of 1 PDF \(.+\)\n$/);
    assert.deepEqual(texts(), []);
  });
});

describe('interrupted while reading', () => {
  let long: string;
  before(() => {
    long = join(dir, 'long.txt');
    writeFileSync(long, 'Lines of a longer document that takes a few seconds to read. '.repeat(100));
  });
  after(() => rmSync(long, { force: true }));

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} exits 130 within a second, ends --events with the error line, and caches nothing`, async () => {
      const home = ctxHome(join(dir, `interrupt-${signal}`));
      const child = ctxSpawn(home, ['ask', long, 'q?', '-m', fixtureModel('tiny'), '--backend', 'reference', '--strategy', 'select', '--chunk', '16', '--events']);
      let stdout = '';
      let stderr = '';
      let sentAt = 0;
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (!sentAt && /"type":"progress"/.test(stdout)) {
          sentAt = performance.now();
          child.kill(signal);
        }
      });
      const code = await exited;
      const tookMs = performance.now() - sentAt;
      assert.ok(sentAt > 0, `reading had started (${stderr})`);
      assert.equal(code, 130);
      assert.ok(tookMs < 1000, `exited ${Math.round(tookMs)} ms after ${signal}`);
      const lines = stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; code?: number });
      assert.equal(lines.some((l) => l.type === 'read'), false, 'stopped before the end of the document');
      assert.deepEqual(lines.at(-1), { type: 'error', kind: 'interrupted', code: 130, message: 'interrupted' });
      assert.equal(stderr, 'ctx: interrupted\n');
      assert.deepEqual(entries(home), [], 'no entry and no temp file');
    });
  }
});
