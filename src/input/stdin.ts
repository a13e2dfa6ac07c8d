// Standard input as a document: text (same decoding rules as files), or a PDF when the bytes start
// with "%PDF-" (`curl -s …/report.pdf | ctx ask "…"`). Its source path is "-".

import type { Readable } from 'node:stream';
import type { Segment } from './document.js';
import { looksLikePdf } from './encoding.js';
import type { PdfReader } from './pdf.js';
import { segmentText } from './text.js';
import type { TextEncoding } from './encoding.js';

export const STDIN_PATH = '-';

export interface StdinSummary {
  bytes: number;
  pages?: number;
  encoding?: TextEncoding;
  /** Lines of text (text input). */
  lines?: number;
}

/** How many leading bytes decide between text and PDF. */
const PDF_SNIFF_BYTES = 1024;

/**
 * The chunks of a stdin stream. A pipe that is never closed would keep waiting after Ctrl-C:
 * destroying the stream ends the wait.
 */
export async function* stdinChunks(stream: Readable | NodeJS.ReadableStream, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const chunks = (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const onAbort = () => (stream as Readable).destroy?.();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      signal?.throwIfAborted();
      const r = await chunks.next();
      signal?.throwIfAborted();
      if (r.done) return;
      yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await chunks.return?.();
  }
}

/**
 * The segments of stdin's bytes (or a pipe's, named `displayPath`) as they are decoded: text streams
 * through the segmenter; a PDF is gathered whole (pdf.js needs all of it) and parsed. Returns what
 * the input was.
 */
export async function* stdinSegments(chunks: AsyncIterable<Buffer>, pdf: PdfReader, signal?: AbortSignal, displayPath = STDIN_PATH): AsyncGenerator<Segment, StdinSummary> {
  const it = chunks[Symbol.asyncIterator]();
  const next = async (): Promise<Buffer | null> => {
    const r = await it.next();
    return r.done ? null : r.value;
  };
  try {
    // Enough of the start to recognise a PDF.
    const head: Buffer[] = [];
    let headBytes = 0;
    let chunk: Buffer | null;
    while (headBytes < PDF_SNIFF_BYTES && (chunk = await next())) {
      head.push(chunk);
      headBytes += chunk.length;
    }

    if (looksLikePdf(Buffer.concat(head))) {
      const all = head;
      while ((chunk = await next())) all.push(chunk);
      const data = new Uint8Array(Buffer.concat(all));
      const r = await pdf.read({ data }, displayPath, signal);
      yield* r.segments;
      return { bytes: r.bytes, pages: r.pages };
    }

    async function* rest(): AsyncGenerator<Buffer> {
      yield* head;
      let c: Buffer | null;
      while ((c = await next())) yield c;
    }
    const r = yield* segmentText(rest(), displayPath);
    return { bytes: r.bytes, encoding: r.encoding, lines: r.lines };
  } finally {
    await it.return?.();
  }
}
