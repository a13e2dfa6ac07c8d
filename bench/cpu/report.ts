// Writes bench/results/cpu.md from the measurements run.ts collected.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ModelConfig } from '../../src/model/config.js';
import { readSection } from '../sections.js';

export interface Measurement {
  engine: 'ctx' | 'llama';
  strategy: string;
  dtype: string;
  n: number;
  prefillTokPerSec?: number;
  decodeTokPerSec?: number;
  peakRss?: number;
  rssAfterLoad?: number;
  loadSeconds?: number;
  kvBytes?: number;
  kvRows?: number;
  prefillProfile?: Record<string, number>;
  decodeProfile?: Record<string, number>;
  flash?: boolean;
  threads?: number;
  loadAvg?: number[];
  /** Every run of the cell (its rates and peak RSS are their medians); otherCpu: other-cpu.ts. */
  repeats?: Array<{ prefillTokPerSec?: number; decodeTokPerSec: number; peakRss: number; otherCpu: number | null }>;
  wallSeconds?: number;
  error?: string;
  /** llama.cpp made a context for n tokens but read a short prompt (run.ts --llama-alloc-only): its peak RSS is a lower bound. */
  allocOnly?: boolean;
  /** Where a cell measured in an earlier session comes from (commit, date, machine state); absent: this run. */
  source?: string;
}

export interface Results {
  machine: Record<string, unknown>;
  command: string;
  peak: { threads: number; shape: number[]; f32: number; q8: number } | null;
  runs: Measurement[];
}

/** Dense (weight) FLOPs per row: 2 × every layer's linear parameters (LM head excluded). */
export function denseFlopsPerRow(c: ModelConfig): number {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const H = c.hiddenSize;
  return 2 * c.numLayers * (H * (qDim + 2 * kvDim) + qDim * H + 3 * H * c.intermediateSize);
}

const mib = (b?: number) => (b === undefined ? '–' : (b / 2 ** 20).toFixed(0));
const fx = (v: number | undefined, d = 1) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));
const pct = (v?: number) => (v === undefined ? '–' : `${Math.round(100 * v)}%`);

/** How an alloc-only llama.cpp cell (run.ts --llama-alloc-only) is labelled wherever it appears. */
const ALLOC_ONLY = 'KV allocated for all tokens, 64-token prompt read: a lower bound of its peak';

const weightsName = (m: Measurement) => (m.dtype === 'q8' ? (m.engine === 'llama' ? 'Q8_0' : 'q8') : 'f32');
/** " (lowest–highest, n runs)" of a cell's peak RSS; nothing for a single run. */
const rssRange = (m: Measurement) => {
  const v = (m.repeats ?? []).map((x) => x.peakRss);
  return v.length > 1 ? ` (${mib(Math.min(...v))}–${mib(Math.max(...v))}, ${v.length} runs)` : '';
};
/** The share of the CPUs other processes used during each run of the cell, where measured. */
const otherShares = (m: Measurement) => (m.repeats ?? []).map((x) => x.otherCpu).filter((x): x is number => x !== null);
/** Whether two cells' rates were measured in like machine states: same session, other processes' CPU share within 20 points. */
const comparable = (a: Measurement, b: Measurement) => {
  if ((a.source ?? '') !== (b.source ?? '')) return false;
  const shares = [a, b].map(otherShares);
  return shares.some((v) => !v.length) || Math.max(...shares.flat()) - Math.min(...shares.flat()) <= 0.2;
};
const otherRange = (m: Measurement) => {
  const v = otherShares(m);
  return v.length ? `${pct(Math.min(...v))} – ${pct(Math.max(...v))}` : '–';
};

