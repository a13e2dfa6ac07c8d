// Long-context efficacy on the demo model: does a strategy find the fact asked about? A needle document
// (needle.ts) is read exactly as `ctx ask` reads it — prefix, document, then the question (the demo
// model has no chat template) — and the answer is the model's greedy next token. Used by
// bench/efficacy (the table and heatmaps) and by the CI test that guards every strategy's behaviour.

import type { Backend } from '../backend/contract.js';
import { Conversation } from '../engine/conversation.js';
import type { RopeScalingName } from '../engine/rope.js';
import { Session } from '../engine/session.js';
import { resolveStrategy, type ResolvedStrategy } from '../engine/strategies/index.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { askAbout, type NeedleDocument } from './needle.js';

/**
 * `beacon` is ctx's own choice of ratio for the length (what `ctx ask` runs); `beacon-<r>` forces r.
 * `full` reads every token at positions 0..n−1, past the window on purpose; `full-<scaling>` does the
 * same with a training-free RoPE scaling of factor (prompt tokens / window).
 */
export type EfficacyStrategy = 'full' | 'stream' | 'select' | 'beacon' | `beacon-${number}` | `full-${Exclude<RopeScalingName, 'none'>}`;

export const ROPE_SCALINGS = ['linear', 'ntk', 'dynamic', 'yarn', 'truncated'] as const;

/** Whether a name is one of the strategies above (for command lines). */
export function isEfficacyStrategy(s: string): s is EfficacyStrategy {
  return ['full', 'stream', 'select', 'beacon'].includes(s) || /^beacon-\d+$/.test(s) || ROPE_SCALINGS.some((r) => s === `full-${r}`);
}

/**
 * The strategy as the benchmark runs it. `full` is allowed past the model's window on purpose (the
 * point is to show how it degrades there; the CLI refuses such a run), and beacon ratios are forced,
 * also where the document exceeds the ratio's trained reach.
 */
export function efficacyStrategy(backend: Backend, s: EfficacyStrategy, tokens: number): ResolvedStrategy {
  const c = backend.model.config;
  if (s === 'full') return { name: 'full', chunk: 256, capacity: Number.MAX_SAFE_INTEGER, rope: null };
  if (s.startsWith('full-')) {
    const type = s.slice(5) as Exclude<RopeScalingName, 'none'>;
    return { name: 'full', chunk: 256, capacity: Number.MAX_SAFE_INTEGER, rope: { type, factor: Math.max(1, tokens / c.maxPositions) } };
  }
  if (s.startsWith('beacon-')) return resolveStrategy(c, { strategy: 'beacon', beaconRatio: Number(s.slice(7)) }, tokens);
  return resolveStrategy(c, { strategy: s as 'stream' | 'select' | 'beacon' }, tokens);
}

export interface Retrieval {
  correct: boolean;
  /** What the model answered (its greedy next token, decoded). */
  answered: string;
  /** The answer is the number of another fact of the same document (a binding error). */
  otherFact: boolean;
  promptTokens: number;
  /** KV rows the session holds after reading the prompt (all layers share the count). */
  kvRows: number;
  seconds: number;
}

/**
 * Reads the document and a question about fact `fact` (default 0, the one at the document's depth)
 * with strategy `s`; the model's next token is its answer.
 */
export async function retrieve(backend: Backend, tokenizer: TextTokenizer, doc: NeedleDocument, s: EfficacyStrategy, fact = 0): Promise<Retrieval> {
  const t0 = performance.now();
  const { question, answer } = askAbout(doc, fact);
  const conversation = new Conversation(tokenizer);
  const document = Int32Array.from([...conversation.documentPrefix(), ...tokenizer.encode(doc.text)]);
  const asked = conversation.firstQuestion(question);
  const promptTokens = document.length + asked.length;
  const session = new Session(backend, efficacyStrategy(backend, s, promptTokens));
  try {
    // Two feeds, as `ctx ask` reads (readDocument, then askQuestion): the question's steps hold only
    // the question. In one feed it would share a prefill step with the document's last tokens, and
    // select's vote, made from the step's mean query, would look for those instead (at 100,003
    // tokens the last 256-token step holds 161 document rows and the 2 question rows).
    await session.feed(document, { noLogits: true });
    const logits = await session.feed(asked);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    const answered = tokenizer.decode([best]).trim();
    const otherFact = answered !== answer && doc.facts.some((f) => f.value === answered);
    return { correct: answered === answer, answered, otherFact, promptTokens, kvRows: session.stats().totalRows, seconds: (performance.now() - t0) / 1000 };
  } finally {
    session.dispose();
  }
}
