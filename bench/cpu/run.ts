// npm run bench:cpu  (node --import tsx bench/cpu/run.ts [--lengths 2048,8192,32000] [--decode 16]
//                     [--threads 2] [--only ctx|llama] [--strategies full,select,beacon] [--dtypes f32,q8]
//                     [--repeat 3] [--no-single] [--llama-threads 1] [--llama-alloc-only] [--fresh] [--report])
//
// ctx's cpu backend against llama.cpp (node-llama-cpp, CPU) on one random-weight model in the
// shape of Qwen2.5-0.5B, side by side on this machine. For every document length:
//   ctx  full / select / beacon (beacon variant of the same weights, r = 8), float32 and q8
//   llama.cpp  F32 and Q8_0 GGUF of the same weights, context size = document length (+ decode)
// each in its own process (peak RSS is per process), measuring prefill tokens/s, peak RSS,
// decode tokens/s after the document, and achieved dense FLOP/s against this machine's peak
// (peak.ts). Each cell runs --repeat times (one process each); its numbers are the medians, and
// every run records the share of the machine other processes used meanwhile (other-cpu.ts).
// --no-single skips the single-thread llama.cpp rows. --llama-alloc-only: llama.cpp's cells make a
// context for the whole length but read only a 64-token prompt (peer/llama-run.ts): llama.cpp allocates
// its whole KV cache at context creation, so the peak RSS is a lower bound of a full read's, labelled so
// in the table, and there is no prefill rate (for 128K tokens, which llama.cpp cannot read here in hours). Results accumulate in bench/work/cpu/results.json (a rerun skips what is there unless
// --fresh) and the table is rewritten to bench/results/cpu.md after every run (--report: only that).
//
// Needs the peer installed once: (cd bench/cpu/peer && npm install)

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { convertedWeights } from '../../src/backend/cpu/weights.js';
import { openModel } from '../../src/model/model.js';
import { documentTokens } from './documents.js';
import { prepareModels } from './models.js';
import { cpuClock, otherCpuShare } from './other-cpu.js';
import { writeReport, type Measurement, type Results } from './report.js';
import { option, flag, benchArgs } from '../args.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SHARED = join(ROOT, '..', 'shared');
const WORK = join(ROOT, 'bench', 'work', 'cpu');
const CACHE = join(WORK, 'cache');
const RESULTS = join(WORK, 'results.json');
const REPORT = join(ROOT, 'bench', 'results', 'cpu.md');

const lengths = option('lengths', '2048,8192,32000').split(',').map(Number);
const decode = Number(option('decode', '16'));
const threads = Number(option('threads', '2'));
const only = option('only', '');
const strategies = new Set(option('strategies', 'full,select,beacon').split(','));
const dtypes = new Set(option('dtypes', 'f32,q8').split(','));
const repeat = Math.max(1, Number(option('repeat', '3')));
// llama.cpp's threads busy-wait for each other: on a loaded machine 2 threads can run slower than 1.
const llamaThreads = flag('llama-threads') ? Number(option('llama-threads', '1')) : null;
const llamaAllocOnly = flag('llama-alloc-only');
const log = (s: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);

if (flag('report')) {
  // Rewrite bench/results/cpu.md from the stored measurements, measuring nothing.
  const stored = JSON.parse(readFileSync(RESULTS, 'utf8')) as Results;
  log(`wrote ${writeReport(stored, openModel(join(WORK, 'qwen2.5-0.5b')).config, REPORT)}`);
  process.exit(0);
}
if (!existsSync(join(ROOT, 'bench', 'cpu', 'peer', 'node_modules', 'node-llama-cpp'))) {
  console.error('the peer is not installed: (cd bench/cpu/peer && npm install)');
  process.exit(2);
}
mkdirSync(WORK, { recursive: true });
const tokenizerJson = join(SHARED, 'models', 'tokenizers', 'qwen3', 'tokenizer.json');
const models = prepareModels(WORK, tokenizerJson, log);
const tokensPath = join(WORK, 'tokens.json');
documentTokens(SHARED, WORK, Math.max(...lengths));
for (const dir of [models.plain, models.beacon]) {
  for (const dtype of ['f32', 'q8'] as const) if (dtypes.has(dtype)) convertedWeights(openModel(dir), dtype, CACHE, log);
}

