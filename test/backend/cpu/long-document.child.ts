// Child process of long-document.test.ts: streams a long document through one strategy on the
// cpu backend and prints what it measured as one JSON line (peak RSS is per process, so each
// strategy runs in its own).
//   node --import tsx test/backend/cpu/long-document.child.ts <model-dir> <cache-dir> <beacon|select> <tokens>
import { createCpuBackend } from '../../../src/backend/cpu/index.js';
import { openModel } from '../../../src/model/model.js';
import { Session } from '../../../src/engine/session.js';
import { resolveStrategy } from '../../../src/engine/strategies/index.js';
import { tokens } from '../../helpers/models.js';

const [dir, cacheDir, strategy, count] = process.argv.slice(2);
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
  rssAfterLoad,
  peakRss: process.resourceUsage().maxRSS * 1024,
  kvBytes: stats.kvBytes,
  totalRows: stats.totalRows,
  consumed: stats.consumed,
}));
await backend.dispose();
