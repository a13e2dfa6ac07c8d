// Session cache benchmark: the same `ctx ask` twice on the same document, the first with an empty
// cache (reads the document, saves the session), the second answered from the cache. Measures, from
// the outside as a user waits: time to the first answer token and total time, plus the read (or
// load) time ctx reports. Writes bench/results/cache.md (keeping the PDF section pdf-text.ts writes).
//
//   npx tsc -p . && node --import tsx bench/cache/run.ts [--bytes 24000] [--repeat 3] [--backends reference,cpu]
//
// Models are random-weight fixtures with the tiny byte-level tokenizer (speed does not depend on
// weight values): `tiny` (2 layers, hidden 32, 128 positions) for select, and the same shape with
// Activation Beacon weights and 4,096 positions for beacon (the 128-position tiny-beacon fixture
// cannot hold ~20K tokens). The document is the start of Moby-Dick from ../shared/data.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { writeTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';
import { PRESETS, writeRandomModel, type RandomModelSpec } from '../../tools/random-model.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const work = join(root, 'bench', 'work', 'cache');
const bin = join(root, 'bin', 'ctx.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const bytes = Number(arg('bytes', '24000'));
const repeat = Number(arg('repeat', '3'));
const backends = new Set(arg('backends', 'reference,cpu').split(','));

/** A random-weight model with the tiny byte-level tokenizer, written once into bench/work. */
function benchModel(name: string, spec: RandomModelSpec): string {
  const dir = join(work, 'models', name);
  try {
    statSync(join(dir, 'tokenizer.json'));
  } catch {
    const tok = writeTinyTokenizer(dir);
    writeRandomModel(dir, { ...spec, bos: tok.bosId, eos: tok.imEndId });
  }
  return dir;
}

/** tiny-beacon's shape with 4,096 positions: ratio 8 holds (4096 − 32) × 8 + 32 = 32,544 tokens. */
const tinyBeacon4k = () => benchModel('tiny-beacon-4k', { ...PRESETS['tiny-beacon']!, maxPositions: 4096 });

/**
 * A small beacon model (27M parameters: hidden 512, 8 layers, 8 heads / 2 KV heads) whose reading
 * costs something, as a real model's does; window 256, so ratio 8 holds (4096 − 256) × 8 + 256 = 30,976 tokens.
 */
const smallBeacon = () =>
  benchModel('small-beacon-4k', {
    arch: 'qwen2', vocab: 320, hidden: 512, intermediate: 1536, layers: 8, heads: 8, kvHeads: 2, maxPositions: 4096,
    beacon: { version: 'v3', window: 256, ratios: [2, 4, 8], ratioMix: 'adapt-1024' },
  });

interface Run {
  firstTokenSeconds: number;
  totalSeconds: number;
  /** What ctx reports: reading time, or the cache load time on a hit. */
  readSeconds: number;
  cached: boolean;
  documentTokens: number;
  strategy: string;
  backend: string;
}

/** One `ctx ask --events`, timed from spawn to the first token line and to exit. */
function ask(args: string[], cacheDir: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, ...args, '--events'], {
      env: { ...process.env, CTX_CACHE_DIR: cacheDir, CTX_CONFIG_DIR: work },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let firstToken = NaN;
    child.stdout.on('data', (d: Buffer) => {
      if (Number.isNaN(firstToken) && d.includes('"type":"token"')) firstToken = (performance.now() - t0) / 1000;
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      const total = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`ctx ${args.join(' ')} exited ${code}: ${err}`));
      const done = JSON.parse(out.trimEnd().split('\n').at(-1)!) as {
        type: string;
        timings: { readSeconds: number; cached: boolean };
        tokens: { document: number };
        strategy: string;
        backend: string;
      };
      resolve({
        firstTokenSeconds: firstToken,
        totalSeconds: total,
        readSeconds: done.timings.readSeconds,
        cached: done.timings.cached,
        documentTokens: done.tokens.document,
        strategy: done.strategy,
        backend: done.backend,
      });
    });
  });
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}
const s = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

