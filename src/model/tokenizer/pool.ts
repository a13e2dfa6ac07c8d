// Encoding pieces in worker threads: each worker loads the model folder's tokenizer once, then
// encodes whichever piece is next, so a slow piece does not hold up the rest; pieces are handed in
// as a document streams past (stream.ts). A worker can be stopped where this thread's own encoding
// could not, so every piece has a deadline, and Ctrl-C (the abort signal) stops the pool at once.
// A deadline counts the worker thread's own CPU time where Linux tells it (thread-cpu-time.ts): a
// starved process, or this thread busy past the timer while the worker's answer waits behind it,
// does not make a legitimate piece too slow.

import { Worker } from 'node:worker_threads';
import { CtxError } from '../../errors.js';
import { cpuMs, type ThreadClock } from '../thread-cpu-time.js';
import type { Json } from './library.js';

/** Messages between this file and worker.ts. */
export interface WorkerInit {
  dir: string;
  parseSpecialTokens: boolean;
  /** The tokenizer itself, when it is not a folder's tokenizer.json (a GGUF file's, built from its metadata). */
  tokenizer?: { json: Json; config: Json };
}
export type ToWorker = { id: number; text: string };
export type FromWorker = { clock: ThreadClock | null } | { ready: true } | { id: number; ids: Int32Array } | { id: number; error: string } | { error: string };

export interface PoolOptions {
  dir: string;
  /** Sent to the workers instead of reading `dir` (WorkerInit.tokenizer). */
  tokenizer?: { json: Json; config: Json };
  workers: number;
  parseSpecialTokens: boolean;
  /** Milliseconds a worker may take to load the tokenizer, and to encode a piece of `chars` characters. */
  loadMs: number;
  pieceMs: (chars: number) => number;
  /** Named in the error when a deadline passes. */
  tokenizerPath: string;
  signal?: AbortSignal;
}

/**
 * Starts one worker on worker.ts next to this file: the .js file when ctx is built. When running from
 * TypeScript source (the tests, under tsx), a worker's entry module does not get the tsx loader that
 * `--import tsx` gave this thread, so a one-line bootstrap registers tsx first.
 */
function startWorker(init: WorkerInit): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./worker.js', here), { workerData: init });
  const entry = new URL('./worker.ts', here).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

interface Job {
  id: number;
  text: string;
  resolve: (ids: Int32Array) => void;
  reject: (e: unknown) => void;
}

/**
 * Worker threads that encode the pieces they are given, in any number, each piece's ids returned
 * by its own promise. After the first failure (a deadline, Ctrl-C, a worker that died) every piece
 * waiting or to come fails with it. close() ends the workers, whatever happened.
 */
export class EncoderPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: Job[] = [];
  private readonly running = new Map<Worker, Job>();
  private readonly timers = new Map<Worker, NodeJS.Timeout>();
  private readonly clocks = new Map<Worker, ThreadClock | null>();
  private readonly onAbort: () => void;
  private failure: unknown = null;
  private closed = false;
  private nextId = 0;

  constructor(private readonly o: PoolOptions) {
    o.signal?.throwIfAborted();
    this.onAbort = () => this.fail(o.signal!.reason);
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
    const init: WorkerInit = { dir: o.dir, parseSpecialTokens: o.parseSpecialTokens, tokenizer: o.tokenizer };
    for (let k = 0; k < Math.max(1, o.workers); k++) {
      const w = startWorker(init);
      this.workers.push(w);
      this.deadline(w, o.loadMs, 'load');
      w.on('message', (msg: FromWorker) => this.received(w, msg));
      // A worker loads the same files this thread already loaded, so any other failure there is a
      // bug in ctx and surfaces as a plain Error (exit code "internal").
      w.on('error', (e) => this.fail(new Error(`tokenizer worker: ${e.message}`)));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`tokenizer worker: exited with code ${code} before finishing`));
      });
    }
  }

  /** The ids of `text`, encoded by the next free worker. */
  encode(text: string): Promise<Int32Array> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the tokenizer pool is closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, text, resolve, reject });
      this.dispatch();
    });
  }

  /** Ends every worker; pieces still waiting fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.o.signal?.removeEventListener('abort', this.onAbort);
    for (const t of this.timers.values()) clearTimeout(t);
    this.rejectAll(this.failure ?? new Error('the tokenizer pool is closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private received(w: Worker, msg: FromWorker): void {
    if ('error' in msg) return this.fail(new Error(`tokenizer worker: ${msg.error}`));
    if ('clock' in msg) {
      // Sent before the worker loads the tokenizer: its load deadline is counted on the clock from here.
      this.clocks.set(w, msg.clock);
      return this.deadline(w, this.o.loadMs, 'load');
    }
    if ('ready' in msg) {
      clearTimeout(this.timers.get(w));
      this.idle.push(w);
      return this.dispatch();
    }
    const job = this.running.get(w);
    clearTimeout(this.timers.get(w));
    this.running.delete(w);
    this.idle.push(w);
    job?.resolve(msg.ids);
    this.dispatch();
  }

  private dispatch(): void {
    while (this.failure === null && this.idle.length > 0 && this.waiting.length > 0) {
      const w = this.idle.pop()!;
      const job = this.waiting.shift()!;
      this.running.set(w, job);
      this.deadline(w, this.o.pieceMs(job.text.length), `encode ${job.text.length} characters`);
      w.postMessage({ id: job.id, text: job.text } satisfies ToWorker);
    }
  }

  private deadline(w: Worker, ms: number, what: string): void {
    clearTimeout(this.timers.get(w));
    const error = () => new CtxError('model', `the tokenizer took more than ${Math.round(ms / 1000)} s to ${what} (a pathological regular expression?)`, { path: this.o.tokenizerPath });
    // Wall-clock time where the worker's CPU time is unknown.
    const clock = this.clocks.get(w) ?? null;
    const start = clock === null ? null : cpuMs(clock);
    const wait = (left: number) =>
      this.timers.set(
        w,
        setTimeout(() => {
          const now = start === null ? null : cpuMs(clock!);
          const used = now === null ? ms : now - start!;
          if (used >= ms) this.fail(error());
          else wait(Math.max(10, ms - used));
        }, left),
      );
    wait(ms);
  }

  private fail(e: unknown): void {
    if (this.failure !== null) return;
    this.failure = e;
    for (const t of this.timers.values()) clearTimeout(t);
    this.rejectAll(e);
  }

  private rejectAll(e: unknown): void {
    for (const job of this.waiting.splice(0)) job.reject(e);
    for (const job of this.running.values()) job.reject(e);
    this.running.clear();
  }
}
