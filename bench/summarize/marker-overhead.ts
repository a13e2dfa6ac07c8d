// What citation markers cost: each input tokenized with and without source markers, for several
// line intervals, on a real tokenizer (Qwen by default). Prints a markdown table.
//
//   node --import tsx bench/summarize/marker-overhead.ts [--tokenizer <folder>] [--every default,10,50] [inputs…]
//
// Default inputs: the Gutenberg books and the PDF in ../shared/data, and ctx's own src/ folder
// (a repository, named relative to the current folder). The tokenizer folder needs tokenizer.json (and tokenizer_config.json).

import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addSourceMarkers } from '../../src/engine/citations/markers.js';
import type { Document } from '../../src/input/document.js';
import { readInputs } from '../../src/input/read.js';
import { loadTokenizer, type TextTokenizer } from '../../src/model/tokenizer.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHARED = resolve(ROOT, '../shared');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

function positional(): string[] {
  const out: string[] = [];
  for (let i = 2; i < process.argv.length; i++) {
    if (process.argv[i]!.startsWith('--')) i++;
    else out.push(process.argv[i]!);
  }
  return out;
}

function defaultInputs(): string[] {
  const books = ['moby_dick_pg2701.txt', 'pride_and_prejudice_pg1342.txt', 'sherlock_holmes_pg1661.txt'].map((b) => join(SHARED, 'data/gutenberg', b));
  // ctx's own src/ named relatively, as a user names a repository: the markers carry that path.
  const src = relative(process.cwd(), join(ROOT, 'src')) || '.';
  return [...books, join(SHARED, 'data/pdf/debian-reference.en.pdf'), src].filter((p) => existsSync(p));
}

async function tokens(tok: TextTokenizer, doc: Document): Promise<number> {
  return (await tok.encodeSegments(doc.segments)).ids.length;
}

const tokenizerDir = resolve(arg('tokenizer') ?? join(SHARED, 'models/tokenizers/qwen3'));
// "default": the interval ctx uses (25 lines for one text source, 50 when markers name files).
const everyList = (arg('every') ?? 'default').split(',').map((e) => (e === 'default' ? undefined : Number(e)));
const inputs = positional().length ? positional() : defaultInputs();

const tok = await loadTokenizer(tokenizerDir);
console.log(`tokenizer: ${tokenizerDir}\n`);
console.log('| input | kind | tokens | markers (lines every) | markers | tokens added | overhead | per marker |');
console.log('|---|---|---:|---|---:|---:|---:|---:|');
for (const input of inputs) {
  const doc = await readInputs([input], { maxFileBytes: 4 * 1024 * 1024 });
  const plain = await tokens(tok, doc);
  const kind = doc.sources.some((s) => s.kind === 'pdf') ? `pdf, ${doc.sources[0]!.pages} pages` : doc.sources.length > 1 ? `repo, ${doc.sources.length} files` : 'text';
  const label = input.startsWith(SHARED) ? input.slice(SHARED.length + 1) : input.startsWith(ROOT) ? input.slice(ROOT.length) : input;
  const isPdf = doc.sources.every((s) => s.kind === 'pdf');
  for (const every of isPdf ? [undefined] : everyList) {
    const marked = addSourceMarkers(doc, { lineEvery: every });
    const withMarkers = await tokens(tok, marked.doc);
    const added = withMarkers - plain;
    const pct = ((100 * added) / plain).toFixed(2);
    const per = (added / Math.max(1, marked.markers.length)).toFixed(1);
    console.log(`| ${label} | ${kind} | ${plain.toLocaleString('en-US')} | ${isPdf ? 'pages' : (every ?? `${marked.kinds.namedLines ? 50 : 25} (default)`)} | ${marked.markers.length.toLocaleString('en-US')} | ${added.toLocaleString('en-US')} | ${pct}% | ${per} |`);
  }
}
