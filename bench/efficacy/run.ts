// bench/efficacy: retrieval accuracy of every strategy on ctx's demo model, by document length and
// needle depth. Writes bench/results/efficacy.md (tables) and one heatmap SVG per strategy.
//
//   npm run bench:efficacy -- [--lengths 256,2048,8192,32768] [--docs 50] [--depths 0.05,0.25,0.5,0.75,0.95]
//                             [--strategies full,stream,select,beacon,beacon-2,beacon-4,beacon-8] [--backend cpu] [--model <dir>]
//                             [--max full=32768,beacon-2=32768]
//
// `--docs` documents per (length, strategy) cell, spread evenly over the depths. `--max s=n` runs
// strategy s only up to n tokens (the quadratic ones cost minutes per document at 100K); the cells
// beyond say "not run". The same documents (seeded) are read by every strategy. Each answer is the
// model's greedy next token after the question.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBackend, type BackendName } from '../../src/backend/index.js';
import { EFFICACY_STRATEGIES, efficacyStrategy, retrieve, type EfficacyStrategy } from '../../src/demo/efficacy.js';
import { demoModelDir, makeNeedleDocument } from '../../src/demo/index.js';
import { openModel } from '../../src/model/model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { heatmapSvg } from './heatmap.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const lengths = opt('lengths', '256,2048,8192,32768').split(',').map(Number);
const depths = opt('depths', '0.05,0.25,0.5,0.75,0.95').split(',').map(Number);
const docs = Number(opt('docs', '50'));
const strategies = opt('strategies', EFFICACY_STRATEGIES.join(',')).split(',') as EfficacyStrategy[];
const backendName = opt('backend', 'cpu') as BackendName;
const maxTokens = new Map(
  opt('max', '')
    .split(',')
    .filter(Boolean)
    .map((kv) => kv.split('=') as [string, string])
    .map(([s, n]) => [s, Number(n)]),
);
const runs = (s: string, len: number) => len <= (maxTokens.get(s) ?? Infinity);
const modelDir = opt('model', demoModelDir());
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));

const model = openModel(modelDir);
const tokenizer = await loadTokenizer(model.dir, { eosIds: model.config.eosTokenIds });
const backend = await createBackend(backendName, model);

/** One (strategy, length, depth) cell: documents answered right, documents read, seconds spent. */
type Cell = { right: number; total: number; seconds: number };
const cells = new Map<string, Cell>();
const cell = (s: string, len: number, d: number) => {
  const k = `${s}|${len}|${d}`;
  let c = cells.get(k);
  if (!c) cells.set(k, (c = { right: 0, total: 0, seconds: 0 }));
  return c;
};

