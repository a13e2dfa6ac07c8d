// One llama.cpp measurement (node-llama-cpp, CPU, prebuilt binaries), in its own process so its
// peak RSS is its own. Prints one JSON line.
//   node --import tsx bench/cpu/peer/llama-run.ts <model.gguf> <tokens.json> <n> <decode> <threads> [flash]
// tokens.json holds the document's token ids (the same ids ctx is fed).
import { readFileSync } from 'node:fs';
import { getLlama } from 'node-llama-cpp';

const [modelPath, tokensPath, nArg, decodeArg, threadsArg, flash] = process.argv.slice(2);
const n = Number(nArg);
const decode = Number(decodeArg);
const threads = Number(threadsArg);
const doc = (JSON.parse(readFileSync(tokensPath, 'utf8')) as number[]).slice(0, n);

const llama = await getLlama({ gpu: false, build: 'never', maxThreads: threads, logLevel: 'error' as never });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: n + decode + 8, batchSize: 512, threads, flashAttention: flash === 'flash' });
const seq = context.getSequence();
const rssAfterLoad = process.memoryUsage().rss;

// Prefill: every document token, with the next token's logits asked for the last one only.
const t0 = performance.now();
await seq.evaluateWithoutGeneratingNewTokens(doc.slice(0, n - 1) as never);
const res = await seq.controlledEvaluate([[doc[n - 1], { generateNext: { token: true } }]] as never);
const prefillSeconds = (performance.now() - t0) / 1000;
let next = (res[0] as { next: { token: number } }).next.token;

// Decode: greedy, one token per evaluation.
const t1 = performance.now();
const ids: number[] = [next];
for (let i = 0; i < decode; i++) {
  const r = await seq.controlledEvaluate([[next, { generateNext: { token: true } }]] as never, {});
  next = (r[0] as { next: { token: number } }).next.token;
  ids.push(next);
}
const decodeSeconds = (performance.now() - t1) / 1000;
console.log(JSON.stringify({
  engine: 'llama.cpp', n, decode, threads, flash: flash === 'flash',
  prefillSeconds, prefillTokPerSec: n / prefillSeconds,
  decodeTokPerSec: decode / decodeSeconds,
  rssAfterLoad, peakRss: process.resourceUsage().maxRSS * 1024,
  firstIds: ids.slice(0, 4),
  // This process's CPU time, all threads (the caller compares it with the machine's busy time).
  cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
}));
await context.dispose();
await model.dispose();
