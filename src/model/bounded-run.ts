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
// So a call first runs for at most SLICE_MS with the deadline alone, leaving the process's listeners
// in place; they hear Ctrl-C and SIGTERM as soon as it returns. Only a call still
// running then (a hostile program, or pathologically slow) is run again from its start with the rest
// of its deadline and breakOnSigint: one long call, where Ctrl-C stops it at once. Callers that can
// move slow work off this thread (document tokenizing: a worker thread, stopped at once by either
// signal) use runSlice instead.
//
// Three gaps remain in that, closed by the native addon's signal handlers (native/src/signals.h) where
// the CLI supplies them (useSignalCatcher): breakOnSigint hears SIGINT only, so SIGTERM waited for the
// deadline (5 s for a chat template, 10 s for the tokenizer); a signal during the first slice was
// queued for the event loop, which the second run did not return to; and so was a signal that
// landed just before a call started. With the catcher, a slice only notes a signal (raised again once
// it returns, or the second run is not started); during the second run SIGTERM is sent on as SIGINT;
// and a handler in front of the process's own remembers every signal until the CLI's listener has
// heard it (signalHeard), so a call that would start with one still queued does not start. Without
// it (the addon not built, a library caller), the gaps are as described.
//
// Cost: about 0.2 ms per call (a watchdog thread per run), measured with 10,000 empty calls on this
// 2-core machine; callers therefore bound whole pieces of work (a 128K-character piece of a document,
// a prompt, a decode), never single words.

import vm from 'node:vm';
import { isMainThread } from 'node:worker_threads';
import { CtxError } from '../errors.js';

/** How long a call runs on this thread before it is treated as slow (see above). */
export const SLICE_MS = 250;

const context = vm.createContext({ run: null as null | (() => unknown) });
const script = new vm.Script('run()', { filename: 'ctx-bounded-run' });
let depth = 0;

/** The process's signal handlers swapped around a call (native/src/signals.h). */
export interface SignalCatcher {
  /** Remembers SIGINT and SIGTERM from now on until acknowledge() (absent from addons built before it). */
  watch?(): void;
  /** The signal remembered since acknowledge(), or 0. */
  heard?(): number;
  /** Forgets it: the process's listener has heard it. */
  acknowledge?(): void;
  /** Until release(): SIGINT and SIGTERM are only noted. */
  hold(): void;
  /** Until release(): SIGTERM is noted and sent on as SIGINT (breakOnSigint stops the call on it). */
  termAsInt(): void;
  /** Puts the handlers back; the number of the signal noted meanwhile, or 0. */
  release(): number;
}

let catcherSource: (() => SignalCatcher | null) | null = null;
let catcher: SignalCatcher | null | undefined;
/**
 * A signal the catcher noted during a call that finished. It was raised again for the process's
 * handlers, which hear it only when this thread returns to its event loop; until then, every
 * bounded call stops at once (ctx ends on the first signal), or a long one would hold it off.
 */
let pendingSignal: NodeJS.Signals | null = null;

/**
 * Gives bounded calls on the main thread a signal catcher (see above), looked up at once: it
 * remembers signals from then on. Call it after adding the process's signal listeners.
 */
export function useSignalCatcher(source: () => SignalCatcher | null): void {
  catcherSource = source;
  catcher = undefined;
  pendingSignal = null;
  signalCatcher()?.watch?.();
}

/**
 * Called by the process's SIGINT and SIGTERM listener: the signal the catcher remembered has been
 * heard, and ctx is ending, so every bounded call from now on stops at once.
 */
export function signalHeard(signal: NodeJS.Signals): void {
  if (!isMainThread) return;
  catcher?.acknowledge?.();
  pendingSignal = signal;
}

function signalCatcher(): SignalCatcher | null {
  if (!isMainThread || catcherSource === null) return null;
  if (catcher === undefined) catcher = catcherSource();
  return catcher;
}

const SIGNALS: Record<number, NodeJS.Signals> = { 2: 'SIGINT', 15: 'SIGTERM' };

/** Why a vm run ended early: its deadline, or a signal (breakOnSigint's SIGINT, or one the catcher noted). */
class Stopped {
  constructor(
    readonly why: 'timeout' | 'signal',
    /** With 'signal': the signal kept from the process's handlers, to be raised again for them… */
    readonly signal: NodeJS.Signals = 'SIGINT',
    /** …unless it already waits for the event loop (it landed before the call started). */
    readonly queued = false,
  ) {}
}

