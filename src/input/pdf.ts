// PDF → one segment per page (source.page is 1-based), parsed by pdf-parse in a worker thread so the
// main thread stays responsive. One PdfReader keeps one worker for all the PDFs of a run and must be
// closed when the run is done.
//
// A PDF is untrusted input: a 1 MB file can inflate to gigabytes (a "decompression bomb"), and a page
// can be made arbitrarily slow to parse. So each PDF is parsed under limits: the worker's JS heap is
// capped, the process's memory may grow by at most `maxMemoryBytes` while it parses (decompressed
// streams live outside the JS heap, so that is watched from here), and each page must be done within
// `pageTimeoutMs`. Past a limit the worker is stopped and the PDF is refused with the reason.

import { Worker } from 'node:worker_threads';
import type { Segment } from './document.js';
import type { PdfJob, PdfMessage } from './pdf-worker.js';
import { formatBytes } from '../units.js';
import { Rejection } from './rejection.js';

export interface PdfReadResult {
  segments: Segment[];
  bytes: number;
  pages: number;
}

/**
 * Starts the worker: the compiled pdf-worker.js next to this file. When ctx runs from TypeScript
 * source (tests under tsx), a worker's entry module does not get the tsx loader that `--import tsx`
 * gave this thread, so a one-line bootstrap registers tsx and then imports the .ts source.
 */
function startWorker(heapMb: number): Worker {
  const here = import.meta.url;
  const resourceLimits = { maxOldGenerationSizeMb: heapMb };
  if (!here.endsWith('.ts')) return new Worker(new URL('./pdf-worker.js', here), { resourceLimits });
  const entry = new URL('./pdf-worker.ts', here).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, resourceLimits });
}

export interface PdfLimits {
  /** How much the process's memory may grow while one PDF is parsed. Default 2 GiB. */
  maxMemoryBytes?: number;
  /** How long one page may take to parse. Default 60 s. */
  pageTimeoutMs?: number;
}

/** How often memory is sampled while a PDF is parsed. */
const MEMORY_CHECK_MS = 50;

export class PdfReader {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly maxMemoryBytes: number;
  private readonly pageTimeoutMs: number;

  constructor(limits: PdfLimits = {}) {
    this.maxMemoryBytes = limits.maxMemoryBytes ?? 2 * 1024 ** 3;
    this.pageTimeoutMs = limits.pageTimeoutMs ?? 60_000;
  }

  /** Reads a PDF file (`path`) or PDF bytes (`data`, e.g. from stdin); `displayPath` names it in segments. */
  async read(
    input: { path: string } | { data: Uint8Array },
    displayPath: string,
    signal?: AbortSignal,
  ): Promise<PdfReadResult> {
    signal?.throwIfAborted();
    const worker = this.ensureWorker();
    const id = this.nextId++;
    const segments: Segment[] = [];
    let pages = 0;
    let bytes = 0;

    const done = new Promise<void>((resolve, reject) => {
      const baseline = process.memoryUsage.rss();
      let pageTimer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        clearInterval(memoryTimer);
        clearTimeout(pageTimer);
        worker.unref();
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
      };
      /** Stops the worker and refuses the PDF: it went past a limit. */
      const refuse = (reason: string) => {
        cleanup();
        void this.close();
        reject(new Rejection('too large', reason));
      };
      const watchPage = (num: number) => {
        clearTimeout(pageTimer);
        pageTimer = setTimeout(() => refuse(`page ${num} took more than ${duration(this.pageTimeoutMs)} to parse; ctx stopped there`), this.pageTimeoutMs);
      };
      const memoryTimer = setInterval(() => {
        const grown = process.memoryUsage.rss() - baseline;
        if (grown > this.maxMemoryBytes) {
          refuse(`needed more than ${formatBytes(this.maxMemoryBytes)} of memory to parse${pages ? ` by page ${pagesSeen + 1}` : ''} (a decompression bomb?); ctx stopped there`);
        }
      }, MEMORY_CHECK_MS);
      let pagesSeen = 0;
      watchPage(1);
      const onMessage = (m: PdfMessage) => {
        if (m.id !== id) return;
        if (m.type === 'start') {
          pages = m.pages;
          bytes = m.bytes;
        } else if (m.type === 'page') {
          // Pages without text (figures, blank pages) add no segment; the page count still has them.
          // Each page ends with a line break so words do not run together across pages.
          if (m.text.trim() !== '') {
            const text = m.text.endsWith('\n') ? m.text : `${m.text}\n`;
            segments.push({ text, source: { path: displayPath, page: m.num } });
          }
          pagesSeen = m.num;
          watchPage(m.num + 1);
        } else if (m.type === 'done') {
          cleanup();
          resolve();
        } else {
          cleanup();
          reject(workerFailure(m));
        }
      };
      const onError = (e: Error) => {
        cleanup();
        this.worker = null;
        // The capped heap ran out: the file's fault, like the memory limit above.
        if ((e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') {
          return reject(new Rejection('too large', `needed more than ${formatBytes(PDF_HEAP_MB * 1024 ** 2)} of JavaScript heap to parse (a decompression bomb?); ctx stopped there`));
        }
        // Parse errors are reported as messages; any other 'error' event means the worker itself
        // failed (pdf-parse missing): a problem of ctx or the machine, not of the file.
        reject(new Error(`the PDF worker failed while reading ${displayPath}: ${e.message}`, { cause: e }));
      };
      const onExit = (code: number) => {
        cleanup();
        this.worker = null;
        reject(new Error(`the PDF worker stopped unexpectedly (exit code ${code})`));
      };
      const onAbort = () => {
        cleanup();
        void this.close();
        reject(signal!.reason);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      signal?.addEventListener('abort', onAbort, { once: true });
    });

    const job: PdfJob = 'path' in input ? { id, path: input.path } : { id, data: input.data };
    worker.ref(); // a job in flight keeps the process alive; an idle worker does not
    worker.postMessage(job);
    await done;

    if (pages > 0 && segments.length === 0) {
      throw new Rejection(
        'no text layer',
        `has no text layer (scanned images?); run OCR first, e.g. ocrmypdf in.pdf out.pdf`,
      );
    }
    if (pages === 0) throw new Rejection('empty', 'is a PDF with no pages', 'emptyInput');
    return { segments, bytes, pages };
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private ensureWorker(): Worker {
    if (!this.worker) {
      this.worker = startWorker(PDF_HEAP_MB);
      // An idle worker must not keep the process alive if a caller forgets close().
      this.worker.unref();
    }
    return this.worker;
  }
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** The PDF worker's JS heap cap. */
const PDF_HEAP_MB = 1024;

/** Turns the worker's error report into what the user is told. */
function workerFailure(m: Extract<PdfMessage, { type: 'error' }>): Error {
  if (m.code) {
    // An fs error from reading the file: rebuild it so fsError can name the cause.
    return Object.assign(new Error(m.message), { code: m.code });
  }
  if (m.name === 'PasswordException') {
    return new Rejection('encrypted', 'is an encrypted PDF (it needs a password); decrypt it first, e.g. qpdf --decrypt --password=… in.pdf out.pdf');
  }
  // pdf.js gives up on some malformed files by building a string or buffer too large for V8.
  if (m.name === 'RangeError') {
    return new Rejection('not a valid PDF', `is not a valid PDF: its structure could not be parsed (pdf.js: ${m.message.replace(/\.$/, '')})`);
  }
  return new Rejection('not a valid PDF', `is not a valid PDF (${m.message.replace(/\.$/, '')})`);
}
