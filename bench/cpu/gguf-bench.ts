// npm run bench:gguf  (node --import tsx bench/cpu/gguf-bench.ts [--shapes qwen2.5-0.5b,qwen2.5-1.5b]
//                      [--lengths 2048,32000] [--decode 16] [--threads 2] [--fresh] [--report])
//
// ctx reading a Q4_K_M GGUF file against llama.cpp (node-llama-cpp, CPU) reading the same file:
// random weights in the shapes of Qwen2.5-0.5B and 1.5B (gguf-models.ts), the same document token ids
// for both (documents.ts). Per shape and document length, each in its own process (peak RSS is per
// process): llama.cpp with full attention (flash attention, its default KV cache), and ctx — full
// attention up to 4,096 tokens, TokenSelect (`select`, its defaults) past that. Measured:
// prefill tokens/s, decode tokens/s after the document, peak RSS, and the share of the machine's CPU
// time other processes took while the cell ran (from /proc/stat's busy time minus the cell's own CPU
// time): this machine is shared, and a cell that ran beside busy neighbours is slower for it.
// Results accumulate in bench/work/cpu-gguf/results.json (a rerun skips what is there unless --fresh)
// and the "gguf-bench" section of bench/results/cpu.md is rewritten after every cell.
//
// Needs the peer installed once: (cd bench/cpu/peer && npm install), and ../shared (the Qwen
// tokenizer and the Gutenberg books of documents.ts).

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { convertedWeights } from '../../src/backend/cpu/weights.js';
import { openModelAt } from '../../src/model/model.js';
import { documentTokens } from './documents.js';
import { GGUF_SHAPES, writeQ4kmModel, type GgufShape } from './gguf-models.js';
import { writeSection } from '../sections.js';
import { cpuClock, otherCpuShare } from './other-cpu.js';
import { option, flag, benchArgs } from '../args.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SHARED = join(ROOT, '..', 'shared');
const WORK = join(ROOT, 'bench', 'work', 'cpu-gguf');
const CACHE = join(WORK, 'cache');
const RESULTS = join(WORK, 'results.json');
const REPORT = join(ROOT, 'bench', 'results', 'cpu.md');

const shapes = option('shapes', 'qwen2.5-0.5b,qwen2.5-1.5b').split(',') as GgufShape[];
const lengths = option('lengths', '2048,32000').split(',').map(Number);
const decode = Number(option('decode', '16'));
const threads = Number(option('threads', '2'));
const log = (s: string) => console.error(`[gguf-bench ${new Date().toISOString().slice(11, 19)}] ${s}`);

interface Cell {
  shape: GgufShape;
  n: number;
  engine: 'ctx' | 'llama';
  strategy: string;
  threads: number;
  prefillTokPerSec?: number;
  decodeTokPerSec?: number;
  peakRss?: number;
  loadSeconds?: number;
  /** Wall time of the process, and its own CPU time (all threads). */
  wallSeconds?: number;
  cpuSeconds?: number;
  /** Share of the machine's CPU time (all cores) other processes used while the cell ran. */
  otherCpuShare?: number;
  loadAvg?: number[];
  error?: string;
}

interface Results {
  machine: Record<string, unknown>;
  command: string;
  files: Record<string, { gguf: number; converted: number }>;
  cells: Cell[];
}

const ggufPath = (shape: GgufShape) => join(WORK, `${shape}-q4_k_m.gguf`);

/** Busy and total CPU seconds of the whole machine so far (/proc/stat, all cores). */
/** Runs one measurement child; resolves to its JSON line plus the machine's CPU use meanwhile. */
function child(script: string, argv: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const before = cpuClock();
    const t = performance.now();
    const p = spawn(process.execPath, ['--import', 'tsx', script, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const after = cpuClock(); // after the child was waited for: its CPU time is in `mine`
      const wall = (performance.now() - t) / 1000;
      if (code !== 0) return reject(new Error(`${script} ${argv.join(' ')} failed (${code}):\n${err.slice(-2000)}`));
      const m = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
      resolvePromise({ ...m, wallSeconds: wall, otherCpuShare: otherCpuShare(before, after, cpus().length) ?? undefined });
    });
  });
}

function mib(b?: number): string {
  return b === undefined ? '–' : (b / 2 ** 20).toFixed(0);
}
function fx(v: number | undefined, d = 1): string {
  return v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d);
}

