#!/usr/bin/env node
// Turns bench/cuda's two JSON files into bench/results/cuda.md.
//
//   node bench/cuda/report.mjs <ctx.json> <baseline.json> <out.md> [--command "..."]
// Targets (issue #5): dense GEMM ≥ 50% of the bf16 peak; beacon at 128K prefills ≥ 2.5× the
// full-attention baseline's rate with ≤ 1/4 of its KV memory.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const [ctxFile, baseFile, outFile] = process.argv.slice(2, 5);
if (!ctxFile || !baseFile || !outFile) {
  console.error('usage: node bench/cuda/report.mjs <ctx.json> <baseline.json> <out.md> [--command "..."]');
  process.exit(2);
}
const ci = process.argv.indexOf('--command');
const command = ci >= 0 ? process.argv[ci + 1] : 'bash bench/cuda/run.sh';
const ctx = JSON.parse(readFileSync(ctxFile, 'utf8'));
const base = existsSync(baseFile) ? JSON.parse(readFileSync(baseFile, 'utf8')) : null;

const gib = (b) => (b == null ? '–' : `${(b / 2 ** 30).toFixed(2)} GiB`);
const fx = (v, d = 1) => (v == null || Number.isNaN(v) ? '–' : v.toFixed(d));
const k = (n) => (n % 1024 === 0 ? `${n / 1024}K` : String(n));
const lines = [];
const out = (s = '') => lines.push(s);

out('# cuda backend benchmark');
out();
out(`Date: ${new Date().toISOString().slice(0, 10)}. GPU: ${ctx.device ? `${ctx.device.name}, ${gib(ctx.device.memoryBytes)}, compute capability ${ctx.device.computeCapability}, driver ${ctx.device.driver}` : ctx.deviceName}.`);
out(`Command: \`${command}\`.`);
if (base) out(`Baseline: torch ${base.torch}, transformers ${base.transformers}, attention "${base.attention}" (Qwen2 full attention).`);
out();
out('Model: the shape of Qwen2-7B-Instruct with Activation Beacon q/k/v projections (hidden 3584, 28 layers, 28 query / 4 KV heads, intermediate 18944, vocab 152064), random bf16 weights generated on the GPU (speed does not depend on the values). ctx runs its cuda backend in bf16 with f32 accumulation; `beacon` is the v3 interleave recipe at r = 8 (window 2048), `select` is TokenSelect with init 128 + top 2048 + local 512 in 512-token chunks.');
out();

out('## GEMM (ctx\'s bf16 tensor-core kernel)');
out();
out(`bf16 dense peak used: ${ctx.bf16PeakTflops ? `${ctx.bf16PeakTflops} TFLOP/s` : 'unknown (set CTX_BF16_PEAK_TFLOPS)'}.`);
out();
out('| shape | M × N × K | TFLOP/s | % of peak |');
out('|---|---|---|---|');
for (const g of ctx.gemm) out(`| ${g.name} | ${g.m} × ${g.n} × ${g.k} | ${fx(g.tflops)} | ${g.fractionOfPeak == null ? '–' : fx(100 * g.fractionOfPeak)} |`);
out();

out('## Long documents');
out();
out('| run | document | prefill tok/s | prefill s | first answer token s | decode ms/token | peak GPU memory | KV memory (peak) |');
out('|---|---|---|---|---|---|---|---|');
const rows = [
  ...ctx.runs.map((r) => ({ ...r, label: `ctx ${r.strategy}` })),
  ...(base?.runs ?? []).map((r) => ({ ...r, label: `baseline ${r.strategy}${r.prefillChunk ? ` (chunks of ${r.prefillChunk})` : ''}` })),
].sort((a, b) => a.documentTokens - b.documentTokens);
for (const r of rows) {
  if (r.error) {
    out(`| ${r.label} | ${k(r.documentTokens)} | ${r.error} | | | | | |`);
    continue;
  }
  out(`| ${r.label} | ${k(r.documentTokens)} | ${fx(r.prefillTokensPerSecond, 0)} | ${fx(r.prefillSeconds, 2)} | ${fx(r.timeToFirstTokenSeconds, 2)} | ${fx(r.decodeMsPerToken)} | ${gib(r.peakDeviceBytes)} | ${gib(r.kvPeakBytes)} |`);
}
out();
out('Peak GPU memory: ctx counts its own device allocations (weights, KV, scratch); the baseline reports torch.cuda.max_memory_allocated. KV memory: ctx\'s largest stored KV during the run; the baseline\'s cache after the run.');
out();

out('## Targets');
out();
const gemmBest = Math.max(0, ...ctx.gemm.filter((g) => g.fractionOfPeak != null).map((g) => g.fractionOfPeak));
out(`- Dense GEMM ≥ 50% of peak: best ${fx(100 * gemmBest)}% — ${gemmBest >= 0.5 ? 'met' : 'NOT met'}.`);
const beacon = ctx.runs.find((r) => r.strategy === 'beacon' && r.documentTokens === 131072);
const full = base?.runs.find((r) => r.documentTokens === 131072 && !r.error);
if (beacon && full) {
  const speed = beacon.prefillTokensPerSecond / full.prefillTokensPerSecond;
  const kv = beacon.kvPeakBytes / full.kvPeakBytes;
  out(`- Beacon 128K prefill ≥ 2.5× the full-attention baseline: ${fx(speed, 2)}× — ${speed >= 2.5 ? 'met' : 'NOT met'}.`);
  out(`- Beacon KV ≤ 1/4 of the baseline's: ${fx(kv, 3)} — ${kv <= 0.25 ? 'met' : 'NOT met'}.`);
} else {
  out('- Beacon 128K vs baseline: missing run (see the tables).');
}
out();

mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${lines.join('\n')}\n`);
console.log(`wrote ${outFile}`);
