// C[M, N] (+)= A[M, K] · W[N, K]ᵀ (+ bias[N]): every linear layer of the model.
// A = activations (rows = tokens), W = a weight matrix as stored ([out, in]), C f32.
//
// Three kernels, picked by launchMatmul:
//   gemmBf16Mma   bf16 A and W, K % 8 == 0, M > 8: tensor cores (mma.sync m16n8k16, f32 accumulate),
//                 128×128×32 block tiles, 8 warps of 64×32, a 3-stage cp.async pipeline, swizzled
//                 shared memory so ldmatrix is free of bank conflicts. The prefill workhorse.
//   gemvRows      M ≤ 8 (decoding, the last rows of a step): one warp per output feature streams its
//                 weight row once with 16-byte loads and dots it with every A row. Memory bound,
//                 like decoding is.
//   gemmSimt      everything else (f32 weights — the correctness mode — and odd shapes): 64×64×16
//                 tiles in shared memory, 4×4 outputs per thread, f32 FMA.

#include <algorithm>
#include <type_traits>

#include "common.cuh"

namespace ctx::cuda {

namespace {

/** The epilogue of every kernel: bias, then store or accumulate. */
__device__ __forceinline__ void storeC(float* C, const float* bias, int32_t N, int32_t r, int32_t c, float v,
                                      bool accumulate) {
  if (bias) v += bias[c];
  float& dst = C[static_cast<size_t>(r) * N + c];
  dst = accumulate ? dst + v : v;
}

// ---- tensor cores ---------------------------------------------------------------------------------

constexpr int kBM = 128, kBN = 128, kBK = 32, kStages = 3, kMmaThreads = 256, kGroupM = 8;

/**
 * Shared-memory index of element 0 of 16-byte chunk c (of kBK/8 = 4) in tile row r. Rows are 64
 * bytes, so without a swizzle the 8 rows one ldmatrix reads would share banks; XOR-ing the chunk
 * with (r/2)%4 spreads any 8 consecutive rows over all 8 bank groups.
 */
__device__ __forceinline__ int swizzle(int r, int c) { return r * kBK + ((c ^ ((r >> 1) & 3)) << 3); }

__global__ void __launch_bounds__(kMmaThreads)
    gemmBf16Mma(const bf16* __restrict__ A, const bf16* __restrict__ W, float* __restrict__ C,
                const float* __restrict__ bias, int32_t M, int32_t N, int32_t K, bool accumulate) {
  __shared__ __align__(128) bf16 sA[kStages][kBM * kBK];
  __shared__ __align__(128) bf16 sB[kStages][kBN * kBK];

  // Grouped block order: kGroupM row-tiles share each run of column tiles, so the W tiles a wave of
  // blocks reads stay in L2 while several row-tiles use them.
  const int tilesN = (N + kBN - 1) / kBN, tilesM = (M + kBM - 1) / kBM;
  const int perGroup = kGroupM * tilesN;
  const int group = blockIdx.x / perGroup;
  const int firstM = group * kGroupM;
  const int groupRows = min(tilesM - firstM, kGroupM);
  const int tileM = firstM + (blockIdx.x % perGroup) % groupRows;
  const int tileN = (blockIdx.x % perGroup) / groupRows;
  const int m0 = tileM * kBM, n0 = tileN * kBN;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = (warp >> 2) * 64;  // 2 warps down M ...
  const int wn = (warp & 3) * 32;   // ... by 4 across N; each warp owns 64×32 of the tile
  float acc[4][4][4] = {};          // [16-row tile][8-col tile][fragment]

  // Each stage: A and B tiles of 128 rows × 32 k = 512 chunks of 16 bytes each; 2 chunks per thread.
  auto loadStage = [&](int stage, int kTile) {
    const int k0 = kTile * kBK;
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int chunk = tid + i * kMmaThreads;
      const int r = chunk >> 2, c = chunk & 3;
      const int k = k0 + c * 8;
      const bool okA = m0 + r < M && k < K;
      const bool okB = n0 + r < N && k < K;
      cpAsync16(&sA[stage][swizzle(r, c)], okA ? A + static_cast<size_t>(m0 + r) * K + k : A, okA);
      cpAsync16(&sB[stage][swizzle(r, c)], okB ? W + static_cast<size_t>(n0 + r) * K + k : W, okB);
    }
  };