const t0 = performance.now();
const perDepth = Math.max(1, Math.round(docs / depths.length));
for (const len of lengths) {
  for (const [di, depth] of depths.entries()) {
    for (let i = 0; i < perDepth; i++) {
      const doc = makeNeedleDocument({ tokens: len, depth, seed: 1_000_000 * (di + 1) + 1000 * lengths.indexOf(len) + i + 7 });
      for (const s of strategies) {
        if (!runs(s, len)) continue;
        const r = await retrieve(backend, tokenizer, doc, s);
        const c = cell(s, len, depth);
        c.total++;
        c.seconds += r.seconds;
        if (r.correct) c.right++;
      }
    }
    const line = strategies.filter((s) => runs(s, len)).map((s) => `${s} ${cell(s, len, depth).right}/${cell(s, len, depth).total}`).join('  ');
    console.error(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${len} tokens, depth ${depth}: ${line}`);
  }
}
const efficacyRatio = (len: number) => {
  const r = efficacyStrategy(backend, 'beacon', len + 12);
  return r.name === 'beacon' ? r.ratio : '?';
};
const ratios = new Map(lengths.map((len) => [len, efficacyRatio(len)]));
await backend.dispose();

// ---- the report ----------------------------------------------------------------------------------

const pct = (right: number, total: number) => (total ? `${Math.round((100 * right) / total)}%` : 'not run');
const sum = (s: string, len: number) => {
  let right = 0;
  let total = 0;
  let seconds = 0;
  for (const d of depths) {
    const c = cell(s, len, d);
    right += c.right;
    total += c.total;
    seconds += c.seconds;
  }
  return { right, total, seconds };
};
const label = (len: number) => (len % 1024 === 0 ? `${len / 1024}K` : len >= 1000 ? `${Math.round(len / 1000)}K` : String(len));
const maxArg = maxTokens.size ? ` --max ${[...maxTokens].map(([s, n]) => `${s}=${n}`).join(',')}` : '';
const command = `npm run bench:efficacy -- --lengths ${lengths.join(',')} --docs ${docs} --depths ${depths.join(',')} --strategies ${strategies.join(',')} --backend ${backendName}${maxArg}`;
const c = model.config;
const lines: string[] = [
  '# Long-context efficacy on the demo model',
  '',
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; backend \`${backendName}\`; ${new Date().toISOString().slice(0, 10)}.`,
  `Command: \`${command}\` (${((performance.now() - t0) / 60000).toFixed(1)} min).`,
  '',
  `Model: \`${modelDir.replace(/.*\/(models\/)/, '$1')}\` — Qwen2, ${c.numLayers} layers, hidden ${c.hiddenSize}, native window ${c.maxPositions} tokens; beacon window ${c.beacon?.window}, trained ratios [${c.beacon?.ratios}].`,
  `Task: a needle document (filler words, one \`<Name> <number>\` pair at the given depth), then \`recall <Name>\`; correct when the greedy next token is the number. ${perDepth * depths.length} documents per cell (${perDepth} per depth × ${depths.length} depths), the same documents for every strategy.`,
  '',
  'Strategies: `full` = every token, positions 0..n−1, run past the window on purpose; `stream` = 4 sink + 252 recent tokens; `select` = TokenSelect with ctx\'s defaults for a 256-token window (16 init + top 128 + 64 local, 64-token chunks); `beacon` = Activation Beacon at the ratio ctx picks for the length (what `ctx ask` runs; the pick is in the table below); `beacon-r` = ratio r forced (reach within the model\'s 256 positions: (256 − 64)·r + 64 tokens; beyond it the run goes on past the trained positions).',
  '',
  '## Accuracy by length',
  '',
  `| strategy | ${lengths.map(label).join(' | ')} |`,
  `|---|${lengths.map(() => '---:').join('|')}|`,
  ...strategies.map((s) => `| ${s} | ${lengths.map((len) => { const t = sum(s, len); return pct(t.right, t.total); }).join(' | ')} |`),
  '',
  `Ratio ctx picks (\`beacon\`): ${lengths.map((len) => `${label(len)} → r${ratios.get(len)}`).join(', ')}.`,
  '',
  '## Seconds per document (read + answer)',
  '',
  `| strategy | ${lengths.map(label).join(' | ')} |`,
  `|---|${lengths.map(() => '---:').join('|')}|`,
  ...strategies.map((s) => `| ${s} | ${lengths.map((len) => { const t = sum(s, len); return t.total ? (t.seconds / t.total).toFixed(2) : 'not run'; }).join(' | ')} |`),
  '',
  '## By needle depth',
  '',
];
for (const s of strategies) {
  lines.push(`### ${s}`, '', `![${s}](efficacy-${s}.svg)`, '', `| depth | ${lengths.map(label).join(' | ')} |`, `|---|${lengths.map(() => '---:').join('|')}|`);
  for (const d of depths) lines.push(`| ${d} | ${lengths.map((len) => pct(cell(s, len, d).right, cell(s, len, d).total)).join(' | ')} |`);
  lines.push('');
  writeFileSync(
    join(resultsDir, `efficacy-${s}.svg`),
    heatmapSvg({ title: `${s}: retrieval accuracy`, columns: lengths.map(label), rows: depths.map((d) => `depth ${d}`), value: (r, k) => { const x = cell(s, lengths[k], depths[r]); return x.total ? x.right / x.total : null; } }),
  );
}
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'efficacy.md'), `${lines.join('\n')}\n`);
writeFileSync(join(resultsDir, 'efficacy.json'), `${JSON.stringify({ command, lengths, depths, strategies, cells: Object.fromEntries(cells) }, null, 1)}\n`);
console.error(`wrote ${join(resultsDir, 'efficacy.md')}`);
