// One ctx measurement on the cpu backend, in its own process so its peak RSS is its own.
// Prints one JSON line.
//   node --import tsx bench/cpu/ctx-run.ts <model-dir|file.gguf> <tokens.json> <n> <decode> <strategy> <dtype> <threads> <cache-dir>
// dtype "gguf" runs a GGUF file's weights as stored. The weights must already be converted (run.ts
// and gguf-bench.ts do that first), so load time is only loading. cpuSeconds: this process's CPU time
// (all threads), from which the caller tells how much of the machine other processes used.

import { readFileSync } from 'node:fs';
import { createCpuBackend, type CpuBackend } from '../../src/backend/cpu/index.js';
import { openModelAt } from '../../src/model/model.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy, type StrategyOptions } from '../../src/engine/strategies/index.js';

const [dir, tokensPath, nArg, decodeArg, strategy, dtype, threadsArg, cacheDir] = process.argv.slice(2);
const n = Number(nArg);
const decode = Number(decodeArg);
const doc = Int32Array.from((JSON.parse(readFileSync(tokensPath, 'utf8')) as number[]).slice(0, n));

const t0 = performance.now();
const model = await openModelAt(dir);
const backend = (await createCpuBackend(model, { dtype: dtype === 'gguf' ? undefined : dtype, threads: Number(threadsArg), cacheDir })) as CpuBackend;
const loadSeconds = (performance.now() - t0) / 1000;
const rssAfterLoad = process.memoryUsage().rss;

const opts: StrategyOptions =
  strategy === 'beacon' ? { strategy: 'beacon', beaconRatio: 8 }
  : strategy === 'select' ? { strategy: 'select' }
  : { strategy: 'full', chunk: 512 };
const resolved = resolveStrategy(model.config, opts, n + decode);
const session = new Session(backend, resolved);

const argmax = (v: Float32Array) => {
  let k = 0;
  for (let j = 1; j < v.length; j++) if (v[j] > v[k]) k = j;
  return k;
};

const t1 = performance.now();
let logits = await session.feed(doc);
const prefillSeconds = (performance.now() - t1) / 1000;
const prefillProfile = backend.profile.shares();
backend.profile.reset();

const ids = [argmax(logits)];
const t2 = performance.now();
for (let i = 0; i < decode; i++) {
  logits = await session.feed(Int32Array.of(ids[i]), { decoding: true });
  ids.push(argmax(logits));
}
const decodeSeconds = (performance.now() - t2) / 1000;
const stats = session.stats();

console.log(JSON.stringify({
  engine: 'ctx', strategy, dtype, n, decode, threads: Number(threadsArg),
  resolved,
  loadSeconds, prefillSeconds, prefillTokPerSec: n / prefillSeconds,
  decodeTokPerSec: decode / decodeSeconds,
  rssAfterLoad, peakRss: process.resourceUsage().maxRSS * 1024,
  kvBytes: stats.kvBytes, kvRows: stats.totalRows,
  prefillProfile, decodeProfile: backend.profile.shares(),
  firstIds: ids.slice(0, 4),
  cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
}));
session.dispose();
await backend.dispose();
