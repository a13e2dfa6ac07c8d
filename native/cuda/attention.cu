// Attention over a "memory prefix + window" of keys, with GQA and the masks of contract.ts:
//   out[i, h] = Σ_j softmax_j(scale · q[i,h] · K[j,g]) V[j,g],  g = h / (Hq/Hkv),  j over visible(i, j)
// q: [n, Hq*D] f32, already rotated; K (rotated), V: [T, Hkv*D] in the KV type; out: [n, Hq*D].
// Every kernel streams key tiles through shared memory with an online softmax (running max m,
// running sum l, rescaled accumulator), so no [n, T] score matrix is ever stored.
//
// Three kernels, picked by launchAttention:
//   flashMma<D>     bf16 K/V, D ∈ {64, 128}, n > 4: tensor cores. 64 query rows per block (16 per
//                   warp), 64-key tiles double-buffered with cp.async; S = Q·Kᵀ and O += P·V with
//                   mma.sync m16n8k16; P goes from the S accumulators to A fragments in registers.
//   flashSimt<T>    any D ≤ 256, f32 or bf16 K/V, n > 4: 16 query rows per block (4 per warp),
//                   32-key tiles; lane j scores key j, then the warp accumulates P·V by columns.
//   decodeSplit<T>  n ≤ 4 (decoding): the keys are split over many blocks (flash-decoding), each
//                   block writes a partial (m, l, acc), and combineSplits merges them.

#include <algorithm>
#include <cfloat>
#include <type_traits>

#include "common.cuh"

namespace ctx::cuda {

namespace {

/** Whether query row i may see key j (rows ≥ n see nothing). */
__device__ __forceinline__ bool visible(const AttentionMask& mask, int32_t n, int32_t i, int32_t j) {
  if (i >= n) return false;
  if (!mask.ranges) return j <= mask.causalOffset + i;
  const int32_t* r = mask.ranges + 6 * i;
  return (j >= r[0] && j < r[1]) || (j >= r[2] && j < r[3]) || (j >= r[4] && j < r[5]);
}

/** Key range [lo, hi) that rows [i0, i1) may see (thread 0 computes it; result in shared memory). */
__device__ void blockKeyRange(const AttentionMask& mask, int32_t n, int32_t T, int32_t i0, int32_t i1, int32_t* lo,
                              int32_t* hi) {
  i1 = min(i1, n);
  if (!mask.ranges) {
    *lo = 0;
    *hi = min(T, mask.causalOffset + i1);
    return;
  }
  int32_t a = T, b = 0;
  for (int32_t i = i0; i < i1; i++) {
    for (int r = 0; r < 3; r++) {
      const int32_t s = mask.ranges[6 * i + 2 * r], e = mask.ranges[6 * i + 2 * r + 1];
      if (e > s) {
        a = min(a, s);
        b = max(b, e);
      }
    }
  }
  *lo = a < b ? a : 0;
  *hi = a < b ? b : 0;
}

// ---- tensor cores: bf16 K/V, D = 64 or 128 ------------------------------------------------------------

constexpr int kMmaRows = 64, kMmaKeys = 64, kMmaThreads = 128;

/** Row r of a [rows][D] bf16 tile: 16-byte chunk c lives at chunk c ^ (r % 8), so ldmatrix's 8 rows hit 8 bank groups. */
template <int D>
__device__ __forceinline__ int tileIndex(int r, int c) {
  return r * D + ((c ^ (r & 7)) << 3);
}

template <int D>
__global__ void __launch_bounds__(kMmaThreads)
    flashMma(bf16* __restrict__ outBf16, float* __restrict__ outF32, const float* __restrict__ q,
             const bf16* __restrict__ K, const bf16* __restrict__ V, int32_t n, int32_t T, int32_t Hq, int32_t Hkv,
             float scaleLog2, AttentionMask mask) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);                // [64][D]
  bf16* sK = sQ + kMmaRows * D;                            // [2][64][D]
  bf16* sV = sK + 2 * kMmaKeys * D;                        // [2][64][D]
  __shared__ int32_t keyLo, keyHi;

