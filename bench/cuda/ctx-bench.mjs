#!/usr/bin/env node
// ctx's side of bench/cuda (README.md beside this file): the cuda backend in bf16 on a Qwen2-7B-shaped
// beacon model with random weights generated on the GPU, read through the engine's own strategies.
//
//   node bench/cuda/ctx-bench.mjs <model-dir> <out.json> [--lengths 32768,131072] [--strategies beacon,select]
//                                 [--question 64] [--decode 16] [--gemm-only | --skip-gemm]
//                                 [--device host --dtype f32]   (a dry run of this script on the CPU kernels)
//
// Per strategy and document length: prefill tokens/s, time to first answer token (document, then a
// question, then the first token is the argmax of the question's last logits), decode ms/token, peak
// device memory held by ctx (weights + KV + scratch), and the largest KV footprint during the run.
// Also: achieved TFLOP/s of ctx's bf16 GEMM on the model's shapes, against the GPU's bf16 peak.
// Runs from the compiled dist/ (npx tsc -p .), so the GPU machine needs no node_modules.
import { writeFileSync } from 'node:fs';

const dist = new URL('../../dist/', import.meta.url);
const { openModel } = await import(new URL('model/model.js', dist).href);
const { createNativeBackend, probeDevices } = await import(new URL('backend/native/index.js', dist).href);
const { Session } = await import(new URL('engine/session.js', dist).href);
const { resolveStrategy, describeResolved } = await import(new URL('engine/strategies/index.js', dist).href);

/** Dense bf16 tensor-core peaks (TFLOP/s, no sparsity), by device name. CTX_BF16_PEAK_TFLOPS overrides. */
const BF16_PEAK = [
  [/H200/, 989.4],
  [/H100.*(SXM|HBM3)/, 989.4],
  [/H100.*NVL/, 835.5],
  [/H100/, 756.5],
  [/GH200/, 989.4],
  [/A100/, 312],
  [/L40S/, 362.1],
  [/L40\b/, 181],
  [/L4\b/, 121],
  [/A10\b/, 125],
  [/RTX 4090/, 165.2],
  [/RTX 6000 Ada/, 364.2],
  [/A6000/, 154.8],
];

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const [modelDir, outFile] = process.argv.slice(2, 4);
if (!modelDir || !outFile || modelDir.startsWith('--') || outFile.startsWith('--')) {
  console.error('usage: node bench/cuda/ctx-bench.mjs <model-dir> <out.json> [--lengths ...] [--strategies ...]');
  process.exit(2);
}
const lengths = arg('lengths', '32768,131072').split(',').map(Number);
const strategies = arg('strategies', 'beacon,select').split(',');
const questionLen = Number(arg('question', '64'));
const decodeSteps = Number(arg('decode', '16'));
const device = arg('device', 'cuda');
const dtype = arg('dtype', 'bf16');

const probe = probeDevices();
if (device === 'cuda' && !probe.available) {
  console.error(`no GPU: ${probe.reason}`);
  process.exit(1);
}
const gpu = probe.devices[0] ?? null;
const peak = Number(process.env.CTX_BF16_PEAK_TFLOPS) || (gpu ? BF16_PEAK.find(([re]) => re.test(gpu.name))?.[1] : undefined) || null;

const log = (s) => console.log(`[ctx-bench] ${s}`);
const model = openModel(modelDir);
const c = model.config;
let t = performance.now();
const backend = await createNativeBackend(model, { device, dtype, randomWeightsSeed: 1 });
log(`weights generated on ${backend.deviceName} in ${((performance.now() - t) / 1000).toFixed(1)} s; ${(backend.memory().inUseBytes / 2 ** 30).toFixed(2)} GiB`);

const result = { device: gpu, deviceName: backend.deviceName, bf16PeakTflops: peak, numeric: backend.numeric, gemm: [], runs: [] };

