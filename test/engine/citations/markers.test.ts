// Source markers: where they go, what they look like, that they change no line, and what they cost
// on the real Qwen tokenizer.
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { addSourceMarkers, LINE_EVERY, NAMED_LINE_EVERY } from '../../../src/engine/citations/markers.js';
import type { Document, Segment } from '../../../src/input/document.js';
import { readInputs } from '../../../src/input/read.js';
import { loadTokenizer } from '../../../src/model/tokenizer.js';
import { REPO_ROOT, sharedPath } from '../../helpers/fixtures.js';

function doc(segments: Segment[]): Document {
  const paths = [...new Set(segments.map((s) => s.source.path))];
  return {
    segments,
    sources: paths.map((path) => {
      const pages = segments.filter((s) => s.source.path === path && s.source.page !== undefined).length;
      return pages ? { path, kind: 'pdf' as const, bytes: 0, pages } : { path, kind: 'text' as const, bytes: 0 };
    }),
    skipped: [],
  };
}

const lines = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `line ${from + i} text`).join('\n') + '\n';
const stripMarkers = (text: string) => text.replace(/\[[^\]\n]*\] /g, '');

describe('source markers', () => {
  it('a PDF gets "[p. N] " at the start of each page', () => {
    const d = doc([1, 2, 4].map((page) => ({ text: `Text of page ${page}.\n`, source: { path: 'book.pdf', page } })));
    const m = addSourceMarkers(d);
    assert.deepEqual(m.doc.segments.map((s) => s.text), ['[p. 1] Text of page 1.\n', '[p. 2] Text of page 2.\n', '[p. 4] Text of page 4.\n']);
    assert.deepEqual(m.markers, ['[p. 1]', '[p. 2]', '[p. 4]']);
    assert.deepEqual(m.kinds, { pages: true, namedPages: false, lines: false, namedLines: false });
    assert.deepEqual(m.doc.segments.map((s) => s.source), d.segments.map((s) => s.source), 'sources unchanged');
  });

  it('several PDFs: the page marker names its file', () => {
    const d = doc([
      { text: '==> a.pdf <==\n', source: { path: 'a.pdf' } },
      { text: 'A one\n', source: { path: 'a.pdf', page: 1 } },
      { text: '\n==> b.pdf <==\n', source: { path: 'b.pdf' } },
      { text: 'B one\n', source: { path: 'b.pdf', page: 1 } },
    ]);
    const m = addSourceMarkers(d);
    assert.deepEqual(m.doc.segments.map((s) => s.text), ['==> a.pdf <==\n', '[a.pdf p. 1] A one\n', '\n==> b.pdf <==\n', '[b.pdf p. 1] B one\n']);
    assert.equal(m.kinds.namedPages, true);
  });

  it(`one text source: "[line N] " on line 1 and every ${LINE_EVERY}th line, across segments, no line added`, () => {
    const first = lines(30);
    const second = lines(30, 31);
    const d = doc([
      { text: first, source: { path: 'notes.txt', lineStart: 1 } },
      { text: second, source: { path: 'notes.txt', lineStart: 31 } },
    ]);
    const m = addSourceMarkers(d);
    assert.deepEqual(m.markers, ['[line 1]', '[line 25]', '[line 50]']);
    const out = m.doc.segments.map((s) => s.text);
    assert.ok(out[0]!.startsWith('[line 1] line 1 text\n'));
    assert.ok(out[0]!.includes('\n[line 25] line 25 text\n'));
    assert.ok(out[1]!.includes('\n[line 50] line 50 text\n'));
    assert.equal(stripMarkers(out.join('')), first + second);
    assert.deepEqual(m.kinds, { pages: false, namedPages: false, lines: true, namedLines: false });
  });

  it('a segment that continues a line gets no marker at its start', () => {
    // A 24-line segment whose last line runs on into the next segment (line 24 split in two).
    const head = lines(23) + 'line 24 first half';
    const d = doc([
      { text: head, source: { path: 'log.txt', lineStart: 1 } },
      { text: ' second half\nline 25 text\n', source: { path: 'log.txt', lineStart: 24 } },
    ]);
    const m = addSourceMarkers(d);
    assert.equal(m.doc.segments[1]!.text, ' second half\n[line 25] line 25 text\n');
  });

  it(`several text sources (a repository): "[path:N]" every ${NAMED_LINE_EVERY} lines, headers untouched`, () => {
    const d = doc([
      { text: '==> repo/a.ts <==\n', source: { path: 'repo/a.ts' } },
      { text: lines(120), source: { path: 'repo/a.ts', lineStart: 1 } },
      { text: '\n==> repo/b.ts <==\n', source: { path: 'repo/b.ts' } },
      { text: 'one line\n', source: { path: 'repo/b.ts', lineStart: 1 } },
    ]);
    const m = addSourceMarkers(d);
    assert.deepEqual(m.markers, ['[repo/a.ts:1]', '[repo/a.ts:50]', '[repo/a.ts:100]', '[repo/b.ts:1]']);
    assert.equal(m.doc.segments[0]!.text, '==> repo/a.ts <==\n');
    assert.equal(m.doc.segments[3]!.text, '[repo/b.ts:1] one line\n');
    assert.equal(m.kinds.namedLines, true);
  });

  it('piped text is named "stdin"', () => {
    const d = doc([
      { text: 'x\n', source: { path: '-', lineStart: 1 } },
      { text: 'y\n', source: { path: 'other.txt', lineStart: 1 } },
    ]);
    assert.deepEqual(addSourceMarkers(d).markers, ['[stdin:1]', '[other.txt:1]']);
  });

  const qwen = sharedPath('models/tokenizers/qwen3');
  const book = sharedPath('data/gutenberg/sherlock_holmes_pg1661.txt');
  it('cost on the Qwen tokenizer: under 3% of the tokens for a book and for ctx\'s own source folder', { skip: qwen.skip || book.skip }, async () => {
    const tok = await loadTokenizer(qwen.path);
    const count = async (d: Document) => (await tok.encodeSegments(d.segments, { workers: 0 })).ids.length;
    // The folder as a user names it, relative: markers carry the path.
    for (const input of [book.path, relative(process.cwd(), join(REPO_ROOT, 'src/engine'))]) {
      const read = await readInputs([input]);
      const plain = await count(read);
      const marked = addSourceMarkers(read);
      const overhead = (await count(marked.doc)) / plain - 1;
      assert.ok(overhead > 0 && overhead < 0.03, `${input}: ${(overhead * 100).toFixed(2)}% overhead with ${marked.markers.length} markers`);
    }
  });
});
