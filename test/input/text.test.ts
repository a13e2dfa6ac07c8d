// Text decoding and segmentation: encodings, invalid UTF-8 with its offset, binary sniffing, empty
// input, segment bounds and line numbers, and streaming a file larger than one segment.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { binaryReason, firstInvalidUtf8, incompleteTailLength } from '../../src/input/encoding.js';
import { Rejection } from '../../src/input/rejection.js';
import { SEGMENT_CHARS, TextSegmenter, readTextFile } from '../../src/input/text.js';
import { LATIN1_BAD_OFFSET } from '../../scripts/make-fixtures.js';
import { inputFixtures, scratchDir } from '../helpers/fixtures.js';

const fx = inputFixtures();
const SAMPLE = 'Grüße aus Köln — naïve café, 東京, emoji 🙂\nsecond line\n';

/** Feeds `bytes` to a segmenter in chunks of `chunk` bytes and returns the result. */
function segment(bytes: Buffer, chunk = bytes.length || 1, segmentChars?: number) {
  const s = new TextSegmenter('t.txt', segmentChars);
  for (let i = 0; i < bytes.length; i += chunk) s.push(bytes.subarray(i, i + chunk));
  return s.end();
}

function rejection(fn: () => unknown): Rejection {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Rejection, `expected a Rejection, got ${e}`);
    return e;
  }
  assert.fail('expected a Rejection');
}

describe('encodings', () => {
  for (const [file, encoding] of [
    ['utf8.txt', 'utf-8'],
    ['utf8-bom.txt', 'utf-8 (BOM)'],
    ['utf16le.txt', 'utf-16le'],
    ['utf16be.txt', 'utf-16be'],
  ] as const) {
    it(`${file} decodes to the same text (${encoding}), BOM removed`, async () => {
      const r = await readTextFile(fx.path(`text/${file}`), file);
      assert.equal(r.encoding, encoding);
      assert.equal(r.segments.map((s) => s.text).join(''), SAMPLE);
    });
  }

  it('decodes characters split across chunks, byte by byte', () => {
    for (const bytes of [Buffer.from(SAMPLE), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(SAMPLE, 'utf16le')])]) {
      assert.equal(segment(bytes, 1).segments.map((s) => s.text).join(''), SAMPLE);
    }
  });
});

describe('invalid UTF-8', () => {
  it('names the byte offset of the first bad sequence (latin1 fixture)', async () => {
    await assert.rejects(readTextFile(fx.path('text/latin1.txt'), 'latin1.txt'), (e: unknown) => {
      assert.ok(e instanceof Rejection);
      assert.equal(e.category, 'undecodable');
      assert.match(e.message, new RegExp(`not valid UTF-8: invalid byte sequence at byte ${LATIN1_BAD_OFFSET}\\b`));
      assert.match(e.message, /iconv/);
      return true;
    });
  });

  it('counts the offset across chunks and after the BOM', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.alloc(70_000, 0x61), Buffer.from([0xff, 0x61])]);
    for (const chunk of [bytes.length, 65_536, 4096, 7]) {
      const e = rejection(() => segment(bytes, chunk));
      assert.match(e.message, /at byte 70003\b/, `chunk size ${chunk}`);
    }
  });

  it('a character cut off at the end of the input is invalid', () => {
    const bytes = Buffer.concat([Buffer.from('abc'), Buffer.from('€').subarray(0, 2)]);
    assert.match(rejection(() => segment(bytes, 1)).message, /truncated character at the end at byte 3/);
  });

  it('firstInvalidUtf8 follows the Unicode well-formedness table', () => {
    const at = (...b: number[]) => firstInvalidUtf8(Uint8Array.from(b));
    assert.equal(at(0x41, 0xe2, 0x82, 0xac), -1, '€ is valid');
    assert.equal(at(0xf0, 0x9f, 0x99, 0x82), -1, 'an emoji is valid');
    assert.equal(at(0xc0, 0x80), 0, 'overlong NUL');
    assert.equal(at(0x41, 0xe0, 0x80, 0x80), 1, 'overlong 3-byte form');
    assert.equal(at(0xed, 0xa0, 0x80), 0, 'a UTF-16 surrogate encoded in UTF-8');
    assert.equal(at(0xf4, 0x90, 0x80, 0x80), 0, 'above U+10FFFF');
    assert.equal(at(0x80), 0, 'a lone continuation byte');
    assert.equal(at(0xe2, 0x82), 0, 'cut off at the end');
  });

  it('incompleteTailLength holds back only an unfinished sequence', () => {
    const tail = (...b: number[]) => incompleteTailLength(Uint8Array.from(b));
    assert.equal(tail(0x41), 0);
    assert.equal(tail(0x41, 0xe2), 1);
    assert.equal(tail(0x41, 0xe2, 0x82), 2);
    assert.equal(tail(0xe2, 0x82, 0xac), 0, 'complete');
    assert.equal(tail(0x41, 0xf0, 0x9f, 0x99), 3);
  });

  it('UTF-16 with an unpaired surrogate is refused with its offset', () => {
    const units = Buffer.from('ab', 'utf16le');
    const lone = Buffer.from([0x00, 0xd8]); // U+D800, little-endian, not followed by a low surrogate
    const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), units, lone, Buffer.from('c', 'utf16le')]);
    assert.match(rejection(() => segment(bytes)).message, /not valid UTF-16LE: invalid byte sequence at byte 6\b/);
  });
});

