// Segments → ids per segment, as the segments stream past: a document of any length is encoded
// while holding only the pieces in flight. Each segment is cut into pieces where the cut rule allows
// (pieces.ts), so the ids are those of the segment encoded whole, whichever thread encodes a piece.
//
// Short inputs are encoded on this thread. Worker threads cost about a second to start, so they
// start only once the stream has gone past `parallelThreshold` characters (or at once, with 0), or
// when a piece is slow on this thread (bounded-run.ts); from then on pieces go to them, at most
// AHEAD_CHARS ahead of the segment being yielded.

import type { Segment } from '../../input/document.js';
import { cutText, type CutRule } from './cut-rule.js';
import { PIECE_CHARS } from './pieces.js';
import type { EncoderPool } from './pool.js';

/** Characters sent to workers ahead of the segment the consumer waits for: enough to keep 4 busy. */
const AHEAD_CHARS = 16 * PIECE_CHARS;

export interface SegmentIds {
  segment: Segment;
  ids: Int32Array;
}

export interface StreamEncoder {
  rule: CutRule | null;
  /**
   * Encodes one piece on this thread (within the tokenizer's deadline). With `slice`, gives up and
   * returns null once the piece has taken bounded-run.ts's SLICE_MS, for the workers to encode it.
   */
  here: (text: string, slice: boolean) => Int32Array | null;
  /** Starts worker threads for this tokenizer, or null when it has none. */
  startPool: ((workers: number) => EncoderPool) | null;
}

export interface StreamOptions {
  /** Worker threads once the threshold is passed; 0 encodes everything on this thread. */
  workers: number;
  /** Characters encoded on this thread before the workers start. */
  parallelThreshold: number;
  /** Called as pieces finish, with their characters. */
  onPiece?: (chars: number) => void;
  signal?: AbortSignal;
}

function piecesOf(text: string, rule: CutRule | null): string[] {
  return rule === null ? [text] : cutText(text, rule, PIECE_CHARS);
}

function concat(parts: Int32Array[]): Int32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A segment whose pieces are with the workers. */
interface InFlight {
  segment: Segment;
  chars: number;
  parts: Promise<Int32Array>[];
  done: boolean;
}

/** The ids of each segment, in order, as the segments arrive. Stopping the iteration stops the workers. */
export async function* encodeSegmentStream(segments: AsyncIterable<Segment> | Iterable<Segment>, enc: StreamEncoder, o: StreamOptions): AsyncGenerator<SegmentIds> {
  let pool: EncoderPool | null = null;
  const flight: InFlight[] = [];
  let aheadChars = 0;
  let seen = 0;
  const settle = async (f: InFlight): Promise<SegmentIds> => {
    const ids = concat(await Promise.all(f.parts));
    aheadChars -= f.chars;
    return { segment: f.segment, ids };
  };
  const canStartPool = enc.startPool !== null && o.workers > 0;
  try {
    for await (const segment of segments) {
      o.signal?.throwIfAborted();
      const pieces = piecesOf(segment.text, enc.rule);
      if (pool === null && canStartPool && seen + segment.text.length > o.parallelThreshold) pool = enc.startPool!(o.workers);
      seen += segment.text.length;
      if (pool === null) {
        const parts: Int32Array[] = [];
        for (const text of pieces) {
          // Yield first: a Ctrl-C that arrived just before this piece is handled now, not after it.
          await new Promise((r) => setImmediate(r));
          o.signal?.throwIfAborted();
          const ids = pool === null ? enc.here(text, canStartPool) : null;
          if (ids === null) {
            // Slow on this thread (a hostile regex, a busy machine): workers take this piece and
            // the rest, where Ctrl-C and SIGTERM stop them at once.
            pool ??= enc.startPool!(o.workers);
            parts.push(await pool.encode(text));
          } else {
            parts.push(ids);
          }
          o.onPiece?.(text.length);
        }
        yield { segment, ids: concat(parts) };
        continue;
      }
      const f: InFlight = { segment, chars: segment.text.length, parts: [], done: false };
      const p = pool;
      f.parts = pieces.map((text) =>
        p.encode(text).then((ids) => {
          o.onPiece?.(text.length);
          return ids;
        }),
      );
      // Failures surface where the segment is awaited; a segment never awaited must not be "unhandled".
      for (const part of f.parts) part.catch(() => {});
      void Promise.all(f.parts).then(() => (f.done = true), () => (f.done = true));
      flight.push(f);
      aheadChars += f.chars;
      while (flight.length > 0 && (aheadChars > AHEAD_CHARS || flight[0]!.done)) yield await settle(flight.shift()!);
    }
    while (flight.length > 0) yield await settle(flight.shift()!);
  } finally {
    await pool?.close();
  }
}
