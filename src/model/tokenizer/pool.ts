// Encoding pieces in worker threads: each worker loads the model folder's tokenizer once, then
// encodes whichever piece is next, so a slow piece does not hold up the rest. A worker can be
// stopped where this thread's own encoding could not, so every piece has a deadline, and Ctrl-C
// (the abort signal) stops the pool at once.

import { Worker } from 'node:worker_threads';
import { CtxError } from '../../errors.js';
import type { Json } from './library.js';
import type { Piece } from './pieces.js';

/** Messages between this file and worker.ts. */
export interface WorkerInit {
  dir: string;
  parseSpecialTokens: boolean;
  /** The tokenizer itself, when it is not a folder's tokenizer.json (a GGUF file's, built from its metadata). */
  tokenizer?: { json: Json; config: Json };
}
export type ToWorker = { id: number; text: string };
export type FromWorker = { ready: true } | { id: number; ids: Int32Array } | { id: number; error: string } | { error: string };

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
  onProgress?: (doneChars: number) => void;
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

/** The ids of each piece, in the pieces' order. */
export async function encodeInWorkers(pieces: Piece[], o: PoolOptions): Promise<Int32Array[]> {
  const results: Int32Array[] = new Array(pieces.length);
  if (pieces.length === 0) return results;
  o.signal?.throwIfAborted();
  const count = Math.max(1, Math.min(o.workers, pieces.length));
  const init: WorkerInit = { dir: o.dir, parseSpecialTokens: o.parseSpecialTokens, tokenizer: o.tokenizer };
  const pool: Worker[] = [];
  const timers = new Map<Worker, NodeJS.Timeout>();
  let onAbort: (() => void) | undefined;

  try {
    await new Promise<void>((resolvePromise, reject) => {
      let next = 0;
      let finished = 0;
      let doneChars = 0;
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        reject(e);
      };
      // A worker loads the same files this thread already loaded, so any other failure there is a
      // bug in ctx and surfaces as a plain Error (exit code "internal").
      const internal = (message: string) => fail(new Error(`tokenizer worker: ${message}`));
      const deadline = (w: Worker, ms: number, what: string) => {
        clearTimeout(timers.get(w));
        timers.set(
          w,
          setTimeout(() => {
            fail(new CtxError('model', `the tokenizer took more than ${Math.round(ms / 1000)} s to ${what} (a pathological regular expression?)`, { path: o.tokenizerPath }));
          }, ms),
        );
      };
      const feed = (w: Worker) => {
        if (next >= pieces.length) return clearTimeout(timers.get(w));
        const id = next++;
        deadline(w, o.pieceMs(pieces[id].text.length), `encode ${pieces[id].text.length} characters`);
        w.postMessage({ id, text: pieces[id].text } satisfies ToWorker);
      };
      onAbort = () => fail(o.signal!.reason);
      o.signal?.addEventListener('abort', onAbort, { once: true });

      for (let k = 0; k < count; k++) {
        const w = startWorker(init);
        pool.push(w);
        deadline(w, o.loadMs, 'load');
        w.on('message', (msg: FromWorker) => {
          if ('error' in msg) return internal(msg.error);
          if ('ready' in msg) return feed(w);
          results[msg.id] = msg.ids;
          finished++;
          doneChars += pieces[msg.id].text.length;
          o.onProgress?.(doneChars);
          if (finished === pieces.length) resolvePromise();
          else feed(w);
        });
        w.on('error', (e) => internal(e.message));
        w.on('exit', (code) => {
          if (finished < pieces.length) internal(`exited with code ${code} before finishing`);
        });
      }
    });
  } finally {
    if (onAbort) o.signal?.removeEventListener('abort', onAbort);
    for (const t of timers.values()) clearTimeout(t);
    // Whatever happened, no worker is left running.
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results;
}
