// The kept text of PDFs (issue 13.9): a PDF whose bytes were parsed before is not parsed again, a
// changed one is, the extractor's version and a damaged entry make misses, a cache that cannot be
// made is a warning, and the folder stays under its cap.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PdfTextCache, sha256Hex } from '../../src/input/pdf-text-cache.js';
import { readInputs } from '../../src/input/read.js';
import { inputFixtures, scratchDir } from '../helpers/fixtures.js';

const fx = inputFixtures();

/** The one entry for `pdf`'s bytes in `dir`, as JSON. */
function entryPath(dir: string, pdf: string): string {
  return join(dir, `${sha256Hex(readFileSync(pdf))}.json`);
}

/** Rewrites every kept page's text to "KEPT <page>": a read that returns it did not parse. */
function markEntry(path: string, change: (e: Record<string, unknown>) => void = () => {}): void {
  const e = JSON.parse(readFileSync(path, 'utf8')) as { texts: Array<[number, string]> } & Record<string, unknown>;
  e.texts = e.texts.map(([page]) => [page, `KEPT ${page}\n`]);
  change(e);
  writeFileSync(path, JSON.stringify(e));
}

const texts = (doc: Awaited<ReturnType<typeof readInputs>>) => doc.segments.map((s) => s.text);

/** An entry's worth of text for a PDF that does not exist: for the cache's own bookkeeping. */
const fakeText = (n: number) => ({ pages: 2, bytes: 1000, texts: [[1, `page one ${'x'.repeat(n)}\n`], [2, 'page two\n']] as Array<[number, string]> });
const fakeFile = { path: '/nowhere/a.pdf', size: 1000, mtimeMs: 0 };
const shaOf = (s: string) => sha256Hex(new TextEncoder().encode(s));

describe('PDF text cache: reading PDFs', { skip: fx.skipPdf }, () => {
  it('the same bytes come from the cache (under the name given this time); changed bytes are parsed, even with size and mtime put back', async () => {
    const dir = scratchDir('pdf-text');
    const cache = new PdfTextCache(join(dir, 'kept'));
    const pdf = join(dir, 'a.pdf');
    copyFileSync(fx.path('pdf/three-pages.pdf'), pdf);
    utimesSync(pdf, 1_700_000_000, 1_700_000_000);
    const first = await readInputs([pdf], { pdfTextCache: cache });
    const entry = entryPath(cache.dir, pdf);
    assert.equal((statSync(entry).mode & 0o777).toString(8), '600', 'the text of a document is private');
    assert.equal((statSync(cache.dir).mode & 0o777).toString(8), '700');

    // unchanged: the same document, read from the entry (a parse would not say KEPT)
    const again = await readInputs([pdf], { pdfTextCache: cache });
    assert.deepEqual(again, first);
    markEntry(entry);
    const kept = await readInputs([pdf], { pdfTextCache: cache });
    assert.deepEqual(texts(kept), ['KEPT 1\n', 'KEPT 2\n', 'KEPT 3\n']);
    assert.deepEqual(kept.sources, first.sources);
    assert.deepEqual(kept.segments.map((s) => s.source), first.segments.map((s) => s.source));

    // a copy under another name: the same bytes, the same entry, cited under the new name
    const copy = join(dir, 'copy.pdf');
    copyFileSync(pdf, copy);
    const copied = await readInputs([copy], { pdfTextCache: cache });
    assert.deepEqual(texts(copied), ['KEPT 1\n', 'KEPT 2\n', 'KEPT 3\n']);
    assert.ok(copied.segments.every((s) => s.source.path === copy));

    // One byte of the binary comment on line 2 ("%\xc7\xec\x8f\xa2") changed: the same pages, other
    // bytes, the same size, and the modification time put back.
    const size = statSync(pdf).size;
    const bytes = readFileSync(pdf);
    assert.equal(bytes[9], 0x25, 'line 2 is a comment');
    bytes[10] = bytes[10]! ^ 1;
    writeFileSync(pdf, bytes);
    utimesSync(pdf, 1_700_000_000, 1_700_000_000);
    const changed = await readInputs([pdf], { pdfTextCache: cache });
    assert.deepEqual(texts(changed), texts(first));
    assert.equal(changed.sources[0]!.bytes, size);
    assert.equal(readdirSync(cache.dir).filter((n) => n.endsWith('.json')).length, 2, 'the changed bytes have an entry of their own');
  });

  it('a cache folder that cannot be made is one warning; the PDF is read all the same', async () => {
    const dir = scratchDir('pdf-text-ro');
    const file = join(dir, 'a-file');
    writeFileSync(file, ''); // a folder under a file cannot be made, by root either
    const warnings: string[] = [];
    const doc = await readInputs([fx.path('pdf/three-pages.pdf')], { pdfTextCache: new PdfTextCache(join(file, 'kept')), warn: (m) => warnings.push(m) });
    assert.equal(doc.sources[0]!.pages, 3);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /three-pages\.pdf: could not keep its text in .*a-file\/kept \(ENOTDIR.*\); it will be parsed again next time$/);
  });
});

