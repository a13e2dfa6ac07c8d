// Generation: feed the prompt's remaining tokens, then sample one token at a time, streaming text
// as it is completed. Stops on an end-of-turn token, a stop string, the token limit, the strategy's
// capacity, or cancellation. Generated tokens stay in the session (a chat continues from them).

import { Sampler, type SamplingOptions } from './sampler.js';
import type { Session } from './session.js';

/** Turns ids into text without ever emitting half a character (tokenizer.ts provides one). */
export interface Detokenizer {
  push(id: number): string;
  flush(): string;
}

export interface GenerateOptions extends SamplingOptions {
  maxTokens: number;
  /** Token ids that end the answer (EOS, <|im_end|>, …). */
  stopTokens: number[];
  stopStrings?: string[];
  detokenizer: Detokenizer;
  signal?: AbortSignal;
  /** Progress while the prompt tokens are fed (raw tokens done). */
  onPromptStep?: (done: number) => void;
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'window' | 'aborted';

export type GenerateEvent =
  | { type: 'token'; id: number; text: string }
  /**
   * How the answer left the session, to replay it exactly: `fed`, the answer's ids fed (one decoding
   * step each), then `deferred`, the one accepted but not fed (the end-of-turn token, or the last
   * sampled one), or null.
   */
  | { type: 'done'; reason: FinishReason; generated: number; fed: number[]; deferred: number | null };

/** Longest suffix of `text` that is a proper prefix of some stop string (held back until decided). */
function heldSuffix(text: string, stops: string[]): number {
  let hold = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--) {
      if (text.endsWith(s.slice(0, k))) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

export async function* generate(session: Session, prompt: Int32Array, opts: GenerateOptions): AsyncGenerator<GenerateEvent> {
  const V = session.backend.model.config.vocabSize;
  const sampler = new Sampler(opts);
  const stops = (opts.stopStrings ?? []).filter((s) => s.length > 0);
  const generated: number[] = [];
  let pending = ''; // decoded text not yet emitted (may start a stop string)
  const aborted = () => opts.signal?.aborted ?? false;

  if (prompt.length > session.remainingCapacity()) {
    throw new RangeError(`prompt of ${prompt.length} tokens exceeds the strategy's remaining capacity ${session.remainingCapacity()}`);
  }
  let logits = await session.feed(prompt, { onStep: opts.onPromptStep, signal: opts.signal });
  let reason: FinishReason = 'length';
  let unfed: number | null = null; // a sampled token not yet fed to the session
  while (generated.length < opts.maxTokens) {
    if (aborted()) {
      reason = 'aborted';
      break;
    }
    const id = sampler.sample(logits, V, generated);
    if (opts.stopTokens.includes(id)) {
      unfed = id; // the end-of-turn token belongs to the history; it is fed with the next prompt
      reason = 'eos';
      break;
    }
    generated.push(id);
    unfed = id;
    pending += opts.detokenizer.push(id);
    const hit = stops.map((s) => pending.indexOf(s)).filter((i) => i >= 0);
    if (hit.length) {
      const cut = Math.min(...hit);
      if (cut > 0) yield { type: 'token', id, text: pending.slice(0, cut) };
      pending = '';
      reason = 'stop';
      break;
    }
    const hold = heldSuffix(pending, stops);
    const ready = pending.slice(0, pending.length - hold);
    pending = pending.slice(pending.length - hold);
    yield { type: 'token', id, text: ready };
    if (generated.length >= opts.maxTokens) break;
    if (session.remainingCapacity() < 1) {
      reason = 'window';
      break;
    }
    try {
      logits = await session.feed(Int32Array.of(id), { decoding: true, signal: opts.signal });
      unfed = null;
    } catch (e) {
      if (!aborted()) throw e;
      reason = 'aborted';
      break;
    }
  }
  if (reason !== 'stop') {
    const tail = pending + opts.detokenizer.flush();
    if (tail) yield { type: 'token', id: -1, text: tail };
  }
  if (unfed !== null) session.defer(unfed);
  const fed = reason === 'eos' || unfed === null ? generated : generated.slice(0, -1);
  yield { type: 'done', reason, generated: generated.length, fed, deferred: unfed };
}
