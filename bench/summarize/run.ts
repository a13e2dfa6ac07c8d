// Summaries of whole books, in both modes, with timings: for a person with a real instruct model
// (e.g. Qwen2.5-1.5B-Instruct) to judge quality by reading, since CI can only check mechanics.
//
//   npm run build:ts   # the bench runs the built CLI (bin/ctx.js)
//   node --import tsx bench/summarize/run.ts --model <model folder> [options] [-- extra ctx flags]
//
// Options:
//   --books a,b        Gutenberg books in ../shared/data/gutenberg to use (names or prefixes,
//                      "all" by default: moby_dick, pride_and_prejudice, sherlock_holmes)
//   --pdf / --no-pdf   also summarise ../shared/data/pdf/debian-reference.en.pdf (default: yes)
//   --modes m,m        one-pass, hierarchical and/or auto (default: one-pass,hierarchical)
//   --length l         short | medium | long (default medium)
//   --max-tokens n     longest summary (default 400)
//   --max-chars n      cut each book to its first n characters (at a line end) — for quick runs
//   --pdf-pages n      only the first n pages of the PDF (needs ghostscript) — for quick runs
//   --timeout-s n      give up on one summary after n seconds (default: no limit)
//   --tiny-random w    no real model: a tiny random-weight model with a w-token window (the
//                      fixture tokenizer), made in a temporary folder; output is noise
//   --out file         where the table goes (default bench/results/summarize.md)
//
// Each run is `ctx summarize <input> --mode <m> --json`; the table has the mode that ran (with the
// reason), the document's tokens, the strategy or section count, the wall time, and the start of
// the summary; the full summaries follow the table (not with --tiny-random: they are noise).

import { spawnSync } from 'node:child_process';
import { cpus, tmpdir, totalmem } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';
import { PRESETS, writeRandomModel } from '../../tools/random-model.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHARED = resolve(ROOT, '../shared');
const BIN = join(ROOT, 'bin', 'ctx.js');

// --- arguments ----------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const dashDash = argv.indexOf('--');
const own = dashDash === -1 ? argv : argv.slice(0, dashDash);
const extra = dashDash === -1 ? [] : argv.slice(dashDash + 1);
const opt = (name: string) => {
  const i = own.indexOf(`--${name}`);
  return i === -1 ? undefined : own[i + 1];
};
const flag = (name: string) => own.includes(`--${name}`);
const num = (name: string) => (opt(name) === undefined ? undefined : Number(opt(name)));

const tinyWindow = num('tiny-random');
const modelDir = tinyWindow ? makeTinyModel(tinyWindow) : opt('model') && resolve(opt('model')!);
if (!modelDir) {
  console.error('usage: node --import tsx bench/summarize/run.ts --model <model folder> [options]   (see the top of this file)');
  process.exit(2);
}
if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
  console.error('bench/summarize: build ctx first (npm run build:ts)');
  process.exit(2);
}
const modes = (opt('modes') ?? 'one-pass,hierarchical').split(',');
const length = opt('length') ?? 'medium';
const maxTokens = opt('max-tokens') ?? '400';
const maxChars = num('max-chars');
const pdfPages = num('pdf-pages');
const timeoutS = num('timeout-s');
const out = resolve(opt('out') ?? join(ROOT, 'bench/results/summarize.md'));

/** A tiny random-weight model (fixture tokenizer) with a `window`-token window, in a temp folder. */
function makeTinyModel(window: number): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'ctx-bench-summarize-')), `tiny-random-${window}`);
  const tok = writeTinyTokenizer(dir);
  writeRandomModel(dir, { ...PRESETS.tiny!, maxPositions: window, bos: tok.bosId, eos: tok.imEndId });
  return dir;
}

// --- inputs -------------------------------------------------------------------------------------

const scratch = mkdtempSync(join(tmpdir(), 'ctx-bench-inputs-'));

function books(): string[] {
  const dir = join(SHARED, 'data/gutenberg');
  const all = readdirSync(dir).filter((f) => f.endsWith('.txt') && !f.startsWith('PROJECT_GUTENBERG')).sort();
  const wanted = (opt('books') ?? 'all').split(',');
  const chosen = wanted.includes('all') ? all : all.filter((f) => wanted.some((w) => f.startsWith(w)));
  return chosen.map((f) => (maxChars ? firstChars(join(dir, f), maxChars) : join(dir, f)));
}

/** The first `n` characters of a text file, cut at a line end, as a file of its own. */
function firstChars(path: string, n: number): string {
  const text = readFileSync(path, 'utf8');
  const cut = text.length <= n ? text.length : text.lastIndexOf('\n', n) + 1 || n;
  const file = join(scratch, basename(path).replace(/\.txt$/, `.first-${n}-chars.txt`));
  writeFileSync(file, text.slice(0, cut));
  return file;
}

function pdf(): string | null {
  if (flag('no-pdf')) return null;
  const path = join(SHARED, 'data/pdf/debian-reference.en.pdf');
  if (!existsSync(path)) return null;
  if (!pdfPages) return path;
  const file = join(scratch, `debian-reference.first-${pdfPages}-pages.pdf`);
  const r = spawnSync('gs', ['-q', '-dNOPAUSE', '-dBATCH', '-sDEVICE=pdfwrite', '-dFirstPage=1', `-dLastPage=${pdfPages}`, `-sOutputFile=${file}`, path]);
  if (r.status !== 0) throw new Error(`--pdf-pages needs ghostscript (gs): ${r.stderr?.toString() || r.error?.message}`);
  return file;
}

