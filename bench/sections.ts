// A section of a results file that another benchmark script owns, between two marker lines, so
// that each script rewrites its own part and keeps the others' (bench/cpu/run.ts writes cpu.md whole
// and keeps gguf-bench.ts's section; bench/efficacy/run.ts writes efficacy.md whole and keeps the
// sections of bench/efficacy/variants.ts).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** The start marker's opening, which finds the section whoever wrote it. */
const startPrefix = (id: string) => `<!-- ${id}: written by `;
const start = (id: string, owner: string) => `${startPrefix(id)}${owner}; kept by the other scripts -->`;
const end = (id: string) => `<!-- /${id} -->`;

/** The section `id` of the file at `path` with its markers, or '' when it has none. */
export function readSection(path: string, id: string): string {
  if (!existsSync(path)) return '';
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(startPrefix(id));
  const b = text.indexOf(end(id));
  return a >= 0 && b > a ? text.slice(a, b + end(id).length) : '';
}

/** Replaces (or appends) section `id` of the file at `path` with `body`; `owner` is the script that writes it. */
export function writeSection(path: string, id: string, body: string, owner = `bench/cpu/${id}.ts`): void {
  const section = `${start(id, owner)}\n${body.trimEnd()}\n${end(id)}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const old = readSection(path, id);
  writeFileSync(path, old ? text.replace(old, section) : `${text.trimEnd()}\n\n${section}\n`);
}
