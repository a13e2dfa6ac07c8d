// The part every document command shares: read the inputs, open the model, tokenize, plan (and
// refuse early if the document does not fit), read the document into a session. Reports each stage
// as a RunEvent.

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Conversation } from '../engine/conversation.js';
import { loadEngine } from '../engine/load.js';
import type { RunPlan } from '../engine/plan.js';
import { planDocument, readDocument, tokenizeDocument, type Engine, type TokenizedDocument } from '../engine/reader.js';
import type { Session } from '../engine/session.js';
import { CtxError } from '../errors.js';
import type { Document } from '../input/document.js';
import { readInputs } from '../input/read.js';
import type { Renderer } from '../ui/events.js';
import { strategyOptions, type EngineCliOptions } from './engine-options.js';

export interface OpenDocument {
  doc: Document;
  engine: Engine;
  tokenized: TokenizedDocument;
  conversation: Conversation;
  plan: RunPlan;
  session: Session;
}

/** The model folder for --model (a folder path; registry names once `ctx models` resolves them). */
export function modelFolder(nameOrPath: string | undefined): string {
  if (!nameOrPath) throw new CtxError('usage', 'no model given: pass -m <model folder> (or set CTX_MODEL)');
  const dir = resolve(nameOrPath);
  if (!existsSync(dir)) throw new CtxError('model', 'model folder does not exist', { path: nameOrPath });
  return dir;
}

export interface OpenHooks {
  /** Rewrites the document before it is tokenized (e.g. source markers for citations). */
  transform?: (doc: Document) => Document;
}

export async function openDocument(
  specs: string[],
  o: EngineCliOptions,
  r: Renderer,
  signal: AbortSignal,
  questionTokens: (c: Conversation) => number,
  hooks: OpenHooks = {},
): Promise<OpenDocument> {
  const read = await readInputs(specs, { maxFileBytes: o.maxFileBytes, signal });
  const doc = hooks.transform ? hooks.transform(read) : read;
  for (const s of doc.sources) r.event({ type: 'source', ...s });
  for (const s of doc.skipped) r.event({ type: 'skipped', ...s });

  const dir = modelFolder(o.model);
  const engine = await loadEngine(dir, { backend: o.backend, dtype: o.dtype, threads: o.threads });
  r.event({ type: 'model', name: o.model!, dir, backend: engine.backend.name, numeric: engine.backend.numeric });

  const tokenized = await tokenizeDocument(engine, doc, (doneChars, totalChars) => r.event({ type: 'tokenize', doneChars, totalChars }));
  if (tokenized.ids.length === 0) throw new CtxError('emptyInput', 'the inputs hold no text to read');
  const conversation = new Conversation(engine.tokenizer, o.system);
  const prefix = conversation.documentPrefix();
  const plan = planDocument(engine, prefix.length, tokenized.ids.length, {
    strategy: strategyOptions(o),
    maxNewTokens: o.maxTokens,
    questionTokens: questionTokens(conversation),
    memoryBudgetBytes: o.maxKvMemory,
  });
  r.event({
    type: 'plan',
    strategy: plan.description,
    documentTokens: tokenized.ids.length,
    kvRows: plan.kvRows,
    kvBytes: plan.kvBytes,
    nativeWindow: plan.nativeWindow,
    notes: plan.notes,
  });

  const prompt = new Int32Array(prefix.length + tokenized.ids.length);
  prompt.set(prefix);
  prompt.set(tokenized.ids, prefix.length);
  const { session, seconds } = await readDocument(engine, plan, prompt, {
    signal,
    onProgress: (p) => r.event({ type: 'progress', ...p }),
  });
  r.event({ type: 'read', tokens: prompt.length, seconds, cached: false });
  return { doc, engine, tokenized, conversation, plan, session };
}
