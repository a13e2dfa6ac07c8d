// bench/efficacy: retrieval accuracy of ctx's strategies on its demo model, by task, document length
// and depth of the fact asked about. Writes bench/results/efficacy.md (tables), efficacy.json and one
// heatmap SVG per (task, strategy).
//
//   npm run bench:efficacy -- [--cells "<task>:<strategy>,…@<length>,…;…"] [--docs 50]
//                             [--depths 0.05,0.25,0.5,0.75,0.95] [--backend cpu] [--model <dir>] [--merge]
//   npm run bench:efficacy -- --report     (rewrite the report from bench/results/efficacy.json; measures nothing)
//
// Tasks: `single` = one fact `<Name> <number>` in filler; `facts4` = 4 facts and 4 distractor names
// (names without a number), asked about the fact at the given depth. Strategies: see
// src/demo/efficacy.ts (`beacon` = ctx's ratio for the length, `beacon-<r>`, `full-<rope scaling>`).
// `--docs` documents per (task, strategy, length) cell, spread evenly over the depths; the same documents
// (seeded by depth, length and index, so a cell's documents do not depend on which other cells run) are
// read by every strategy of a task. Each answer is the model's greedy next token. `--merge` keeps the
// cells of the previous bench/results/efficacy.json that this run does not measure (same --docs and
// --depths), so a table can be measured in parts; the report lists every command that made it.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readSection } from '../sections.js';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBackend, type BackendName } from '../../src/backend/index.js';
import { efficacyStrategy, isEfficacyStrategy, retrieve, type EfficacyStrategy } from '../../src/demo/efficacy.js';
import { demoModelDir, makeNeedleDocument } from '../../src/demo/index.js';
import { openModel } from '../../src/model/model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { heatmapSvg } from './heatmap.js';
import { option, flag } from '../args.js';

const TASKS = {
  single: { facts: 1, distractors: 0, title: 'one fact' },
  facts4: { facts: 4, distractors: 4, title: '4 facts + 4 distractor names' },
} as const;
type Task = keyof typeof TASKS;

/** The issue-15 table: single-fact beacon and its context, 4-facts select and beacon, and full + RoPE scalings at 2×, 4×, 8× the window. */
const DEFAULT_CELLS =
  'single:select,beacon,stream,full@256,2048,8192,32768,100000;' +
  'facts4:select,beacon@256,2048,8192,32768,100000;' +
  'facts4:full,full-linear,full-ntk,full-dynamic,full-yarn,full-truncated@1024,2048,4096,8192';

const cellsArg = option('cells', DEFAULT_CELLS);
const depths = option('depths', '0.05,0.25,0.5,0.75,0.95').split(',').map(Number);
const docs = Number(option('docs', '50'));
const backendName = option('backend', 'cpu') as BackendName;
const modelDir = option('model', demoModelDir());
const reportOnly = flag('report');
const merge = flag('merge') || reportOnly;
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
const jsonPath = join(resultsDir, 'efficacy.json');

/** What to run: for each task, the lengths each strategy runs at. */
const plan = new Map<Task, Map<EfficacyStrategy, number[]>>();
for (const group of reportOnly ? [] : cellsArg.split(';').filter(Boolean)) {
  const m = /^(\w+):([^@]+)@(.+)$/.exec(group);
  if (!m || !(m[1] in TASKS)) throw new Error(`bad --cells group ${JSON.stringify(group)} (want task:strategy,…@length,…)`);
  const task = m[1] as Task;
  const lengths = m[3].split(',').map(Number);
  for (const s of m[2].split(',')) {
    if (!isEfficacyStrategy(s)) throw new Error(`unknown strategy ${s}`);
    const byStrategy = plan.get(task) ?? new Map<EfficacyStrategy, number[]>();
    byStrategy.set(s, [...new Set([...(byStrategy.get(s) ?? []), ...lengths])].sort((a, b) => a - b));
    plan.set(task, byStrategy);
  }
}

