// bench/efficacy/variants: the demo base's trained variants (models/recipes/variants) beside the base's own
// strategies, read the way bench/efficacy/run.ts and `ctx ask` read a document (src/demo/efficacy.ts).
// Writes bench/results/efficacy-variants.md and .json (efficacy-variants-<group>.* when one group is asked, or
// --out NAME); run.ts's own tables are untouched.
//
//   npm run bench:variants -- [--groups clex,softplus,focus] [--docs 20] [--task single|facts4]
//                             [--depths 0.05,0.25,0.5,0.75,0.95] [--focus-lengths 256,2048,8192,32768,100000]
//                             [--backend cpu] [--base models/needle-demo]
//
// Groups (each needs its exported model folder; a missing one is reported, not run):
//   clex      `full --rope clex` on models/needle-clex beside the base's `full` with each training-free RoPE
//             scaling and `select`, at 1×, 2×, 4×, 8×, 16× the window (documents 8 tokens short of k·P, so a
//             CLEX prompt's scale factor t is k);
//   softplus  models/needle-softmax and models/needle-lssa (same fine-tune, softmax vs LSSA attention): `full`
//             at 1×–16× the training window, the LSSA model also as LSSAR p = 3 and p = 15 (openModel's
//             softplusReweight, i.e. --softplus-reweight), beside `select`; accuracy and the answer's loss;
//   focus     `focus` on models/needle-focus beside the base's `beacon` (ctx's ratio) and `select`, at the
//             issue-15 lengths, with seconds per document and KV rows.
// The answer's loss is the cross-entropy of the answer's number at the prompt's last row (nats).

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { writeSection } from '../sections.js';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../../src/backend/contract.js';
import { createBackend, type BackendName } from '../../src/backend/index.js';
import { efficacyStrategy, type EfficacyStrategy } from '../../src/demo/efficacy.js';
import { askAbout, demoModelDir, makeNeedleDocument, type NeedleDocument } from '../../src/demo/index.js';
import { Conversation } from '../../src/engine/conversation.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy, type ResolvedStrategy } from '../../src/engine/strategies/index.js';
import { openModel, type Model, type OpenModelOptions } from '../../src/model/model.js';
import { loadTokenizer, type TextTokenizer } from '../../src/model/tokenizer.js';
import { option } from '../args.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const groups = option('groups', 'clex,softplus,focus').split(',');
const docs = Number(option('docs', '20'));
const task = option('task', 'single') as 'single' | 'facts4';
const depths = option('depths', '0.05,0.25,0.5,0.75,0.95').split(',').map(Number);
const focusLengths = option('focus-lengths', '256,2048,8192,32768,100000').split(',').map(Number);
const backendName = option('backend', 'cpu') as BackendName;
const baseDir = resolve(option('base', demoModelDir()));
const variantDir = (name: string) => join(repo, 'models', name);
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
// One group alone writes its own file, so groups can run one after another (or side by side) without overwriting.
const outName = option('out', groups.length === 1 ? `efficacy-variants-${groups[0]}` : 'efficacy-variants');
const TASK = task === 'single' ? { facts: 1, distractors: 0, title: 'one fact' } : { facts: 4, distractors: 4, title: '4 facts + 4 distractor names' };

/** A row of a table: a model folder (with open options) read with one strategy. */
interface Row {
  label: string;
  dir: string;
  open?: OpenModelOptions;
  /** The strategy for a prompt of n tokens on this backend. */
  strategy: (backend: Backend, n: number) => ResolvedStrategy;
}
const harness = (s: EfficacyStrategy) => (b: Backend, n: number) => efficacyStrategy(b, s, n);
const own = (name: 'full' | 'focus') => (b: Backend, n: number) => resolveStrategy(b.model.config, { strategy: name }, n, 8);

interface Cell {
  right: number;
  other: number;
  total: number;
  seconds: number;
  kvRows: number;
  loss: number;
  /** Why the row could not read documents of this length (ctx's refusal), when it could not. */
  refused?: string;
}

/** Reads the document and its question with `strategy`; the greedy next token is the answer. */
async function read(backend: Backend, tokenizer: TextTokenizer, doc: NeedleDocument, strategy: (b: Backend, n: number) => ResolvedStrategy) {
  const t0 = performance.now();
  const { question, answer } = askAbout(doc, 0);
  const conversation = new Conversation(tokenizer);
  const prompt = Int32Array.from([...conversation.documentPrefix(), ...tokenizer.encode(doc.text), ...conversation.firstQuestion(question)]);
  const session = new Session(backend, strategy(backend, prompt.length));
  try {
    const logits = await session.feed(prompt);
    let best = 0;
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i] > max) [max, best] = [logits[i], i];
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
    const answerId = tokenizer.encode(answer)[0];
    const answered = tokenizer.decode([best]).trim();
    return {
      correct: answered === answer,
      otherFact: answered !== answer && doc.facts.some((f) => f.value === answered),
      loss: Math.log(sum) - (logits[answerId] - max),
      kvRows: session.stats().totalRows,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    session.dispose();
  }
}

