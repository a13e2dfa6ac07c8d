// Which renderer a run uses. The rule, first match wins:
//
//   --events                               JSON Lines on stdout (jsonl.ts)
//   --json                                 one JSON object at the end (json.ts)
//   --quiet or --plain                     plain text (plain.ts): the answer on stdout, no progress with -q
//   stdout and stderr are both terminals   the Ink display (ink/), unless TERM=dumb
//   otherwise (piped or redirected)        plain text: answer on stdout, progress on stderr (ora on a terminal)
//
// --json and --events together are a usage error. `ctx chat` uses the Ink display under the same
// rule when stdin is a terminal too (it reads keys); see chatUsesInk.
//
// A command makes its renderer here and passes it on explicitly. Ctrl-C / SIGTERM reach it
// through the run's signal (adopt), and a failed command through `reporting`, so the display is
// down (or the `error` line written) before ctx prints its one-line error.

import type { Readable, Writable } from 'node:stream';
import { CtxError } from '../errors.js';
import type { Renderer, RunEvent } from './events.js';
import { JsonRenderer } from './json.js';
import { EventsRenderer } from './jsonl.js';
import { PlainRenderer } from './plain.js';

export interface RenderChoice {
  json?: boolean;
  quiet?: boolean;
  stream: boolean;
  events?: boolean;
  plain?: boolean;
}

export type RendererKind = 'events' | 'json' | 'plain' | 'ink';

/** The parts of a CLI run (cli/io.ts RunContext) a renderer is chosen by and writes to. */
export interface Streams {
  stdout: Writable;
  stderr: Writable;
  stdin?: Readable;
  /** What fd 0 is: 'tty' when a terminal (cli/io.ts stdinKindOf). */
  stdinKind?: string;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

const isTTY = (s: unknown) => Boolean((s as { isTTY?: boolean }).isTTY);

export function rendererKind(o: RenderChoice, run: Streams): RendererKind {
  if (o.json && o.events) throw new CtxError('usage', '--json and --events both print to stdout: choose one');
  if (o.events) return 'events';
  if (o.json) return 'json';
  if (o.quiet || o.plain) return 'plain';
  const term = (run.env ?? process.env).TERM;
  if (isTTY(run.stdout) && isTTY(run.stderr) && term !== 'dumb') return 'ink';
  return 'plain';
}

/** Chat reads keys through the Ink display, so it needs stdin to be a terminal as well. */
export function chatUsesInk(o: RenderChoice, run: Streams): boolean {
  return rendererKind(o, run) === 'ink' && run.stdinKind === 'tty' && isTTY(run.stdin);
}

export function pickRenderer(o: RenderChoice, run: Streams): Renderer {
  const kind = rendererKind(o, run);
  switch (kind) {
    case 'events':
      return adopt(new EventsRenderer(run.stdout), run.signal);
    case 'json':
      return adopt(new JsonRenderer(run.stdout), run.signal);
    case 'ink': {
      const ink = import('./ink/renderer.js').then(({ InkRenderer }) => () => new InkRenderer({ stdout: run.stdout, stderr: run.stderr, stream: o.stream }));
      return adopt(new DeferredRenderer(ink, () => plainRenderer(o, run)), run.signal);
    }
    case 'plain':
      return adopt(plainRenderer(o, run), run.signal);
  }
}

function plainRenderer(o: RenderChoice, run: Streams): PlainRenderer {
  return new PlainRenderer({ stdout: run.stdout, stderr: run.stderr, stderrIsTTY: isTTY(run.stderr), stdoutIsTTY: isTTY(run.stdout), quiet: Boolean(o.quiet), stream: o.stream });
}

/**
 * A renderer that is still loading: Ink and React take about a second to import, which runs
 * that print plain text or JSON should not pay, so the Ink display is imported only when chosen.
 * Events wait, in order, until it is up. A run that fails before then never shows it: ctx's
 * one-line error is all there is to see. Should the import fail, the run goes on in plain text.
 */
export class DeferredRenderer implements Renderer {
  private target: Renderer | null = null;
  private waiting: Array<(r: Renderer) => void> = [];
  private failed = false;

  /** `loading` gives the function that makes the renderer; it is called only if the run is still on. */
  constructor(loading: Promise<() => Renderer>, fallback: () => Renderer) {
    const start = (make: () => Renderer) => {
      if (this.failed) return;
      const r = make();
      this.target = r;
      for (const call of this.waiting) call(r);
      this.waiting = [];
    };
    loading.then(start, () => start(fallback));
  }

  event(e: RunEvent): void {
    this.call((r) => r.event(e));
  }

  finish(): void {
    this.call((r) => r.finish());
  }

  fail(error: unknown): void {
    if (this.target) this.target.fail?.(error);
    else this.failed = true;
  }

  private call(f: (r: Renderer) => void): void {
    if (this.target) f(this.target);
    else if (!this.failed) this.waiting.push(f);
  }
}

/** Makes `r` hear about Ctrl-C / SIGTERM: the run's signal fails it with `interrupted`. */
export function adopt<R extends Renderer>(r: R, signal?: AbortSignal): R {
  signal?.addEventListener('abort', () => r.fail?.(new CtxError('interrupted', 'interrupted')), { once: true });
  return r;
}

/**
 * Runs a command's work with its renderer: a failure reaches the renderer (the Ink display takes
 * itself down, `--events` ends with an `error` line) before it propagates to run(), which prints
 * the one-line error and picks the exit code. Renderers ignore a second fail().
 */
export async function reporting<T>(r: Renderer, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    r.fail?.(e);
    throw e;
  }
}