/** A document's seed: one per (depth, length, index), the same for every strategy of a task. */
const MAX_LENGTH = 200_000;
const documentSeed = (depthIndex: number, len: number, i: number) => {
  if (len >= MAX_LENGTH || i >= 1000) throw new Error(`lengths up to ${MAX_LENGTH - 1} and ${1000 * depths.length} documents per cell keep seeds distinct`);
  return (depthIndex + 1) * 200_000_000 + len * 1000 + i + 7;
};

/** One (task, strategy, length, depth) cell. */
type Cell = { right: number; other: number; total: number; seconds: number; kvRows: number };
const cells = new Map<string, Cell>();
const cellKey = (t: Task, s: string, len: number, d: number) => `${t}|${s}|${len}|${d}`;
/** The cell a measurement adds to (made on first use). */
const cell = (t: Task, s: string, len: number, d: number) => {
  const k = cellKey(t, s, len, d);
  let c = cells.get(k);
  if (!c) cells.set(k, (c = { right: 0, other: 0, total: 0, seconds: 0, kvRows: 0 }));
  return c;
};
/** The cell as measured, or an empty one: the report reads cells without making them. */
const EMPTY: Readonly<Cell> = { right: 0, other: 0, total: 0, seconds: 0, kvRows: 0 };
const measured = (t: Task, s: string, len: number, d: number): Readonly<Cell> => cells.get(cellKey(t, s, len, d)) ?? EMPTY;

/** What the report shows: this run's plan, plus the kept cells of the previous run with --merge. */
const reportPlan = new Map([...plan].map(([t, byStrategy]) => [t, new Map(byStrategy)]));
const commands: string[] = [];
if (merge && existsSync(jsonPath)) {
  const previous = JSON.parse(readFileSync(jsonPath, 'utf8')) as { commands?: string[]; command?: string; depths: number[]; docs: number; cells: Record<string, Cell> };
  if (previous.docs !== docs || previous.depths.join() !== depths.join()) {
    throw new Error(`--merge: ${jsonPath} has --docs ${previous.docs} --depths ${previous.depths.join(',')}; this run has --docs ${docs} --depths ${depths.join(',')}`);
  }
  let kept = 0;
  for (const [key, value] of Object.entries(previous.cells)) {
    const [t, s, len] = key.split('|');
    if (!(t in TASKS) || !isEfficacyStrategy(s) || plan.get(t as Task)?.get(s)?.includes(Number(len))) continue;
    cells.set(key, value);
    const byStrategy = reportPlan.get(t as Task) ?? new Map<EfficacyStrategy, number[]>();
    byStrategy.set(s, [...new Set([...(byStrategy.get(s) ?? []), Number(len)])].sort((a, b) => a - b));
    reportPlan.set(t as Task, byStrategy);
    kept++;
  }
  commands.push(...(previous.commands ?? (previous.command ? [previous.command] : [])));
  console.error(`--merge: kept ${kept} cells of ${jsonPath}`);
}

const model = openModel(modelDir);
const tokenizer = await loadTokenizer(model.dir, { eosIds: model.config.eosTokenIds });
const backend = await createBackend(backendName, model);

