// bench/cpu/select-reuse: how often TokenSelect's selection cache fires while decoding on trained
// models, and what reusing costs in answers. Writes bench/results/select-reuse.md.
//
//   npm run bench:select-reuse -- [--tokens 8192] [--decode 64]
//
// For each model and each `--select-reuse` threshold (off, 0.95, 0.9 = ctx's default, 0.8, 0.7): one
// select session reads the same document, then decodes `--decode` greedy tokens. A decoding step's
// layer reuses its cached selection when cos(q̄, the q̄ of its last fresh vote) ≥ the threshold
// (src/backend/step/select.ts). Reported: the share of layer selections reused, the decode time, and how
// many greedy tokens agree with the run without reuse. The random weights of bench/cpu/run.ts say
// nothing here (their queries are noise): these are the trained models at hand — the demo model on a
// 4-person needle document, and aidreams260K (llama2.c, trained on stories; ../shared) on a novel.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCpuBackend, type CpuBackend } from '../../src/backend/cpu/index.js';
import { demoModelDir, makeNeedleDocument } from '../../src/demo/index.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import { openModel } from '../../src/model/model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { option } from '../args.js';

const tokens = Number(option('tokens', '8192'));
const decode = Number(option('decode', '64'));
const THRESHOLDS: (number | null)[] = [null, 0.95, 0.9, 0.8, 0.7];
const REPORT = fileURLToPath(new URL('../results/select-reuse.md', import.meta.url));

interface Subject {
  name: string;
  dir: string;
  text: () => string;
}

const subjects: Subject[] = [
  {
    name: 'needle-demo, a 4-person needle document (its greedy continuation repeats one number)',
    dir: demoModelDir(),
    text: () => makeNeedleDocument({ tokens: tokens + 200, depth: 0.5, seed: 3, facts: 4, distractors: 4 }).text,
  },
];
const SHARED = fileURLToPath(new URL('../../../shared/', import.meta.url));
const aidreams = join(SHARED, 'models', 'aidreams260K-hf');
const novel = join(SHARED, 'data', 'gutenberg', 'moby_dick_pg2701.txt');
if (existsSync(aidreams) && existsSync(novel)) {
  subjects.push({ name: 'aidreams260K, Moby Dick', dir: aidreams, text: () => readFileSync(novel, 'utf8') });
} else {
  console.error('../shared is absent: aidreams260K is left out');
}

interface Row {
  subject: string;
  threshold: number | null;
  reused: number;
  voted: number;
  ms: number;
  agree: number;
}

const argmax = (x: Float32Array) => x.reduce((b, v, i) => (v > x[b] ? i : b), 0);

const rows: Row[] = [];
for (const subject of subjects) {
  const model = openModel(subject.dir);
  const tokenizer = await loadTokenizer(model.dir, { eosIds: model.config.eosTokenIds });
  const backend = (await createCpuBackend(model, {})) as CpuBackend;
  const ids = Int32Array.from(tokenizer.encode(subject.text()).slice(0, tokens));
  const label = `${subject.name}; ${model.config.numLayers} layers, window ${model.config.maxPositions}`;
  let reference: number[] = [];
  for (const threshold of THRESHOLDS) {
    const strategy = resolveStrategy(model.config, { strategy: 'select', reuseCosine: threshold }, ids.length + decode);
    const session = new Session(backend, strategy);
    let logits = await session.feed(ids);
    backend.profile.reset();
    const out: number[] = [];
    const t = performance.now();
    for (let i = 0; i < decode; i++) {
      out.push(argmax(logits));
      logits = await session.feed(Int32Array.of(out[i]), { decoding: true });
    }
    const ms = performance.now() - t;
    session.dispose();
    if (threshold === null) reference = out;
    const agree = out.findIndex((id, i) => id !== reference[i]);
    rows.push({ subject: label, threshold, reused: backend.profile.reused, voted: backend.profile.voted, ms, agree: agree < 0 ? out.length : agree });
    console.error(`${label}: reuse ${threshold ?? 'off'}: ${backend.profile.reused} reused / ${backend.profile.voted} voted, ${ms.toFixed(0)} ms`);
  }
  await backend.dispose();
}

const lines = [
  '# TokenSelect selection reuse while decoding, on trained models',
  '',
  'Written by `npm run bench:select-reuse` (bench/cpu/select-reuse.ts; what it measures is in its header).',
  '',
  `- machine: ${cpus()[0]?.model.trim() ?? 'unknown'}, ${cpus().length} cores, node ${process.version}, cpu backend, f16 KV`,
  `- command: \`npm run bench:select-reuse -- --tokens ${tokens} --decode ${decode}\``,
  `- 1-minute load average at the end: ${loadavg()[0].toFixed(1)} (decode times move with it; the shares and agreement do not)`,
  '',
  `| model, document (${tokens} tokens, then ${decode} greedy tokens) | \`--select-reuse\` | layer selections reused | decode ms | greedy tokens equal to reuse off |`,
  '|---|---|---|---|---|',
  ...rows.map((r) => {
    const share = r.reused / (r.reused + r.voted || 1);
    return `| ${r.subject} | ${r.threshold ?? 'off'} | ${(100 * share).toFixed(1)}% (${r.reused} of ${r.reused + r.voted}) | ${r.ms.toFixed(0)} | ${r.agree === decode ? `all ${decode}` : `first ${r.agree}`} |`;
  }),
  '',
];
writeFileSync(REPORT, lines.join('\n'));
console.error(`wrote ${join('bench', 'results', 'select-reuse.md')}`);
