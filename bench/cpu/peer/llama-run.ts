// One llama.cpp measurement (node-llama-cpp, CPU, prebuilt binaries), in its own process so its
// peak RSS is its own. Prints one JSON line.
//   node --import tsx bench/cpu/peer/llama-run.ts <model.gguf> <tokens.json> <n> <decode> <threads> [flash|noflash] [alloc-only]
// tokens.json holds the document's token ids (the same ids ctx is fed).
// alloc-only: the context is made for n tokens (+ decode) but only the document's first ALLOC_ONLY_PROMPT
// tokens are read before decoding. llama.cpp allocates and clears its whole KV cache when it creates the
// context, so this run's peak RSS is a lower bound of a full n-token run's (which adds the longer batches'
// attention buffers); it measures no prefill rate. For lengths where reading the whole document here
// would take hours (128K tokens).
import { readFileSync } from 'node:fs';
import { getLlama } from 'node-llama-cpp';

const [modelPath, tokensPath, nArg, decodeArg, threadsArg, flash, mode] = process.argv.slice(2);
const ALLOC_ONLY_PROMPT = 64;
const allocOnly = mode === 'alloc-only';
const contextTokens = Number(nArg);
const n = allocOnly ? ALLOC_ONLY_PROMPT : contextTokens;
const decode = Number(decodeArg);
const threads = Number(threadsArg);
const doc = (JSON.parse(readFileSync(tokensPath, 'utf8')) as number[]).slice(0, n);

const llama = await getLlama({ gpu: false, build: 'never', maxThreads: threads, logLevel: 'error' as never });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: contextTokens + decode + 8, batchSize: 512, threads, flashAttention: flash === 'flash' });
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
  engine: 'llama.cpp', n: contextTokens, decode, threads, flash: flash === 'flash',
  // alloc-only: the tokens read (the rate of a 64-token prompt says nothing about n; left out).
  ...(allocOnly ? { allocOnly: true, promptTokens: n } : { prefillSeconds, prefillTokPerSec: n / prefillSeconds }),
  decodeTokPerSec: decode / decodeSeconds,
  rssAfterLoad, peakRss: process.resourceUsage().maxRSS * 1024,
  firstIds: ids.slice(0, 4),
  // This process's CPU time, all threads (the caller compares it with the machine's busy time).
  cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
}));
await context.dispose();
await model.dispose();
