// A Session is one document being read by one strategy on one backend sequence: it feeds tokens,
// reports memory, and can be saved to bytes and restored to continue with identical logits.

import type { Backend, Sequence, SequenceSnapshot } from '../backend/contract.js';
import { checkSnapshot } from '../backend/step/snapshot.js';
import { CtxError } from '../errors.js';
import { runRope } from './rope.js';
import { buildStrategy, type ResolvedStrategy } from './strategies/index.js';
import type { FeedOptions, MemoryStats, RowStorage, Strategy, StrategyState } from './strategies/strategy.js';

export interface SessionSnapshot {
  resolved: ResolvedStrategy;
  strategyState: StrategyState;
  /**
   * How many tokens were fed (prompt and generated). Only counted: a document of any length streams
   * through a session, and which tokens they were is the cache key's business (cache/key.ts).
   */
  fedTokens: number;
  /** Deferred tokens (accepted, not yet fed). */
  pending: Int32Array;
  sequence: SequenceSnapshot;
}

export class Session {
  readonly backend: Backend;
  readonly resolved: ResolvedStrategy;
  readonly strategy: Strategy;
  private readonly seq: Sequence;
  private fed = 0;
  /** Tokens accepted but not yet fed (an answer's last token); they go first in the next feed. */
  private pending: number[] = [];

  constructor(backend: Backend, resolved: ResolvedStrategy) {
    this.backend = backend;
    this.resolved = resolved;
    this.seq = backend.newSequence();
    const c = backend.model.config;
    const rope = runRope(backend.model, resolved.name === 'full' ? resolved.rope : null);
    this.strategy = buildStrategy({ seq: this.seq, newSequence: () => backend.newSequence(), config: c, rope: rope.table, ropePerCall: rope.perCall }, resolved);
  }

  /** The strategy's rows: the sequence, or the strategy's own storage of several (focus). */
  private get rows(): RowStorage {
    return this.strategy.storage ?? this.seq;
  }

  /**
   * Feeds tokens (after any deferred ones) through the strategy; returns logits [k, V] of the last
   * token, or of every token with allLogits. If cancelled midway, the tokens fed so far stay fed.
   */
  async feed(tokens: Int32Array, opts: FeedOptions = {}): Promise<Float32Array> {
    const deferred = this.pending.length;
    let all = tokens;
    if (deferred) {
      all = new Int32Array(deferred + tokens.length);
      all.set(this.pending);
      all.set(tokens, deferred);
    }
    this.pending = [];
    let done = 0;
    try {
      return await this.strategy.feed(all, {
        ...opts,
        onStep: (d) => {
          done = d;
          opts.onStep?.(d);
        },
      });
    } finally {
      this.fed += done;
      // Deferred tokens that were not reached stay deferred; the caller's own tokens are its to retry.
      for (let i = done; i < deferred; i++) this.pending.push(all[i]);
    }
  }

  /** Accepts a token into the history without running it yet (it is fed first next time). */
  defer(id: number): void {
    this.pending.push(id);
  }

  /** Tokens fed so far. */
  get fedTokens(): number {
    return this.fed;
  }

  /** Tokens accepted but not yet fed (an answer's last token, fed first next time). */
  pendingTokens(): Int32Array {
    return Int32Array.from(this.pending);
  }

  stats(): MemoryStats & { kvBytes: number } {
    return { ...this.strategy.stats(), kvBytes: this.rows.kvBytes() };
  }

  remainingCapacity(): number {
    return this.strategy.remainingCapacity();
  }

  snapshot(): SessionSnapshot {
    return {
      resolved: this.resolved,
      strategyState: this.strategy.saveState(),
      fedTokens: this.fed,
      pending: Int32Array.from(this.pending),
      sequence: this.rows.snapshot(),
    };
  }

  static restore(backend: Backend, snap: SessionSnapshot): Session {
    const s = new Session(backend, snap.resolved);
    try {
      checkSnapshot(snap.sequence, backend.model);
    } catch (e) {
      throw new CtxError('input', `saved session does not match this model (${(e as Error).message})`);
    }
    s.strategy.loadState(snap.strategyState);
    s.rows.restore(snap.sequence);
    s.fed = snap.fedTokens;
    s.pending = Array.from(snap.pending);
    return s;
  }

  dispose(): void {
    this.rows.dispose();
  }
}