const results: Results = existsSync(RESULTS) && !flag('fresh')
  ? JSON.parse(readFileSync(RESULTS, 'utf8'))
  : { machine: {}, command: '', peak: null, runs: [] };
{
  // A run that adds to earlier results (no --fresh) keeps their commands: the table holds both.
  const command = `node --import tsx bench/cpu/run.ts ${benchArgs.join(' ')}`.trim();
  results.command = results.command && !flag('fresh') && !results.command.split(' ; ').includes(command) ? `${results.command} ; ${command}` : command;
}
results.machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  os: execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim(),
  onnxruntime: JSON.parse(readFileSync(join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version,
  nodeLlamaCpp: JSON.parse(readFileSync(join(ROOT, 'bench', 'cpu', 'peer', 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version,
};
// Another run.ts may be measuring other cells meanwhile (a long llama.cpp cell beside ctx's): each
// save takes the file's runs and commands as they are now and adds this process's, so neither is lost.
let fresh = flag('fresh');
const save = () => {
  if (existsSync(RESULTS) && !fresh) {
    const now = JSON.parse(readFileSync(RESULTS, 'utf8')) as Results;
    const mine = new Set(results.runs);
    const key = (r: Measurement) => `${r.n} ${r.engine} ${r.strategy} ${r.dtype} ${r.threads ?? threads} ${Boolean(r.allocOnly)}`;
    const ours = new Set(results.runs.map(key));
    results.runs = [...now.runs.filter((r) => !ours.has(key(r)) && !mine.has(r)), ...results.runs];
    const commands = [...now.command.split(' ; '), ...results.command.split(' ; ')].filter((c, i, all) => c && all.indexOf(c) === i);
    results.command = commands.join(' ; ');
  }
  writeFileSync(RESULTS, JSON.stringify(results, null, 1));
  fresh = false;
};

function child(script: string, argv: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...argv], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} ${argv.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

log('measuring peak GEMM rates');
{
  // Keep the best of every measurement so far: the machine's peak, not one moment's load.
  const p = child('bench/cpu/peak.ts', [String(threads), WORK]) as NonNullable<Results['peak']>;
  const old = results.peak;
  results.peak = old && old.threads === p.threads ? { ...p, f32: Math.max(p.f32, old.f32), q8: Math.max(p.q8, old.q8) } : p;
}
save();

type Config = { engine: 'ctx' | 'llama'; strategy: string; dtype: string; flash?: boolean; threads?: number };
const all: Config[] = [
  { engine: 'ctx', strategy: 'full', dtype: 'f32' },
  { engine: 'llama', strategy: 'full', dtype: 'f32', flash: true },
  { engine: 'ctx', strategy: 'select', dtype: 'f32' },
  { engine: 'ctx', strategy: 'beacon', dtype: 'f32' },
  { engine: 'ctx', strategy: 'full', dtype: 'q8' },
  { engine: 'llama', strategy: 'full', dtype: 'q8', flash: true },
  { engine: 'ctx', strategy: 'select', dtype: 'q8' },
  { engine: 'ctx', strategy: 'beacon', dtype: 'q8' },
];
// The runs the targets need come first (the longest document's full-attention runs take longest),
// so an interrupted benchmark still has them; a rerun continues where it stopped.
const longest = Math.max(...lengths);
const target = (c: Config) => c.strategy === 'beacon' || c.engine === 'llama';
// llama.cpp's threads busy-wait for each other between operations; when other work shares the
// cores that costs it dearly, so the shortest document also gets single-thread llama.cpp rows.
const single: Config[] = all.filter((c) => c.engine === 'llama').map((c) => ({ ...c, threads: 1 }));
const plan: Array<[number, Config]> = [
  ...lengths.filter((n) => n !== longest).flatMap((n) => all.map((c): [number, Config] => [n, c])),
  ...all.filter(target).map((c): [number, Config] => [longest, c]),
  ...all.filter((c) => !target(c)).map((c): [number, Config] => [longest, c]),
  ...(flag('no-single') ? [] : single.map((c): [number, Config] => [Math.min(...lengths), c])),
];
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];
for (const [n, c] of plan) {
  if ((only && c.engine !== only) || !strategies.has(c.strategy) || !dtypes.has(c.dtype)) continue;
  const runThreads = c.threads ?? (c.engine === 'llama' && llamaThreads !== null ? llamaThreads : threads);
  const same = (r: Measurement) =>
    r.n === n && r.engine === c.engine && r.strategy === c.strategy && r.dtype === c.dtype && (r.threads ?? threads) === runThreads &&
    Boolean(r.allocOnly) === (c.engine === 'llama' && llamaAllocOnly);
  if (results.runs.some((r) => same(r) && !r.error)) continue;
  log(`${c.engine} ${c.strategy} ${c.dtype} n=${n} threads=${runThreads} ×${repeat}`);
  const load0 = loadavg()[0];
  const t = performance.now();
  let m: Measurement;
  try {
    const runs: Array<Measurement & { otherCpu: number | null }> = [];
    for (let i = 0; i < repeat; i++) {
      const before = cpuClock();
      const out = c.engine === 'ctx'
        ? child('bench/cpu/ctx-run.ts', [c.strategy === 'beacon' ? models.beacon : models.plain, tokensPath, String(n), String(decode), c.strategy, c.dtype, String(runThreads), CACHE])
        : child('bench/cpu/peer/llama-run.ts', [c.dtype === 'f32' ? models.ggufF32 : models.ggufQ8, tokensPath, String(n), String(decode), String(runThreads), c.flash ? 'flash' : 'noflash', ...(llamaAllocOnly ? ['alloc-only'] : [])]);
      runs.push({ ...(out as unknown as Measurement), otherCpu: otherCpuShare(before, cpuClock(), cpus().length) });
      log(`  run ${i + 1}: prefill ${runs[i].prefillTokPerSec?.toFixed(1) ?? '–'} tok/s, peak RSS ${(runs[i].peakRss! / 2 ** 20).toFixed(0)} MiB, other processes ${runs[i].otherCpu === null ? '?' : `${Math.round(100 * runs[i].otherCpu!)}%`} of the CPUs`);
    }
    // The run whose peak RSS is the median gives the cell's other fields; rates and RSS are medians.
    const mid = runs.find((r) => r.peakRss === median(runs.map((x) => x.peakRss!)))!;
    m = {
      ...mid,
      ...c,
      n,
      threads: runThreads,
      prefillTokPerSec: mid.allocOnly ? undefined : median(runs.map((r) => r.prefillTokPerSec!)),
      decodeTokPerSec: median(runs.map((r) => r.decodeTokPerSec!)),
      peakRss: median(runs.map((r) => r.peakRss!)),
      repeats: runs.map((r) => ({ prefillTokPerSec: r.prefillTokPerSec!, decodeTokPerSec: r.decodeTokPerSec!, peakRss: r.peakRss!, otherCpu: r.otherCpu })),
    } as Measurement;
    delete (m as { otherCpu?: unknown }).otherCpu;
  } catch (e) {
    m = { ...c, n, threads: runThreads, error: (e as Error).message.split('\n').slice(0, 3).join(' ') } as Measurement;
  }
  m.loadAvg = [load0, loadavg()[0]];
  m.wallSeconds = (performance.now() - t) / 1000;
  results.runs = results.runs.filter((r) => !same(r));
  results.runs.push(m);
  save();
  writeReport(results, openModel(models.plain).config, REPORT);
  log(m.error ? `  failed: ${m.error}` : `  prefill ${m.prefillTokPerSec?.toFixed(1) ?? '–'} tok/s, decode ${m.decodeTokPerSec!.toFixed(2)} tok/s, peak RSS ${(m.peakRss! / 2 ** 20).toFixed(0)} MiB`);
}
const md = writeReport(results, openModel(models.plain).config, REPORT);
log(`wrote ${md}`);