describe('PDF text cache: entries', () => {
  it('an entry of another extractor version, another hash, or a damaged one is a miss, and is removed', async () => {
    const cache = new PdfTextCache(join(scratchDir('pdf-text-stale'), 'kept'));
    const sha = shaOf('a');
    await cache.save(sha, fakeFile, fakeText(1));
    assert.deepEqual(await cache.load(sha), fakeText(1));
    assert.equal(await cache.load(shaOf('b')), null);
    const path = join(cache.dir, `${sha}.json`);
    for (const damage of [
      (e: Record<string, unknown>) => (e.extractor = 'pdf-parse 0.0.1/1'),
      (e: Record<string, unknown>) => (e.sha256 = shaOf('b')),
      (e: Record<string, unknown>) => (e.format = 0),
    ]) {
      await cache.save(sha, fakeFile, fakeText(1));
      markEntry(path, damage);
      assert.equal(await cache.load(sha), null);
      assert.deepEqual(readdirSync(cache.dir), []);
    }
    writeFileSync(path, '{"format": 1, "texts": [');
    assert.equal(await cache.load(sha), null);
    assert.deepEqual(readdirSync(cache.dir), []);
  });

  it('past the cap the least recently used entries go, never the one just written; clear removes them all', async () => {
    const cache0 = new PdfTextCache(join(scratchDir('pdf-text-cap'), 'kept'));
    await cache0.save(shaOf('probe'), fakeFile, fakeText(1000));
    const one = statSync(join(cache0.dir, `${shaOf('probe')}.json`)).size;
    await cache0.clear();
    // Room for two entries: the third evicts the least recently used, which a load makes the newest.
    const cache = new PdfTextCache(cache0.dir, Math.floor(2.5 * one));
    const old = new Date(Date.now() - 60_000);
    await cache.save(shaOf('a'), fakeFile, fakeText(1000));
    utimesSync(join(cache.dir, `${shaOf('a')}.json`), old, old);
    await cache.save(shaOf('b'), fakeFile, fakeText(1000));
    utimesSync(join(cache.dir, `${shaOf('b')}.json`), old, new Date(old.getTime() + 1000));
    assert.ok(await cache.load(shaOf('a')), 'a is used now');
    await cache.save(shaOf('c'), fakeFile, fakeText(1000));
    assert.deepEqual(readdirSync(cache.dir).sort(), [`${shaOf('a')}.json`, `${shaOf('c')}.json`].sort());

    // A single entry over the cap is still kept: it was just written.
    const tiny = new PdfTextCache(cache.dir, 10);
    await tiny.save(shaOf('d'), fakeFile, fakeText(1000));
    assert.deepEqual(readdirSync(cache.dir), [`${shaOf('d')}.json`]);

    const removed = await tiny.clear();
    assert.equal(removed.count, 1);
    assert.ok(removed.bytes > one / 2);
    assert.deepEqual(readdirSync(cache.dir), []);
  });
});
