// The transformer's building blocks in plain TypeScript, float32 storage, float64 accumulation.
// Shapes are row-major; W is [out, in] as in Hugging Face Linear layers.

/** y[r, o] = Σ_i W[o, i] · x[r, i] + b[o]   for rows r < rows.  x: [rows, inDim], y: [rows, outDim]. */
export function linear(
  x: Float32Array,
  rows: number,
  inDim: number,
  W: Float32Array,
  b: Float32Array | undefined,
  outDim: number,
  y: Float32Array,
  yOffset = 0,
  yStride = outDim,
): void {
  for (let r = 0; r < rows; r++) {
    const xo = r * inDim;
    const yo = yOffset + r * yStride;
    let o = 0;
    // Four output rows at a time: each x[i] is loaded once for four weights.
    for (; o + 4 <= outDim; o += 4) {
      const w0 = o * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let i = 0; i < inDim; i++) {
        const xi = x[xo + i];
        s0 += W[w0 + i] * xi;
        s1 += W[w1 + i] * xi;
        s2 += W[w2 + i] * xi;
        s3 += W[w3 + i] * xi;
      }
      y[yo + o] = b ? s0 + b[o] : s0;
      y[yo + o + 1] = b ? s1 + b[o + 1] : s1;
      y[yo + o + 2] = b ? s2 + b[o + 2] : s2;
      y[yo + o + 3] = b ? s3 + b[o + 3] : s3;
    }
    for (; o < outDim; o++) {
      const wo = o * inDim;
      let s = 0;
      for (let i = 0; i < inDim; i++) s += W[wo + i] * x[xo + i];
      y[yo + o] = b ? s + b[o] : s;
    }
  }
}

/** out = w ⊙ x / sqrt(mean(x²) + eps), per row of length dim. */
export function rmsNorm(x: Float32Array, rows: number, dim: number, w: Float32Array, eps: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const inv = Math.fround(1 / Math.sqrt(Math.fround(ss / dim) + eps));
    for (let i = 0; i < dim; i++) out[o + i] = w[i] * Math.fround(x[o + i] * inv);
  }
}

/** out = w ⊙ (x − mean(x)) / sqrt(var(x) + eps) + b, per row of length dim (LayerNorm; var is the biased one). */
export function layerNorm(x: Float32Array, rows: number, dim: number, w: Float32Array, b: Float32Array, eps: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += x[o + i];
    const mean = sum / dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += (x[o + i] - mean) * (x[o + i] - mean);
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = (x[o + i] - mean) * inv * w[i] + b[i];
  }
}

/** GELU, tanh approximation (HF "gelu_new"): v/2 · (1 + tanh(√(2/π)·(v + 0.044715 v³))). */
export function geluTanh(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}

export function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** In-place softmax over v[0..n). */
export function softmaxInPlace(v: Float64Array | Float32Array, n: number): void {
  let m = -Infinity;
  for (let i = 0; i < n; i++) if (v[i] > m) m = v[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    v[i] = Math.exp(v[i] - m);
    sum += v[i];
  }
  for (let i = 0; i < n; i++) v[i] /= sum;
}

/**
 * TokenSelect's soft vote (step/select.ts) over candidate rows [from, to) of the pre-RoPE keys
 * [*, Hkv·D], from the mean query q̄ [Hq·D]:
 *   s_h = softmax_j(q̄_h · K[j, h / group])  (no 1/√D),  vote_j = Σ_h s_h[j]   (float64)
 * Returns the k candidates with the largest vote (ties → lower index), ascending.
 */
export function softVoteTopK(
  qbar: Float32Array,
  keys: Float32Array,
  numHeads: number,
  numKvHeads: number,
  headDim: number,
  from: number,
  to: number,
  k: number,
): Int32Array {
  const nc = to - from;
  const kvDim = numKvHeads * headDim;
  const group = numHeads / numKvHeads;
  const vote = new Float64Array(nc);
  const s = new Float64Array(nc);
  for (let h = 0; h < numHeads; h++) {
    const kvOff = Math.floor(h / group) * headDim;
    const qOff = h * headDim;
    for (let j = 0; j < nc; j++) {
      const ko = (from + j) * kvDim + kvOff;
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += qbar[qOff + d] * keys[ko + d];
      s[j] = dot;
    }
    softmaxInPlace(s, nc);
    for (let j = 0; j < nc; j++) vote[j] += s[j];
  }
  const order = Array.from({ length: nc }, (_, j) => j);
  order.sort((a, b) => vote[b] - vote[a] || a - b);
  return Int32Array.from(order.slice(0, Math.min(k, nc)), (j) => j + from).sort();
}