function report(r: Results): void {
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);
  out('## GGUF Q4_K_M: ctx reading the file vs llama.cpp reading the same file');
  out();
  out('Written by `npm run bench:gguf` (bench/cpu/gguf-bench.ts). Random weights in the shapes of Qwen2.5-0.5B');
  out('(hidden 896, 24 layers, 14/2 heads, intermediate 4864) and Qwen2.5-1.5B (hidden 1536, 28 layers, 12/2 heads,');
  out('intermediate 8960), vocab 151936, tied embeddings, written as Q4_K_M with llama.cpp\'s choice of type per tensor');
  out('(`q4kmType`: Q4_K, Q6_K for the tied head and for v/down in the layers llama.cpp picks; the 0.5B\'s 896-wide rows');
  out('fall back to Q5_0 and Q8_0 as llama.cpp does). Both engines read that one file; ctx re-encodes it once into its cache');
  out('(`converted`, not timed) and keeps every weight as stored. Documents: the same Gutenberg token ids as above.');
  out('ctx runs `full` at 2,048 tokens and `select` (TokenSelect, its defaults) at 32,000; llama.cpp runs full attention');
  out('(flash attention, f16 KV cache, its defaults), 2 threads each, and llama.cpp with 1 thread at 2,048 tokens too; ctx\'s');
  out('ratios are against llama.cpp\'s faster configuration. Each cell is one process. "other CPU" is the share of the');
  out('machine\'s CPU time (both cores) that other processes used while the cell ran: this machine is shared with other');
  out('agents, so every rate below is lower than on an idle machine, by an amount that differs from cell to cell.');
  out();
  out('- machine: ' + Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join(', '));
  out(`- command: \`${r.command}\``);
  for (const [shape, f] of Object.entries(r.files)) out(`- ${shape}: GGUF file ${mib(f.gguf)} MiB, ctx's converted copy ${mib(f.converted)} MiB (${fx(f.converted / f.gguf, 2)}×)`);
  out();
  out('| model | tokens | engine | strategy | prefill tok/s | vs llama.cpp | decode tok/s | vs llama.cpp | peak RSS MiB | vs llama.cpp | other CPU | wall s |');
  out('|---|---|---|---|---|---|---|---|---|---|---|---|');
  // ctx is compared with llama.cpp's faster configuration at that shape and length (2 threads, or 1:
  // its threads busy-wait for each other, which costs it dearly when other processes share the cores).
  const find = (shape: string, n: number, engine: string) =>
    r.cells.filter((c) => c.shape === shape && c.n === n && c.engine === engine && !c.error).sort((a, b) => b.prefillTokPerSec! - a.prefillTokPerSec!)[0];
  for (const c of r.cells) {
    const peer = c.engine === 'ctx' ? find(c.shape, c.n, 'llama') : undefined;
    const ratio = (a?: number, b?: number) => (peer && a !== undefined && b ? `${fx(a / b, 2)}×` : '');
    const name = `${c.engine === 'ctx' ? 'ctx cpu' : 'llama.cpp'}, ${c.threads} thread${c.threads === 1 ? '' : 's'}`;
    if (c.error) {
      out(`| ${c.shape} | ${c.n} | ${name} | ${c.strategy} | failed: ${c.error.slice(0, 120)} | | | | | | | |`);
      continue;
    }
    out(
      `| ${c.shape} | ${c.n} | ${name} | ${c.strategy} | ${fx(c.prefillTokPerSec)} | ${ratio(c.prefillTokPerSec, peer?.prefillTokPerSec)} | ` +
        `${fx(c.decodeTokPerSec, 2)} | ${ratio(c.decodeTokPerSec, peer?.decodeTokPerSec)} | ${mib(c.peakRss)} | ${ratio(c.peakRss, peer?.peakRss)} | ` +
        `${c.otherCpuShare === undefined ? '–' : `${Math.round(100 * c.otherCpuShare)}%`} | ${fx(c.wallSeconds, 0)} |`,
    );
  }
  out();
  out('Goals (issue 20):');
  // Goals are read off the cells measured (a later run may add lengths): the shortest length is the
  // 2K goal, a longer one the 32K goal.
  for (const shape of new Set(r.cells.map((c) => c.shape))) {
    const ns = r.cells.filter((c) => c.shape === shape).map((c) => c.n);
    const shortest = Math.min(...ns);
    const longest = Math.max(...ns);
    const a = find(shape, shortest, 'ctx');
    const b = find(shape, shortest, 'llama');
    const says = (ok: boolean) => (ok ? 'met' : 'NOT met');
    if (a && b) {
      out(`- ${shape}, ${shortest} tokens, prefill ≥ llama.cpp's: ${says(a.prefillTokPerSec! >= b.prefillTokPerSec!)} — ${fx(a.prefillTokPerSec)} vs ${fx(b.prefillTokPerSec)} tok/s = ${fx(a.prefillTokPerSec! / b.prefillTokPerSec!, 2)}×`);
      out(`- ${shape}, ${shortest} tokens, peak RSS within 10% of llama.cpp's: ${says(a.peakRss! <= 1.1 * b.peakRss!)} — ${mib(a.peakRss)} vs ${mib(b.peakRss)} MiB = ${fx(a.peakRss! / b.peakRss!, 2)}×`);
    } else out(`- ${shape}, ${shortest} tokens: not measured yet`);
    const c = find(shape, longest, 'ctx');
    const d = find(shape, longest, 'llama');
    if (longest === shortest) out(`- ${shape}, 32K tokens with select: not measured yet`);
    else if (c && d) out(`- ${shape}, ${longest} tokens, prefill ≥ 3× llama.cpp's with select: ${says(c.prefillTokPerSec! >= 3 * d.prefillTokPerSec!)} — ${fx(c.prefillTokPerSec)} vs ${fx(d.prefillTokPerSec)} tok/s = ${fx(c.prefillTokPerSec! / d.prefillTokPerSec!, 2)}×`);
    else out(`- ${shape}, ${longest} tokens: not measured yet`);
  }
  const notes = join(import.meta.dirname, 'gguf-notes.md');
  if (existsSync(notes)) {
    out();
    lines.push(readFileSync(notes, 'utf8').trimEnd());
  }
  writeSection(REPORT, 'gguf-bench', lines.join('\n'));
}