  const int kTiles = (K + kBK - 1) / kBK;
#pragma unroll
  for (int s = 0; s < kStages - 1; s++) {
    if (s < kTiles) loadStage(s, s);
    cpAsyncCommit();
  }

  for (int kt = 0; kt < kTiles; kt++) {
    cpAsyncWait<kStages - 2>();  // tile kt has landed
    __syncthreads();             // ... for every thread, and everyone is done with tile kt-1's stage
    const int next = kt + kStages - 1;
    if (next < kTiles) loadStage(next % kStages, next);
    cpAsyncCommit();

    const bf16* a = sA[kt % kStages];
    const bf16* b = sB[kt % kStages];
#pragma unroll
    for (int kk = 0; kk < kBK / 16; kk++) {
      unsigned af[4][4], bfrag[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; mi++) {
        // lanes 0-15: rows 0-15 at k 0-7; lanes 16-31: rows 0-15 at k 8-15 -> a0..a3
        const int r = wm + mi * 16 + (lane & 15);
        ldmatrixX4(af[mi], &a[swizzle(r, kk * 2 + (lane >> 4))]);
      }
#pragma unroll
      for (int nj = 0; nj < 2; nj++) {
        // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
        const int r = wn + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
        unsigned t[4];
        ldmatrixX4(t, &b[swizzle(r, kk * 2 + ((lane >> 3) & 1))]);
        bfrag[2 * nj][0] = t[0];
        bfrag[2 * nj][1] = t[1];
        bfrag[2 * nj + 1][0] = t[2];
        bfrag[2 * nj + 1][1] = t[3];
      }
#pragma unroll
      for (int mi = 0; mi < 4; mi++) {
#pragma unroll
        for (int ni = 0; ni < 4; ni++) mmaBf16(acc[mi][ni], af[mi], bfrag[ni][0], bfrag[ni][1]);
      }
    }
  }
  cpAsyncWait<0>();

  // Fragment (mi, ni): rows g and g+8 of the 16-row tile, columns 2t and 2t+1 of the 8-col tile.
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int mi = 0; mi < 4; mi++) {
#pragma unroll
    for (int ni = 0; ni < 4; ni++) {
      const int col = n0 + wn + ni * 8 + 2 * t;
#pragma unroll
      for (int half = 0; half < 2; half++) {
        const int row = m0 + wm + mi * 16 + g + half * 8;
        if (row >= M) continue;
        if (col < N) storeC(C, bias, N, row, col, acc[mi][ni][2 * half], accumulate);
        if (col + 1 < N) storeC(C, bias, N, row, col + 1, acc[mi][ni][2 * half + 1], accumulate);
      }
    }
  }
}

// ---- few rows: one warp per output feature -----------------------------------------------------------

constexpr int kGemvMaxRows = 8, kGemvWarps = 8;

/**
 * C[i, o] (+)= Σ_k A[i, k] W[o, k] for i < M ≤ 8. Warp w of block b owns output o = b·8 + w; each
 * lane reads Vec consecutive weights per step (16 bytes), so a warp streams its row in 512-byte
 * coalesced pieces. A (a few KB to a few hundred KB) is re-read by every warp from L1/L2.
 */
