// `select` (TokenSelect): all KV is kept; each layer attends to the first nInit tokens, the topK
// tokens with the largest soft vote of the step's mean query, and the local window — re-numbered
// compactly, so positions never exceed nInit + topK + local. The backend executes the per-layer
// selection (contract.ts, SelectSpec); this strategy sets its parameters and chunks the prefill.

import { feedInChunks, type FeedOptions, type Strategy, type StrategyContext, type StrategyState } from './strategy.js';

export interface SelectOptions {
  nInit: number;
  topK: number;
  nLocal: number;
  /** Prefill chunk (TokenSelect uses 512). */
  chunk: number;
  /** Selection reuse threshold while decoding (TokenSelect's cosine θ); null disables reuse. */
  reuseCosine: number | null;
}

export class SelectStrategy implements Strategy {
  readonly name = 'select' as const;

  constructor(private readonly ctx: StrategyContext, private readonly opts: SelectOptions) {}

  remainingCapacity(): number {
    return Infinity;
  }

  /** Largest position a step can use: init + top-k + local (or the chunk, if larger). */
  maxPosition(): number {
    const o = this.opts;
    return o.nInit + o.topK + Math.max(o.nLocal, o.chunk);
  }

  async feed(tokens: Int32Array, opts: FeedOptions = {}): Promise<Float32Array> {
    const o = this.opts;
    const select = { nInit: o.nInit, topK: o.topK, nLocal: o.nLocal, reuseCosine: opts.decoding ? o.reuseCosine : null };
    // Positions are ranks in each layer's selection (the request's positions are ignored), so the
    // RoPE table is that of the largest rank + 1: every row while T fits the selection, else the
    // selection's size (init + top-k + the local window, which covers the step's rows). A
    // length-dependent table (CLEX's t and log_scale factor) thus follows the positions used.
    const used = (M: number, n: number) => Math.min(M + n, o.nInit + o.topK + Math.max(o.nLocal, n));
    return feedInChunks(this.ctx, tokens, o.chunk, opts, { extra: () => ({ select }), ropeLength: used });
  }

  stats() {
    const T = this.ctx.seq.length;
    const o = this.opts;
    return { totalRows: T, consumed: T, attended: Math.min(T, o.nInit + o.topK + Math.max(o.nLocal, o.chunk)) };
  }

  saveState(): StrategyState {
    return {};
  }

  loadState(_state: StrategyState): void {}
}
