// Model folders are untrusted input, and two of their files are programs: the chat template (Jinja)
// and the tokenizer's regular expressions (pre-tokenizer Split patterns, normalizer and decoder
// Replace patterns). Both run synchronously on this thread, where a loop that never ends or a
// catastrophically backtracking regex ("(a+)+$" on "aaaa…ab") would hold off Ctrl-C and SIGTERM for
// good. Such calls run through node:vm with a deadline: V8 stops the call wherever it is, regex
// matching included, when the time is up.
//
// Signals. node:vm can also stop a call on Ctrl-C (breakOnSigint), but only by taking SIGINT from the
// process for the call: it removes the process's SIGINT listeners, installs its own handler, then
// puts back Node's default one (which kills the process by the signal) before the listeners return.
// A Ctrl-C in one of those gaps kills ctx by the signal or is dropped, and in many short calls (a
// document's pieces, a token's decode) the gaps add up: 2 of 4 Ctrl-Cs while tokenizing went wrong.
// So a call first runs for at most SLICE_MS with the deadline alone, touching no signal handler;
// the process's own handlers hear Ctrl-C and SIGTERM as soon as it returns. Only a call still
// running then (a hostile program, or pathologically slow) is run again from its start with the rest
// of its deadline and breakOnSigint: one long call, where Ctrl-C stops it at once (SIGTERM waits for
// its deadline). Callers that can move slow work off this thread (document tokenizing: a worker
// thread, stopped at once by either signal) use runSlice instead.
//
// Cost: about 0.2 ms per call (a watchdog thread per run), measured with 10,000 empty calls on this
// 2-core machine; callers therefore bound whole pieces of work (a 128K-character piece of a document,
// a prompt, a decode), never single words.

import vm from 'node:vm';
import { CtxError } from '../errors.js';

/** How long a call runs on this thread before it is treated as slow (see above). */
export const SLICE_MS = 250;

const context = vm.createContext({ run: null as null | (() => unknown) });
const script = new vm.Script('run()', { filename: 'ctx-bounded-run' });
let depth = 0;

/** Why a vm run ended early. */
class Stopped {
  constructor(readonly why: 'timeout' | 'sigint') {}
}

/** Runs `fn` in the vm for at most `ms` (Infinity: no deadline), with or without breakOnSigint. */
function runInVm<T>(fn: () => T, ms: number, breakOnSigint: boolean): T | Stopped {
  depth++;
  context.run = fn;
  try {
    const timeout = Number.isFinite(ms) ? Math.max(1, Math.ceil(ms)) : undefined;
    return script.runInContext(context, { timeout, breakOnSigint }) as T;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return new Stopped('timeout');
    if (code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') return new Stopped('sigint');
    throw e;
  } finally {
    context.run = null;
    depth--;
  }
}

/**
 * Calls `fn` with a deadline of `ms` milliseconds. When it passes, throws `onTimeout()` (a CtxError
 * naming the file whose code ran too long). A call longer than SLICE_MS is run again from its start
 * (so `fn` must have no effect but its result), and Ctrl-C then stops it with an `interrupted`
 * CtxError and is raised again, so the process's own SIGINT handling sees it as usual.
 */
export function runBounded<T>(fn: () => T, ms: number, onTimeout: () => Error): T {
  // A bounded call inside another is already covered by the outer deadline.
  if (depth > 0) return fn();
  const t0 = performance.now();
  const first = runInVm(fn, Math.min(ms, SLICE_MS), false);
  if (!(first instanceof Stopped)) return first;
  const left = ms - (performance.now() - t0);
  if (left <= 0) throw onTimeout();
  const second = runInVm(fn, left, true);
  if (!(second instanceof Stopped)) return second;
  if (second.why === 'timeout') throw onTimeout();
  // breakOnSigint kept the signal from the process's handlers; hand it back to them.
  setImmediate(() => process.kill(process.pid, 'SIGINT'));
  throw new CtxError('interrupted', 'interrupted');
}

/**
 * Calls `fn` for at most SLICE_MS (or `ms`, when shorter: then its passing throws `onTimeout()`),
 * touching no signal handler; returns null when the slice passed first, for the caller to do the
 * work where it can be stopped (a worker thread).
 */
export function runSlice<T>(fn: () => T, ms: number, onTimeout: () => Error): T | null {
  if (depth > 0) return fn();
  const slice = Math.min(ms, SLICE_MS);
  const r = runInVm(fn, slice, false);
  if (!(r instanceof Stopped)) return r;
  if (slice === ms) throw onTimeout();
  return null;
}
