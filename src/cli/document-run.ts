// The part every document command shares: read the inputs, open the model, tokenize, plan (and
// refuse early if the document does not fit), read the document into a session. Reports each stage
// as a RunEvent.
//
// The session cache sits between planning and reading: the state after reading depends only on
// the prompt tokens up to the end of the document, the model, the strategy and the backend
// (cache/key.ts), so a document read before is restored instead of read. A session is saved only
// after a complete read: Ctrl-C while reading leaves no entry behind.

import { Conversation } from '../engine/conversation.js';
import { loadEngine } from '../engine/load.js';
import type { RunPlan } from '../engine/plan.js';
import { planDocument, readDocument, tokenizeDocument, type Engine, type TokenizedDocument } from '../engine/reader.js';
import { Session } from '../engine/session.js';
import type { EntryMeta } from '../cache/format.js';
import { sessionKey } from '../cache/key.js';
import { SessionCache, sessionsDir } from '../cache/store.js';
import { CtxError } from '../errors.js';
import type { Document } from '../input/document.js';
import { readInputs } from '../input/read.js';
import { DEFAULT_MODEL } from '../model/registry.js';
import { resolveModelDir } from '../model/resolve.js';
import type { Renderer } from '../ui/events.js';
import { strategyOptions, type EngineCliOptions } from './engine-options.js';
import { currentRun, type RunContext } from './io.js';

export interface PreparedDocument {
  /** The inputs as given (for cache listings). */
  specs: string[];
  doc: Document;
  engine: Engine;
  /** The model as named (-m) and its folder. */
  modelName: string;
  modelDir: string;
  tokenized: TokenizedDocument;
}

export interface OpenDocument extends PreparedDocument {
  conversation: Conversation;
  plan: RunPlan;
  session: Session;
}

export interface OpenHooks {
  /** Rewrites the document before it is tokenized (e.g. source markers for citations). */
  transform?: (doc: Document) => Document;
  /** Where stdin, the cache folder and the hub settings come from; default: the current run. */
  run?: Pick<RunContext, 'stdin' | 'env'>;
  /** "-" was added by ctx because input was piped (an empty stdin is then no input). */
  implicitStdin?: boolean;
}

/**
 * The model folder for --model: a folder, or a name from the registry — downloaded on first use,
 * with progress reported as `download` events.
 */