  const int h = blockIdx.y, g = h / (Hq / Hkv);
  const int q0 = blockIdx.x * kMmaRows;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const size_t kvStride = static_cast<size_t>(Hkv) * D;

  // Q tile: f32 -> bf16, 8 values (one chunk) per thread per step; rows ≥ n are zeros.
  for (int c = tid; c < kMmaRows * kChunks; c += kMmaThreads) {
    const int r = c / kChunks, ch = c % kChunks;
    alignas(16) unsigned packed[4] = {0, 0, 0, 0};
    if (q0 + r < n) {
      const float* src = q + static_cast<size_t>(q0 + r) * Hq * D + h * D + ch * 8;
#pragma unroll
      for (int e = 0; e < 4; e++) packed[e] = packBf16(src[2 * e], src[2 * e + 1]);
    }
    *reinterpret_cast<uint4*>(&sQ[tileIndex<D>(r, ch)]) = *reinterpret_cast<uint4*>(packed);
  }
  if (tid == 0) blockKeyRange(mask, n, T, q0, q0 + kMmaRows, &keyLo, &keyHi);
  __syncthreads();
  const int tFirst = keyLo / kMmaKeys, tEnd = (keyHi + kMmaKeys - 1) / kMmaKeys;

  auto loadKV = [&](int stage, int tile) {
    const int k0 = tile * kMmaKeys;
    for (int c = tid; c < kMmaKeys * kChunks; c += kMmaThreads) {
      const int r = c / kChunks, ch = c % kChunks;
      const bool ok = k0 + r < T;
      const size_t off = static_cast<size_t>(k0 + r) * kvStride + g * D + ch * 8;
      cpAsync16(&sK[stage * kMmaKeys * D + tileIndex<D>(r, ch)], ok ? K + off : K, ok);
      cpAsync16(&sV[stage * kMmaKeys * D + tileIndex<D>(r, ch)], ok ? V + off : V, ok);
    }
  };

  // This warp's 16 query rows as A fragments, one per 16-wide slice of D.
  unsigned qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) ldmatrixX4(qf[kk], &sQ[tileIndex<D>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4))]);

  float o[D / 8][4] = {};                  // O: 16 rows × D, as D/8 accumulator fragments
  float mRow[2] = {-INFINITY, -INFINITY};  // running max of rows g and g+8 (log2 units)
  float lRow[2] = {0, 0};                  // this thread's part of the running sums
  const int rowA = q0 + warp * 16 + (lane >> 2), rowB = rowA + 8;

  if (tFirst < tEnd) loadKV(0, tFirst);
  cpAsyncCommit();
  for (int tile = tFirst; tile < tEnd; tile++) {
    const int stage = (tile - tFirst) & 1;
    if (tile + 1 < tEnd) loadKV(stage ^ 1, tile + 1);
    cpAsyncCommit();
    cpAsyncWait<1>();
    __syncthreads();
    const bf16* k = sK + stage * kMmaKeys * D;
    const bf16* v = sV + stage * kMmaKeys * D;

    // S[16 × 64] = Q · Kᵀ as 8 fragments of 16×8.
    float s[8][4] = {};
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
      for (int nj = 0; nj < 4; nj++) {
        unsigned b[4];
        ldmatrixX4(b, &k[tileIndex<D>(nj * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1))]);
        mmaBf16(s[2 * nj], qf[kk], b[0], b[1]);
        mmaBf16(s[2 * nj + 1], qf[kk], b[2], b[3]);
      }
    }

    // Mask and scale (to log2 units), then the online softmax per row.
    const int k0 = tile * kMmaKeys;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int row = e < 2 ? rowA : rowB;
        const int key = k0 + nt * 8 + 2 * (lane & 3) + (e & 1);
        s[nt][e] = (key < T && visible(mask, n, row, key)) ? s[nt][e] * scaleLog2 : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
      }
    }
    float alpha[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float mNew = fmaxf(mRow[r], mx[r]);
      base[r] = mNew == -INFINITY ? 0.0f : mNew;  // a row that has seen no key yet keeps p = 0
      alpha[r] = exp2f(mRow[r] - base[r]);
      mRow[r] = mNew;
      lRow[r] *= alpha[r];
    }
