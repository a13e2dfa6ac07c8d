// Encoding in worker threads gives exactly the ids of this thread, and a piece's deadline counts
// the worker's own CPU time.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeTinyTokenizer } from '../../../scripts/make-tiny-tokenizer.js';
import type { Segment } from '../../../src/input/document.js';
import { threadClock } from '../../../src/model/thread-cpu-time.js';
import { loadTokenizer } from '../../../src/model/tokenizer.js';
import { EncoderPool } from '../../../src/model/tokenizer/pool.js';
import { scratchDir } from '../../helpers/fixtures.js';
import { AIDREAMS_DIR, book, BOOKS, libraryEncoder, QWEN_DIR, sameIds, skipNoShared } from '../../helpers/tokenizers.js';

describe('encodeSegments in worker threads', () => {
  it('qwen3: worker threads give exactly the ids of a single-thread encode of each segment (multi-MB)', { skip: skipNoShared, timeout: 600_000 }, async (t) => {
    const tok = await loadTokenizer(QWEN_DIR);
    const whole = libraryEncoder(QWEN_DIR);
    const books = readdirSync(BOOKS).filter((f) => f.endsWith('.txt')).sort();
    const segments: Segment[] = books.map((f) => ({ text: book(f), source: { path: f } }));
    segments.splice(1, 0, { text: '', source: { path: 'empty' } });
    const chars = segments.reduce((n, s) => n + s.text.length, 0);
    assert.ok(chars > 2_000_000, `${chars} characters`);

    let progressCalls = 0;
    let t0 = performance.now();
    const parallel = await tok.encodeSegments(segments, { workers: 2, parallelThreshold: 0, onProgress: () => progressCalls++ });
    const parallelS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const single = await tok.encodeSegments(segments, { workers: 0 });
    const singleS = (performance.now() - t0) / 1000;

    assert.ok(sameIds(parallel.ids, single.ids), 'parallel ids differ from single-thread ids');
    assert.deepEqual([...parallel.segmentStarts], [...single.segmentStarts]);
    assert.ok(progressCalls > 10);
    // And each segment equals the library encoding that segment whole, in one call.
    segments.forEach((s, i) => {
      const end = i + 1 < segments.length ? parallel.segmentStarts[i + 1] : parallel.ids.length;
      assert.ok(sameIds(parallel.ids.subarray(parallel.segmentStarts[i], end), whole(s.text)), `segment ${s.source.path}`);
    });
    const mb = chars / 1e6;
    t.diagnostic(
      `qwen3 ${mb.toFixed(2)} M chars, ${parallel.ids.length} tokens: 2 workers ${parallelS.toFixed(2)} s (${(mb / parallelS).toFixed(2)} M chars/s, start-up included), ` +
        `this thread ${singleS.toFixed(2)} s (${(mb / singleS).toFixed(2)} M chars/s)`,
    );
  });

  it('aidreams: worker threads equal this thread, which equals the library on whole segments', { skip: skipNoShared, timeout: 300_000 }, async () => {
    const tok = await loadTokenizer(AIDREAMS_DIR);
    const whole = libraryEncoder(AIDREAMS_DIR);
    const text = book('sherlock_holmes_pg1661.txt');
    // The library encodes a sentencepiece-style text as one BPE word: slow and memory-hungry when
    // whole, so the direct comparison uses 150K characters and the parallel one the whole book.
    const small = text.slice(0, 150_000);
    assert.ok(sameIds(tok.encode(small), whole(small)));
    const segments: Segment[] = [
      { text, source: { path: 'sherlock' } },
      { text: small, source: { path: 'small' } },
    ];
    const parallel = await tok.encodeSegments(segments, { workers: 2, parallelThreshold: 0 });
    const single = await tok.encodeSegments(segments, { workers: 0 });
    assert.ok(sameIds(parallel.ids, single.ids));
    assert.deepEqual([...parallel.segmentStarts], [...single.segmentStarts]);
  });
});

describe('a piece\'s deadline in the pool', () => {
  it('is not passed by a piece whose answer waits behind this thread, busy past the deadline', { skip: threadClock() ? false : 'no thread CPU clock here' }, async () => {
    // What a starved process looks like from here: the worker finished in time, but its answer is
    // read after the deadline's timer (timers run first when the event loop comes back). Counted in
    // wall-clock time, the piece failed.
    const dir = scratchDir('pool-deadline');
    writeTinyTokenizer(dir);
    const pool = new EncoderPool({ dir, workers: 1, parseSpecialTokens: false, loadMs: 60_000, pieceMs: () => 300, tokenizerPath: join(dir, 'tokenizer.json') });
    try {
      const first = await pool.encode('warm up: the worker is loaded and its clock known');
      assert.ok(first.length > 0);
      // Out of the worker's message callback, which would read the answer before the loop's timers.
      await new Promise((r) => setImmediate(r));
      const piece = pool.encode('hello world, a piece that takes the worker a millisecond');
      const end = performance.now() + 1000;
      while (performance.now() < end);
      assert.ok((await piece).length > 0);
    } finally {
      await pool.close();
    }
  });
});
