// --events: JSON Lines on stdout as things happen, for programs that show their own progress.
//
// One object per line, each with a "type": every RunEvent (source, skipped, model, tokenize, plan,
// progress, read, question, token, answer, …) as it happens, then exactly one last line:
//   {"type":"done", …the --json object…}                        on success
//   {"type":"error","kind":"input","code":3,"message":"…"}      on failure or Ctrl-C (kind "interrupted", code 130)
// `progress` and `tokenize` lines come at most ten times a second; the one that completes the
// stage always comes. Nothing is written after the last line.

import type { Writable } from 'node:stream';
import { EXIT, isCtxError } from '../errors.js';
import type { Renderer, RunEvent } from './events.js';
import { RunSummary } from './summary.js';

/** At most one progress (or tokenize) line per this many milliseconds. */
const PROGRESS_INTERVAL_MS = 100;

export interface ErrorLine {
  type: 'error';
  kind: string;
  code: number;
  message: string;
}

/** The `error` line for anything a run threw. */
export function errorLine(error: unknown): ErrorLine {
  if (isCtxError(error)) return { type: 'error', kind: error.kind, code: error.exitCode, message: error.message };
  if (error instanceof Error && error.name === 'AbortError') return { type: 'error', kind: 'interrupted', code: EXIT.interrupted, message: 'interrupted' };
  const message = error instanceof Error ? error.message : String(error);
  return { type: 'error', kind: 'internal', code: EXIT.internal, message: `internal error: ${message}` };
}

export class EventsRenderer implements Renderer {
  private readonly summary = new RunSummary();
  private closed = false;
  private lastWritten = new Map<string, number>();

  constructor(
    private readonly stdout: Writable,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The summary the `done` line will carry (commands may add fields before it is written). */
  get result(): RunSummary['result'] {
    return this.summary.result;
  }

  event(e: RunEvent): void {
    if (this.closed) return;
    this.summary.add(e);
    if (e.type === 'progress' && e.done < e.total && this.tooSoon('progress')) return;
    if (e.type === 'tokenize' && e.doneChars < e.totalChars && this.tooSoon('tokenize')) return;
    this.line(e);
  }

  finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.line({ type: 'done', ...this.summary.result });
  }

  fail(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.line(errorLine(error));
  }

  private tooSoon(type: string): boolean {
    const t = this.now();
    const last = this.lastWritten.get(type);
    if (last !== undefined && t - last < PROGRESS_INTERVAL_MS) return true;
    this.lastWritten.set(type, t);
    return false;
  }

  private line(obj: object): void {
    // A reader that went away (`| head`) closes stdout; the run is ending then, so stay quiet.
    if (this.stdout.destroyed || !this.stdout.writable) return;
    this.stdout.write(`${JSON.stringify(obj)}\n`);
  }
}
