// Citation checking: answers with valid, out-of-range, malformed and non-citations, resolved against
// the pages and lines of the inputs; invalid ones marked in the text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findCitations, indexSources, markInvalid, type Citation, type SourceIndex } from '../../../src/engine/citations/resolve.js';
import type { Document } from '../../../src/input/document.js';

/** A PDF of 12 pages (page 7 without text), a repository of two files, and piped text. */
const DOC: Document = {
  segments: [
    ...[1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12].map((page) => ({ text: `page ${page}\n`, source: { path: 'docs/report.pdf', page } })),
    { text: '==> repo/src/x.ts <==\n', source: { path: 'repo/src/x.ts' } },
    { text: 'a\nb\n', source: { path: 'repo/src/x.ts', lineStart: 1 } },
    { text: 'c\nd\ne', source: { path: 'repo/src/x.ts', lineStart: 3 } }, // 5 lines, the last without a break
    { text: '==> repo/README.md <==\n', source: { path: 'repo/README.md' } },
    { text: '# Title\n\ntext\n', source: { path: 'repo/README.md', lineStart: 1 } }, // 3 lines
  ],
  sources: [
    { path: 'docs/report.pdf', kind: 'pdf', bytes: 1, pages: 12 },
    { path: 'repo/src/x.ts', kind: 'text', bytes: 1 },
    { path: 'repo/README.md', kind: 'text', bytes: 1 },
  ],
  skipped: [],
};

const index = indexSources(DOC);

/** The citations of `answer` as [text, valid, path?, page/line?]. */
function verdicts(answer: string, idx: SourceIndex = index) {
  return findCitations(answer, idx).map((c) => [c.text, c.valid, c.path, c.page ?? c.line]);
}

describe('indexSources', () => {
  it('counts pages from the PDF (pages without text too) and lines over segments', () => {
    assert.deepEqual([...index.pdfs], [['docs/report.pdf', 12]]);
    assert.deepEqual([...index.texts], [['repo/src/x.ts', 5], ['repo/README.md', 3]]);
  });
});

