// Putting a planned prompt into a session: restored from the session cache when this prompt was
// read before, else read now and saved.
//
// The state after reading depends only on the prompt tokens up to the end of the document, the
// model, the strategy and the backend (cache/key.ts), so that is the key. A session is saved only
// after a complete read: a cancelled read leaves no entry behind. A damaged entry, or one that does
// not hold exactly this prompt, is discarded with a warning and the document is read.

import type { EntryMeta } from '../cache/format.js';
import { sessionKey } from '../cache/key.js';
import type { SessionCache } from '../cache/store.js';
import type { EventSink } from './events.js';
import type { LoadedModel } from './loaded-model.js';
import type { RunPlan } from './plan.js';
import { readDocument } from './reader.js';
import { Session } from './session.js';

export interface CachedRead {
  loaded: LoadedModel;
  plan: RunPlan;
  /** [prefix ; document] tokens. */
  prompt: Int32Array;
  /** How many of them are the prefix: progress and `read` count the document's tokens only. */
  prefixTokens: number;
  /** null: neither use nor fill the cache. */
  cache: SessionCache | null;
  /** What `ctx cache ls` shows about the entry. */
  inputs: string[];
  signal?: AbortSignal;
  emit: EventSink;
}

/**
 * The session holding the prompt, and its cache key (null without a cache: what else is kept about
 * this document, such as chat's last conversation, is kept under it). Emits progress and read (and
 * warnings about the cache).
 */
export async function readOrRestore(r: CachedRead): Promise<{ session: Session; key: string | null }> {
  const { loaded, plan, prompt, cache, emit } = r;
  const key = cache
    ? sessionKey({
        prompt,
        modelFingerprint: loaded.model.weights.fingerprint(),
        modelConfig: loaded.model.config,
        strategy: plan.strategy,
        backend: loaded.backend.name,
        numeric: loaded.backend.numeric,
      })
    : '';
  if (cache) {
    const restored = await restore(cache, key, r);
    if (restored) return { session: restored, key };
  }

  const documentTokens = prompt.length - r.prefixTokens;
  const { session, seconds } = await readDocument(loaded, plan, prompt, {
    signal: r.signal,
    onProgress: (p) => emit({ type: 'progress', ...p, done: Math.max(0, p.done - r.prefixTokens), total: documentTokens }),
  });
  emit({ type: 'read', tokens: documentTokens, seconds, cached: false });
  if (cache) {
    const meta: EntryMeta = {
      inputs: r.inputs,
      model: loaded.name,
      modelDir: loaded.dir,
      strategy: plan.description,
      backend: loaded.backend.name,
      numeric: loaded.backend.numeric,
      tokens: documentTokens,
    };
    try {
      const saved = await cache.save(key, meta, session.snapshot(), loaded.model.config.headDim, r.signal);
      if (saved.kind !== 'saved') emit({ type: 'warning', message: `cache: ${saved.message}` });
    } catch (e) {
      session.dispose(); // interrupted while saving: the temp file is gone, the run ends
      throw e;
    }
  }
  return { session, key: cache ? key : null };
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
  const held = new Int32Array(stored.tokens.length + stored.pending.length);
  held.set(stored.tokens);
  held.set(stored.pending, stored.tokens.length);
  let session: Session | null = null;
  let problem = '';
  if (!sameTokens(held, r.prompt)) {
    problem = 'it holds other tokens than its key says';
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
  r.emit({ type: 'read', tokens: r.prompt.length - r.prefixTokens, seconds: found.seconds, cached: true });
  return session;
}

function sameTokens(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