#pragma unroll
    for (int dt = 0; dt < D / 8; dt++) {
      o[dt][0] *= alpha[0];
      o[dt][1] *= alpha[0];
      o[dt][2] *= alpha[1];
      o[dt][3] *= alpha[1];
    }

    // P = exp2(S − m) → bf16 A fragments (two 16×8 S fragments make one 16×16 A fragment), O += P·V.
#pragma unroll
    for (int kk = 0; kk < kMmaKeys / 16; kk++) {
      float p[8];
#pragma unroll
      for (int e = 0; e < 4; e++) {
        p[e] = exp2f(s[2 * kk][e] - base[e >> 1]);
        p[4 + e] = exp2f(s[2 * kk + 1][e] - base[e >> 1]);
        lRow[e >> 1] += p[e] + p[4 + e];
      }
      const unsigned pa[4] = {packBf16(p[0], p[1]), packBf16(p[2], p[3]), packBf16(p[4], p[5]), packBf16(p[6], p[7])};
#pragma unroll
      for (int dj = 0; dj < D / 16; dj++) {
        // V is [keys][D]: the transposed load gives B fragments (k = keys, n = d).
        unsigned b[4];
        ldmatrixX4Trans(b, &v[tileIndex<D>(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), dj * 2 + (lane >> 4))]);
        mmaBf16(o[2 * dj], pa, b[0], b[1]);
        mmaBf16(o[2 * dj + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // the other stage is refilled at the top of the next iteration
  }
  cpAsyncWait<0>();

  // out = O / l (the quad's four partial sums added first).
#pragma unroll
  for (int r = 0; r < 2; r++) {
    lRow[r] += __shfl_xor_sync(0xffffffffu, lRow[r], 1);
    lRow[r] += __shfl_xor_sync(0xffffffffu, lRow[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = r == 0 ? rowA : rowB;
    if (row >= n) continue;
    const float inv = lRow[r] > 0 ? 1.0f / lRow[r] : 0.0f;
    const size_t base = static_cast<size_t>(row) * Hq * D + h * D + 2 * (lane & 3);
#pragma unroll
    for (int dt = 0; dt < D / 8; dt++) {
      const float v0 = o[dt][2 * r] * inv, v1 = o[dt][2 * r + 1] * inv;
      if (outBf16) *reinterpret_cast<unsigned*>(&outBf16[base + dt * 8]) = packBf16(v0, v1);
      else *reinterpret_cast<float2*>(&outF32[base + dt * 8]) = make_float2(v0, v1);
    }
  }
}

// ---- SIMT: any D, f32 or bf16 ---------------------------------------------------------------------------

constexpr int kSimtWarps = 4, kSimtRowsPerWarp = 4, kSimtKeys = 32, kMaxD = 256;
constexpr int kSimtRows = kSimtWarps * kSimtRowsPerWarp;

template <typename T, typename Out>
__global__ void __launch_bounds__(kSimtWarps * 32)
    flashSimt(Out* __restrict__ out, const float* __restrict__ q, const T* __restrict__ K, const T* __restrict__ V,
              int32_t n, int32_t T_, int32_t Hq, int32_t Hkv, int32_t D, float scale, AttentionMask mask) {
  extern __shared__ float sm[];
  const int pitch = D + 1;                // +1 float: lanes reading 32 different rows hit 32 banks
  float* sQ = sm;                         // [16][D]
  float* sK = sQ + kSimtRows * D;         // [32][D+1]
  float* sV = sK + kSimtKeys * pitch;     // [32][D+1]
  __shared__ int32_t keyLo, keyHi;

  const int h = blockIdx.y, g = h / (Hq / Hkv);
  const int q0 = blockIdx.x * kSimtRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const size_t kvStride = static_cast<size_t>(Hkv) * D;
  constexpr int kPerLane = kMaxD / 32;  // output columns per lane: lane + 32·t

  for (int e = threadIdx.x; e < kSimtRows * D; e += blockDim.x) {
    const int r = e / D, d = e % D;
    sQ[e] = q0 + r < n ? q[static_cast<size_t>(q0 + r) * Hq * D + h * D + d] : 0.0f;
  }
  if (threadIdx.x == 0) blockKeyRange(mask, n, T_, q0, q0 + kSimtRows, &keyLo, &keyHi);
  __syncthreads();

  float m[kSimtRowsPerWarp], l[kSimtRowsPerWarp], acc[kSimtRowsPerWarp][kPerLane];
#pragma unroll
  for (int r = 0; r < kSimtRowsPerWarp; r++) {
    m[r] = -INFINITY;
    l[r] = 0;
#pragma unroll
    for (int t = 0; t < kPerLane; t++) acc[r][t] = 0;
  }

  for (int k0 = (keyLo / kSimtKeys) * kSimtKeys; k0 < keyHi; k0 += kSimtKeys) {
    for (int e = threadIdx.x; e < kSimtKeys * D; e += blockDim.x) {
      const int r = e / D, d = e % D;
      const bool ok = k0 + r < T_;
      const size_t off = static_cast<size_t>(k0 + r) * kvStride + g * D + d;
      sK[r * pitch + d] = ok ? toFloat(K[off]) : 0.0f;
      sV[r * pitch + d] = ok ? toFloat(V[off]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kSimtRowsPerWarp; r++) {
      const int row = q0 + warp * kSimtRowsPerWarp + r;
      const int key = k0 + lane;
      const float* qr = sQ + (warp * kSimtRowsPerWarp + r) * D;
      float s = -INFINITY;
      if (key < T_ && visible(mask, n, row, key)) {
        float dot = 0;
        for (int d = 0; d < D; d++) dot = fmaf(qr[d], sK[lane * pitch + d], dot);
        s = dot * scale;
      }
      const float mNew = fmaxf(m[r], warpMax(s));
      if (mNew == -INFINITY) continue;  // nothing visible yet for this row
      const float alpha = expf(m[r] - mNew);
      const float p = expf(s - mNew);
      l[r] = l[r] * alpha + warpSum(p);
      m[r] = mNew;
#pragma unroll
      for (int t = 0; t < kPerLane; t++) acc[r][t] *= alpha;
      for (int j = 0; j < kSimtKeys; j++) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
        if (pj == 0.0f) continue;
#pragma unroll
        for (int t = 0; t < kPerLane; t++) {
          const int d = lane + 32 * t;
          if (d < D) acc[r][t] = fmaf(pj, sV[j * pitch + d], acc[r][t]);
        }
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int r = 0; r < kSimtRowsPerWarp; r++) {
    const int row = q0 + warp * kSimtRowsPerWarp + r;
    if (row >= n) continue;
    const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
#pragma unroll
    for (int t = 0; t < kPerLane; t++) {
      const int d = lane + 32 * t;
      if (d < D) out[static_cast<size_t>(row) * Hq * D + h * D + d] = fromFloat<Out>(acc[r][t] * inv);
    }
  }
}

// ---- decoding: split the keys over blocks ------------------------------------------------------------

constexpr int kDecodeMaxRows = 4, kDecodeWarps = 4;

/**
 * Block (h, split) handles keys [split·chunk, (split+1)·chunk) for every row i < n ≤ 4. Warp w takes
 * keys w, w+4, ...; the lanes split D, reduce the dot product, and keep (m, l, acc) per row. The
 * four warps merge through shared memory; the block writes partial[(i·Hq + h)·splits + split] =
 * {m, l, acc[D]} (acc not yet divided by l).
 */
template <typename T>
__global__ void __launch_bounds__(kDecodeWarps * 32)
    decodeSplit(float* __restrict__ partial, const float* __restrict__ q, const T* __restrict__ K,
                const T* __restrict__ V, int32_t n, int32_t T_, int32_t Hq, int32_t Hkv, int32_t D, float scale,
                AttentionMask mask, int32_t chunk) {
  __shared__ float sM[kDecodeWarps], sL[kDecodeWarps];
  __shared__ float sAcc[kDecodeWarps][kMaxD];
  const int h = blockIdx.x, split = blockIdx.y, splits = gridDim.y, g = h / (Hq / Hkv);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const size_t kvStride = static_cast<size_t>(Hkv) * D;
  constexpr int kPerLane = kMaxD / 32;
  const int kBegin = split * chunk, kEnd = min(T_, kBegin + chunk);

  for (int i = 0; i < n; i++) {
    float qv[kPerLane];
#pragma unroll
    for (int t = 0; t < kPerLane; t++) {
      const int d = lane + 32 * t;
      qv[t] = d < D ? q[static_cast<size_t>(i) * Hq * D + h * D + d] : 0.0f;
    }
    float m = -INFINITY, l = 0, acc[kPerLane] = {};
    for (int key = kBegin + warp; key < kEnd; key += kDecodeWarps) {
      if (!visible(mask, n, i, key)) continue;  // uniform across the warp
      const T* kr = K + static_cast<size_t>(key) * kvStride + g * D;
      float dot = 0;
#pragma unroll
      for (int t = 0; t < kPerLane; t++) {
        const int d = lane + 32 * t;
        if (d < D) dot = fmaf(qv[t], toFloat(kr[d]), dot);
      }
      const float s = warpSum(dot) * scale;
      const float mNew = fmaxf(m, s);
      const float alpha = expf(m - mNew), p = expf(s - mNew);
      l = l * alpha + p;
      m = mNew;
      const T* vr = V + static_cast<size_t>(key) * kvStride + g * D;
#pragma unroll
      for (int t = 0; t < kPerLane; t++) {
        const int d = lane + 32 * t;
        if (d < D) acc[t] = fmaf(p, toFloat(vr[d]), acc[t] * alpha);
      }
    }
    if (lane == 0) {
      sM[warp] = m;
      sL[warp] = l;
    }
#pragma unroll
    for (int t = 0; t < kPerLane; t++) {
      const int d = lane + 32 * t;
      if (d < D) sAcc[warp][d] = acc[t];
    }
    __syncthreads();
    // Merge the warps: M = max m_w, L = Σ l_w e^{m_w − M}, A = Σ acc_w e^{m_w − M}.
    float M = -INFINITY;
    for (int w = 0; w < kDecodeWarps; w++) M = fmaxf(M, sM[w]);
    float* dst = partial + (static_cast<size_t>(i) * Hq + h) * splits * (D + 2) + static_cast<size_t>(split) * (D + 2);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      float a = 0;
      for (int w = 0; w < kDecodeWarps; w++) {
        if (sM[w] != -INFINITY) a += sAcc[w][d] * expf(sM[w] - M);
      }
      dst[2 + d] = a;
    }
    if (threadIdx.x == 0) {
      float L = 0;
      for (int w = 0; w < kDecodeWarps; w++) {
        if (sM[w] != -INFINITY) L += sL[w] * expf(sM[w] - M);
      }
      dst[0] = M;
      dst[1] = L;
    }
    __syncthreads();
  }
}

/** One block per (row, head): out = Σ_s acc_s e^{m_s − M} / Σ_s l_s e^{m_s − M}. */
template <typename Out>
__global__ void combineSplits(Out* __restrict__ out, const float* __restrict__ partial, int32_t Hq, int32_t D,
                              int32_t splits) {
  const int row = blockIdx.x / Hq, h = blockIdx.x % Hq;
  const float* p = partial + (static_cast<size_t>(row) * Hq + h) * splits * (D + 2);
  float M = -INFINITY;
  for (int s = 0; s < splits; s++) M = fmaxf(M, p[s * (D + 2)]);
  float L = 0;
  for (int s = 0; s < splits; s++) {
    const float ms = p[s * (D + 2)];
    if (ms != -INFINITY) L += p[s * (D + 2) + 1] * expf(ms - M);
  }
  const float inv = L > 0 ? 1.0f / L : 0.0f;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float a = 0;
    for (int s = 0; s < splits; s++) {
      const float ms = p[s * (D + 2)];
      if (ms != -INFINITY) a += p[s * (D + 2) + 2 + d] * expf(ms - M);
    }
    out[static_cast<size_t>(row) * Hq * D + h * D + d] = fromFloat<Out>(a * inv);
  }
}

/** Splits for decoding: about two blocks per SM, at least 256 keys per split. */
int32_t decodeSplits(int32_t T, int32_t Hq, int32_t multiprocessors) {
  const int32_t want = std::max(1, (2 * multiprocessors + Hq - 1) / Hq);
  return std::max(1, std::min(want, (T + 255) / 256));
}

template <int D>
void launchFlashMma(void* out, DType outType, const float* q, const void* K, const void* V, int32_t n, int32_t T,
                    int32_t Hq, int32_t Hkv, float scale, const AttentionMask& mask, cudaStream_t stream) {
  const size_t smem = static_cast<size_t>(kMmaRows + 4 * kMmaKeys) * D * sizeof(bf16);  // 80 KiB at D = 128
  check(cudaFuncSetAttribute(flashMma<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
        "flashMma shared memory");
  const dim3 grid(ceilDiv(n, kMmaRows), Hq);
  flashMma<D><<<grid, kMmaThreads, smem, stream>>>(
      outType == DType::BF16 ? static_cast<bf16*>(out) : nullptr, outType == DType::F32 ? static_cast<float*>(out) : nullptr,
      q, static_cast<const bf16*>(K), static_cast<const bf16*>(V), n, T, Hq, Hkv, scale * 1.4426950408889634f, mask);
  checkLaunch("flashMma");
}

}  // namespace

size_t attentionWorkspaceBytes(int32_t n, int32_t T, int32_t Hq, int32_t D, int32_t multiprocessors) {
  if (n > kDecodeMaxRows) return 0;
  return static_cast<size_t>(n) * Hq * decodeSplits(T, Hq, multiprocessors) * (D + 2) * sizeof(float);
}

void launchAttention(void* out, DType outType, const float* q, const void* K, const void* V, DType kvType, int32_t n,
                     int32_t T, int32_t Hq, int32_t Hkv, int32_t D, float scale, const AttentionMask& mask,
                     float* workspace, int32_t multiprocessors, cudaStream_t stream) {
  if (n <= 0) return;
  if (D > kMaxD) throw std::invalid_argument("attention: head_dim above 256 is not supported by the CUDA kernels");
  if (kvType == DType::BF16 && n > kDecodeMaxRows && (D == 64 || D == 128)) {
    if (D == 64) launchFlashMma<64>(out, outType, q, K, V, n, T, Hq, Hkv, scale, mask, stream);
    else launchFlashMma<128>(out, outType, q, K, V, n, T, Hq, Hkv, scale, mask, stream);
    return;
  }
  withType(kvType, [&](auto* pk) {
    using KV = std::remove_pointer_t<decltype(pk)>;
    withType(outType, [&](auto* po) {
      using Out = std::remove_pointer_t<decltype(po)>;
      if (n <= kDecodeMaxRows) {
        const int32_t splits = decodeSplits(T, Hq, multiprocessors);
        const int32_t chunk = (T + splits - 1) / splits;
        decodeSplit<KV><<<dim3(Hq, splits), kDecodeWarps * 32, 0, stream>>>(
            workspace, q, static_cast<const KV*>(K), static_cast<const KV*>(V), n, T, Hq, Hkv, D, scale, mask, chunk);
        checkLaunch("decodeSplit");
        combineSplits<Out><<<n * Hq, 128, 0, stream>>>(static_cast<Out*>(out), workspace, Hq, D, splits);
        checkLaunch("combineSplits");
        return;
      }
      const size_t smem = (static_cast<size_t>(kSimtRows) * D + 2 * kSimtKeys * (D + 1)) * sizeof(float);
      check(cudaFuncSetAttribute(flashSimt<KV, Out>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
            "flashSimt shared memory");
      const dim3 grid(ceilDiv(n, kSimtRows), Hq);
      flashSimt<KV, Out><<<grid, kSimtWarps * 32, smem, stream>>>(static_cast<Out*>(out), q, static_cast<const KV*>(K),
                                                                  static_cast<const KV*>(V), n, T, Hq, Hkv, D, scale, mask);
      checkLaunch("flashSimt");
    });
  });
}

}  // namespace ctx::cuda
