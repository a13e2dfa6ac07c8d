// Model folders are untrusted input, and two of their files are programs: the chat template (Jinja)
// and the tokenizer's regular expressions (pre-tokenizer Split patterns, normalizer and decoder
// Replace patterns). Both run synchronously on this thread, where a loop that never ends or a
// catastrophically backtracking regex ("(a+)+$" on "aaaa…ab") would hold off Ctrl-C and SIGTERM for
// good. runBounded runs such a call through node:vm with a deadline and breakOnSigint: V8 stops the
// call wherever it is, regex matching included, when the time is up or on Ctrl-C.
//
// Cost: about 0.2 ms per call (a watchdog thread per run), measured with 10,000 empty calls on this
// 2-core machine; callers therefore bound whole pieces of work (a 128K-character piece of a document,
// a prompt, a decode), never single words.

import vm from 'node:vm';
import { CtxError } from '../errors.js';

const context = vm.createContext({ run: null as null | (() => unknown) });
const script = new vm.Script('run()', { filename: 'ctx-bounded-run' });
let depth = 0;

/**
 * Calls `fn` with a deadline of `ms` milliseconds (Infinity: none). When it passes, throws
 * `onTimeout()` (a CtxError naming the file whose code ran too long). Ctrl-C during the call stops it
 * with an `interrupted` CtxError and is then raised again, so the process's own SIGINT handling sees
 * it as usual. Also used without a deadline, to keep long synchronous work (hashing a model's
 * weights) stoppable by Ctrl-C.
 */
export function runBounded<T>(fn: () => T, ms: number, onTimeout: () => Error): T {
  // A bounded call inside another is already covered by the outer deadline.
  if (depth > 0) return fn();
  depth++;
  context.run = fn;
  try {
    const timeout = Number.isFinite(ms) ? Math.max(1, Math.ceil(ms)) : undefined;
    return script.runInContext(context, { timeout, breakOnSigint: true }) as T;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw onTimeout();
    if (code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
      // breakOnSigint kept the signal from the process's handlers; hand it back to them.
      setImmediate(() => process.kill(process.pid, 'SIGINT'));
      throw new CtxError('interrupted', 'interrupted');
    }
    throw e;
  } finally {
    context.run = null;
    depth--;
  }
}
