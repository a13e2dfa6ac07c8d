// The cache key of a read document: a hash of exactly what determines the session after reading.
//
//   - the prompt tokens up to the end of the document (system prefix + document ids). The ids
//     already reflect the text, the chat template and the tokenizer; the question comes after them
//     (engine/conversation.ts), so every question about the same document shares one entry. The
//     document's ids stream past once while they are counted and are never all held: each part is
//     hashed as it goes (TokenHasher), the prefix and the document apart;
//   - the model: the weights' content fingerprint and the parsed config.json (RoPE base, norms…);
//   - the strategy with the parameters that shape its state (beacon ratio and window, select
//     top-k…), not the planning numbers that only led to them, nor settings used only while
//     answering: select's reuse cosine (--select-reuse) acts on decode steps only, and a read
//     keeps its selections whatever it is. The prefill chunk (--chunk) stays: select votes once
//     per chunk (q̄ is the chunk's mean query) and stream evicts per chunk, so it shapes the rows;
//     under full it changes how rows are grouped, hence the float rounding, and a cached answer is
//     token for token the fresh read's only if that is kept too;
//   - the backend and its numeric mode. Backends agree to float rounding, not bit for bit, so
//     `reference` and `cpu` f32 do not share entries: an answer from the cache is then token for
//     token the answer a fresh read would give.
//
// The tokenizer is not hashed separately: two tokenizers that give the same ids give the same state.

import { createHash } from 'node:crypto';
import type { ResolvedStrategy } from '../engine/strategies/index.js';
import { FORMAT_VERSION } from './format.js';

/** A token sequence as the key sees it: how many, and the SHA-256 of their little-endian int32 bytes. */
export interface TokenDigest {
  count: number;
  sha256: string;
}

/**
 * Hashes token ids as they stream past, in pieces of any size: the digest is that of all of them
 * in one piece, and no piece is ever larger than what is passed in (one hash update of more than
 * 2 GiB would fail).
 */
export class TokenHasher {
  private readonly hash = createHash('sha256');
  private count = 0;

  update(ids: Int32Array): void {
    this.hash.update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
    this.count += ids.length;
  }

  /** Ids hashed so far. */
  get counted(): number {
    return this.count;
  }

  digest(): TokenDigest {
    return { count: this.count, sha256: this.hash.digest('hex') };
  }
}

/** The digest of ids held in one array. */
export function digestTokens(ids: Int32Array): TokenDigest {
  const h = new TokenHasher();
  // In pieces of 64 Mi ids (256 MiB), as a stream would come.
  for (let at = 0; at < ids.length; at += 1 << 26) h.update(ids.subarray(at, at + (1 << 26)));
  return h.digest();
}

export interface KeyParts {
  /** Prompt tokens before the document (system prompt, template, BOS). */
  prefix: TokenDigest;
  /** The document's tokens. */
  document: TokenDigest;
  modelFingerprint: string;
  modelConfig: unknown;
  strategy: ResolvedStrategy;
  backend: string;
  numeric: string;
}

/** The strategy parameters that shape the state after reading. */
export function strategyKey(r: ResolvedStrategy): Record<string, unknown> {
  if (r.name === 'select') {
    const { reuseCosine: _decodeOnly, ...rest } = r;
    return rest;
  }
  if (r.name !== 'beacon') return { ...r };
  // ratioChoice also records the length it was chosen for and the candidates; only the outcome counts.
  const { ratioChoice, ...rest } = r;
  return { ...rest, maxTokens: ratioChoice.maxTokens };
}

/** JSON with object keys sorted, so equal values always hash the same. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return value;
  });
}

function sha256(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** 64 hex digits; the entry's file name and the id `ctx cache rm` takes (a prefix is enough). */
export function sessionKey(p: KeyParts): string {
  return sha256(
    canonicalJson({
      format: FORMAT_VERSION,
      prefix: p.prefix.sha256,
      document: p.document.sha256,
      tokenCount: p.prefix.count + p.document.count,
      model: p.modelFingerprint,
      config: sha256(canonicalJson(p.modelConfig)),
      strategy: strategyKey(p.strategy),
      backend: p.backend,
      numeric: p.numeric,
    }),
  );
}
