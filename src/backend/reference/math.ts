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

/**
 * cos/sin of every (position, frequency) pair up to a position, computed once per RoPE table:
 * cos[pos·D/2 + i] = fround(cos(fround(pos · invFreq[i]))) · scale (likewise sin).
 */
export class RopeCache {
  private invFreq: Float32Array | null = null;
  private scale = 1;
  cos = new Float32Array(0);
  sin = new Float32Array(0);
  private positions = 0;

  /** Makes sure positions [0, upTo) are tabulated for this table. */
  ensure(invFreq: Float32Array, scale: number, upTo: number): void {
    const half = invFreq.length;
    if (this.invFreq !== invFreq || this.scale !== scale) {
      this.invFreq = invFreq;
      this.scale = scale;
      this.positions = 0;
    }
    if (upTo <= this.positions) return;
    const cap = Math.max(upTo, this.positions * 2, 256);
    const cos = new Float32Array(cap * half);
    const sin = new Float32Array(cap * half);
    cos.set(this.cos.subarray(0, this.positions * half));
    sin.set(this.sin.subarray(0, this.positions * half));
    for (let p = this.positions; p < cap; p++) {
      for (let i = 0; i < half; i++) {
        const a = Math.fround(p * invFreq[i]);
        cos[p * half + i] = Math.fround(Math.cos(a)) * scale;
        sin[p * half + i] = Math.fround(Math.sin(a)) * scale;
      }
    }
    this.cos = cos;
    this.sin = sin;
    this.positions = cap;
  }

  /** Rotates `heads` consecutive head vectors of x (from offset) to position pos. */
  rotate(x: Float32Array, offset: number, heads: number, headDim: number, pos: number): void {
    const half = headDim >> 1;
    const t = pos * half;
    for (let h = 0; h < heads; h++) {
      const o = offset + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = this.cos[t + i];
        const s = this.sin[t + i];
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
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
