// Long-context efficacy on the demo model: does a strategy find the needle? A needle document
// (needle.ts) is read exactly as `ctx ask` reads it — prefix, document, then the question (the
// demo model has no chat template) — and the answer is the model's greedy next token. Used by
// bench/efficacy (the table and heatmaps) and by the CI test that guards every strategy's behaviour.

import type { Backend } from '../backend/contract.js';
import { Conversation } from '../engine/conversation.js';
import { Session } from '../engine/session.js';
import { resolveStrategy, type ResolvedStrategy } from '../engine/strategies/index.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import type { NeedleDocument } from './needle.js';

/** `beacon` is ctx's own choice of ratio for the length (what `ctx ask` runs); `beacon-r` forces r. */
export const EFFICACY_STRATEGIES = ['full', 'stream', 'select', 'beacon', 'beacon-2', 'beacon-4', 'beacon-8'] as const;
export type EfficacyStrategy = (typeof EFFICACY_STRATEGIES)[number];

/**
 * The strategy as the benchmark runs it. `full` is allowed past the model's window on purpose (the
 * point is to show how it degrades there; the CLI refuses such a run), and beacon ratios are forced,
 * also where the document exceeds the ratio's trained reach.
 */
export function efficacyStrategy(backend: Backend, s: EfficacyStrategy, tokens: number): ResolvedStrategy {
  const c = backend.model.config;
  if (s === 'full') return { name: 'full', chunk: 256, capacity: Number.MAX_SAFE_INTEGER, rope: null };
  if (s.startsWith('beacon-')) return resolveStrategy(c, { strategy: 'beacon', beaconRatio: Number(s.slice(7)) }, tokens);
  return resolveStrategy(c, { strategy: s as 'stream' | 'select' | 'beacon' }, tokens);
}

export interface Retrieval {
  correct: boolean;
  /** What the model answered (its greedy next token, decoded). */
  answered: string;
  promptTokens: number;
  seconds: number;
}

/** Reads the document and the question with strategy `s`; the model's next token is its answer. */
export async function retrieve(backend: Backend, tokenizer: TextTokenizer, doc: NeedleDocument, s: EfficacyStrategy): Promise<Retrieval> {
  const t0 = performance.now();
  const conversation = new Conversation(tokenizer);
  const prefix = conversation.documentPrefix();
  const body = Int32Array.from(tokenizer.encode(doc.text));
  const question = conversation.firstQuestion(doc.question);
  const prompt = Int32Array.from([...prefix, ...body, ...question]);
  const session = new Session(backend, efficacyStrategy(backend, s, prompt.length));
  try {
    const logits = await session.feed(prompt);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    const answered = tokenizer.decode([best]).trim();
    return { correct: answered === doc.answer, answered, promptTokens: prompt.length, seconds: (performance.now() - t0) / 1000 };
  } finally {
    session.dispose();
  }
}