async function main(): Promise<void> {
  mkdirSync(work, { recursive: true });
  const doc = join(work, 'moby-dick-start.txt');
  writeFileSync(doc, readFileSync(join(root, '..', 'shared', 'data', 'gutenberg', 'moby_dick_pg2701.txt')).subarray(0, bytes));
  // The small model only on cpu: the reference backend is written for clarity, not speed.
  const configs = [
    { label: 'tiny-beacon (4K positions)', model: tinyBeacon4k(), strategy: 'beacon', backend: 'reference' },
    { label: 'tiny', model: fixtureModel('tiny'), strategy: 'select', backend: 'reference' },
    { label: 'tiny-beacon (4K positions)', model: tinyBeacon4k(), strategy: 'beacon', backend: 'cpu' },
    { label: 'tiny', model: fixtureModel('tiny'), strategy: 'select', backend: 'cpu' },
    { label: 'small-beacon (27M, 4K positions)', model: smallBeacon(), strategy: 'beacon', backend: 'cpu' },
  ].filter((c) => backends.has(c.backend));
  const rows: string[] = [];
  const loads: number[] = [loadavg()[0]!];
  for (const c of configs) {
    const backend = c.backend;
    {
      const first: Run[] = [];
      const second: Run[] = [];
      let entryBytes = 0;
      for (let i = 0; i < repeat; i++) {
        const cacheDir = join(work, `cache-${backend}-${c.strategy}-${c.model.split('/').pop()}-${i}`);
        rmSync(cacheDir, { recursive: true, force: true });
        const args = ['ask', doc, 'Who is Ishmael?', '-m', c.model, '--strategy', c.strategy, '--backend', backend, '--max-tokens', '16'];
        first.push(await ask(args, cacheDir));
        second.push(await ask(args, cacheDir));
        const sessions = join(cacheDir, 'sessions');
        entryBytes = readdirSync(sessions).reduce((n, f) => n + statSync(join(sessions, f)).size, 0);
        loads.push(loadavg()[0]!);
        if (first.at(-1)!.cached || !second.at(-1)!.cached) throw new Error('expected a miss, then a hit');
        console.error(`${backend} ${c.strategy} #${i + 1}: first ${s(first.at(-1)!.firstTokenSeconds)} s, second ${s(second.at(-1)!.firstTokenSeconds)} s to the first token`);
      }
      const f = median(first.map((r) => r.firstTokenSeconds));
      const g = median(second.map((r) => r.firstTokenSeconds));
      rows.push(
        `| ${c.label} | ${first[0]!.strategy} | ${first[0]!.backend} | ${first[0]!.documentTokens.toLocaleString('en-US')} | ` +
          `${s(f)} | ${s(median(first.map((r) => r.totalSeconds)))} | ${s(median(first.map((r) => r.readSeconds)))} | ` +
          `${s(g)} | ${s(median(second.map((r) => r.totalSeconds)))} | ${s(median(second.map((r) => r.readSeconds)))} | ` +
          `${(f / g).toFixed(1)}× | ${(entryBytes / 1024).toFixed(0)} KiB |`,
      );
    }
  }

  const cpu = cpus()[0]?.model ?? 'unknown';
  const md = `# Session cache: first vs second \`ctx ask\` on the same document

Written by \`node --import tsx bench/cache/run.ts\` (bench/cache/run.ts). Each row: \`ctx ask <doc> "Who is Ishmael?"
--max-tokens 16 --events\`, run twice on the same document with an empty session cache before the first run;
the first reads the document and saves its session, the second restores it from the cache. Times are seen
from outside, from spawning the process: to the first \`token\` line on stdout, and to exit. "read" is
what ctx reports itself: reading the document (first) or loading the cache entry (second). Median of
${repeat} runs each.

Document: the first ${bytes.toLocaleString('en-US')} bytes of Moby-Dick (../shared/data/gutenberg), under the fixtures'
byte-level tokenizer. Models: random weights (speed does not depend on their values) and that tokenizer:
\`tiny\` (2 layers, hidden 32, 4 heads / 2 KV heads, 128 positions) for select; the same shape with Activation
Beacon weights and 4,096 positions for beacon (the tiny-beacon fixture's 128 positions hold at most 800
tokens); and a small beacon model (27M parameters: hidden 512, 8 layers, 8 heads / 2 KV heads, window 256,
4,096 positions) on the cpu backend only, whose reading costs something, as a real model's does.

## Machine and command

- cpu: ${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 1024 ** 3)} GiB
- node: ${process.version}
- command: \`${['node --import tsx bench/cache/run.ts', ...process.argv.slice(2)].join(' ')}\`
- 1-minute load average during the runs: ${Math.min(...loads).toFixed(1)} – ${Math.max(...loads).toFixed(1)} (the machine was shared with other work)

## Results (seconds)

| model | strategy | backend | document tokens | first: to first token | first: total | first: read | second: to first token | second: total | second: cache load | first token, first / second | entry size |
|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

The second run's time to the first token is process start, reading and tokenizing the inputs, loading
the model, hashing the prompt for the key, and loading the entry (checksum verified) — no reading. The first
run's total includes saving the entry (written after the first answer token, beside the answer).
`;
  const out = join(root, 'bench', 'results', 'cache.md');
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  // pdf-text.ts's section (between its markers) stays as it was.
  const before = existsSync(out) ? readFileSync(out, 'utf8') : '';
  const pdfText = before.indexOf('<!-- pdf-text: bench/cache/pdf-text.ts -->');
  writeFileSync(out, pdfText >= 0 ? `${md}\n${before.slice(pdfText)}` : md);
  console.error(`wrote ${out}`);
}

await main();
