// Worker thread of the encoding pool (pool.ts): loads the model folder's tokenizer once (or builds
// the one it is sent: a GGUF file's), then encodes the pieces of text it is sent and returns their
// ids. All scheduling lives in pool.ts.

import { parentPort, workerData } from 'node:worker_threads';
import { threadClock } from '../thread-cpu-time.js';
import { EncoderCore, loadEncoderCore } from './encoder.js';
import type { FromWorker, ToWorker, WorkerInit } from './pool.js';

const port = parentPort!;
const init = workerData as WorkerInit;

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

// First, so the pool can count this thread's CPU time against its deadlines.
send({ clock: threadClock() });
let core: EncoderCore;
try {
  core = init.tokenizer ? new EncoderCore(init.tokenizer.json, init.tokenizer.config, init.dir) : loadEncoderCore(init.dir);
  send({ ready: true });
} catch (e) {
  send({ error: (e as Error).message });
  process.exit(1);
}

port.on('message', (msg: ToWorker) => {
  try {
    const ids = Int32Array.from(init.parseSpecialTokens ? core.encodeText(msg.text) : core.encodeDocumentText(msg.text));
    // Transfer the buffer instead of copying it.
    send({ id: msg.id, ids }, [ids.buffer]);
  } catch (e) {
    send({ id: msg.id, error: (e as Error).message });
  }
});