// ---- GEMM throughput on the model's shapes (M = rows of a beacon window step) ----
const shapes = [
  ['q/o projection', 2304, c.hiddenSize, c.hiddenSize],
  ['gate/up projection', 2304, c.intermediateSize, c.hiddenSize],
  ['down projection', 2304, c.hiddenSize, c.intermediateSize],
  ['square 8192', 8192, 8192, 8192],
];
for (const [name, m, n, k] of process.argv.includes('--skip-gemm') ? [] : shapes) {
  const s = backend.timeMatmul(m, n, k, 20);
  const tflops = (2 * m * n * k) / s / 1e12;
  result.gemm.push({ name, m, n, k, seconds: s, tflops, fractionOfPeak: peak ? tflops / peak : null });
  log(`GEMM ${name} [${m}×${k}]·[${n}×${k}]ᵀ: ${tflops.toFixed(1)} TFLOP/s${peak ? ` (${((100 * tflops) / peak).toFixed(1)}% of ${peak})` : ''}`);
}
if (process.argv.includes('--gemm-only')) {
  writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
  process.exit(0);
}

function randomTokens(n, seed) {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 1000 + (s % (c.vocabSize - 2000));
  });
}

function argmax(v) {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

async function run(strategy, length) {
  const opts = strategy === 'beacon' ? { strategy: 'beacon', beaconRatio: 8 } : { strategy };
  const resolved = resolveStrategy(c, opts, length + questionLen + decodeSteps);
  const session = new Session(backend, resolved);
  backend.resetPeakMemory();
  let kvPeak = 0;
  let lastLog = performance.now();
  const t0 = performance.now();
  await session.feed(randomTokens(length, 7), {
    onStep: (done) => {
      kvPeak = Math.max(kvPeak, session.stats().kvBytes);
      if (performance.now() - lastLog > 10000) {
        lastLog = performance.now();
        log(`  ${strategy} ${length}: ${done} tokens, ${(done / ((lastLog - t0) / 1000)).toFixed(0)} tok/s`);
      }
    },
  });
  const tDoc = performance.now();
  const qLogits = await session.feed(randomTokens(questionLen, 9), { onStep: () => (kvPeak = Math.max(kvPeak, session.stats().kvBytes)) });
  let token = argmax(qLogits.subarray(qLogits.length - c.vocabSize));
  const tFirst = performance.now();
  for (let i = 0; i < decodeSteps; i++) {
    const l = await session.feed(Int32Array.of(token), { decoding: true });
    token = argmax(l);
    kvPeak = Math.max(kvPeak, session.stats().kvBytes);
  }
  const tEnd = performance.now();
  const mem = backend.memory();
  const r = {
    strategy,
    describe: describeResolved(resolved),
    documentTokens: length,
    questionTokens: questionLen,
    prefillSeconds: (tDoc - t0) / 1000,
    prefillTokensPerSecond: length / ((tDoc - t0) / 1000),
    timeToFirstTokenSeconds: (tFirst - t0) / 1000,
    decodeMsPerToken: decodeSteps ? (tEnd - tFirst) / decodeSteps : null,
    peakDeviceBytes: mem.peakBytes,
    kvPeakBytes: kvPeak,
    kvRowsAtEnd: session.stats().totalRows,
  };
  session.dispose();
  log(`${strategy} ${length}: prefill ${r.prefillTokensPerSecond.toFixed(0)} tok/s (${r.prefillSeconds.toFixed(1)} s), first token ${r.timeToFirstTokenSeconds.toFixed(2)} s, decode ${r.decodeMsPerToken?.toFixed(1)} ms/token, peak ${(r.peakDeviceBytes / 2 ** 30).toFixed(2)} GiB, KV ${(r.kvPeakBytes / 2 ** 30).toFixed(3)} GiB`);
  return r;
}

// Warm-up: loads every kernel and sizes the scratch buffers.
await run('beacon', 4096);
for (const length of lengths) {
  for (const strategy of strategies) {
    result.runs.push(await run(strategy, length));
    writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`); // keep partial results if a later run is cut off
  }
}
await backend.dispose();
writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
log(`wrote ${outFile}`);
