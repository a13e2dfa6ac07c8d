// A document's token ids, for a document of any length: counted, hashed (the cache key's digest)
// and located (where each source ends) as they stream past once; kept when they are few, encoded
// again from the segments when they are many. Memory is then that of the pieces in flight, not of
// the document: 1 GB of text is about 250 M ids, 1 GiB as an Int32Array.

import { TokenHasher, type TokenDigest } from '../cache/key.js';
import type { TokenMemo } from '../cache/token-memo.js';
import { CtxError } from '../errors.js';
import type { Segment } from '../input/document.js';
import type { TextTokenizer } from '../model/tokenizer.js';

/** Ids kept from the first encoding (4 Mi: 16 MiB); past it they are encoded again when needed. */
export const HOLD_TOKENS = 4 * 1024 * 1024;

/** A document this long (characters, known before encoding) is encoded by worker threads from its start. */
const WORKERS_FROM_CHARS = 8_000_000;

/**
 * When the stream encoder starts its workers: at once for a long document, as encodeSegments does
 * (encoding its first part on this thread would only be slower).
 */
function parallelFrom(totalChars: number | undefined): number | undefined {
  return totalChars !== undefined && totalChars >= WORKERS_FROM_CHARS ? 0 : undefined;
}

export interface DocumentTokensOptions {
  /** The document's characters when known (progress only). */
  totalChars?: number;
  onProgress?: (doneChars: number, totalChars: number) => void;
  signal?: AbortSignal;
  /** Keep the ids when there are at most this many. Default HOLD_TOKENS. */
  holdTokens?: number;
  /** What earlier runs' encodings gave: a document encoded before is not encoded again (its ids are then not held). */
  memo?: TokenMemo | null;
}

export class DocumentTokens {
  private constructor(
    private readonly tokenizer: TextTokenizer,
    /** Gives the document's segments again, the same each time. */
    private readonly segments: () => AsyncIterable<Segment> | Iterable<Segment>,
    readonly count: number,
    readonly digest: TokenDigest,
    /** Per source path: the document token where it ends. */
    readonly sourceEnds: ReadonlyMap<string, number>,
    private readonly held: Int32Array | null,
    readonly seconds: number,
    private readonly totalChars: number | undefined,
  ) {}

  /** Encodes the segments once, counting, hashing and keeping the ids while they are few. */
  static async encode(tokenizer: TextTokenizer, segments: () => AsyncIterable<Segment> | Iterable<Segment>, o: DocumentTokensOptions = {}): Promise<DocumentTokens> {
    const t0 = performance.now();
    const memoKey = o.memo ? await o.memo.keyOf(tokenizer.dir, segments()) : null;
    const known = memoKey ? await o.memo!.load(memoKey) : null;
    if (known) {
      o.onProgress?.(o.totalChars ?? 0, o.totalChars ?? 0);
      return new DocumentTokens(tokenizer, segments, known.digest.count, known.digest, new Map(known.sourceEnds), null, (performance.now() - t0) / 1000, o.totalChars);
    }
    o.signal?.throwIfAborted(); // a Ctrl-C while the record was looked up: encoding is a long synchronous run
    const holdTokens = o.holdTokens ?? HOLD_TOKENS;
    const hasher = new TokenHasher();
    const ends = new Map<string, number>();
    let kept: Int32Array[] | null = [];
    let done = 0;
    const onPiece = o.onProgress && ((chars: number) => o.onProgress!((done += chars), Math.max(done, o.totalChars ?? 0)));
    for await (const { segment, ids } of tokenizer.encodeSegmentStream(segments(), { signal: o.signal, onPiece, parallelThreshold: parallelFrom(o.totalChars) })) {
      hasher.update(ids);
      const count = hasher.counted;
      ends.set(segment.source.path, count);
      if (kept !== null) kept = count <= holdTokens ? (kept.push(ids), kept) : null;
    }
    o.onProgress?.(done, done);
    const digest = hasher.digest();
    if (memoKey && digest.count > 0) await o.memo!.save(memoKey, { digest, sourceEnds: [...ends] });
    return new DocumentTokens(tokenizer, segments, digest.count, digest, ends, kept && concat(kept, digest.count), (performance.now() - t0) / 1000, o.totalChars);
  }

  /** The ids are kept (a short document): reading them again encodes nothing. */
  get isHeld(): boolean {
    return this.held !== null;
  }

  /**
   * The ids in order, in pieces: kept, or encoded again from the segments and checked against the
   * first encoding (the same count and digest, else the inputs changed in between: an input error).
   */
  async *pieces(signal?: AbortSignal): AsyncGenerator<Int32Array> {
    if (this.held !== null) {
      yield this.held;
      return;
    }
    const hasher = new TokenHasher();
    for await (const { ids } of this.tokenizer.encodeSegmentStream(this.segments(), { signal, parallelThreshold: parallelFrom(this.totalChars) })) {
      hasher.update(ids);
      if (hasher.counted > this.count) break;
      yield ids;
    }
    const again = hasher.digest();
    if (again.count !== this.count || again.sha256 !== this.digest.sha256) {
      throw new CtxError('input', `the inputs changed while ctx read them (${this.count} tokens at first, ${again.count > this.count ? 'more' : again.count} now); run again`);
    }
  }

  /** All the ids in one array (strategies that read the prompt in one feed: the window bounds it). */
  async all(signal?: AbortSignal): Promise<Int32Array> {
    if (this.held !== null) return this.held;
    const parts: Int32Array[] = [];
    for await (const p of this.pieces(signal)) parts.push(p);
    return concat(parts, this.count);
  }
}

function concat(parts: Int32Array[], length: number): Int32Array {
  if (parts.length === 1 && parts[0]!.length === length) return parts[0]!;
  const out = new Int32Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
