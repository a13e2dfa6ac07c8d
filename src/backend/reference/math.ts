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
    for (let o = 0; o < outDim; o++) {
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

export function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/**
 * Rotate-half RoPE of one head vector in place: for i < D/2, with a = fround(pos · invFreq[i]),
 *   x'[i]       = x[i]·cos a − x[i+D/2]·sin a
 *   x'[i+D/2]   = x[i+D/2]·cos a + x[i]·sin a        (cos, sin multiplied by `scale`)
 */
export function ropeInPlace(x: Float32Array, offset: number, headDim: number, pos: number, invFreq: Float32Array, scale: number): void {
  const half = headDim >> 1;
  for (let i = 0; i < half; i++) {
    const a = Math.fround(pos * invFreq[i]);
    const c = Math.fround(Math.cos(a)) * scale;
    const s = Math.fround(Math.sin(a)) * scale;
    const x1 = x[offset + i];
    const x2 = x[offset + i + half];
    x[offset + i] = x1 * c - x2 * s;
    x[offset + i + half] = x2 * c + x1 * s;
  }
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
