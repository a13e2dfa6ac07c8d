// `beacon`, v1 recipe (append; ALGORITHMS.md §1.4, golden README "beacon v1"): a window holds W
// raw tokens; when it is full, k = S/r beacon rows are appended after its raw rows. Raw rows attend
// causally to [memory ; window raw] and never to beacons of their own window. Beacon j (1-based)
// sees the memory (attend_previous), itself, and window raw rows by scheme:
//   step-expansion  raw [0, j·r)        at position Mb + j·r
//   segmentation    raw [(j−1)·r, j·r)  at position Mb + r
//   full-coverage   raw [0, W)          at position Mb + W
// Then the beacons join the memory, the window's last W − S raw rows stay as its raw cache, and
// the window start moves by S.
//
// Storage layout (rows): [memory (memRows) | window raw rows (windowRaw)]

import type { BeaconConfig } from '../../model/config.js';
import { concatLogits, range, runStep, type FeedOptions, type Strategy, type StrategyContext, type StrategyState } from './strategy.js';

export interface AppendOptions {
  window: number;
  stride: number;
  ratio: number;
  attn: BeaconConfig['attn'];
  attendPrev: boolean;
  maxTokens: number;
}

export class BeaconAppendStrategy implements Strategy {
  readonly name = 'beacon' as const;
  private memRows = 0;
  private windowRaw = 0;
  private consumed = 0;

  constructor(private readonly ctx: StrategyContext, private readonly opts: AppendOptions) {
    if (opts.ratio <= 0 || opts.stride % opts.ratio !== 0) throw new Error(`beacon ratio ${opts.ratio} must divide the stride ${opts.stride}`);
  }

  remainingCapacity(): number {
    return this.opts.maxTokens - this.consumed;
  }

  async feed(tokens: Int32Array, opts: FeedOptions = {}): Promise<Float32Array> {
    const { window: W, stride: S, ratio: r } = this.opts;
    const parts: Float32Array[] = [];
    let s = 0;
    while (s < tokens.length) {
      const take = Math.min(W - this.windowRaw, tokens.length - s);
      const full = this.windowRaw + take === W;
      const k = full ? S / r : 0;
      const n = take + k;
      const Mb = this.memRows;
      const M = this.ctx.seq.length; // = Mb + windowRaw
      const ids = new Int32Array(n);
      ids.set(tokens.subarray(s, s + take));
      const flags = new Uint8Array(n).fill(1, take);
      const positions = range(M, n);
      const ranges = new Int32Array(6 * n);
      for (let i = 0; i < take; i++) ranges.set([0, M + i + 1], 6 * i);
      for (let j = 1; j <= k; j++) {
        const row = take + j - 1;
        const self = M + row;
        const [lo, hi, pos] =
          this.opts.attn === 'step-expansion' ? [Mb, Mb + j * r, Mb + j * r]
          : this.opts.attn === 'segmentation' ? [Mb + (j - 1) * r, Mb + j * r, Mb + r]
          : [Mb, Mb + W, Mb + W];
        positions[row] = pos;
        const memEnd = this.opts.attendPrev ? Mb : 0;
        // [0, Mb) memory, [lo, hi) window raw rows, [self, self+1) itself.
        if (memEnd === lo) ranges.set([0, hi, self, self + 1, 0, 0], 6 * row);
        else ranges.set([0, memEnd, lo, hi, self, self + 1], 6 * row);
      }
      const last = s + take === tokens.length;
      const logits = await runStep(
        this.ctx,
        {
          tokens: ids,
          beacon: flags,
          positions,
          mask: k > 0 ? { kind: 'ranges', ranges } : { kind: 'causal' },
          logitRows: opts.allLogits ? range(0, take) : last ? Int32Array.of(take - 1) : new Int32Array(0),
          rope: this.ctx.rope(Math.max(M + take, Mb + W + 1)),
        },
        opts.signal,
      );
      if (logits.length) parts.push(logits);
      this.consumed += take;
      s += take;
      if (full) {
        // Keep [memory ; new beacons ; last W − S raw rows].
        const keep = [...range(0, Mb), ...range(M + take, k), ...range(Mb + S, W - S)];
        this.ctx.seq.retain(Int32Array.from(keep));
        this.memRows += k;
        this.windowRaw = W - S;
      } else {
        this.windowRaw += take;
      }
      opts.onStep?.(s);
    }
    return concatLogits(parts);
  }

  stats() {
    return {
      totalRows: this.ctx.seq.length,
      consumed: this.consumed,
      beacon_kv: this.memRows,
      raw_kv: this.windowRaw,
      total_kv: this.memRows + this.windowRaw,
      ratio: this.opts.ratio,
    };
  }

  saveState(): StrategyState {
    return { memRows: this.memRows, windowRaw: this.windowRaw, consumed: this.consumed };
  }

  loadState(s: StrategyState): void {
    this.memRows = Number(s.memRows);
    this.windowRaw = Number(s.windowRaw);
    this.consumed = Number(s.consumed);
  }
}
