// readInputs with named files, several inputs, stdin and PDFs: what becomes an error (and with which
// exit kind), what is skipped, and what the Document says about each source.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { CtxError } from '../../src/errors.js';
import { openInputs, readInputs } from '../../src/input/read.js';
import { PDF_PAGE_MARKERS } from '../../scripts/make-fixtures.js';
import { inputFixtures, isRoot, scratchDir, sharedPath } from '../helpers/fixtures.js';

const fx = inputFixtures();

/** Asserts a CtxError of `kind` whose whole message is `message` (string) or matches it (RegExp). */
async function rejectsWith(p: Promise<unknown>, kind: string, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CtxError, `expected a CtxError, got ${e}`);
    assert.equal(e.kind, kind);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

describe('named files', () => {
  it('a missing file is an input error naming it', async () => {
    await rejectsWith(readInputs(['no/such/file.txt']), 'input', 'no/such/file.txt: no such file or directory');
  });

  it('an empty file is an emptyInput error; binary and undecodable files are input errors', async () => {
    const t = (f: string) => fx.path(`text/${f}`);
    await rejectsWith(readInputs([t('empty.txt')]), 'emptyInput', `${t('empty.txt')}: is empty`);
    await rejectsWith(readInputs([t('binary.dat')]), 'input', `${t('binary.dat')}: is binary (contains NUL bytes)`);
    await rejectsWith(readInputs([t('latin1.txt')]), 'input', new RegExp(`^${t('latin1.txt')}: is not valid UTF-8: invalid byte sequence at byte 3;`));
  });

  it('a named file is read whatever its size and whatever the ignore rules say', async () => {
    const doc = await readInputs([fx.path('repo/big.txt'), fx.path('repo/app.log')], { maxFileBytes: 10 });
    assert.deepEqual(doc.sources.map((s) => s.bytes), [1_500_000, 17]);
  });

  it('several inputs keep their order, each with a header', async () => {
    const a = fx.path('text/utf8.txt');
    const b = fx.path('repo/README.md');
    const doc = await readInputs([b, a]);
    assert.deepEqual(doc.sources.map((s) => s.path), [b, a]);
    const headers = doc.segments.filter((s) => s.source.lineStart === undefined).map((s) => s.text);
    assert.deepEqual(headers, [`==> ${b} <==\n`, `\n==> ${a} <==\n`]);
  });

  it('a single file has no header, and its text is unchanged', async () => {
    const f = fx.path('text/utf8.txt');
    const doc = await readInputs([f]);
    assert.equal(doc.segments.map((s) => s.text).join(''), readFileSync(f, 'utf8'));
  });

  it('the same file named twice (or through a link) is read once', async () => {
    const f = fx.path('repo/src/main.ts');
    const doc = await readInputs([f, fx.path('repo/link-to-main.ts')]);
    assert.equal(doc.sources.length, 1);
    assert.deepEqual(doc.skipped, [{ path: fx.path('repo/link-to-main.ts'), reason: `is the same file as ${f} (already read)` }]);
  });

  it('a file named and also found in a folder keeps the position where it was named', async () => {
    const readme = fx.path('repo/README.md');
    const doc = await readInputs([readme, fx.path('repo/docs')]);
    assert.deepEqual(doc.sources.map((s) => s.path), [readme, fx.path('repo/docs/guide.md')]);
    const again = await readInputs([fx.path('repo/docs'), fx.path('repo/docs/guide.md')]);
    assert.deepEqual(again.sources.map((s) => s.path), [fx.path('repo/docs/guide.md')]);
    assert.deepEqual(
      again.skipped.filter((s) => s.path.endsWith('guide.md')),
      [{ path: fx.path('repo/docs/guide.md'), reason: `is the same file as ${fx.path('repo/docs/guide.md')} (already read)` }],
    );
  });

  it('a file that cannot be opened is a "permission denied" input error', async (t) => {
    if (isRoot) {
      t.skip('running as root, which reads files whatever their mode; test/cli covers this by running ctx as nobody');
      return;
    }
    const f = join(scratchDir('perm'), 'secret.txt');
    writeFileSync(f, 'secret');
    chmodSync(f, 0o000);
    await rejectsWith(readInputs([f]), 'input', `${f}: permission denied`);
  });
});

