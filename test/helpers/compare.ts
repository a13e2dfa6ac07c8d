// Comparisons shared by the backend tests: logits against logits, greedy tokens from logits.

/** Largest |a[i] − b[i]|; Infinity when the lengths differ, and a NaN anywhere counts as a failure. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

/** The argmax of each row of [rows, V] logits. */
export function argmaxRows(logits: Float32Array, V: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * V < logits.length; r++) {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[r * V + j] > logits[r * V + best]) best = j;
    out.push(best);
  }
  return out;
}