template <typename T>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemvRows(const T* __restrict__ A, const T* __restrict__ W, float* __restrict__ C, const float* __restrict__ bias,
             int32_t M, int32_t N, int32_t K, bool accumulate) {
  constexpr int Vec = 16 / sizeof(T);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int o = blockIdx.x * kGemvWarps + warp;
  if (o >= N) return;
  const T* w = W + static_cast<size_t>(o) * K;
  float acc[kGemvMaxRows] = {};
  const bool vectorized = K % Vec == 0;
  if (vectorized) {
    for (int k = lane * Vec; k < K; k += 32 * Vec) {
      alignas(16) T wv[Vec];
      *reinterpret_cast<uint4*>(wv) = *reinterpret_cast<const uint4*>(w + k);
#pragma unroll
      for (int i = 0; i < kGemvMaxRows; i++) {
        if (i >= M) break;
        alignas(16) T av[Vec];
        *reinterpret_cast<uint4*>(av) = *reinterpret_cast<const uint4*>(A + static_cast<size_t>(i) * K + k);
#pragma unroll
        for (int e = 0; e < Vec; e++) acc[i] += toFloat(av[e]) * toFloat(wv[e]);
      }
    }
  } else {
    for (int k = lane; k < K; k += 32) {
      const float wk = toFloat(w[k]);
#pragma unroll
      for (int i = 0; i < kGemvMaxRows; i++) {
        if (i >= M) break;
        acc[i] += toFloat(A[static_cast<size_t>(i) * K + k]) * wk;
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kGemvMaxRows; i++) {
    if (i >= M) break;
    const float v = warpSum(acc[i]);
    if (lane == 0) storeC(C, bias, N, i, o, v, accumulate);
  }
}

// ---- general fallback --------------------------------------------------------------------------------

constexpr int kSimtTile = 64, kSimtK = 16;

/**
 * 64×64 output tile per block of 256 threads; thread (ty, tx) computes rows ty·4.. and columns
 * tx·4... Each k-step stages A[64×16] and W[64×16] transposed ([k][row]) in shared memory, so the
 * inner loop reads 4 rows and 4 columns as float4s.
 */
template <typename T>
__global__ void __launch_bounds__(256)
    gemmSimt(const T* __restrict__ A, const T* __restrict__ W, float* __restrict__ C, const float* __restrict__ bias,
             int32_t M, int32_t N, int32_t K, bool accumulate) {
  __shared__ __align__(16) float sA[kSimtK][kSimtTile + 4];
  __shared__ __align__(16) float sW[kSimtK][kSimtTile + 4];
  const int m0 = blockIdx.y * kSimtTile, n0 = blockIdx.x * kSimtTile;
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += kSimtK) {
    // 64 rows × 16 k per operand = 1024 elements, 4 per thread: row tid/4, k (tid%4)*4 .. +3
    const int r = tid >> 2, kq = (tid & 3) * 4;
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int k = k0 + kq + e;
      sA[kq + e][r] = (m0 + r < M && k < K) ? toFloat(A[static_cast<size_t>(m0 + r) * K + k]) : 0.0f;
      sW[kq + e][r] = (n0 + r < N && k < K) ? toFloat(W[static_cast<size_t>(n0 + r) * K + k]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kSimtK; kk++) {
      const float4 a = *reinterpret_cast<const float4*>(&sA[kk][ty * 4]);
      const float4 w = *reinterpret_cast<const float4*>(&sW[kk][tx * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w}, wv[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
      for (int i = 0; i < 4; i++) {
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], wv[j], acc[i][j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int row = m0 + ty * 4 + i;
    if (row >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int col = n0 + tx * 4 + j;
      if (col < N) storeC(C, bias, N, row, col, acc[i][j], accumulate);
    }
  }
}

}  // namespace

void launchMatmul(float* C, const void* A, const Matrix& W, const float* bias, int32_t n, bool accumulate,
                  cudaStream_t stream) {
  if (n <= 0) return;
  const int32_t M = n, N = W.rows, K = W.cols;
  const bool aligned16 = reinterpret_cast<uintptr_t>(A) % 16 == 0 && reinterpret_cast<uintptr_t>(W.data) % 16 == 0;
  withType(W.dtype, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    const T* a = static_cast<const T*>(A);
    const T* w = static_cast<const T*>(W.data);
    if (M <= kGemvMaxRows && aligned16) {
      gemvRows<T><<<ceilDiv(N, kGemvWarps), kGemvWarps * 32, 0, stream>>>(a, w, C, bias, M, N, K, accumulate);
      checkLaunch("gemvRows");
      return;
    }
    if constexpr (std::is_same_v<T, bf16>) {
      if (K % 8 == 0 && aligned16) {
        const unsigned blocks = ceilDiv(M, kBM) * ceilDiv(N, kBN);
        gemmBf16Mma<<<blocks, kMmaThreads, 0, stream>>>(a, w, C, bias, M, N, K, accumulate);
        checkLaunch("gemmBf16Mma");
        return;
      }
    }
    const dim3 grid(ceilDiv(N, kSimtTile), ceilDiv(M, kSimtTile));
    gemmSimt<T><<<grid, 256, 0, stream>>>(a, w, C, bias, M, N, K, accumulate);
    checkLaunch("gemmSimt");
  });
}

}  // namespace ctx::cuda