describe('findCitations', () => {
  it('resolves valid pages: [p. N], ranges, "page N", a named file, a page without text', () => {
    assert.deepEqual(verdicts('See [p. 3], [pp. 2–4], [page 12] and [docs/report.pdf p. 5]; also [p. 7] and [p.1].'), [
      ['p. 3', true, 'docs/report.pdf', 3],
      ['pp. 2–4', true, 'docs/report.pdf', 2],
      ['page 12', true, 'docs/report.pdf', 12],
      ['docs/report.pdf p. 5', true, 'docs/report.pdf', 5],
      ['p. 7', true, 'docs/report.pdf', 7],
      ['p.1', true, 'docs/report.pdf', 1],
    ]);
    const range = findCitations('[pp. 2-4]', index)[0]!;
    assert.equal(range.pageEnd, 4);
  });

  it('resolves valid lines: [path:N], a path suffix, ranges, the last line without a break', () => {
    assert.deepEqual(verdicts('[repo/src/x.ts:2] [src/x.ts:5] [README.md:1-3] [repo/src/x.ts:L4]'), [
      ['repo/src/x.ts:2', true, 'repo/src/x.ts', 2],
      ['src/x.ts:5', true, 'repo/src/x.ts', 5],
      ['README.md:1-3', true, 'repo/README.md', 1],
      ['repo/src/x.ts:L4', true, 'repo/src/x.ts', 4],
    ]);
  });

  it('out of range: pages and lines past the end, page 0, a backward range', () => {
    const found = findCitations('[p. 13] [p. 999] [repo/src/x.ts:6] [p. 0] [pp. 5–3]', index);
    assert.deepEqual(found.map((c) => c.valid), [false, false, false, false, false]);
    assert.equal(found[0]!.reason, 'no page 13: docs/report.pdf has 12 pages');
    assert.equal(found[2]!.reason, 'no line 6: repo/src/x.ts has 5 lines');
    assert.equal(found[3]!.reason, 'not a page range');
  });

  it('wrong file or kind: not an input, a PDF cited by line, a text file cited by page, [line N] with several text files', () => {
    const found = findCitations('[other.ts:3] [docs/report.pdf:3] [repo/README.md p. 1] [line 2]', index);
    assert.deepEqual(found.map((c) => [c.valid, c.reason]), [
      [false, 'other.ts is not one of the inputs'],
      [false, 'docs/report.pdf is a PDF: cite it by page'],
      [false, 'repo/README.md is a text file: cite it by line'],
      [false, 'several text files were read: the citation must name one'],
    ]);
  });

  it('malformed: a page or line marker without a usable number', () => {
    const found = findCitations('[p. ] [p. twelve] [pp. 3-] [repo/src/x.ts:abc] [src/x.ts:] [lines 2-x]', index);
    assert.equal(found.length, 6);
    for (const c of found) {
      assert.equal(c.valid, false);
      assert.match(c.reason!, /^malformed/);
    }
  });

  it('leaves ordinary brackets alone: indexes, notes, links, prose with "page", URLs', () => {
    assert.deepEqual(verdicts('a[0] [1] [note: x] [see here](http://x.y) [e.g.: that] [blank page 3] [https://x.org/a] [x]'), []);
  });

  it('several citations in one bracket, and bare numbers continuing one', () => {
    assert.deepEqual(verdicts('[p. 2; p. 99] [pp. 3, 5] [src/x.ts:1, 4]'), [
      ['p. 2', true, 'docs/report.pdf', 2],
      ['p. 99', false, 'docs/report.pdf', 99],
      ['pp. 3', true, 'docs/report.pdf', 3],
      ['5', true, 'docs/report.pdf', 5],
      ['src/x.ts:1', true, 'repo/src/x.ts', 1],
      ['4', true, 'repo/src/x.ts', 4],
    ]);
  });

  it('one text file: [line N]; piped text: [stdin:N]; several PDFs: [p. N] must name one', () => {
    const one: SourceIndex = { pdfs: new Map(), texts: new Map([['notes.txt', 40]]) };
    assert.deepEqual(verdicts('[line 40] [lines 1–3] [line 41]', one), [
      ['line 40', true, 'notes.txt', 40],
      ['lines 1–3', true, 'notes.txt', 1],
      ['line 41', false, 'notes.txt', 41],
    ]);
    const piped: SourceIndex = { pdfs: new Map(), texts: new Map([['-', 3], ['a.txt', 3]]) };
    assert.deepEqual(verdicts('[stdin:2]', piped), [['stdin:2', true, '-', 2]]);
    const twoPdfs: SourceIndex = { pdfs: new Map([['a.pdf', 2], ['b.pdf', 9]]), texts: new Map() };
    assert.deepEqual(findCitations('[p. 1] [b.pdf p. 9]', twoPdfs).map((c) => c.valid), [false, true]);
  });

  it('offsets point at each citation in the answer', () => {
    const answer = 'x [p. 2; p. 3] y';
    for (const c of findCitations(answer, index)) assert.equal(answer.slice(c.start, c.end), c.text);
  });
});

describe('markInvalid', () => {
  it('puts "?" after each invalid citation inside its bracket and leaves valid ones alone', () => {
    const answer = 'It grew [p. 3]. It fell [p. 999]. See [p. 2; p. 40] and [src/x.ts:abc] and [src/x.ts:2].';
    const marked = markInvalid(answer, findCitations(answer, index));
    assert.equal(marked, 'It grew [p. 3]. It fell [p. 999?]. See [p. 2; p. 40?] and [src/x.ts:abc?] and [src/x.ts:2].');
  });

  it('an answer without invalid citations is unchanged', () => {
    const none: Citation[] = [];
    assert.equal(markInvalid('plain [p. 1]', none), 'plain [p. 1]');
  });
});