const t0 = performance.now();
const load0 = loadavg()[0];
const perDepth = Math.max(1, Math.round(docs / depths.length));
for (const [task, byStrategy] of plan) {
  const lengths = [...new Set([...byStrategy.values()].flat())].sort((a, b) => a - b);
  for (const len of lengths) {
    const strategies = [...byStrategy].filter(([, ls]) => ls.includes(len)).map(([s]) => s);
    for (const [di, depth] of depths.entries()) {
      for (let i = 0; i < perDepth; i++) {
        const { facts, distractors } = TASKS[task];
        const doc = makeNeedleDocument({ tokens: len, depth, seed: documentSeed(di, len, i), facts, distractors });
        for (const s of strategies) {
          const r = await retrieve(backend, tokenizer, doc, s);
          const c = cell(task, s, len, depth);
          c.total++;
          c.seconds += r.seconds;
          c.kvRows += r.kvRows;
          if (r.correct) c.right++;
          if (r.otherFact) c.other++;
        }
      }
      const line = strategies.map((s) => `${s} ${cell(task, s, len, depth).right}/${cell(task, s, len, depth).total}`).join('  ');
      console.error(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${task}, ${len} tokens, depth ${depth}: ${line}`);
    }
  }
}
const QUESTION_TOKENS = 3; // "\n\nrecall <Name>" is 2 words; the ratio is picked for the whole prompt (+ BOS)
const ratioPicked = (len: number) => {
  const r = efficacyStrategy(backend, 'beacon', len + QUESTION_TOKENS);
  return r.name === 'beacon' ? `r${r.ratio}${r.ratioChoice.fits ? '' : ' (beyond its reach)'}` : '?';
};
const selectDefaults = () => {
  const r = efficacyStrategy(backend, 'select', 2 * model.config.maxPositions);
  return r.name === 'select' ? `init ${r.nInit} + top ${r.topK} + local ${r.nLocal}, prefill steps of ${r.chunk}` : '?';
};
await backend.dispose();

// ---- the report ----------------------------------------------------------------------------------

const sum = (t: Task, s: string, len: number) => {
  const out = { right: 0, other: 0, total: 0, seconds: 0, kvRows: 0 };
  for (const d of depths) {
    const c = measured(t, s, len, d);
    for (const k of Object.keys(out) as (keyof Cell)[]) out[k] += c[k];
  }
  return out;
};
/** Strategies in the default table's order, whichever run measured them. */
const DEFAULT_ORDER = DEFAULT_CELLS.split(/[;:@,]/);
const strategyRank = (s: string) => {
  const i = DEFAULT_ORDER.indexOf(s);
  return i < 0 ? Infinity : i;
};
const pct = (x: number, total: number) => `${Math.round((100 * x) / total)}%`;
const label = (len: number) => (len % 1024 === 0 ? `${len / 1024}K` : len >= 1000 ? `${Math.round(len / 1000)}K` : String(len));
const minutes = (performance.now() - t0) / 60000;
if (!reportOnly) commands.push(`npm run bench:efficacy -- --cells "${cellsArg}" --docs ${docs} --depths ${depths.join(',')} --backend ${backendName}${merge ? ' --merge' : ''}` +
  ` (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${minutes.toFixed(1)} min, load average ${load0.toFixed(1)} → ${loadavg()[0].toFixed(1)})`);
const c = model.config;
const lines: string[] = [
  '# Long-context efficacy on the demo model',
  '',
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; backend \`${backendName}\` (other work shared the cores when the load average is above ~1; seconds per document move with it, accuracy does not).`,
  `Commands: ${commands.map((c) => `\`${c.replace(/ \(.*$/, '')}\`${c.slice(c.replace(/ \(.*$/, '').length)}`).join('; ')}.`,
  '',
  `Model: \`${modelDir.replace(/.*\/(models\/)/, '$1')}\` — Qwen2, ${c.numLayers} layers, hidden ${c.hiddenSize}, native window ${c.maxPositions} tokens; beacon window ${c.beacon?.window}, trained ratios [${c.beacon?.ratios}].`,
  `Tasks: \`single\` = ${TASKS.single.title}; \`facts4\` = ${TASKS.facts4.title}. The question \`recall <Name>\` asks about the fact at the given depth; correct when the greedy next token is its number; "another fact's number" counts answers that are the number of a different fact of the same document (a binding error). ${perDepth * depths.length} documents per cell (${perDepth} per depth × ${depths.length} depths), the same documents for every strategy of a task.`,
  '',
  `Strategies: \`full\` = every token, positions 0..n−1, run past the window on purpose; \`full-<scaling>\` = the same with that training-free RoPE scaling at factor n / ${c.maxPositions}; \`stream\` = 4 sink + ${c.maxPositions - 4} recent tokens; \`select\` = TokenSelect with ctx's defaults for a ${c.maxPositions}-token window (${selectDefaults()}); \`beacon\` = Activation Beacon at the ratio ctx picks for the length (what \`ctx ask\` runs); \`beacon-r\` = ratio r forced.`,
  '',
];
for (const [task, byStrategy] of reportPlan) {
  const lengths = [...new Set([...byStrategy.values()].flat())].sort((a, b) => a - b);
  const head = `| strategy | ${lengths.map(label).join(' | ')} |`;
  const rule = `|---|${lengths.map(() => '---:').join('|')}|`;
  const row = (s: string, f: (t: ReturnType<typeof sum>) => string) =>
    `| ${s} | ${lengths.map((len) => { const t = sum(task, s, len); return t.total ? f(t) : '–'; }).join(' | ')} |`;
  const strategies = [...byStrategy.keys()].sort((x, y) => strategyRank(x) - strategyRank(y));
  lines.push(`## ${task}: ${TASKS[task].title}`, '', '### Accuracy', '', head, rule, ...strategies.map((s) => row(s, (t) => pct(t.right, t.total))), '');
  if (strategies.includes('beacon')) lines.push(`Ratio ctx picks (\`beacon\`): ${lengths.filter((len) => sum(task, 'beacon', len).total).map((len) => `${label(len)} → ${ratioPicked(len)}`).join(', ')}.`, '');
  if (TASKS[task].facts > 1) lines.push("### Another fact's number (binding errors)", '', head, rule, ...strategies.map((s) => row(s, (t) => pct(t.other, t.total))), '');
  lines.push('### KV rows held after the prompt (mean)', '', head, rule, ...strategies.map((s) => row(s, (t) => String(Math.round(t.kvRows / t.total)))), '');
  lines.push('### Seconds per document (read + answer)', '', head, rule, ...strategies.map((s) => row(s, (t) => (t.seconds / t.total).toFixed(2))), '');
  lines.push('### By depth', '');
  for (const s of strategies) {
    const ls = byStrategy.get(s)!;
    lines.push(`#### ${task} / ${s}`, '', `![${task} ${s}](efficacy-${task}-${s}.svg)`, '', `| depth | ${ls.map(label).join(' | ')} |`, `|---|${ls.map(() => '---:').join('|')}|`);
    for (const d of depths) lines.push(`| ${d} | ${ls.map((len) => { const x = measured(task, s, len, d); return x.total ? pct(x.right, x.total) : '–'; }).join(' | ')} |`);
    lines.push('');
    writeFileSync(
      join(resultsDir, `efficacy-${task}-${s}.svg`),
      heatmapSvg({ title: `${TASKS[task].title}, ${s}: accuracy`, columns: ls.map(label), rows: depths.map((d) => `depth ${d}`), value: (r, k) => { const x = measured(task, s, ls[k], depths[r]); return x.total ? x.right / x.total : null; } }),
    );
  }
}
mkdirSync(resultsDir, { recursive: true });
// The trained variants' sections (bench/efficacy/variants.ts) are kept as they are.
const kept = ['clex', 'softplus', 'focus', 'all'].map((g) => readSection(join(resultsDir, 'efficacy.md'), `variants-${g}`)).filter(Boolean);
writeFileSync(join(resultsDir, 'efficacy.md'), `${[...lines, ...kept.flatMap((s) => [s, ''])].join('\n')}\n`);
writeFileSync(jsonPath, `${JSON.stringify({ commands, depths, docs, cells: Object.fromEntries(cells) }, null, 1)}\n`);
console.error(`wrote ${join(resultsDir, 'efficacy.md')}`);