/**
 * Runs `fn` in the vm for at most `ms` (Infinity: no deadline), with or without breakOnSigint. A
 * signal the catcher noted during a call that finished is raised again at once, for the process's
 * handlers; during a call that did not, it is the reason it stopped.
 */
function runInVm<T>(fn: () => T, ms: number, breakOnSigint: boolean): T | Stopped {
  depth++;
  context.run = fn;
  const signals = signalCatcher();
  if (breakOnSigint) signals?.termAsInt();
  else signals?.hold();
  try {
    // A signal that landed before the handlers were swapped waits for the event loop, which this
    // call would keep it from: the call does not start.
    const queued = SIGNALS[signals?.heard?.() ?? 0];
    if (queued) {
      signals!.release();
      return new Stopped('signal', queued, true);
    }
    const timeout = Number.isFinite(ms) ? Math.max(1, Math.ceil(ms)) : undefined;
    const result = script.runInContext(context, { timeout, breakOnSigint }) as T;
    raiseAgain(SIGNALS[signals?.release() ?? 0] ?? null);
    return result;
  } catch (e) {
    const noted = SIGNALS[signals?.release() ?? 0] ?? null;
    const code = (e as NodeJS.ErrnoException).code;
    // breakOnSigint took the SIGINT (or the SIGTERM sent on as one) from the process's handlers.
    if (code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') return new Stopped('signal', noted ?? 'SIGINT');
    if (code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      if (noted) return new Stopped('signal', noted);
      // One that landed between the check above and breakOnSigint's handler waited for the deadline.
      const late = SIGNALS[signals?.heard?.() ?? 0];
      return late ? new Stopped('signal', late, true) : new Stopped('timeout');
    }
    raiseAgain(noted);
    throw e;
  } finally {
    context.run = null;
    depth--;
  }
}

/** A signal the catcher noted during a call that finished: raised again at once for the process's handlers. */
function raiseAgain(noted: NodeJS.Signals | null): void {
  if (noted === null) return;
  pendingSignal = noted;
  process.kill(process.pid, noted);
}

/** Hands a signal a call kept from the process's handlers back to them, and ends the call. */
function interrupted(stop: Stopped): CtxError {
  if (signalCatcher() !== null) pendingSignal = stop.signal;
  if (!stop.queued) setImmediate(() => process.kill(process.pid, stop.signal));
  return new CtxError('interrupted', 'interrupted');
}

/** The call's end when a signal is already on its way to the process's handlers. */
function alreadyInterrupted(): CtxError | null {
  return pendingSignal !== null && isMainThread ? new CtxError('interrupted', 'interrupted') : null;
}

/**
 * Calls `fn` with a deadline of `ms` milliseconds. When it passes, throws `onTimeout()` (a CtxError
 * naming the file whose code ran too long). A call longer than SLICE_MS is run again from its start
 * (so `fn` must have no effect but its result), and Ctrl-C (with the catcher, SIGTERM too) then stops
 * it with an `interrupted` CtxError and is raised again, so the process's own handling sees it as usual.
 */
export function runBounded<T>(fn: () => T, ms: number, onTimeout: () => Error): T {
  // A bounded call inside another is already covered by the outer deadline.
  if (depth > 0) return fn();
  const stop = alreadyInterrupted();
  if (stop) throw stop;
  const t0 = performance.now();
  const first = runInVm(fn, Math.min(ms, SLICE_MS), false);
  if (!(first instanceof Stopped)) return first;
  if (first.why === 'signal') throw interrupted(first);
  const left = ms - (performance.now() - t0);
  if (left <= 0) throw onTimeout();
  const second = runInVm(fn, left, true);
  if (!(second instanceof Stopped)) return second;
  if (second.why === 'timeout') throw onTimeout();
  throw interrupted(second);
}

/**
 * Calls `fn` for at most SLICE_MS (or `ms`, when shorter: then its passing throws `onTimeout()`),
 * without breakOnSigint; returns null when the slice passed first, for the caller to do the work
 * where it can be stopped (a worker thread). A signal the catcher noted in a slice that passed ends
 * the call as in runBounded.
 */
export function runSlice<T>(fn: () => T, ms: number, onTimeout: () => Error): T | null {
  if (depth > 0) return fn();
  const stop = alreadyInterrupted();
  if (stop) throw stop;
  const slice = Math.min(ms, SLICE_MS);
  const r = runInVm(fn, slice, false);
  if (!(r instanceof Stopped)) return r;
  if (r.why === 'signal') throw interrupted(r);
  if (slice === ms) throw onTimeout();
  return null;
}