describe('binary, empty and whitespace-only input', () => {
  it('NUL bytes mean binary', async () => {
    await assert.rejects(readTextFile(fx.path('text/binary.dat'), 'binary.dat'), (e: unknown) => {
      assert.ok(e instanceof Rejection && e.category === 'binary');
      assert.match(e.message, /binary \(contains NUL bytes\)/);
      return true;
    });
  });

  it('mostly control characters mean binary', async () => {
    await assert.rejects(readTextFile(fx.path('text/control.txt'), 'control.txt'), /mostly control characters/);
  });

  it('tabs, form feeds and ANSI colour codes are text', () => {
    assert.equal(binaryReason(Buffer.from('\x1b[31merror\x1b[0m\tdetail\f\r\n'.repeat(20))), null);
  });

  it('only the first 8 KiB are sniffed: a NUL later is decoded as text', () => {
    const bytes = Buffer.concat([Buffer.alloc(9000, 0x61), Buffer.from([0x00])]);
    assert.equal(segment(bytes).bytes, 9001);
  });

  it('empty input is refused with the emptyInput exit kind', async () => {
    await assert.rejects(readTextFile(fx.path('text/empty.txt'), 'empty.txt'), (e: unknown) => {
      assert.ok(e instanceof Rejection && e.category === 'empty' && e.exitKind === 'emptyInput');
      assert.equal(e.message, 'is empty');
      return true;
    });
    assert.equal(rejection(() => segment(Buffer.from([0xef, 0xbb, 0xbf]))).message, 'is empty (only whitespace)');
  });

  it('whitespace only counts as empty', async () => {
    await assert.rejects(readTextFile(fx.path('text/whitespace.txt'), 'ws.txt'), /is empty \(only whitespace\)/);
  });
});

describe('segments', () => {
  it('end at line breaks within the size, and know their first line', () => {
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i + 1} ${'x'.repeat(i % 7)}`);
    const text = `${lines.join('\n')}\n`;
    const r = segment(Buffer.from(text), 13, 64);
    assert.equal(r.segments.map((s) => s.text).join(''), text);
    for (const s of r.segments) {
      assert.ok(s.text.length <= 64);
      assert.ok(s.text.endsWith('\n'));
      // The segment's first line is the line its lineStart names.
      assert.equal(s.text.split('\n')[0], lines[s.source.lineStart! - 1]);
      assert.equal(s.source.path, 't.txt');
    }
    assert.ok(r.segments.length > 5);
  });

  it('a line longer than a segment is cut at the size, and the next part keeps its line number', () => {
    const text = `short\n${'y'.repeat(150)}\nend\n`;
    const r = segment(Buffer.from(text), 1000, 64);
    assert.equal(r.segments.map((s) => s.text).join(''), text);
    assert.deepEqual(r.segments.map((s) => s.source.lineStart), [1, 2, 2, 2]);
    assert.ok(r.segments.every((s) => s.text.length <= 64));
  });

  it('never splits a surrogate pair', () => {
    const text = '🙂'.repeat(100); // 200 UTF-16 code units, no line breaks
    const r = segment(Buffer.from(text), 1000, 33);
    assert.equal(r.segments.map((s) => s.text).join(''), text);
    for (const s of r.segments) assert.doesNotThrow(() => encodeURIComponent(s.text), 'no lone surrogate');
  });

  it('a file of many segments is streamed into bounded pieces with the right line numbers', async () => {
    const dir = scratchDir('text');
    const file = join(dir, 'big.txt');
    const line = (i: number) => `${String(i).padStart(7, '0')} ${'lorem ipsum dolor sit amet '.repeat(3)}\n`;
    const n = 40_000; // ~3.5 MB, about 50 segments
    writeFileSync(file, Array.from({ length: n }, (_, i) => line(i + 1)).join(''));
    const r = await readTextFile(file, 'big.txt');
    assert.ok(r.segments.length > 40);
    let expectedLine = 1;
    for (const s of r.segments) {
      assert.ok(s.text.length <= SEGMENT_CHARS);
      assert.equal(s.source.lineStart, expectedLine);
      assert.equal(Number(s.text.slice(0, 7)), expectedLine, 'each segment starts on a whole line');
      expectedLine += s.text.split('\n').length - 1;
    }
    assert.equal(expectedLine, n + 1);
  });
});