describe('stdin', () => {
  it('"-" reads stdin as a source named "-"', async () => {
    const doc = await readInputs(['-'], { stdin: Readable.from([Buffer.from('piped '), Buffer.from('text\n')]) });
    assert.deepEqual(doc.sources, [{ path: '-', kind: 'stdin', bytes: 11, encoding: 'utf-8' }]);
    assert.deepEqual(doc.segments, [{ text: 'piped text\n', source: { path: '-', lineStart: 1 } }]);
  });

  it('stdin comes where "-" is, with a "stdin" header among other inputs', async () => {
    const f = fx.path('repo/README.md');
    const doc = await readInputs(['-', f], { stdin: Readable.from(['log line\n']) });
    assert.deepEqual(doc.sources.map((s) => s.path), ['-', f]);
    assert.equal(doc.segments[0]!.text, '==> stdin <==\n');
  });

  it('an empty stdin is an error', async () => {
    await rejectsWith(readInputs(['-'], { stdin: Readable.from([]) }), 'emptyInput', 'stdin: is empty');
  });

  it('binary stdin is refused', async () => {
    await rejectsWith(readInputs(['-'], { stdin: Readable.from([Buffer.from([1, 0, 2])]) }), 'input', 'stdin: is binary (contains NUL bytes)');
  });

  it('"-" twice is a usage error', async () => {
    await rejectsWith(readInputs(['-', '-'], { stdin: Readable.from([]) }), 'usage', /named more than once/);
  });
});

