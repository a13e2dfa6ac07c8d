// Text of any size → bounded segments, streamed chunk by chunk so a 1 GB log never becomes one
// string. Bytes are checked and decoded on the way:
//   - the first 8 KiB decide the encoding (byte-order mark) and whether the input is binary;
//   - UTF-8 (with or without BOM) and UTF-16 LE/BE (with BOM) are decoded; anything undecodable is
//     refused with the byte offset of the first bad sequence (see encoding.ts for why);
//   - segments end at a line break near SEGMENT_CHARS, so each one knows its first line.

import { isUtf8 } from 'node:buffer';
import { close, constants, createReadStream, openSync, read } from 'node:fs';
import { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { CtxError } from '../errors.js';
import type { Segment } from './document.js';
import {
  SNIFF_BYTES,
  binaryReason,
  detectBom,
  firstInvalidUtf16,
  firstInvalidUtf8,
  incompleteTailLength,
  type TextEncoding,
} from './encoding.js';
import { Rejection } from './rejection.js';

/** Target segment size in UTF-16 code units. Large enough to be cheap, small enough to bound memory spikes. */
export const SEGMENT_CHARS = 64 * 1024;

export interface TextReadResult {
  segments: Segment[];
  bytes: number;
  encoding: TextEncoding;
  /** Lines of text (a last line without a line break counts). */
  lines: number;
}

/** What reading a text found besides its segments. */
export type TextSummary = Omit<TextReadResult, 'segments'>;

/** How one encoding is cut into whole characters, checked and decoded. */
interface Codec {
  /** Bytes at the end of `data` that belong to a character the next chunk completes. */
  tailLength(data: Buffer): number;
  /** Index of the first undecodable byte in data[0, end), or -1. */
  firstInvalid(data: Buffer, end: number): number;
  decode(data: Buffer, end: number): string;
  /** How an undecodable input is described. */
  what: string;
}

const UTF8: Codec = {
  what: 'valid UTF-8',
  tailLength: incompleteTailLength,
  // isUtf8 is native and fast; the byte-by-byte scan only runs to name the offset of a failure.
  firstInvalid: (data, end) => (isUtf8(data.subarray(0, end)) ? -1 : firstInvalidUtf8(data, end)),
  decode: (data, end) => data.toString('utf8', 0, end),
};

function utf16(littleEndian: boolean): Codec {
  const unitAt = (d: Buffer, i: number) => (littleEndian ? d.readUInt16LE(i) : d.readUInt16BE(i));
  return {
    what: `valid UTF-16${littleEndian ? 'LE' : 'BE'}`,
    tailLength(data) {
      const odd = data.length % 2;
      const last = data.length - odd - 2;
      // A high surrogate at the very end waits for its low half in the next chunk.
      const highSurrogate = last >= 0 && unitAt(data, last) >= 0xd800 && unitAt(data, last) <= 0xdbff;
      return odd + (highSurrogate ? 2 : 0);
    },
    firstInvalid: (data, end) => firstInvalidUtf16(data.subarray(0, end), littleEndian),
    decode(data, end) {
      if (littleEndian) return data.toString('utf16le', 0, end);
      // Node has no utf16be codec: swap a copy to little-endian.
      return Buffer.from(data.subarray(0, end)).swap16().toString('utf16le');
    },
  };
}

/**
 * Receives the bytes of one input in order (push); its segments can be taken as they are completed
 * (take) and the rest come with end(). Throws a Rejection for binary, undecodable or empty input;
 * the caller decides whether that is an error or a skip.
 */
export class TextSegmenter {
  /** Segments completed and not yet taken. */
  private ready: Segment[] = [];
  private readonly path: string;
  private readonly segmentChars: number;
  private head: Buffer[] = [];
  private headBytes = 0;
  private codec: Codec | null = null;
  private encoding: TextEncoding = 'utf-8';
  private carry: Buffer = Buffer.alloc(0);
  /** File offset of carry[0], for naming where a bad sequence is. */
  private carryOffset = 0;
  private bytes = 0;
  private pending = '';
  private line = 1;
  private endsOpen = false;
  private sawText = false;

  constructor(path: string, segmentChars = SEGMENT_CHARS) {
    this.path = path;
    this.segmentChars = segmentChars;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    if (this.codec) {
      this.decodeChunk(chunk);
      return;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes >= SNIFF_BYTES) this.startDecoding();
  }

  /** The segments completed since the last take(). */
  take(): Segment[] {
    const out = this.ready;
    this.ready = [];
    return out;
  }

  /** The segments not yet taken, and what the input was. */
  end(): TextReadResult {
    if (!this.codec) this.startDecoding();
    if (this.carry.length > 0) {
      throw this.undecodable(this.carryOffset, 'truncated character at the end');
    }
    this.flush(true);
    if (this.bytes === 0) throw new Rejection('empty', 'is empty', 'emptyInput');
    if (!this.sawText) throw new Rejection('empty', 'is empty (only whitespace)', 'emptyInput');
    return { segments: this.take(), bytes: this.bytes, encoding: this.encoding, lines: this.line - 1 + (this.endsOpen ? 1 : 0) };
  }

  /** Called once the first 8 KiB (or the whole, shorter input) are in: pick the codec, sniff, decode. */
  private startDecoding(): void {
    const head = Buffer.concat(this.head);
    this.head = [];
    const { encoding, bomLength } = detectBom(head);
    this.encoding = encoding;
    this.codec = encoding === 'utf-16le' ? utf16(true) : encoding === 'utf-16be' ? utf16(false) : UTF8;

    if (encoding === 'utf-8' || encoding === 'utf-8 (BOM)') {
      const reason = binaryReason(head.subarray(bomLength, SNIFF_BYTES));
      if (reason) throw new Rejection('binary', `is ${reason}`);
    }
    this.carryOffset = bomLength;
    const text = this.decodeBytes(head.subarray(bomLength));
    if (this.codec !== UTF8) {
      // UTF-16 text is full of NUL bytes, so it is sniffed after decoding, on its characters.
      const units = Array.from(text.slice(0, SNIFF_BYTES / 2), (ch) => ch.charCodeAt(0));
      const reason = binaryReason(units);
      if (reason) throw new Rejection('binary', `is ${reason}`);
    }
    this.append(text);
  }

  private decodeChunk(chunk: Buffer): void {
    this.append(this.decodeBytes(chunk));
  }

  /** Decodes the whole characters of carry + chunk and keeps the unfinished tail for next time. */
  private decodeBytes(chunk: Buffer): string {
    const codec = this.codec!;
    const data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const end = data.length - codec.tailLength(data);
    const bad = codec.firstInvalid(data, end);
    if (bad >= 0) throw this.undecodable(this.carryOffset + bad, 'invalid byte sequence');
    const text = codec.decode(data, end);
    // Copy the (at most 3-byte) tail so the big chunk it came from can be freed.
    this.carry = Buffer.from(data.subarray(end));
    this.carryOffset += end;
    return text;
  }

  private undecodable(offset: number, what: string): Rejection {
    const hint = this.codec === UTF8 ? '; convert it first, e.g. iconv -f latin1 -t utf-8' : '';
    return new Rejection('undecodable', `is not ${this.codec!.what}: ${what} at byte ${offset}${hint}`);
  }

  private append(text: string): void {
    if (text.length === 0) return;
    if (!this.sawText && /\S/.test(text)) this.sawText = true;
    this.pending += text;
    this.flush(false);
  }

  /** Emits full segments from `pending`; with `all`, also the last partial one. */
  private flush(all: boolean): void {
    while (this.pending.length >= this.segmentChars || (all && this.pending.length > 0)) {
      let cut = this.pending.length;
      if (cut > this.segmentChars || !all) {
        // End at the last line break inside the limit; a single longer line is cut at the limit
        // (then the next segment starts mid-line, on the same lineStart).
        cut = this.pending.lastIndexOf('\n', this.segmentChars - 1) + 1;
        if (cut === 0) {
          cut = this.segmentChars;
          const code = this.pending.charCodeAt(cut - 1);
          if (code >= 0xd800 && code <= 0xdbff) cut--; // never split a surrogate pair
        }
      }
      const text = this.pending.slice(0, cut);
      this.pending = this.pending.slice(cut);
      this.ready.push({ text, source: { path: this.path, lineStart: this.line } });
      this.line += countNewlines(text);
      this.endsOpen = !text.endsWith('\n');
    }
  }
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * The segments of a stream of bytes as they are decoded, in order; returns what the text was. A
 * Rejection (binary, undecodable, empty) is thrown where it is found.
 */
export async function* segmentText(chunks: AsyncIterable<Buffer | Uint8Array | string>, displayPath: string, segmentChars?: number): AsyncGenerator<Segment, TextSummary> {
  const segmenter = new TextSegmenter(displayPath, segmentChars);
  for await (const chunk of chunks) {
    segmenter.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    yield* segmenter.take();
  }
  const { segments, ...summary } = segmenter.end();
  yield* segments;
  return summary;
}

/** How a named input is read: a file (seekable), a pipe, or a character device. */
export type ByteSourceKind = 'file' | 'fifo' | 'device';

export interface OpenBytesOptions {
  kind?: ByteSourceKind;
  /**
   * A pipe or device that sends nothing at all (no byte, no end) for this long fails with one line
   * naming it; 0 waits for ever. Files are not timed.
   */
  waitMs?: number;
  signal?: AbortSignal;
}

/**
 * The bytes of a named input as chunks. The signal stops the read at once, even while it waits for
 * data that never comes (a pipe whose writer is idle, a device with nothing to say).
 */
export async function* readBytes(absPath: string, displayPath: string, o: OpenBytesOptions = {}): AsyncGenerator<Buffer> {
  o.signal?.throwIfAborted();
  const kind = o.kind ?? 'file';
  const stream = kind === 'fifo' ? openFifo(absPath) : kind === 'device' ? openDevice(absPath) : createReadStream(absPath, { highWaterMark: 64 * 1024 });
  const onAbort = () => stream.destroy();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  if (kind !== 'file' && o.waitMs) {
    const seconds = Math.round(o.waitMs / 100) / 10;
    const what = kind === 'fifo' ? 'nothing writes to this pipe' : 'this device sends nothing';
    timer = setTimeout(() => {
      stream.destroy(new CtxError('input', `nothing arrived in ${seconds} s: ${what} (--stdin-wait sets how long to wait, 0 = forever)`, { path: displayPath }));
    }, o.waitMs);
    const settled = () => clearTimeout(timer);
    stream.once('data', settled);
    stream.once('end', settled);
  }
  try {
    for await (const chunk of stream) {
      o.signal?.throwIfAborted();
      yield chunk as Buffer;
    }
  } catch (e) {
    o.signal?.throwIfAborted();
    throw e;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    stream.destroy();
  }
  o.signal?.throwIfAborted();
}

/**
 * Reads a text file into segments, streaming. fs errors (ENOENT, EACCES, EISDIR) are thrown as they
 * come; content problems as Rejections.
 */
export async function readTextFile(
  absPath: string,
  displayPath: string,
  opts: { signal?: AbortSignal; segmentChars?: number; fifo?: boolean; waitMs?: number } = {},
): Promise<TextReadResult> {
  const segments: Segment[] = [];
  const text = segmentText(readBytes(absPath, displayPath, { kind: opts.fifo ? 'fifo' : 'file', waitMs: opts.waitMs, signal: opts.signal }), displayPath, opts.segmentChars);
  for (;;) {
    const r = await text.next();
    if (r.done) return { segments, ...r.value };
    segments.push(r.value);
  }
}

/**
 * A named pipe as a stream that never blocks a thread. A plain open() of a FIFO waits in Node's
 * thread pool until a writer appears, and nothing can cancel that wait (ctx ended with
 * "interrupted" and stayed alive). Opened non-blocking, the pipe is read through the event loop like
 * stdin, and the stream can be destroyed at any time; it still waits for a writer, and ends when the
 * last writer closes.
 */
function openFifo(path: string): Readable {
  // Synchronous is fine here: a non-blocking open returns at once. The socket owns the descriptor.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return new Socket({ fd, readable: true, writable: false });
}

/** How long a device with nothing to read is left before it is asked again. */
const DEVICE_POLL_MS = 20;

/**
 * A character device as a stream that never blocks a thread: opened non-blocking and read with
 * retries while it has nothing to say, so a device that never sends anything (a terminal, a serial
 * line) can still be given up on or interrupted. A device that sends (/dev/urandom) is read at full
 * speed; binary data is then refused after its first 8 KiB like any binary file.
 */
function openDevice(path: string): Readable {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(64 * 1024);
  let destroyed = false;
  // The descriptor is closed only when no read is using it (a read in flight returns at once).
  let reading: Promise<unknown> = Promise.resolve();
  const readSome = (): Promise<Buffer | null> =>
    new Promise((resolveRead, rejectRead) => {
      const attempt = () => {
        if (destroyed) return resolveRead(null);
        read(fd, buf, 0, buf.length, null, (e, n) => {
          if (e && (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK')) return void setTimeout(attempt, DEVICE_POLL_MS);
          if (e) return rejectRead(e);
          resolveRead(n === 0 ? null : Buffer.from(buf.subarray(0, n)));
        });
      };
      attempt();
    });
  return new Readable({
    read() {
      const next = readSome();
      reading = next.catch(() => {});
      next.then(
        (chunk) => !destroyed && this.push(chunk),
        (e: Error) => this.destroy(e),
      );
    },
    destroy(e, done) {
      destroyed = true;
      void reading.then(() => close(fd, () => done(e)));
    },
  });
}
