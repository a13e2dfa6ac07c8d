// A Session is one document being read by one strategy on one backend sequence: it feeds tokens,
// reports memory, and can be saved to bytes and restored to continue with identical logits.

import type { Backend, RopeTable, Sequence, SequenceSnapshot } from '../backend/contract.js';
import { CtxError } from '../errors.js';
import { ropeDependsOnLength, ropeTable } from './rope.js';
import { buildStrategy, type ResolvedStrategy } from './strategies/index.js';
import type { FeedOptions, MemoryStats, Strategy, StrategyState } from './strategies/strategy.js';

export interface SessionSnapshot {
  resolved: ResolvedStrategy;
  strategyState: StrategyState;
  /** Every token fed so far (prompt and generated), for chat history and cache checks. */
  tokens: Int32Array;
  sequence: SequenceSnapshot;
}

export class Session {
  readonly backend: Backend;
  readonly resolved: ResolvedStrategy;
  readonly strategy: Strategy;
  private readonly seq: Sequence;
  private fed: number[] = [];

  constructor(backend: Backend, resolved: ResolvedStrategy) {
    this.backend = backend;
    this.resolved = resolved;
    this.seq = backend.newSequence();
    const c = backend.model.config;
    const userRope = resolved.name === 'full' ? resolved.rope : null;
    let rope: (seqLen: number) => RopeTable;
    if (ropeDependsOnLength(c, userRope)) {
      rope = (seqLen) => ropeTable(c, userRope, seqLen);
    } else {
      const fixed = ropeTable(c, userRope, 0);
      rope = () => fixed;
    }
    this.strategy = buildStrategy({ seq: this.seq, config: c, rope }, resolved);
  }

  /** Feeds tokens through the strategy; returns logits [k, V] (last token, or all with allLogits). */
  async feed(tokens: Int32Array, opts: FeedOptions = {}): Promise<Float32Array> {
    const logits = await this.strategy.feed(tokens, opts);
    for (const t of tokens) this.fed.push(t);
    return logits;
  }

  /** All tokens fed so far. */
  tokens(): Int32Array {
    return Int32Array.from(this.fed);
  }

  stats(): MemoryStats & { kvBytes: number } {
    return { ...this.strategy.stats(), kvBytes: this.seq.kvBytes() };
  }

  remainingCapacity(): number {
    return this.strategy.remainingCapacity();
  }

  snapshot(): SessionSnapshot {
    return {
      resolved: this.resolved,
      strategyState: this.strategy.saveState(),
      tokens: this.tokens(),
      sequence: this.seq.snapshot(),
    };
  }

  static restore(backend: Backend, snap: SessionSnapshot): Session {
    const s = new Session(backend, snap.resolved);
    const c = backend.model.config;
    const want = c.numKvHeads * c.headDim * snap.sequence.rows;
    if (snap.sequence.keys.length !== c.numLayers || snap.sequence.keys.some((k) => k.length !== want)) {
      throw new CtxError('input', 'saved session does not match this model (layer or KV shape differs)');
    }
    s.seq.restore(snap.sequence);
    s.strategy.loadState(snap.strategyState);
    s.fed = Array.from(snap.tokens);
    return s;
  }

  dispose(): void {
    this.seq.dispose();
  }
}