export async function modelFolder(nameOrPath: string, r: Renderer, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<string> {
  return resolveModelDir(nameOrPath, {
    download: true,
    env,
    signal,
    onProgress: (p) => r.event({ type: 'download', file: p.file, done: p.done, total: p.total }),
  });
}

/** Inputs → (markers) → model → tokens. Emits source, skipped, model and tokenize events. */
export async function prepareDocument(specs: string[], o: EngineCliOptions, r: Renderer, signal: AbortSignal, hooks: OpenHooks = {}): Promise<PreparedDocument> {
  const run = hooks.run ?? runOrProcess();
  const read = await readInputs(specs, {
    maxFileBytes: o.maxFileBytes,
    followLinks: o.followLinks,
    signal,
    stdin: run.stdin,
    implicitStdin: hooks.implicitStdin,
    warn: (message) => r.event({ type: 'warning', message }),
  });
  const doc = hooks.transform ? hooks.transform(read) : read;
  for (const s of doc.sources) r.event({ type: 'source', ...s });
  for (const s of doc.skipped) r.event({ type: 'skipped', ...s });

  const modelName = o.model ?? DEFAULT_MODEL;
  const modelDir = await modelFolder(modelName, r, run.env, signal);
  const engine = await loadEngine(modelDir, {
    backend: o.backend,
    dtype: o.dtype,
    threads: o.threads,
    onNotice: (message) => r.event({ type: 'warning', message }),
  });
  r.event({ type: 'model', name: modelName, dir: modelDir, backend: engine.backend.name, numeric: engine.backend.numeric });

  const tokenized = await tokenizeDocument(engine, doc, (doneChars, totalChars) => r.event({ type: 'tokenize', doneChars, totalChars }), signal);
  if (tokenized.ids.length === 0) throw new CtxError('emptyInput', 'the inputs hold no text to read');
  return { specs, doc, engine, modelName, modelDir, tokenized };
}

/**
 * Plan (refusing early when the document does not fit), then the session: restored from the cache
 * when this document was read before, else read now and saved. Emits plan, progress and read.
 */
export async function readPrepared(
  p: PreparedDocument,
  o: EngineCliOptions,
  r: Renderer,
  signal: AbortSignal,
  questionTokens: (c: Conversation) => number,
  extra: { notes?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<OpenDocument> {
  const { engine, doc, tokenized } = p;
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
    notes: [...(extra.notes ?? []), ...plan.notes],
    sourceEnds: sourceEnds(doc, tokenized, prefix.length),
  });

  const prompt = new Int32Array(prefix.length + tokenized.ids.length);
  prompt.set(prefix);
  prompt.set(tokenized.ids, prefix.length);
  const opened = { ...p, conversation, plan };

  const cache = openCache(o, extra.env ?? runOrProcess().env);
  const key = cache ? sessionKey({
    prompt,
    modelFingerprint: engine.model.weights.fingerprint(),
    modelConfig: engine.model.config,
    strategy: plan.strategy,
    backend: engine.backend.name,
    numeric: engine.backend.numeric,
  }) : '';
  if (cache) {
    const session = await restoreFromCache(cache, key, engine, plan, prompt, r, signal);
    if (session) return { ...opened, session };
  }

  const { session, seconds } = await readDocument(engine, plan, prompt, {
    signal,
    onProgress: (pr) => r.event({ type: 'progress', ...pr }),
  });
  r.event({ type: 'read', tokens: prompt.length, seconds, cached: false });
  if (cache) {
    const meta: EntryMeta = {
      inputs: p.specs,
      model: p.modelName,
      modelDir: p.modelDir,
      strategy: plan.description,
      backend: engine.backend.name,
      numeric: engine.backend.numeric,
      tokens: prompt.length,
    };
    try {
      const saved = await cache.save(key, meta, session.snapshot(), signal);
      if (saved.kind !== 'saved') r.event({ type: 'warning', message: `cache: ${saved.message}` });
    } catch (e) {
      session.dispose(); // interrupted while saving: the temp file is gone, the run ends
      throw e;
    }
  }
  return { ...opened, session };
}

/** prepareDocument, then readPrepared: what ask and chat do. */
export async function openDocument(
  specs: string[],
  o: EngineCliOptions,
  r: Renderer,
  signal: AbortSignal,
  questionTokens: (c: Conversation) => number,
  hooks: OpenHooks = {},
): Promise<OpenDocument> {
  const prepared = await prepareDocument(specs, o, r, signal, hooks);
  try {
    return await readPrepared(prepared, o, r, signal, questionTokens, { env: hooks.run?.env });
  } catch (e) {
    await prepared.engine.backend.dispose();
    throw e;
  }
}

/** The current CLI run's stdin and environment; the process's own when called as a library. */
function runOrProcess(): Pick<RunContext, 'stdin' | 'env'> {
  try {
    return currentRun();
  } catch {
    return { stdin: process.stdin, env: process.env };
  }
}

/** The session cache for this run, or null with --no-cache (or on a big-endian machine). */
function openCache(o: EngineCliOptions, env: NodeJS.ProcessEnv): SessionCache | null {
  if (o.cache === false || !SessionCache.supported) return null;
  return new SessionCache(sessionsDir(env), { maxBytes: o.cacheMaxSize, failWritesWith: env.CTX_TEST_CACHE_WRITE_ERROR || undefined });
}

/**
 * The session from the cache when there is a usable entry; null on a miss. A damaged entry, or
 * one that does not hold exactly this prompt, is discarded with a warning and the document is read.
 */
async function restoreFromCache(
  cache: SessionCache,
  key: string,
  engine: Engine,
  plan: RunPlan,
  prompt: Int32Array,
  r: Renderer,
  signal: AbortSignal,
): Promise<Session | null> {
  const found = await cache.load(key, signal);
  if (found.kind === 'miss') return null;
  if (found.kind === 'discarded') {
    r.event({ type: 'warning', message: `cache: ${found.message}` });
    return null;
  }
  const stored = found.session;
  const held = new Int32Array(stored.tokens.length + stored.pending.length);
  held.set(stored.tokens);
  held.set(stored.pending, stored.tokens.length);
  let session: Session | null = null;
  let problem = '';
  if (!sameTokens(held, prompt)) {
    problem = 'it holds other tokens than its key says';
  } else {
    try {
      session = Session.restore(engine.backend, { ...stored, resolved: plan.strategy });
    } catch (e) {
      problem = (e as Error).message;
    }
  }
  if (!session) {
    const path = cache.pathOf(key);
    await cache.discard(path);
    r.event({ type: 'warning', message: `cache: ${path}: discarded a cache entry that does not fit this run (${problem}); reading the document instead` });
    return null;
  }
  r.event({ type: 'read', tokens: prompt.length, seconds: found.seconds, cached: true });
  return session;
}

function sameTokens(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * Where each source ends in the prompt, in tokens (sources in the document's order): progress
 * displays count a source as read once the tokens read pass its end.
 */
function sourceEnds(doc: Document, tokenized: TokenizedDocument, prefixTokens: number): number[] {
  const end = new Map<string, number>();
  doc.segments.forEach((seg, i) => {
    const stop = i + 1 < doc.segments.length ? tokenized.segmentStarts[i + 1]! : tokenized.ids.length;
    end.set(seg.source.path, Math.max(end.get(seg.source.path) ?? 0, prefixTokens + stop));
  });
  return doc.sources.map((s) => end.get(s.path) ?? prefixTokens);
}