// --- runs ---------------------------------------------------------------------------------------

interface Row {
  input: string;
  asked: string;
  mode: string;
  reason: string;
  tokens: number | null;
  how: string;
  seconds: number;
  summary: string;
  failure?: string;
}

function summarize(input: string, mode: string): Row {
  const args = [BIN, 'summarize', input, '-m', modelDir!, '--mode', mode, '--length', length, '--max-tokens', maxTokens, '--json', ...extra];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: timeoutS ? timeoutS * 1000 : undefined });
  const seconds = (performance.now() - t0) / 1000;
  const row: Row = { input: basename(input), asked: mode, mode: '—', reason: '', tokens: null, how: '', seconds, summary: '' };
  if (r.error || r.status !== 0) {
    row.failure = r.error?.message.includes('ETIMEDOUT') || r.signal ? `stopped after ${timeoutS} s` : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`);
    return row;
  }
  const j = JSON.parse(r.stdout);
  row.mode = j.summary?.mode ?? mode;
  row.reason = j.summary?.reason ?? '';
  row.tokens = j.tokens?.document ?? null;
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  row.how = j.summary?.mode === 'hierarchical' ? `${plural(j.summary.sections, 'section')} + ${plural(j.summary.combines, 'combine step')}` : (j.strategy ?? '');
  row.summary = j.answer ?? '';
  return row;
}

const inputs = [...books(), ...(pdf() ? [pdf()!] : [])];
const rows: Row[] = [];
for (const input of inputs) {
  for (const mode of modes) {
    process.stderr.write(`summarize ${basename(input)} --mode ${mode} … `);
    const row = summarize(input, mode);
    process.stderr.write(row.failure ? `failed: ${row.failure}\n` : `${row.mode}, ${row.seconds.toFixed(1)} s\n`);
    rows.push(row);
  }
}

// --- the table ----------------------------------------------------------------------------------

// One table cell: one line, pipes escaped, control characters (random models emit them) as "·".
const cell = (s: string) => s.replace(/\s+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '·').replace(/\|/g, '\\|').trim();
const excerpt = (s: string, n = 160) => {
  const t = cell(s);
  return t.length > n ? `${t.slice(0, n)}…` : t;
};
const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8'));
const lines = [
  '# ctx summarize: whole books in both modes',
  '',
  tinyWindow
    ? `> **Random weights.** This table was made with \`--tiny-random ${tinyWindow}\`: a tiny model with random weights (${config.num_hidden_layers} layers, hidden ${config.hidden_size}, a ${tinyWindow}-token window) and the fixture byte-level tokenizer. The summaries are noise and say nothing about quality; the table only shows that the benchmark runs end to end, how each input is cut, and the timings of this toy model. Run it with a real instruct model (e.g. \`--model ~/models/Qwen2.5-1.5B-Instruct\`) to judge the summaries.`
    : `> Model: \`${modelDir}\` (${config.model_type}, ${config.num_hidden_layers} layers, hidden ${config.hidden_size}, window ${config.max_position_embeddings}${config.beacon_window ? ', beacon weights' : ''}).`,
  '',
  `Command: \`node --import tsx bench/summarize/run.ts ${own.join(' ')}${extra.length ? ` -- ${extra.join(' ')}` : ''}\``,
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}.`,
  `Inputs: ${maxChars ? `books cut to their first ${maxChars.toLocaleString('en-US')} characters` : 'whole books'}${pdfPages ? `, the PDF's first ${pdfPages} pages` : ''}; --length ${length}, --max-tokens ${maxTokens}.`,
  '',
  '| input | --mode | ran | document tokens | strategy / sections | time | summary (start) |',
  '|---|---|---|---:|---|---:|---|',
  ...rows.map((r) =>
    r.failure
      ? `| ${cell(r.input)} | ${r.asked} | failed | | | ${r.seconds.toFixed(1)} s | ${cell(r.failure)} |`
      : `| ${cell(r.input)} | ${r.asked} | ${r.mode} | ${r.tokens?.toLocaleString('en-US') ?? ''} | ${cell(r.how)} | ${r.seconds.toFixed(1)} s | ${excerpt(r.summary)} |`,
  ),
  '',
];
const auto = rows.filter((r) => r.asked === 'auto' && !r.failure);
if (auto.length > 0) {
  lines.push('What --mode auto chose, and why:', '');
  for (const r of auto) lines.push(`- ${cell(r.input)}: ${r.mode} — ${cell(r.reason)}`);
  lines.push('');
}
if (!tinyWindow) {
  lines.push('## The summaries', '');
  for (const r of rows.filter((x) => !x.failure)) lines.push(`<details><summary>${cell(r.input)} — ${r.mode}</summary>`, '', r.summary.trim(), '', '</details>', '');
}
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${lines.join('\n').trimEnd()}\n`);
console.log(`wrote ${out}`);
