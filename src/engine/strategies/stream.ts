// `stream` (StreamingLLM): keep the first `sink` tokens and the most recent `recent` tokens.
// Before each chunk of n tokens, rows are evicted so that sink + recent rows remain after it;
// positions are cache indices, so the model never sees a position beyond sink + recent.
// The middle of a long document is forgotten — plans say so with the numbers.

import { feedInChunks, type FeedOptions, type Strategy, type StrategyContext, type StrategyState } from './strategy.js';

export interface StreamOptions {
  sink: number;
  recent: number;
  chunk: number;
}

export class StreamStrategy implements Strategy {
  readonly name = 'stream' as const;
  private evicted = 0;

  constructor(private readonly ctx: StrategyContext, private readonly opts: StreamOptions) {
    if (opts.chunk > opts.recent) throw new Error(`stream chunk ${opts.chunk} exceeds the recent window ${opts.recent}`);
  }

  remainingCapacity(): number {
    return Infinity;
  }

  /** Drops the oldest non-sink rows so that `incoming` more rows fit in sink + recent. */
  private evictFor(incoming: number): void {
    const { sink, recent } = this.opts;
    const M = this.ctx.seq.length;
    const over = M + incoming - (sink + recent);
    if (over <= 0) return;
    const keep = new Int32Array(M - over);
    let k = 0;
    for (let j = 0; j < Math.min(sink, M); j++) keep[k++] = j;
    for (let j = sink + over; j < M; j++) keep[k++] = j;
    this.ctx.seq.retain(keep);
    this.evicted += over;
  }

  async feed(tokens: Int32Array, opts: FeedOptions = {}): Promise<Float32Array> {
    return feedInChunks(this.ctx, tokens, this.opts.chunk, opts, { before: (n) => this.evictFor(n) });
  }

  stats() {
    // Every token read is either still held or was evicted.
    return { totalRows: this.ctx.seq.length, consumed: this.evicted + this.ctx.seq.length, evicted: this.evicted };
  }

  saveState(): StrategyState {
    return { evicted: this.evicted };
  }

  loadState(state: StrategyState): void {
    this.evicted = Number(state.evicted);
  }
}
