// Child process of long-document.test.ts: streams a long document through one strategy on the
// cpu backend and prints what it measured as one JSON line (peak RSS is per process, so each
// strategy runs in its own).
//   node --import tsx test/backend/cpu/long-document.child.ts <model-dir> <cache-dir> <beacon|select> <tokens> <session-cache-dir>
// After reading it saves the session to a session cache there, as the first answer would.
import { createCpuBackend } from '../../../src/backend/cpu/index.js';
import { SessionCache } from '../../../src/cache/store.js';
import { KvStore } from '../../../src/backend/cpu/kv-store.js';
import { openModel } from '../../../src/model/model.js';
import { Session } from '../../../src/engine/session.js';
import { resolveStrategy } from '../../../src/engine/strategies/index.js';
import { tokens } from '../../helpers/models.js';

const [dir, cacheDir, strategy, count, sessionsDir] = process.argv.slice(2);
const model = openModel(dir);
const backend = await createCpuBackend(model, { cacheDir, threads: 2 });
const n = Number(count);
const doc = tokens(n, 21, 3, model.config.vocabSize);
const opts = strategy === 'select' ? { strategy: 'select' as const, nInit: 32, topK: 256, nLocal: 128, chunk: 128 } : { strategy: 'beacon' as const };
const session = new Session(backend, resolveStrategy(model.config, opts, n + 16));
const rssAfterLoad = process.memoryUsage().rss;
const t0 = performance.now();
const feedChunk = 4096; // the document arrives in pieces, as a reader streams it
let last: Float32Array = new Float32Array(0);
for (let s = 0; s < n; s += feedChunk) last = await session.feed(doc.subarray(s, s + feedChunk));
const readSeconds = (performance.now() - t0) / 1000;
const savedKvBytes = session.stats().kvBytes; // the KV the entry holds (decoding below adds rows)
const t1 = performance.now();
const saved = await new SessionCache(sessionsDir).save('0'.repeat(64), { inputs: [], model: dir, modelDir: dir, strategy, backend: 'cpu', numeric: 'f32', tokens: n }, session.snapshot(), model.config.headDim);
if (saved.kind !== 'saved') throw new Error(`cache save: ${saved.kind}`);
const saveSeconds = (performance.now() - t1) / 1000;
let id = 0;
for (let j = 1; j < model.config.vocabSize; j++) if (last[j] > last[id]) id = j;
for (let i = 0; i < 8; i++) {
  const l = await session.feed(Int32Array.of(id), { decoding: true });
  id = 0;
  for (let j = 1; j < l.length; j++) if (l[j] > l[id]) id = j;
}
const stats = session.stats();
console.log(JSON.stringify({
  strategy,
  tokens: n,
  seconds: (performance.now() - t0) / 1000,
  readSeconds,
  saveSeconds,
  savedBytes: saved.bytes,
  savedKvBytes,
  kvBytesPerRow: KvStore.bytesPerRow('f16', model.config.numLayers, model.config.numKvHeads, model.config.headDim),
  rssAfterLoad,
  peakRss: process.resourceUsage().maxRSS * 1024,
  kvBytes: stats.kvBytes,
  totalRows: stats.totalRows,
  consumed: stats.consumed,
}));
await backend.dispose();
