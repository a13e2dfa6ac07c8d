// Does saving the session hold up the first answer? (issue 14: "first answer token after reading,
// cache on vs --no-cache, 32K select: ≤ +0.2 s".) The same `ctx ask` on a ~32K-token document,
// alternately with the session cache on (its entries emptied first, so the run reads and saves) and
// with --no-cache; for each, the seconds from the `read` event (the document read) to the first
// `token` event, to exit, and the save's own seconds and bytes (the `saved` event).
//
//   npx tsc -p . && node --import tsx bench/cache/first-token.ts [--repeat 3] [--chars 118000] [--strategy select]
//
// Model: the cpu benchmark's random weights in the shape of Qwen2.5-0.5B (bench/cpu/run.ts makes
// them in bench/work/cpu) with the Qwen3 tokenizer from ../shared, q8 weights and f16 KV (the
// defaults), 2 threads. Document: the start of Moby-Dick (../shared/data/gutenberg). The converted
// weights are shared with the cpu benchmark (its cache folder). Writes its section of
// bench/results/cache.md (between the first-token markers).

import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { isVm, median, root, timed, writeSection, type Timed } from './timed-ctx.js';

const SECTION_START = '<!-- first-token: bench/cache/first-token.ts -->';
const SECTION_END = '<!-- /first-token -->';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const repeat = Number(arg('repeat', '3'));
const chars = Number(arg('chars', '118000'));
const strategy = arg('strategy', 'select');

const shared = join(root, '..', 'shared');
const cpuWork = join(root, 'bench', 'work', 'cpu');
const work = join(root, 'bench', 'work', 'first-token');
const cacheDir = join(cpuWork, 'cache'); // the cpu benchmark's converted weights
const results = join(root, 'bench', 'results', 'cache.md');

/** The cpu benchmark's Qwen2.5-0.5B-shaped weights with the Qwen3 tokenizer, as a model folder. */
function model(): string {
  const weights = join(cpuWork, 'qwen2.5-0.5b');
  if (!existsSync(join(weights, 'model.safetensors'))) throw new Error(`${weights} is missing: run npm run bench:cpu first (it makes the weights)`);
  const dir = join(work, 'qwen2.5-0.5b-qwen3-tokenizer');
  mkdirSync(dir, { recursive: true });
  const link = (from: string, name: string) => existsSync(join(dir, name)) || symlinkSync(from, join(dir, name));
  link(join(weights, 'config.json'), 'config.json');
  link(join(weights, 'model.safetensors'), 'model.safetensors');
  link(join(shared, 'models', 'tokenizers', 'qwen3', 'tokenizer.json'), 'tokenizer.json');
  link(join(shared, 'models', 'tokenizers', 'qwen3', 'tokenizer_config.json'), 'tokenizer_config.json');
  return dir;
}

function document(): string {
  const path = join(work, `moby-dick-${chars}.txt`);
  if (!existsSync(path)) writeFileSync(path, readFileSync(join(shared, 'data', 'gutenberg', 'moby_dick_pg2701.txt'), 'utf8').slice(0, chars));
  return path;
}

const emptySessions = () => rmSync(join(cacheDir, 'sessions'), { recursive: true, force: true });
const s = (x: number) => x.toFixed(2);

async function main(): Promise<void> {
  const dir = model();
  const doc = document();
  const ask = ['ask', doc, 'Who is Ishmael?', '-m', dir, '--strategy', strategy, '--dtype', 'q8', '--threads', '2', '--max-tokens', '8', '--events'];
  const runs = { on: [] as Timed[], off: [] as Timed[] };
  const load = [loadavg()[0]!];
  for (let i = 0; i < repeat; i++) {
    emptySessions();
    runs.on.push(await timed(ask, cacheDir));
    runs.off.push(await timed([...ask, '--no-cache'], cacheDir));
    load.push(loadavg()[0]!);
    const last = (r: Timed) => `${s(r.events.token! - r.events.read!)} s read → first token, ${s(r.exit)} s in all`;
    console.error(`#${i + 1}: cache on ${last(runs.on.at(-1)!)}; --no-cache ${last(runs.off.at(-1)!)}`);
  }
  emptySessions();
  for (const r of [...runs.on, ...runs.off]) if (r.read?.cached) throw new Error('a run restored its session: the cache was not empty');
  for (const r of runs.on) if (!r.first.saved) throw new Error('a cache-on run saved nothing');

  const afterRead = (r: Timed) => r.events.token! - r.events.read!;
  const row = (label: string, rs: Timed[]) =>
    `| ${label} | ${s(median(rs.map(afterRead)))} (${rs.map((r) => s(afterRead(r))).join(', ')}) | ${s(median(rs.map((r) => r.read!.seconds)))} | ` +
    `${s(median(rs.map((r) => r.exit - r.events.token!)))} | ${rs[0]!.first.saved ? `${s(median(rs.map((r) => r.first.saved!.seconds as number)))} s, ${((rs[0]!.first.saved!.bytes as number) / 2 ** 20).toFixed(0)} MiB` : '–'} | ` +
    `${s(median(rs.map((r) => r.exit)))} | ${rs.map((r) => (r.others === null ? '?' : `${Math.round(100 * r.others)}%`)).join(', ')} |`;
  const delta = median(runs.on.map(afterRead)) - median(runs.off.map(afterRead));
  const tokens = runs.on[0]!.documentTokens!;
  const section = `${SECTION_START}
## Does saving the session hold up the first answer?

Written by \`node --import tsx bench/cache/first-token.ts --repeat ${repeat} --chars ${chars} --strategy ${strategy}\`.
\`ctx ask <doc> "Who is Ishmael?" -m <model> --strategy ${strategy} --dtype q8 --threads 2 --max-tokens 8 --events\`,
alternately with the session cache on (emptied before each run: the run reads the document and saves
the session) and with \`--no-cache\`. Document: the first ${chars.toLocaleString('en-US')} characters of Moby-Dick, ${tokens.toLocaleString('en-US')}
tokens under the Qwen3 tokenizer. Model: the cpu benchmark's random weights in the shape of
Qwen2.5-0.5B (bench/work/cpu), q8 weights, f16 KV. "read → first token": seconds from the \`read\` event
to the first \`token\` event as ctx printed them (the question's prefill, and with the cache on taking
the snapshot), each run in brackets; "read": the read's own seconds; the save's seconds and bytes from
the \`saved\` event. Medians of ${repeat}.

- machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${Math.round(totalmem() / 1024 ** 3)} GiB${isVm() ? ' (a virtual machine)' : ''}; node ${process.version}
- 1-minute load average during the runs: ${Math.min(...load).toFixed(1)} – ${Math.max(...load).toFixed(1)}

| cache | read → first token, s | read, s | first token → exit, s | save | total, s | other processes' CPU share, each run |
|---|---|---|---|---|---|---|
${row('on (read, then saved)', runs.on)}
${row('\`--no-cache\`', runs.off)}

Cache on minus \`--no-cache\`, read → first token: **${delta >= 0 ? '+' : ''}${s(delta)} s** (goal: ≤ +0.2 s). The save starts
after the first answer token and writes the session's rows from its own arrays (no copy in memory).
${SECTION_END}
`;
  writeFileSync(results, writeSection(existsSync(results) ? readFileSync(results, 'utf8') : '', SECTION_START, SECTION_END, section));
  console.error(`wrote ${results}`);
}

await main();
