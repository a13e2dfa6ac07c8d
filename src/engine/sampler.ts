// Next-token choice from logits: greedy, or temperature sampling restricted by top-k and top-p,
// with a repetition penalty over the tokens generated so far. Seeded, so runs are reproducible.

export interface SamplingOptions {
  /** 0 → greedy. */
  temperature?: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set whose probability reaches p (1 = all). */
  topP?: number;
  /** > 1 discourages repeats (CTRL-style: positive logits ÷ p, negative × p). */
  repetitionPenalty?: number;
  seed?: number;
}

/** The sampling options in `o` and nothing else (for passing on a larger options object). */
export function samplingOf(o: SamplingOptions): SamplingOptions {
  return { temperature: o.temperature, topK: o.topK, topP: o.topP, repetitionPenalty: o.repetitionPenalty, seed: o.seed };
}

export class Sampler {
  private state: number;
  private readonly o: Required<SamplingOptions>;

  constructor(opts: SamplingOptions = {}) {
    this.o = {
      temperature: opts.temperature ?? 0,
      topK: opts.topK ?? 0,
      topP: opts.topP ?? 1,
      repetitionPenalty: opts.repetitionPenalty ?? 1,
      seed: opts.seed ?? 0x5eed,
    };
    if (!(this.o.temperature >= 0)) throw new RangeError('temperature must be ≥ 0');
    if (!(this.o.topP > 0 && this.o.topP <= 1)) throw new RangeError('top-p must be in (0, 1]');
    this.state = this.o.seed >>> 0 || 1;
  }

  /** Uniform in [0, 1) (xorshift32). */
  private random(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 4294967296;
  }

  /** Picks a token from logits [V] (read from `offset`), given the tokens generated so far. */
  sample(logits: Float32Array, V: number, previous: ArrayLike<number> = [], offset = 0): number {
    const l = Float64Array.from(logits.subarray(offset, offset + V));
    if (this.o.repetitionPenalty !== 1) {
      const p = this.o.repetitionPenalty;
      for (const t of new Set(Array.from(previous))) l[t] = l[t] > 0 ? l[t] / p : l[t] * p;
    }
    if (this.o.temperature === 0) {
      let best = 0;
      for (let i = 1; i < V; i++) if (l[i] > l[best]) best = i;
      return best;
    }
    // Candidates sorted by logit; truncate by top-k, then softmax, then top-p.
    let order = Array.from({ length: V }, (_, i) => i).sort((a, b) => l[b] - l[a] || a - b);
    if (this.o.topK > 0) order = order.slice(0, this.o.topK);
    const max = l[order[0]];
    const probs = order.map((i) => Math.exp((l[i] - max) / this.o.temperature));
    const total = probs.reduce((a, b) => a + b, 0);
    let cut = order.length;
    if (this.o.topP < 1) {
      let acc = 0;
      for (let i = 0; i < order.length; i++) {
        acc += probs[i] / total;
        if (acc >= this.o.topP) {
          cut = i + 1;
          break;
        }
      }
    }
    const kept = probs.slice(0, cut);
    const keptTotal = kept.reduce((a, b) => a + b, 0);
    let u = this.random() * keptTotal;
    for (let i = 0; i < cut; i++) {
      u -= kept[i];
      if (u <= 0) return order[i];
    }
    return order[cut - 1];
  }
}