export function writeReport(r: Results, c: ModelConfig, path: string): string {
  const flopsRow = denseFlopsPerRow(c);
  const lengths = [...new Set(r.runs.map((m) => m.n))].sort((a, b) => a - b);
  const threads = r.peak?.threads ?? 2;
  // The comparisons use runs at the benchmark's thread count, and a full read over an alloc-only one.
  const find = (n: number, engine: string, strategy: string, dtype: string) => {
    const runs = r.runs.filter((m) => m.n === n && m.engine === engine && m.strategy === strategy && m.dtype === dtype && !m.error && (m.threads ?? threads) === threads);
    return runs.find((m) => !m.allocOnly) ?? runs[0];
  };
  const lines: string[] = [];
  const out = (s = '') => lines.push(s);

  out('# cpu backend benchmark: ctx (onnxruntime-node) vs llama.cpp (node-llama-cpp)');
  out();
  out('Written by `npm run bench:cpu` (bench/cpu/run.ts). Random weights in the shape of Qwen2.5-0.5B');
  out(`(hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads / ${c.numKvHeads} KV heads, intermediate ${c.intermediateSize}, vocab ${c.vocabSize}, tied embeddings);`);
  out('the same weights as safetensors for ctx and as GGUF (F32, Q8_0) for llama.cpp; `beacon` runs a beacon variant');
  out('of the same weights (v3 interleave, window 2048, r = 8). Documents: token ids of the Gutenberg books in');
  out('../shared/data under the real Qwen tokenizer, the same ids for both engines. Each cell is one process.');
  out();
  out('## Machine and command');
  out();
  for (const [k, v] of Object.entries(r.machine)) out(`- ${k}: ${v}`);
  out(`- command: \`${r.command}\``);
  if (r.peak) {
    out(`- measured peak (ORT GEMM ${r.peak.shape.join('×')}, ${r.peak.threads} threads): float32 ${r.peak.f32.toFixed(0)} GFLOP/s, 8-bit (MatMulNBits) ${r.peak.q8.toFixed(0)} GFLOP/s`);
  }
  out(`- dense FLOPs per row (all layers' linear weights, LM head excluded): ${(flopsRow / 1e6).toFixed(0)} MFLOP; a beacon row count is raw tokens × (1 + 1/r)`);
  const others = r.runs.flatMap(otherShares);
  if (others.length) {
    const loaded = Math.max(...others) > 0.1;
    out(`- CPU time other processes used during the runs (each run's share of both cores, from /proc/stat): ${pct(Math.min(...others))} – ${pct(Math.max(...others))}` +
      (loaded ? ' — the machine was shared and loaded: rates are below an idle machine\'s and move with the load; peak RSS does not depend on it' : ''));
  }
  const loads = r.runs.flatMap((m) => m.loadAvg ?? []);
  if (loads.length) {
    // The benchmark's own threads make a load of about `threads`; more means other work shared the cores.
    const shared = Math.max(...loads) > Number(r.machine.cores) + 0.5;
    out(`- 1-minute load average during the runs: ${Math.min(...loads).toFixed(1)} – ${Math.max(...loads).toFixed(1)} (${shared ? 'other work shared the machine; ' : 'the benchmark alone; '}both engines were run interleaved)`);
  }
  out();
  out('## Results');
  out();
  out('Rates and peak RSS: medians of the runs (peak RSS range and run count in brackets); "other CPU": the share of');
  out('both cores other processes used during each run (lowest – highest).');
  out();
  out('| tokens | engine | strategy | weights | prefill tok/s | vs llama.cpp | peak RSS MiB | vs llama.cpp | decode tok/s | dense GFLOP/s (% of peak) | prefill time: weights / attention / vote / head / glue | other CPU | load avg |');
  out('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const n of lengths) {
    for (const m of r.runs.filter((x) => x.n === n)) {
      if (m.error) {
        out(`| ${n} | ${m.engine} | ${m.strategy} | ${m.dtype} | failed: ${m.error.slice(0, 120)} | | | | | | | | |`);
        continue;
      }
      const peer = find(n, 'llama', 'full', m.dtype);
      const rows = m.strategy === 'beacon' ? 1 + 1 / 8 : 1;
      const gflops = ((m.prefillTokPerSec ?? 0) * rows * flopsRow) / 1e9;
      const peak = r.peak ? (m.dtype === 'f32' ? r.peak.f32 : r.peak.q8) : 0;
      const p = m.prefillProfile;
      const prof = p ? `${pct(p.weights)} / ${pct(p.attention)} / ${pct(p.vote)} / ${pct(p.head)} / ${pct(p.glue)}` : '–';
      // Rates from different machine states are not compared; peak RSS does not depend on the load.
      // An alloc-only llama.cpp cell read no document: it has no prefill rate to compare with.
      const vs = m.engine === 'ctx' && peer && !peer.allocOnly ? (comparable(m, peer) ? `${fx(m.prefillTokPerSec! / peer.prefillTokPerSec!, 2)}×` : 'not comparable') : '';
      const vsRss = m.engine === 'ctx' && peer ? `${peer.allocOnly ? '≤ ' : ''}${fx(m.peakRss! / peer.peakRss!, 2)}×` : '';
      const notes = [m.flash ? 'flash attn' : '', (m.threads ?? threads) !== threads ? `${m.threads} thread` : '', m.allocOnly ? ALLOC_ONLY : '', m.source ?? ''].filter(Boolean).join(', ');
      const engine = m.engine === 'llama' ? `llama.cpp${notes ? ` (${notes})` : ''}` : 'ctx cpu';
      out(`| ${n} | ${engine} | ${m.strategy} | ${weightsName(m)} | ${fx(m.prefillTokPerSec)} | ${vs} | ${mib(m.peakRss)}${rssRange(m)} | ${vsRss} | ${fx(m.decodeTokPerSec, 2)} | ${m.source || m.allocOnly ? '–' : `${fx(gflops, 0)} (${peak ? pct(gflops / peak) : '–'})`} | ${prof} | ${otherRange(m)} | ${(m.loadAvg ?? []).map((v) => v.toFixed(1)).join('→')} |`);
    }
  }
  out();
  out('## Peak memory side by side: ctx q8 against llama.cpp Q8_0 `full`');
  out();
  out('Every matrix 8-bit on both sides; ctx keeps KV in f16 (llama.cpp\'s default too). After load: RSS once the');
  out('weights are loaded, before reading. Goals (issue 14): ≤ 1.0× at 2K tokens (`full`), ≤ 0.6× at 32K and ≤ 0.3× at');
  out('128K (`beacon`).');
  out();
  out('| tokens | ctx strategy | ctx peak RSS MiB | llama.cpp peak RSS MiB | ctx / llama.cpp | ctx after load MiB | llama.cpp after load MiB | ctx KV MiB |');
  out('|---|---|---|---|---|---|---|---|');
  for (const n of lengths) {
    // llama.cpp at the benchmark's threads, else single-threaded (its memory does not depend on threads).
    const peer = find(n, 'llama', 'full', 'q8') ?? r.runs.find((m) => m.n === n && m.engine === 'llama' && m.dtype === 'q8' && !m.error && m.threads === 1);
    if (peer && !['full', 'select', 'beacon'].some((st) => find(n, 'ctx', st, 'q8'))) {
      out(`| ${n} | – | not measured | ${peer.allocOnly ? '≥ ' : ''}${mib(peer.peakRss)}${rssRange(peer)}${peer.allocOnly ? ` (${ALLOC_ONLY})` : ''} | – | – | ${mib(peer.rssAfterLoad)} | – |`);
    }
    for (const strategy of ['full', 'select', 'beacon']) {
      const m = find(n, 'ctx', strategy, 'q8');
      if (!m) continue;
      // An alloc-only llama.cpp cell is a lower bound of its peak: ctx's ratio is an upper bound.
      const bound = peer?.allocOnly ? ['≥ ', '≤ '] : ['', ''];
      const peerRss = peer ? `${bound[0]}${mib(peer.peakRss)}${rssRange(peer)}${peer.threads === 1 ? ', 1 thread' : ''}${peer.allocOnly ? ` (${ALLOC_ONLY})` : ''}${peer.source ? ` (${peer.source})` : ''}` : '–';
      out(`| ${n} | ${strategy} | ${mib(m.peakRss)}${rssRange(m)} | ${peerRss} | ${peer ? `${bound[1]}${fx(m.peakRss! / peer.peakRss!, 2)}×` : '–'} | ${mib(m.rssAfterLoad)} | ${peer ? mib(peer.rssAfterLoad) : '–'} | ${m.kvBytes === undefined ? '–' : (m.kvBytes / 2 ** 20).toFixed(1)} |`);
    }
  }
  out();
  out('## Targets (issue 14)');
  out();
  const check = (label: string, ok: boolean | null, detail: string) => out(`- ${ok === null ? 'not measured' : ok ? 'met' : 'NOT met'}: ${label} — ${detail}`);
  // llama.cpp's peak at the benchmark's threads, else single-threaded (memory does not depend on threads).
  const llamaQ8 = (n: number) => find(n, 'llama', 'full', 'q8') ?? r.runs.find((m) => m.n === n && m.engine === 'llama' && m.dtype === 'q8' && !m.error && m.threads === 1);
  for (const [n, strategy, goal] of [[2048, 'full', 1.0], [32000, 'beacon', 0.6], [131072, 'beacon', 0.3]] as const) {
    const a = find(n, 'ctx', strategy, 'q8');
    const b = llamaQ8(n);
    const ratio = a && b ? a.peakRss! / b.peakRss! : NaN;
    check(`${n} tokens, ctx ${strategy} q8 peak RSS ≤ ${goal}× llama.cpp Q8_0 full's`, a && b ? ratio <= goal : null,
      a && b ? `${mib(a.peakRss)} vs ${b.allocOnly ? '≥ ' : ''}${mib(b.peakRss)} MiB = ${b.allocOnly ? '≤ ' : ''}${fx(ratio, 2)}× (ctx after load: ${mib(a.rssAfterLoad)} MiB = ${fx(a.rssAfterLoad! / b.peakRss!, 2)}×)` : 'missing');
  }
  {
    const a = find(32000, 'ctx', 'select', 'q8');
    const b = find(32000, 'llama', 'full', 'q8');
    const label = '32000 tokens, ctx select decode ≥ 2× llama.cpp full\'s';
    if (a && b && !comparable(a, b)) {
      // Rates measured in different sessions (machine states) are not a comparison of the engines.
      out(`- not comparable: ${label} — ctx ${fx(a.decodeTokPerSec, 2)} tok/s (other CPU ${otherRange(a)}) and llama.cpp ${fx(b.decodeTokPerSec, 2)} tok/s (${b.source ?? 'this run'}) were measured in different machine states`);
    } else {
      check(label, a && b ? a.decodeTokPerSec! >= 2 * b.decodeTokPerSec! : null,
        a && b ? `${fx(a.decodeTokPerSec, 2)} vs ${fx(b.decodeTokPerSec, 2)} tok/s = ${fx(a.decodeTokPerSec! / b.decodeTokPerSec!, 2)}× (other CPU ${otherRange(a)} / ${otherRange(b)})` : 'missing');
    }
  }
  // The analysis written after looking at the numbers (where the time goes, what would help).
  const notes = join(import.meta.dirname, 'notes.md');
  if (existsSync(notes)) {
    out();
    lines.push(readFileSync(notes, 'utf8').trimEnd());
  }
  // The GGUF benchmark's section (gguf-bench.ts) is kept as it is.
  const gguf = readSection(path, 'gguf-bench');
  if (gguf) {
    out();
    lines.push(gguf);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
