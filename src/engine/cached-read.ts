// Putting a planned prompt into a session: restored from the session cache when this prompt was
// read before, else read now and saved.
//
// The state after reading depends only on the prompt tokens up to the end of the document, the
// model, the strategy and the backend (cache/key.ts), so that is the key. A session is saved only
// after a complete read: a cancelled read leaves no entry behind. A damaged entry, or one that does
// not hold exactly this prompt, is discarded with a warning and the document is read.
//
// The save never holds up the answer: the snapshot is taken once the document is read, and the
// write starts when the caller says (`saving`: after the first answer token, or while chat waits
// for a question; the document finishes it when it closes). It writes a
// snapshot that shares the session's KV arrays (contract.ts, SequenceSnapshot — no copy in memory;
// the sequence copies a row before changing one the snapshot holds) straight to disk, in the KV
// dtype. A session larger than the cache's size cap is not snapshotted at all: rows × bytes per row
// decide it first.

import type { EntryMeta } from '../cache/format.js';
import { digestTokens, sessionKey } from '../cache/key.js';
import type { SessionCache } from '../cache/store.js';
import { formatBytes } from '../units.js';
import type { EventSink } from './events.js';
import type { LoadedModel } from './loaded-model.js';
import type { RunPlan } from './plan.js';
import type { DocumentTokens } from './document-tokens.js';
import { readDocument, type StreamedPrompt } from './reader.js';
import { Session } from './session.js';

export interface CachedRead {
  loaded: LoadedModel;
  plan: RunPlan;
  /** Prompt tokens before the document (system prompt, template). */
  prefix: Int32Array;
  /** The document's tokens (kept, or encoded again as they are fed). */
  document: DocumentTokens;
  /** null: neither use nor fill the cache. */
  cache: SessionCache | null;
  /** What `ctx cache ls` shows about the entry. */
  inputs: string[];
  signal?: AbortSignal;
  emit: EventSink;
}

/** What readOrRestore gives: the session, its cache key, and the save still being written (if any). */
export interface ReadResult {
  session: Session;
  /** null without a cache: what else is kept about this document, such as chat's last conversation, is kept under it. */
  key: string | null;
  /** The cache entry to write, once the caller starts it; null when there is none to write. */
  saving: PendingSave | null;
}

/**
 * A fresh read's cache entry, not yet written: start() begins the write (once; later calls give the
 * same promise), which emits `saved` or a cache warning when done and never rejects. The caller
 * starts it where it holds nothing up: after the first answer token, or while waiting for a question.
 */
export interface PendingSave {
  start(): Promise<void>;
}

/**
 * The session holding the prompt, and its cache key. Emits progress and read (and, when its save
 * is done, saved, or warnings about the cache).
 */
export async function readOrRestore(r: CachedRead): Promise<ReadResult> {
  const { loaded, plan, prefix, document, cache, emit } = r;
  const prompt: StreamedPrompt = {
    length: prefix.length + document.count,
    async *pieces(signal) {
      yield prefix;
      yield* document.pieces(signal);
    },
  };
  const key = cache
    ? sessionKey({
        prefix: digestTokens(prefix),
        document: document.digest,
        modelFingerprint: await loaded.model.weights.fingerprint(r.signal),
        modelConfig: loaded.model.config,
        strategy: plan.strategy,
        backend: loaded.backend.name,
        numeric: loaded.backend.numeric,
      })
    : '';
  if (cache) {
    const restored = await restore(cache, key, r);
    if (restored) return { session: restored, key, saving: null };
  }

  const documentTokens = document.count;
  const { session, seconds } = await readDocument(loaded, plan, prompt, {
    signal: r.signal,
    onProgress: (p) => emit({ type: 'progress', ...p, done: Math.max(0, p.done - prefix.length), total: documentTokens }),
  });
  emit({ type: 'read', tokens: documentTokens, seconds, cached: false });
  if (!cache) return { session, key: null, saving: null };
  const kvBytes = session.stats().kvBytes;
  if (kvBytes > cache.maxBytes) {
    emit({ type: 'warning', message: `cache: not cached: the session takes ${formatBytes(kvBytes)}, more than the cache size cap ${formatBytes(cache.maxBytes)} (--cache-max-size)` });
    return { session, key, saving: null };
  }
  const meta: EntryMeta = {
    inputs: r.inputs,
    model: loaded.name,
    modelDir: loaded.dir,
    strategy: plan.description,
    backend: loaded.backend.name,
    numeric: loaded.backend.numeric,
    tokens: documentTokens,
  };
  const snapshot = session.snapshot(); // shares the session's rows: taken now, before the question is fed
  let writing: Promise<void> | null = null;
  const start = () =>
    (writing ??= cache.save(key, meta, snapshot, loaded.model.config.headDim, r.signal).then(
      (saved) => emit(saved.kind === 'saved' ? { type: 'saved', bytes: saved.bytes, seconds: saved.seconds } : { type: 'warning', message: `cache: ${saved.message}` }),
      // Interrupted (the run's signal): the temp file is gone and the run is ending anyway.
      () => {},
    ));
  return { session, key, saving: { start } };
}

/** The session from the cache when there is a usable entry; null on a miss. */
async function restore(cache: SessionCache, key: string, r: CachedRead): Promise<Session | null> {
  const found = await cache.load(key, r.signal);
  if (found.kind === 'miss') return null;
  if (found.kind === 'discarded') {
    r.emit({ type: 'warning', message: `cache: ${found.message}` });
    return null;
  }
  const stored = found.session;
  let session: Session | null = null;
  let problem = '';
  // Which tokens they are is the key's business (its digest); an entry must hold as many.
  const length = r.prefix.length + r.document.count;
  if (stored.fedTokens + stored.pending.length !== length) {
    problem = `it holds ${stored.fedTokens + stored.pending.length} tokens, not the ${length} of its key`;
  } else {
    try {
      session = Session.restore(r.loaded.backend, { ...stored, resolved: r.plan.strategy });
    } catch (e) {
      problem = (e as Error).message;
    }
  }
  if (!session) {
    const path = cache.pathOf(key);
    await cache.discard(path);
    r.emit({ type: 'warning', message: `cache: ${path}: discarded a cache entry that does not fit this run (${problem}); reading the document instead` });
    return null;
  }
  r.emit({ type: 'read', tokens: r.document.count, seconds: found.seconds, cached: true });
  return session;
}
