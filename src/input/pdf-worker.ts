// Runs inside a worker thread (see pdf.ts): pdf-parse blocks the event loop for the whole parse, so
// the main thread keeps its progress display and Ctrl-C alive by leaving the parsing here.
//
// Protocol, one job at a time:
//   in:  { id, path } or { id, data }       a file to read, or bytes (a PDF piped on stdin)
//   out: { id, type: 'start', pages, bytes }
//        { id, type: 'page', num, text }    once per page, in order, 1-based
//        { id, type: 'done' }
//        { id, type: 'error', name, code?, message }

import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { PDFParse } from 'pdf-parse';

export type PdfJob = { id: number; path: string } | { id: number; data: Uint8Array };

export type PdfMessage =
  | { id: number; type: 'start'; pages: number; bytes: number }
  | { id: number; type: 'page'; num: number; text: string }
  | { id: number; type: 'done' }
  | { id: number; type: 'error'; name: string; code?: string; message: string };

const port = parentPort;
if (!port) throw new Error('pdf-worker.ts must run in a worker thread');

port.on('message', (job: PdfJob) => {
  void parse(job);
});

async function parse(job: PdfJob): Promise<void> {
  const post = (m: PdfMessage) => port!.postMessage(m);
  let parser: PDFParse | undefined;
  try {
    const data = 'path' in job ? new Uint8Array(await readFile(job.path)) : job.data;
    const bytes = data.byteLength;
    // verbosity 0: pdf.js would otherwise print font warnings to the user's terminal.
    parser = new PDFParse({ data, verbosity: 0 });
    // Page 1 first: it loads the document and tells the page count. pageJoiner '' keeps pdf-parse's
    // "-- 1 of 9 --" markers out of the text.
    const first = await parser.getText({ partial: [1], pageJoiner: '' });
    post({ id: job.id, type: 'start', pages: first.total, bytes });
    post({ id: job.id, type: 'page', num: 1, text: first.pages[0]?.text ?? '' });
    for (let num = 2; num <= first.total; num++) {
      const r = await parser.getText({ partial: [num], pageJoiner: '' });
      post({ id: job.id, type: 'page', num, text: r.pages[0]?.text ?? '' });
    }
    post({ id: job.id, type: 'done' });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    post({ id: job.id, type: 'error', name: err?.name ?? 'Error', code: err?.code, message: err?.message ?? String(e) });
  } finally {
    await parser?.destroy().catch(() => {});
  }
}