if (flag('report')) {
  report(JSON.parse(readFileSync(RESULTS, 'utf8')) as Results);
  log(`wrote ${REPORT}`);
  process.exit(0);
}
if (!existsSync(join(ROOT, 'bench', 'cpu', 'peer', 'node_modules', 'node-llama-cpp'))) {
  console.error('the peer is not installed: (cd bench/cpu/peer && npm install)');
  process.exit(2);
}
mkdirSync(WORK, { recursive: true });
const tokenizerJson = join(SHARED, 'models', 'tokenizers', 'qwen3', 'tokenizer.json');
documentTokens(SHARED, WORK, Math.max(...lengths));
const tokensPath = join(WORK, 'tokens.json');

const results: Results = existsSync(RESULTS) && !flag('fresh') ? JSON.parse(readFileSync(RESULTS, 'utf8')) : { machine: {}, command: '', files: {}, cells: [] };
// The commands whose cells the results hold (a run without --fresh adds to them).
const thisCommand = `node --import tsx bench/cpu/gguf-bench.ts ${benchArgs.join(' ')}`.trim();
results.command = results.command && !flag('fresh') ? `${results.command}, then ${thisCommand}` : thisCommand;
results.machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  onnxruntime: JSON.parse(readFileSync(join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version,
  nodeLlamaCpp: JSON.parse(readFileSync(join(ROOT, 'bench', 'cpu', 'peer', 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version,
};
const save = () => writeFileSync(RESULTS, JSON.stringify(results, null, 1));

for (const shape of shapes) {
  if (!(shape in GGUF_SHAPES)) throw new Error(`unknown shape ${shape} (${Object.keys(GGUF_SHAPES).join(', ')})`);
  writeQ4kmModel(shape, ggufPath(shape), tokenizerJson, log);
  log(`converting ${shape} for ctx (once)`);
  const w = await convertedWeights(await openModelAt(ggufPath(shape)), 'gguf', CACHE, log);
  results.files[shape] = { gguf: statSync(ggufPath(shape)).size, converted: statSync(join(w.dir, w.layout.file)).size };
}
save();

// The cells the goals need, cheapest first, so an interrupted run has the most answers; a rerun
// continues where it stopped.
const plan: Array<Pick<Cell, 'shape' | 'n' | 'engine' | 'strategy' | 'threads'>> = [];
// The 2K goal compares full attention with full attention; longer documents are what select is for.
// (Decided by length, not by the run's shortest length, so a run of only 32K measures select.)
const FULL_UP_TO = 4096;
for (const n of [...lengths].sort((a, b) => a - b)) {
  for (const shape of shapes) {
    const short = n <= FULL_UP_TO;
    plan.push({ shape, n, engine: 'llama', strategy: 'full', threads }, { shape, n, engine: 'ctx', strategy: short ? 'full' : 'select', threads });
    if (short) plan.push({ shape, n, engine: 'llama', strategy: 'full', threads: 1 });
  }
}
for (const c of plan) {
  const same = (r: Cell) => r.shape === c.shape && r.n === c.n && r.engine === c.engine && r.strategy === c.strategy && r.threads === c.threads;
  if (results.cells.some((r) => same(r) && !r.error)) continue;
  log(`${c.engine} ${c.strategy} ${c.shape} n=${c.n} threads=${c.threads}`);
  const load0 = loadavg()[0];
  let cell: Cell;
  try {
    const m =
      c.engine === 'ctx'
        ? await child('bench/cpu/ctx-run.ts', [ggufPath(c.shape), tokensPath, String(c.n), String(decode), c.strategy, 'gguf', String(c.threads), CACHE])
        : await child('bench/cpu/peer/llama-run.ts', [ggufPath(c.shape), tokensPath, String(c.n), String(decode), String(c.threads), 'flash']);
    cell = { ...(m as object), ...c } as Cell;
  } catch (e) {
    cell = { ...c, error: (e as Error).message.split('\n').slice(0, 3).join(' ') };
  }
  cell.loadAvg = [load0, loadavg()[0]];
  results.cells = results.cells.filter((r) => !same(r));
  results.cells.push(cell);
  save();
  report(results);
  log(cell.error ? `  failed: ${cell.error}` : `  prefill ${fx(cell.prefillTokPerSec)} tok/s, decode ${fx(cell.decodeTokPerSec, 2)} tok/s, peak RSS ${mib(cell.peakRss)} MiB, other CPU ${Math.round(100 * cell.otherCpuShare!)}%`);
}
report(results);
log(`wrote ${REPORT}`);
