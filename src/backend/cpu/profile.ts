// Where the cpu backend's step time goes (benchmarks: bench/cpu reads it after a run).

/**
 * Summed over every step since the last reset (milliseconds): weight graphs (projections + MLP),
 * attention graphs, the TokenSelect vote, the keys (keys.ts: a selection's rows, f16 keys cast), the LM head, and
 * JavaScript glue (embedding reads, RoPE, KV copies, masks) = the rest.
 */
export class StepProfile {
  weights = 0;
  attention = 0;
  vote = 0;
  keys = 0;
  head = 0;
  total = 0;
  steps = 0;
  /** TokenSelect layer selections by a fresh vote, and by reusing the layer's cached one. */
  voted = 0;
  reused = 0;

  reset(): void {
    this.weights = this.attention = this.vote = this.keys = this.head = this.total = this.steps = 0;
    this.voted = this.reused = 0;
  }

  /** The breakdown as fractions of the total. */
  shares(): Record<string, number> {
    const t = this.total || 1;
    const glue = this.total - this.weights - this.attention - this.vote - this.keys - this.head;
    return { weights: this.weights / t, attention: this.attention / t, vote: this.vote / t, keys: this.keys / t, head: this.head / t, glue: glue / t };
  }
}