describe('PDF', { skip: fx.skipPdf }, () => {
  const pdf = (f: string) => fx.path(`pdf/${f}`);

  it('one segment per page, with 1-based page numbers', async () => {
    const doc = await readInputs([pdf('three-pages.pdf')]);
    assert.equal(doc.sources.length, 1);
    const s = doc.sources[0]!;
    assert.equal(s.kind, 'pdf');
    assert.equal(s.pages, 3);
    assert.ok(s.bytes > 1000);
    assert.deepEqual(doc.segments.map((seg) => seg.source), [1, 2, 3].map((page) => ({ path: pdf('three-pages.pdf'), page })));
    doc.segments.forEach((seg, i) => {
      assert.match(seg.text, new RegExp(`Page ${i + 1} marker ${PDF_PAGE_MARKERS[i]}`));
      for (const other of PDF_PAGE_MARKERS.filter((_, k) => k !== i)) assert.ok(!seg.text.includes(other));
    });
  });

  it('a corrupt or truncated PDF is "not a valid PDF"', async () => {
    await rejectsWith(readInputs([pdf('corrupt.pdf')]), 'input', `${pdf('corrupt.pdf')}: is not a valid PDF (Invalid PDF structure)`);
    await rejectsWith(readInputs([pdf('truncated.pdf')]), 'input', /truncated\.pdf: is not a valid PDF \(/);
  });

  it('a PDF without a text layer says to run OCR', async () => {
    await rejectsWith(readInputs([pdf('scanned.pdf')]), 'input', /scanned\.pdf: has no text layer \(scanned images\?\); run OCR first/);
  });

  it('an encrypted PDF says it needs a password', async () => {
    await rejectsWith(readInputs([pdf('encrypted.pdf')]), 'input', /encrypted\.pdf: is an encrypted PDF \(it needs a password\)/);
  });

  it('a PDF in a folder walk: the good one is read, the bad ones skipped with their reasons', async () => {
    const doc = await readInputs([fx.path('pdf')]);
    assert.deepEqual(doc.sources.map((s) => s.path), [pdf('three-pages.pdf')]);
    assert.deepEqual(
      doc.skipped.map((s) => [s.path, s.reason.replace(/ \(.*$/, '').replace(/;.*$/, '')]),
      [
        [pdf('corrupt.pdf'), 'is not a valid PDF'],
        [pdf('encrypted.pdf'), 'is an encrypted PDF'],
        [pdf('scanned.pdf'), 'has no text layer'],
        [pdf('truncated.pdf'), 'is not a valid PDF'],
      ],
    );
  });

  it('a PDF without the .pdf extension is recognised by its %PDF- header', async () => {
    const f = join(scratchDir('pdf'), 'report.download');
    writeFileSync(f, readFileSync(pdf('three-pages.pdf')));
    const doc = await readInputs([f]);
    assert.equal(doc.sources[0]!.kind, 'pdf');
    assert.equal(doc.sources[0]!.pages, 3);
  });

  it('a PDF piped on stdin is recognised by its %PDF- header', async () => {
    const doc = await readInputs(['-'], { stdin: Readable.from([readFileSync(pdf('three-pages.pdf'))]) });
    assert.equal(doc.sources[0]!.kind, 'stdin');
    assert.equal(doc.sources[0]!.pages, 3);
    assert.deepEqual(doc.segments[1]!.source, { path: '-', page: 2 });
  });

  const debian = sharedPath('data/pdf/debian-reference.en.pdf');
  it('a real 261-page PDF keeps its page numbers', { skip: debian.skip }, async () => {
    const doc = await readInputs([debian.path]);
    assert.equal(doc.sources[0]!.pages, 261);
    const pages = doc.segments.map((s) => s.source.page!);
    assert.deepEqual(pages, [...pages].sort((a, b) => a - b), 'pages in order');
    assert.ok(pages.length > 250 && pages[pages.length - 1]! <= 261);
    assert.match(doc.segments[0]!.text, /Debian Reference/);
  });
});

describe('reading again (a document too long to hold)', () => {
  const pdf = (f: string) => fx.path(`pdf/${f}`);
  /** Every reading of `inputs`, as the texts of its segments. */
  const reading = async (it: AsyncIterable<{ text: string }>) => {
    const texts: string[] = [];
    for await (const s of it) texts.push(s.text);
    return texts;
  };

  it('gives the same segments from files, a PDF, stdin and a named pipe, holding none of them', async () => {
    const dir = scratchDir('again');
    const a = join(dir, 'a.txt');
    writeFileSync(a, 'first file\n'.repeat(20_000));
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    spawn('sh', ['-c', `printf 'from a pipe\\nlast line' > '${fifo}'`]);
    const spoolDir = join(dir, 'spool');
    const inputs = await openInputs([a, pdf('three-pages.pdf'), '-', fifo], {
      stdin: Readable.from(['piped text\n']),
      holdChars: 1000,
      spoolDir: () => spoolDir,
    });
    const first = await reading(inputs.segments());
    assert.equal(inputs.isHeld, false);
    assert.deepEqual(inputs.sources.map((s) => s.path), [a, pdf('three-pages.pdf'), '-', fifo]);
    assert.equal(inputs.chars, first.join('').length);
    assert.deepEqual([...inputs.textLines], [[a, 20_000], ['-', 1], [fifo, 2]]);
    assert.equal(first[0], `==> ${a} <==\n`);
    assert.ok(first.at(-1)!.endsWith('last line\n'), 'each source ends with a line break under headers');
    assert.deepEqual(await reading(inputs.segments()), first);
    assert.deepEqual(await reading(inputs.segments()), first);
    await inputs.close();
  });

  it('a small document is held: read once', async () => {
    const inputs = await openInputs([fx.path('repo/README.md')]);
    const first = await reading(inputs.segments());
    assert.equal(inputs.isHeld, true);
    assert.deepEqual(await reading(inputs.segments()), first);
  });

  it('a file that changed since the first reading is an input error naming it', async () => {
    const f = join(scratchDir('changed'), 'log.txt');
    writeFileSync(f, 'one line\n'.repeat(1000));
    const inputs = await openInputs([f], { holdChars: 10 });
    await reading(inputs.segments());
    writeFileSync(f, 'one line\n'.repeat(999));
    await rejectsWith(reading(inputs.segments()), 'input', `${f}: changed since ctx first read it (9000 bytes then, 8991 now); run again`);
    writeFileSync(f, Buffer.from([0xff, 0xfe, 0x00]));
    await rejectsWith(reading(inputs.segments()), 'input', new RegExp(`^${f}: changed since ctx first read it \\(now it is `));
  });
});
