// A section of bench/results/cpu.md that another benchmark script owns, between two marker lines,
// so that each script rewrites its own part and keeps the other's (run.ts writes the file whole;
// gguf-bench.ts writes the GGUF section).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const start = (id: string) => `<!-- ${id}: written by bench/cpu/${id}.ts; kept by the other scripts -->`;
const end = (id: string) => `<!-- /${id} -->`;

/** The section `id` of the file at `path` with its markers, or '' when it has none. */
export function readSection(path: string, id: string): string {
  if (!existsSync(path)) return '';
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(start(id));
  const b = text.indexOf(end(id));
  return a >= 0 && b > a ? text.slice(a, b + end(id).length) : '';
}

/** Replaces (or appends) section `id` of the file at `path` with `body`. */
export function writeSection(path: string, id: string, body: string): void {
  const section = `${start(id)}\n${body.trimEnd()}\n${end(id)}`;
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const old = readSection(path, id);
  writeFileSync(path, old ? text.replace(old, section) : `${text.trimEnd()}\n\n${section}\n`);
}
