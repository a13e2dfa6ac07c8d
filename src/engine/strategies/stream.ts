// `stream` (StreamingLLM): keep the first `sink` tokens and the most recent `recent` tokens.
// Before each chunk of n tokens, rows are evicted so that sink + recent rows remain after it;
// positions are cache indices, so the model never sees a position beyond sink + recent.
// The middle of a long document is forgotten — plans say so with the numbers.

import { concatLogits, range, runStep, type FeedOptions, type Strategy, type StrategyContext, type StrategyState } from './strategy.js';

export interface StreamOptions {
  sink: number;
  recent: number;
  chunk: number;
}

export class StreamStrategy implements Strategy {
  readonly name = 'stream' as const;
  private consumed = 0;
  private evicted = 0;

  constructor(private readonly ctx: StrategyContext, private readonly opts: StreamOptions) {
    if (opts.chunk > opts.recent) throw new Error(`stream chunk ${opts.chunk} exceeds the recent window ${opts.recent}`);
  }

  describe(): string {
    return `stream (sink ${this.opts.sink} + recent ${this.opts.recent})`;
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
    const parts: Float32Array[] = [];
    const chunk = opts.decoding ? 1 : this.opts.chunk;
    for (let s = 0; s < tokens.length; s += chunk) {
      const piece = tokens.subarray(s, Math.min(s + chunk, tokens.length));
      const n = piece.length;
      this.evictFor(n);
      const M = this.ctx.seq.length;
      const last = s + n === tokens.length;
      const logits = await runStep(
        this.ctx,
        {
          tokens: piece,
          positions: range(M, n),
          mask: { kind: 'causal' },
          logitRows: opts.allLogits ? range(0, n) : last ? Int32Array.of(n - 1) : new Int32Array(0),
          rope: this.ctx.rope(M + n),
        },
        opts.signal,
      );
      this.consumed += n;
      if (logits.length) parts.push(logits);
      opts.onStep?.(s + n);
    }
    return concatLogits(parts);
  }

  stats() {
    return { totalRows: this.ctx.seq.length, consumed: this.consumed, evicted: this.evicted };
  }

  saveState(): StrategyState {
    return { consumed: this.consumed, evicted: this.evicted };
  }

  loadState(state: StrategyState): void {
    this.consumed = Number(state.consumed);
    this.evicted = Number(state.evicted);
  }
}
