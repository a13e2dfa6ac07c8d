// `beacon`, v3 recipe (interleave + full-coverage; ALGORITHMS.md §1.3): one beacon row after
// every r raw tokens, plain causal attention over [sink ; beacon memory ; current window], RoPE
// positions = index in that list. When a window's W raw tokens are complete, its beacon rows join
// the memory and its raw rows are dropped, so memory grows by W/r rows per window.
//
// Storage layout (rows): [sink (sinkRows) | memory (memRows) | window entries (windowFlags.length)]
//
// Sink (beacon_sink_size s): the document's first s rows stay at positions 0..s−1. The reference
// rewrites the sink from each call's first rows while memory is empty, duplicating rows when the
// first call is shorter than a window; ctx keeps the document's first s rows instead. The two agree
// whenever the first call is a full window (every golden case).

import { concatLogits, range, runStep, type FeedOptions, type Strategy, type StrategyContext, type StrategyState } from './strategy.js';

export interface InterleaveOptions {
  window: number;
  ratio: number;
  sinkSize: number;
  /** Tokens the chosen ratio can hold (for remainingCapacity). */
  maxTokens: number;
}

export class BeaconInterleaveStrategy implements Strategy {
  readonly name = 'beacon' as const;
  private sinkRows = 0;
  private memRows = 0;
  /** 1 for each beacon row of the current window, in storage order. */
  private windowFlags: number[] = [];
  private windowRaw = 0;
  /** Raw tokens since the last beacon. */
  private rem = 0;
  private consumed = 0;

  constructor(private readonly ctx: StrategyContext, private readonly opts: InterleaveOptions) {}

  remainingCapacity(): number {
    return this.opts.maxTokens - this.consumed;
  }

  async feed(tokens: Int32Array, opts: FeedOptions = {}): Promise<Float32Array> {
    const { window: W, ratio: r } = this.opts;
    const parts: Float32Array[] = [];
    let s = 0;
    while (s < tokens.length) {
      const take = Math.min(W - this.windowRaw, tokens.length - s);
      // Entries: each raw token, and a beacon after every r-th raw token (also in an unfinished window).
      const ids: number[] = [];
      const flags: number[] = [];
      const rawRows: number[] = [];
      let c = this.rem;
      for (let i = 0; i < take; i++) {
        rawRows.push(ids.length);
        ids.push(tokens[s + i]);
        flags.push(0);
        if (r > 0 && ++c === r) {
          ids.push(0);
          flags.push(1);
          c = 0;
        }
      }
      const n = ids.length;
      const M = this.ctx.seq.length;
      const last = s + take === tokens.length;
      const logits = await runStep(
        this.ctx,
        {
          tokens: Int32Array.from(ids),
          beacon: Uint8Array.from(flags),
          positions: range(M, n),
          mask: { kind: 'causal' },
          logitRows: Int32Array.from(opts.allLogits ? rawRows : last ? [rawRows[rawRows.length - 1]] : []),
          rope: this.ctx.rope(M + n),
        },
        opts.signal,
      );
      if (logits.length) parts.push(logits);
      this.rem = c;
      this.windowRaw += take;
      this.consumed += take;
      this.windowFlags.push(...flags);
      s += take;
      if (this.windowRaw === W) this.condenseWindow();
      opts.onStep?.(s);
    }
    return concatLogits(parts);
  }

  /** Keeps [sink ; memory ; this window's beacon rows]; drops the window's raw rows. */
  private condenseWindow(): void {
    const base = this.sinkRows + this.memRows;
    const keep: number[] = [];
    for (let j = 0; j < base; j++) keep.push(j);
    let from = 0;
    if (this.sinkRows === 0 && this.memRows === 0 && this.opts.sinkSize > 0) {
      // First window: its first s rows become the sink.
      from = Math.min(this.opts.sinkSize, this.windowFlags.length);
      for (let j = 0; j < from; j++) keep.push(j);
      this.sinkRows = from;
    }
    let kept = 0;
    for (let j = from; j < this.windowFlags.length; j++) {
      // Ratio 0 (no compression) keeps every row of the window.
      if (this.windowFlags[j] === 1 || this.opts.ratio === 0) {
        keep.push(base + j);
        kept++;
      }
    }
    this.ctx.seq.retain(Int32Array.from(keep));
    this.memRows += kept;
    this.windowFlags = [];
    this.windowRaw = 0;
  }

  stats() {
    const raw = this.windowFlags.length;
    return {
      totalRows: this.ctx.seq.length,
      consumed: this.consumed,
      sink_kv: this.sinkRows,
      beacon_kv: this.memRows,
      raw_kv: raw,
      raw_tokens: this.windowRaw,
      total_kv: this.sinkRows + this.memRows + raw,
      ratio: this.opts.ratio,
    };
  }

  saveState(): StrategyState {
    return {
      sinkRows: this.sinkRows,
      memRows: this.memRows,
      windowFlags: this.windowFlags.slice(),
      windowRaw: this.windowRaw,
      rem: this.rem,
      consumed: this.consumed,
    };
  }

  loadState(s: StrategyState): void {
    this.sinkRows = Number(s.sinkRows);
    this.memRows = Number(s.memRows);
    this.windowFlags = (s.windowFlags as number[]).slice();
    this.windowRaw = Number(s.windowRaw);
    this.rem = Number(s.rem);
    this.consumed = Number(s.consumed);
  }
}
