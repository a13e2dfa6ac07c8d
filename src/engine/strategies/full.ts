// `full`: every token's KV stays; positions 0..T-1 (optionally RoPE-scaled). The baseline, and
// the right choice whenever the document fits the model's window.

import { CtxError } from '../../errors.js';
import { feedInChunks, type FeedOptions, type Strategy, type StrategyContext, type StrategyState } from './strategy.js';

export interface FullOptions {
  /** Prefill step size in tokens. */
  chunk: number;
  /** Positions the model can address (native window × RoPE scaling factor). */
  capacity: number;
}

export class FullStrategy implements Strategy {
  readonly name = 'full' as const;

  constructor(private readonly ctx: StrategyContext, private readonly opts: FullOptions) {}

  remainingCapacity(): number {
    return this.opts.capacity - this.ctx.seq.length;
  }

  async feed(tokens: Int32Array, opts: FeedOptions = {}): Promise<Float32Array> {
    if (tokens.length > this.remainingCapacity()) {
      throw new CtxError(
        'doesNotFit',
        `full attention holds ${this.opts.capacity} tokens; ${this.ctx.seq.length + tokens.length} were needed`,
      );
    }
    // CLEX: the feed is one forward call of length M + tokens (CLEX.md §5): one t for all its chunks.
    const end = this.ctx.seq.length + tokens.length;
    return feedInChunks(this.ctx, tokens, this.opts.chunk, opts, this.ctx.ropePerCall ? { ropeLength: () => end } : {});
  }

  stats() {
    return { totalRows: this.ctx.seq.length, consumed: this.ctx.seq.length };
  }

  saveState(): StrategyState {
    return {};
  }

  loadState(_state: StrategyState): void {}
}
