// The kept text of PDFs (issue 13.9): how long reading a 261-page PDF takes when its text must be
// parsed and when it is kept from an earlier run. Measured from outside, as a user waits:
//
//   inspect   `ctx inspect --json <pdf>` without a model: process start + reading the input, nothing else
//   ask       (with --model) `ctx ask <pdf> "What is APT?" -m <model> --max-tokens 4 --events` with the
//             session cache already filled: seconds to the `source` event (the PDF read) and to exit
//
// each with the text cache emptied first ("parsed") and filled ("kept"). Median of --repeat runs.
// Writes its section of bench/results/cache.md (between the pdf-text markers; run.ts keeps it).
//
//   npx tsc -p . && node --import tsx bench/cache/pdf-text.ts [--repeat 3] [--model ../shared/models/aidreams260K-hf]

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin', 'ctx.js');
const pdf = join(root, '..', 'shared', 'data', 'pdf', 'debian-reference.en.pdf');
const cacheDir = join(root, 'bench', 'work', 'pdf-text-cache');
const results = join(root, 'bench', 'results', 'cache.md');
export const SECTION_START = '<!-- pdf-text: bench/cache/pdf-text.ts -->';
export const SECTION_END = '<!-- /pdf-text -->';

function arg(name: string, fallback: string | null): string | null {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const repeat = Number(arg('repeat', '3'));
const model = arg('model', null);

/** Seconds from spawn to the first event of each type, and to exit. */
function timed(args: string[]): Promise<{ events: Record<string, number>; exit: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, CTX_CACHE_DIR: cacheDir }, stdio: ['ignore', 'pipe', 'ignore'] });
    const events: Record<string, number> = {};
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const type = line.startsWith('{"type":"') ? (JSON.parse(line) as { type: string }).type : null;
        if (type && !(type in events)) events[type] = (performance.now() - t0) / 1000;
      }
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ events, exit: (performance.now() - t0) / 1000 }) : reject(new Error(`ctx ${args.join(' ')}: exit ${code}`))));
  });
}

/** What the numbers say, by the person who ran it (kept when the script rewrites the section). */
const NOTE = `
The PDF's part of a cached ask drops from 7–12 s to about 1 s. The issue's aim, a cached ask on this PDF
in under 2 s, is not reached here: with the only real model in ../shared (aidreams260K, whose small vocabulary
makes this PDF 422,764 tokens, all kept under select) the rest of the run is restoring its 826 MiB session
entry and answering over it, on a machine loaded to 11–13. The issue's model read the same PDF as
108,889 tokens, a quarter of that.
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const s = (x: number) => x.toFixed(2);
const emptyTextCache = () => rmSync(join(cacheDir, 'pdf-text'), { recursive: true, force: true });

async function main(): Promise<void> {
  if (!existsSync(pdf)) throw new Error(`${pdf} is missing (../shared/data)`);
  mkdirSync(cacheDir, { recursive: true });
  const load = [loadavg()[0]!];
  const rows: string[] = [];

  const inspect = { parsed: [] as number[], kept: [] as number[] };
  for (let i = 0; i < repeat; i++) {
    emptyTextCache();
    inspect.parsed.push((await timed(['inspect', '--json', pdf])).exit);
    inspect.kept.push((await timed(['inspect', '--json', pdf])).exit);
    load.push(loadavg()[0]!);
  }
  rows.push(`| \`ctx inspect --json\` (no model) | to exit | ${s(median(inspect.parsed))} | ${s(median(inspect.kept))} |`);

  if (model) {
    const ask = ['ask', pdf, 'What is APT?', '-m', model, '--max-tokens', '4', '--events'];
    await timed(ask); // fills the session cache (and the text cache)
    const runs = { parsed: [] as Array<Awaited<ReturnType<typeof timed>>>, kept: [] as Array<Awaited<ReturnType<typeof timed>>> };
    for (let i = 0; i < repeat; i++) {
      emptyTextCache();
      runs.parsed.push(await timed(ask));
      runs.kept.push(await timed(ask));
      load.push(loadavg()[0]!);
    }
    const at = (rs: typeof runs.parsed, type: string) => median(rs.map((r) => r.events[type] ?? NaN));
    const name = model.split('/').filter(Boolean).at(-1);
    rows.push(`| \`ctx ask\` (${name}, session cache filled) | to the \`source\` event (PDF read) | ${s(at(runs.parsed, 'source'))} | ${s(at(runs.kept, 'source'))} |`);
    rows.push(`| \`ctx ask\` (${name}, session cache filled) | to the \`read\` event (session restored) | ${s(at(runs.parsed, 'read'))} | ${s(at(runs.kept, 'read'))} |`);
    rows.push(`| \`ctx ask\` (${name}, session cache filled) | to exit | ${s(median(runs.parsed.map((r) => r.exit)))} | ${s(median(runs.kept.map((r) => r.exit)))} |`);
  }

  const section = `${SECTION_START}
## The kept text of a PDF: a second run does not parse it

Written by \`node --import tsx bench/cache/pdf-text.ts --repeat ${repeat}${model ? ` --model ${model}` : ''}\`. Document: the
261-page Debian Reference PDF (../shared/data/pdf, ${(readFileSync(pdf).byteLength / 1024 ** 2).toFixed(1)} MiB). "parsed": the text cache
emptied before the run; "kept": the text from the run before. Seconds from spawning ctx, median of ${repeat}.

- cpu: ${cpus()[0]?.model ?? '?'}, ${cpus().length} cores, ${Math.round(totalmem() / 1024 ** 3)} GiB; node ${process.version}
- 1-minute load average during the runs: ${Math.min(...load).toFixed(1)} – ${Math.max(...load).toFixed(1)} (the machine was shared with other work)

| command | until | parsed | kept |
|---|---|---|---|
${rows.join('\n')}
${NOTE}${SECTION_END}
`;
  const before = existsSync(results) ? readFileSync(results, 'utf8') : '';
  const start = before.indexOf(SECTION_START);
  const end = before.indexOf(SECTION_END);
  const md = start >= 0 && end > start ? `${before.slice(0, start)}${section}${before.slice(end + SECTION_END.length + 1)}` : `${before.trimEnd()}\n\n${section}`;
  writeFileSync(results, md);
  console.error(`wrote ${results}`);
}

await main();