/** Runs every row at every length on the same documents; returns cells by `${label}|${length}`. */
async function runTable(name: string, rows: Row[], lengths: number[]): Promise<Map<string, Cell>> {
  const cells = new Map<string, Cell>();
  const perDepth = Math.max(1, Math.round(docs / depths.length));
  for (const row of rows) {
    let model: Model;
    try {
      model = openModel(row.dir, row.open ?? {});
    } catch (e) {
      for (const len of lengths) cells.set(`${row.label}|${len}`, { right: 0, other: 0, total: 0, seconds: 0, kvRows: 0, loss: 0, refused: (e as Error).message.split('\n')[0] });
      console.error(`[${name}] ${row.label}: not run: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    const tokenizer = await loadTokenizer(model.dir, { eosIds: model.config.eosTokenIds });
    const backend = await createBackend(backendName, model);
    for (const [li, len] of lengths.entries()) {
      const c: Cell = { right: 0, other: 0, total: 0, seconds: 0, kvRows: 0, loss: 0 };
      cells.set(`${row.label}|${len}`, c);
      try {
        for (const [di, depth] of depths.entries()) {
          for (let i = 0; i < perDepth; i++) {
            const doc = makeNeedleDocument({ tokens: len, depth, seed: 1_000_000 * (di + 1) + 1000 * li + i + 7, facts: TASK.facts, distractors: TASK.distractors });
            const r = await read(backend, tokenizer, doc, row.strategy);
            c.total++;
            c.seconds += r.seconds;
            c.kvRows += r.kvRows;
            c.loss += r.loss;
            if (r.correct) c.right++;
            if (r.otherFact) c.other++;
          }
        }
      } catch (e) {
        // ctx refuses a run it cannot do (e.g. positions past a CLEX model's reach or focus's window): say so.
        c.refused = (e as Error).message.split('\n')[0];
      }
      console.error(`[${name}] ${row.label} @ ${len}: ${c.refused ? `refused: ${c.refused}` : `${c.right}/${c.total}, loss ${(c.loss / Math.max(1, c.total)).toFixed(3)}, ${(c.seconds / Math.max(1, c.total)).toFixed(2)} s/doc`}`);
    }
    await backend.dispose();
  }
  return cells;
}

// ---- the groups ------------------------------------------------------------------------------------

const base = openModel(baseDir);
const P = base.config.maxPositions;
const multiples = [1, 2, 4, 8, 16];
const byMultiple = multiples.map((k) => k * P - 8);
const lines: string[] = [];
const json: Record<string, unknown> = {};
const t0 = performance.now();
const load0 = loadavg()[0];
const missing = (names: string[]) => names.filter((n) => !existsSync(join(variantDir(n), 'model.safetensors')));

function table(title: string, rows: Row[], lengths: number[], cells: Map<string, Cell>, metrics: Array<[string, (c: Cell) => string]>, label: (len: number) => string) {
  lines.push(`## ${title}`, '');
  const head = `| ${['row', ...lengths.map(label)].join(' | ')} |`;
  const rule = `|---|${lengths.map(() => '---:').join('|')}|`;
  for (const [metric, f] of metrics) {
    lines.push(`### ${metric}`, '', head, rule);
    for (const r of rows) lines.push(`| ${r.label} | ${lengths.map((len) => { const c = cells.get(`${r.label}|${len}`); return !c ? '–' : c.refused ? 'refused' : c.total ? f(c) : '–'; }).join(' | ')} |`);
    lines.push('');
  }
  const refusals = rows.flatMap((r) => lengths.map((len) => [r.label, len, cells.get(`${r.label}|${len}`)?.refused] as const)).filter(([, , why]) => why);
  if (refusals.length) lines.push('Refused by ctx: ' + refusals.map(([r, len, why]) => `${r} @ ${label(len)}: ${why}`).join('; '), '');
  json[title] = Object.fromEntries(cells);
}
const pct = (c: Cell) => `${Math.round((100 * c.right) / c.total)}%`;
const loss = (c: Cell) => (c.loss / c.total).toFixed(2);
const secs = (c: Cell) => (c.seconds / c.total).toFixed(2);
const kv = (c: Cell) => String(Math.round(c.kvRows / c.total));
const times = (len: number) => `${Math.round((len + 8) / P)}× (${len})`;
const sizeLabel = (len: number) => (len % 1024 === 0 ? `${len / 1024}K` : String(len));

if (groups.includes('clex')) {
  const lack = missing(['needle-clex']);
  if (lack.length) lines.push(`## CLEX`, '', `Not run: no ${lack.join(', ')} (python3 models/recipes/variants/train_clex.py).`, '');
  else {
    const rows: Row[] = [
      { label: 'clex: full --rope clex', dir: variantDir('needle-clex'), strategy: own('full') },
      { label: 'base: full (no scaling)', dir: baseDir, strategy: harness('full') },
      ...(['linear', 'ntk', 'dynamic', 'yarn', 'truncated'] as const).map((s) => ({ label: `base: full --rope ${s}`, dir: baseDir, strategy: harness(`full-${s}`) })),
      { label: 'base: select', dir: baseDir, strategy: harness('select') },
    ];
    table(`CLEX (${TASK.title}), window P = ${P}`, rows, byMultiple, await runTable('clex', rows, byMultiple), [['Accuracy', pct], ["Answer's loss (nats)", loss], ['Seconds per document', secs]], times);
  }
}

if (groups.includes('softplus')) {
  const lack = missing(['needle-softmax', 'needle-lssa']);
  if (lack.length) lines.push(`## Softplus attention`, '', `Not run: no ${lack.join(', ')} (python3 models/recipes/variants/train_softplus.py).`, '');
  else {
    const sm = variantDir('needle-softmax');
    const sp = variantDir('needle-lssa');
    const rows: Row[] = [
      { label: 'softmax: full', dir: sm, strategy: harness('full') },
      { label: 'LSSA: full', dir: sp, open: { softplusReweight: 'off' }, strategy: harness('full') },
      { label: 'LSSAR p=3: full', dir: sp, open: { softplusReweight: 3 }, strategy: harness('full') },
      { label: 'LSSAR p=15: full', dir: sp, open: { softplusReweight: 15 }, strategy: harness('full') },
      { label: 'softmax: select', dir: sm, strategy: harness('select') },
      { label: 'LSSA: select', dir: sp, open: { softplusReweight: 'off' }, strategy: harness('select') },
      { label: 'LSSAR p=15: select', dir: sp, open: { softplusReweight: 15 }, strategy: harness('select') },
    ];
    table(`Softplus attention (${TASK.title}), training window ${P}`, rows, byMultiple, await runTable('softplus', rows, byMultiple), [['Accuracy', pct], ["Answer's loss (nats)", loss]], times);
  }
}

if (groups.includes('focus')) {
  const lack = missing(['needle-focus']);
  if (lack.length) lines.push(`## FocusLLM`, '', `Not run: no ${lack.join(', ')} (python3 models/recipes/variants/train_focus.py).`, '');
  else {
    const lengths = focusLengths;
    const rows: Row[] = [
      { label: 'focus (needle-focus)', dir: variantDir('needle-focus'), strategy: own('focus') },
      { label: 'base: beacon (ctx ratio)', dir: baseDir, strategy: harness('beacon') },
      { label: 'base: select', dir: baseDir, strategy: harness('select') },
    ];
    table(`FocusLLM (${TASK.title})`, rows, lengths, await runTable('focus', rows, lengths), [['Accuracy', pct], ['Seconds per document', secs], ['KV rows held after the prompt (mean)', kv]], sizeLabel);
  }
}

const command = `npm run bench:variants -- --groups ${groups.join(',')} --docs ${docs} --task ${task} --depths ${depths.join(',')}${groups.includes('focus') ? ` --focus-lengths ${focusLengths.join(',')}` : ''} --backend ${backendName} --base ${relative(repo, baseDir)}`;
const head = [
  '# Efficacy of the demo base\'s trained variants (CLEX, softplus attention, FocusLLM)',
  '',
  `Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; backend \`${backendName}\`; ${new Date().toISOString().slice(0, 10)}; load average ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end (other work shared the cores when it is above ~1).`,
  `Command: \`${command}\` (${((performance.now() - t0) / 60000).toFixed(1)} min).`,
  '',
  `Base: \`${relative(repo, baseDir)}\` (window ${P}). Variants: models/recipes/variants (README there). Task: ${TASK.title}; the question \`recall <Name>\` asks the fact at each depth (${depths.join(', ')}); ${Math.max(1, Math.round(docs / depths.length)) * depths.length} documents per cell, the same documents for every row; correct when the greedy next token is the number.`,
  '',
];
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, `${outName}.md`), `${[...head, ...lines].join('\n')}\n`);
writeFileSync(join(resultsDir, `${outName}.json`), `${JSON.stringify({ command, depths, docs, task, tables: json }, null, 1)}\n`);
// The same tables as a section of efficacy.md, beside the base model's rows (its run.ts keeps them).
writeSection(
  join(resultsDir, 'efficacy.md'),
  `variants-${groups.length === 1 ? groups[0] : 'all'}`,
  [`## Trained variant${groups.length === 1 ? '' : 's'}: ${groups.join(', ')} (bench/efficacy/variants.ts)`, '', ...head.slice(2), ...lines.map((l) => (l.startsWith('#') ? `#${l}` : l))].join('\n'),
  'bench/efficacy/variants.ts',
);
console.error(`wrote ${join(resultsDir, `${outName}.md`)}`);
