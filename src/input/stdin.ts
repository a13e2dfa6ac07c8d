// Standard input as a document: text (same decoding rules as files), or a PDF when the bytes start
// with "%PDF-" (`curl -s …/report.pdf | ctx ask "…"`). Its source path is "-".

import type { Readable } from 'node:stream';
import type { Segment } from './document.js';
import { looksLikePdf } from './encoding.js';
import type { PdfReader } from './pdf.js';
import { TextSegmenter } from './text.js';
import type { TextEncoding } from './encoding.js';

export const STDIN_PATH = '-';

export interface StdinReadResult {
  segments: Segment[];
  bytes: number;
  pages?: number;
  encoding?: TextEncoding;
}

/** How many leading bytes decide between text and PDF. */
const PDF_SNIFF_BYTES = 1024;

export async function readStdin(
  stream: Readable | NodeJS.ReadableStream,
  pdf: PdfReader,
  signal?: AbortSignal,
): Promise<StdinReadResult> {
  const chunks = (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const next = async (): Promise<Buffer | null> => {
    signal?.throwIfAborted();
    const r = await chunks.next();
    if (r.done) return null;
    return typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
  };

  // A pipe that is never closed would keep waiting after Ctrl-C: destroying the stream ends the wait.
  const onAbort = () => (stream as Readable).destroy?.();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await readFrom(next, pdf, signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await chunks.return?.();
  }
}

async function readFrom(next: () => Promise<Buffer | null>, pdf: PdfReader, signal?: AbortSignal): Promise<StdinReadResult> {
  // Gather enough of the start to recognise a PDF, then either buffer a PDF whole (pdf.js needs all
  // of it) or stream text through the segmenter.
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
    const r = await pdf.read({ data }, STDIN_PATH, signal);
    return { segments: r.segments, bytes: r.bytes, pages: r.pages };
  }

  const segmenter = new TextSegmenter(STDIN_PATH);
  for (const c of head) segmenter.push(c);
  while ((chunk = await next())) segmenter.push(chunk);
  const r = segmenter.end();
  return { segments: r.segments, bytes: r.bytes, encoding: r.encoding };
}
