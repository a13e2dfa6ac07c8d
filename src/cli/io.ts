// What every command needs from the run it is part of — output streams, stdin, the abort signal —
// and the shared rules for turning arguments into document inputs.
//
// main.ts makes one RunContext per invocation and passes it to each command factory
// (`askCommand(run)`); nothing about a run lives in module state.

import { existsSync, fstatSync } from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Command } from 'commander';
import { isatty } from 'node:tty';
import { CtxError } from '../errors.js';
import { escapeControls, isTerminal } from '../ui/format.js';

/** What fd 0 is: with nothing named, ctx reads it unless it is a terminal (see documentInputs). */
export type StdinKind = 'tty' | 'pipe' | 'file' | 'other';

export interface RunContext {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
  stdinKind: StdinKind;
  /** Aborted on Ctrl-C / SIGTERM; long work should pass it down. */
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** A command may end with a non-zero code without an error message (e.g. inspect: does not fit). */
  exitCode: number;
}

/** Classifies fd 0. A pipe from a shell is a FIFO; `< file` is a file; a spawn() pipe is a socket ("other"). */
export function stdinKindOf(fd = 0): StdinKind {
  if (isatty(fd)) return 'tty';
  try {
    const st = fstatSync(fd);
    if (st.isFIFO()) return 'pipe';
    if (st.isFile()) return 'file';
    return 'other';
  } catch {
    return 'other';
  }
}

export interface DocumentInputs {
  /** Files, folders and globs in order; "-" is stdin. */
  specs: string[];
}

/**
 * The inputs of a command that reads documents, by the rule cat and grep follow: stdin is a
 * document only when no inputs are named, or when "-" is named (at that position). So
 * `cat log | ctx ask "why?"` reads the pipe, while `while read f; do ctx ask "$f" "q"; done < list`
 * leaves the loop's stdin alone. With nothing named and stdin a terminal there is nothing to read.
 */
export function documentInputs(args: string[], ctx: Pick<RunContext, 'stdinKind'>): DocumentInputs {
  if (args.length > 0) return { specs: args };
  if (ctx.stdinKind === 'tty') {
    throw new CtxError('usage', 'no input given: name files, folders or globs, or pipe text into ctx');
  }
  return { specs: ['-'] };
}

/**
 * A command whose inputs are optional, run on a terminal with nothing named and nothing piped
 * (`ctx inspect`): prints the command's usage to stderr and ends with the usage exit code.
 */
export function usageWhenNothingToRead(cmd: Command, args: string[], ctx: Pick<RunContext, 'stdinKind'>): void {
  if (args.length === 0 && ctx.stdinKind === 'tty') cmd.help({ error: true });
}

/**
 * For commands that take inputs and then a question (`ctx ask report.pdf "what changed?"`): the
 * last argument is the question, the rest are inputs, with stdin handled as in documentInputs
 * (`cat log | ctx ask "why did it fail?"` → stdin is the document). A last argument that is an
 * existing file or folder (or "-") is an input whose question was forgotten: a usage error.
 */
export function inputsAndQuestion(args: string[], ctx: Pick<RunContext, 'stdinKind'>): DocumentInputs & { question: string } {
  const question = args[args.length - 1];
  // `ctx ask report.pdf` forgot the question: the last argument names an input, not a question.
  if (question === undefined || question === '-' || existsSync(question)) {
    throw new CtxError('usage', 'no question: ctx ask <inputs…> "question"');
  }
  return { ...documentInputs(args.slice(0, -1), ctx), question };
}

/** Writes a line to the run's stdout. */
export function out(run: Pick<RunContext, 'stdout'>, line: string): void {
  // Listings and reports quote file names and model folders: escaped on a terminal (ui/format.ts).
  const text = isTerminal(run.stdout) ? escapeControls(line) : line;
  run.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Lays out rows as columns; `right` marks columns aligned to the right (numbers). */
export function formatTable(rows: string[][], right: boolean[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => {
        if (i === row.length - 1 && !right[i]) return cell; // no trailing spaces
        return right[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
      })
      .join('  '),
  );
}

/** 1234567 → "1,234,567": token counts are easier to read grouped. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * The stdin a command reads its document from: when "-" is among the inputs and stdin is not a
 * terminal, reading fails with one clear line if nothing at all (no byte, no end) arrives within
 * `seconds` — a pipe that nobody writes to and nobody closes would otherwise hang ctx forever.
 * Once the first bytes arrive there is no limit. Untouched unless "-" is read.
 */
export function guardedStdin(specs: string[], run: Pick<RunContext, 'stdin'> & Partial<Pick<RunContext, 'stdinKind'>>, seconds: number): Readable {
  if (!specs.includes('-') || run.stdinKind === 'tty' || !(seconds > 0)) return run.stdin;
  const source = run.stdin;
  const guarded = new PassThrough();
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    const timer = setTimeout(() => {
      source.unpipe(guarded);
      source.destroy(); // lets the process exit: a pipe still open would keep it alive
      const wait = `${seconds} s`;
      guarded.destroy(new CtxError('input', `stdin: nothing arrived in ${wait}: pipe the document into ctx or name files (--stdin-wait sets how long to wait, 0 = forever)`));
    }, seconds * 1000);
    const settled = () => clearTimeout(timer);
    source.once('data', settled);
    source.once('end', settled);
    source.once('error', settled);
    source.pipe(guarded);
  };
  // Cancelled (Ctrl-C destroys what is being read) or done: stdin goes too, or an open pipe would keep ctx alive.
  guarded.once('close', () => source.destroy());
  // Reading begins when the document is read, not before: stdin is left alone until then.
  guarded.once('resume', start);
  guarded.once('readable', start);
  const iterate = guarded[Symbol.asyncIterator].bind(guarded);
  guarded[Symbol.asyncIterator] = () => {
    start();
    return iterate();
  };
  return guarded;
}
