// Segments streamed through the tokenizer give each segment's ids in order, the same on this thread
// and in workers that start partway, and stopping early or Ctrl-C leaves no worker running.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeTinyTokenizer } from '../../../scripts/make-tiny-tokenizer.js';
import type { Segment } from '../../../src/input/document.js';
import { loadTokenizer } from '../../../src/model/tokenizer.js';
import { EncoderPool } from '../../../src/model/tokenizer/pool.js';
import { encodeSegmentStream } from '../../../src/model/tokenizer/stream.js';
import { scratchDir } from '../../helpers/fixtures.js';

const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'answer', 'needle', 'é', '日本'];

/** `n` segments of varied prose (some empty), deterministic. */
function segments(n: number, chars: number): Segment[] {
  const out: Segment[] = [];
  let seed = 7;
  for (let i = 0; i < n; i++) {
    let text = '';
    while (text.length < (i % 5 === 3 ? 0 : chars)) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      text += `${WORDS[seed % WORDS.length]}${seed % 11 === 0 ? '.\n' : ' '}`;
    }
    out.push({ text, source: { path: `s${i % 3}` } });
  }
  return out;
}

async function* slowly(segs: Segment[]): AsyncGenerator<Segment> {
  for (const s of segs) {
    await new Promise((r) => setImmediate(r));
    yield s;
  }
}

describe('encodeSegmentStream', () => {
  const dir = join(scratchDir('tok-stream'), 'tiny');
  writeTinyTokenizer(dir);

  it('gives each segment its ids, on this thread and in workers that start partway (same ids)', async () => {
    const tok = await loadTokenizer(dir);
    const segs = segments(60, 40_000);
    const whole = await tok.encodeSegments(segs, { workers: 0 });
    for (const o of [{ workers: 0 }, { workers: 2, parallelThreshold: 500_000 }]) {
      const got: Int32Array[] = [];
      let chars = 0;
      for await (const { segment, ids } of tok.encodeSegmentStream(slowly(segs), { ...o, onPiece: (c) => (chars += c) })) {
        assert.equal(segment, segs[got.length], 'in order');
        got.push(ids);
      }
      assert.equal(got.length, segs.length);
      assert.equal(chars, segs.reduce((n, s) => n + s.text.length, 0));
      got.forEach((ids, i) => {
        const end = i + 1 < segs.length ? whole.segmentStarts[i + 1]! : whole.ids.length;
        assert.deepEqual([...ids], [...whole.ids.subarray(whole.segmentStarts[i], end)], `segment ${i} (${JSON.stringify(o)})`);
      });
    }
  });

  it('stops its workers when the consumer stops early, and on the abort signal', async () => {
    const tok = await loadTokenizer(dir);
    const segs = segments(40, 40_000);
    let n = 0;
    for await (const _ of tok.encodeSegmentStream(slowly(segs), { workers: 2, parallelThreshold: 0 })) if (++n === 3) break;
    const ac = new AbortController();
    n = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of tok.encodeSegmentStream(slowly(segs), { workers: 2, parallelThreshold: 0, signal: ac.signal })) if (++n === 2) ac.abort(new Error('stop'));
      })(),
      /stop/,
    );
    // Worker threads keep an event loop alive: the test process ending on time shows none is left.
  });

  it('moves a piece that is slow on this thread, and the rest, to workers (same ids)', async () => {
    const tok = await loadTokenizer(dir);
    const segs = segments(12, 300_000); // several 128K pieces each
    const whole = await tok.encodeSegments(segs, { workers: 0 });
    // This thread's encoder, made to give up (as bounded-run.ts's slice does) on the 5th piece.
    let calls = 0;
    let pools = 0;
    const here = (text: string, slice: boolean): Int32Array | null => (slice && ++calls === 5 ? null : Int32Array.from(tok.encode(text)));
    const startPool = (workers: number) => {
      pools++;
      return new EncoderPool({ dir, workers, parseSpecialTokens: false, loadMs: 60_000, pieceMs: () => 60_000, tokenizerPath: join(dir, 'tokenizer.json') });
    };
    const got: number[] = [];
    for await (const { ids } of encodeSegmentStream(segs, { rule: tok.cutRule.rule, here, startPool }, { workers: 2, parallelThreshold: Infinity })) got.push(...ids);
    assert.equal(calls, 5, 'nothing more on this thread once the workers took over');
    assert.equal(pools, 1);
    assert.deepEqual(got, [...whole.ids]);
  });
});
