// TokenSelect on the GPU (ALGORITHMS.md §2, contract.ts SelectSpec): the soft vote of the mean query
// over the candidate keys, and an exact top-k that keeps the lower index among equal votes.
//
//   logits[h, c] = q̄_h · K[candLo + c, g(h)]                       voteLogits  (warp per candidate)
//   max_h, sum_h = max_c logits[h, c], Σ_c e^{logits[h,c] − max_h}  headSoftmaxStats (block per head)
//   vote[c]     = Σ_h e^{logits[h, c] − max_h} / sum_h              voteSum
//   top-k       radix select of the k-th largest vote, then an ordered compaction   topKSelect

#include <algorithm>
#include <type_traits>

#include "common.cuh"

namespace ctx::cuda {

namespace {

constexpr int kVoteWarps = 8;

/**
 * Warp per candidate (grid-stride): the key row [Hkv·D] is read once; lane owns columns lane + 32t of
 * each KV head and accumulates, for every query head of that KV head's group, its part of q̄_h · k.
 * q̄ [Hq·D] sits in shared memory.
 */
template <typename T>
__global__ void __launch_bounds__(kVoteWarps * 32)
    voteLogits(float* __restrict__ logits, const float* __restrict__ qbar, const T* __restrict__ K, int32_t candLo,
               int32_t count, int32_t Hq, int32_t Hkv, int32_t D) {
  extern __shared__ float sq[];
  for (int e = threadIdx.x; e < Hq * D; e += blockDim.x) sq[e] = qbar[e];
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int group = Hq / Hkv;
  const size_t kvStride = static_cast<size_t>(Hkv) * D;
  for (int c = blockIdx.x * kVoteWarps + warp; c < count; c += gridDim.x * kVoteWarps) {
    const T* k = K + static_cast<size_t>(candLo + c) * kvStride;
    for (int gk = 0; gk < Hkv; gk++) {
      for (int hh = 0; hh < group; hh++) {
        const int h = gk * group + hh;
        float dot = 0;
        for (int d = lane; d < D; d += 32) dot = fmaf(sq[h * D + d], toFloat(k[gk * D + d]), dot);
        dot = warpSum(dot);
        if (lane == 0) logits[static_cast<size_t>(h) * count + c] = dot;
      }
    }
  }
}

/** Block per head: stats[h] = max_c logits[h, c]; stats[Hq + h] = Σ_c e^{logits[h, c] − max}. */
__global__ void __launch_bounds__(1024)
    headSoftmaxStats(float* __restrict__ stats, const float* __restrict__ logits, int32_t count, int32_t Hq) {
  __shared__ float part[32];
  const int h = blockIdx.x;
  const float* row = logits + static_cast<size_t>(h) * count;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;

  float m = -INFINITY;
  for (int c = threadIdx.x; c < count; c += blockDim.x) m = fmaxf(m, row[c]);
  m = warpMax(m);
  if (lane == 0) part[warp] = m;
  __syncthreads();
  if (warp == 0) {
    float v = lane < warps ? part[lane] : -INFINITY;
    v = warpMax(v);
    if (lane == 0) part[0] = v;
  }
  __syncthreads();
  const float mx = part[0];
  __syncthreads();

  float s = 0;
  for (int c = threadIdx.x; c < count; c += blockDim.x) s += expf(row[c] - mx);
  s = warpSum(s);
  if (lane == 0) part[warp] = s;
  __syncthreads();
  if (warp == 0) {
    float v = lane < warps ? part[lane] : 0.0f;
    v = warpSum(v);
    if (lane == 0) {
      stats[h] = mx;
      stats[Hq + h] = v;
    }
  }
}

__global__ void voteSum(float* __restrict__ vote, const float* __restrict__ logits, const float* __restrict__ stats,
                        int32_t count, int32_t Hq) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= count) return;
  float v = 0;
  for (int h = 0; h < Hq; h++) v += expf(logits[static_cast<size_t>(h) * count + c] - stats[h]) / stats[Hq + h];
  vote[c] = v;
}

// ---- top-k -----------------------------------------------------------------------------------------

constexpr int kTopKThreads = 1024;

/** Float -> unsigned with the same order (larger float, larger key). */
__device__ __forceinline__ unsigned orderKey(float f) {
  const unsigned u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/** Exclusive prefix sum of v over the block (in thread order); *total gets the block's sum. */
__device__ int blockExclusiveScan(int v, int* total) {
  __shared__ int warpTotals[32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  int inclusive = v;
  for (int o = 1; o < 32; o <<= 1) {
    const int t = __shfl_up_sync(0xffffffffu, inclusive, o);
    if (lane >= o) inclusive += t;
  }
  if (lane == 31) warpTotals[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    int w = lane < warps ? warpTotals[lane] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      const int t = __shfl_up_sync(0xffffffffu, w, o);
      if (lane >= o) w += t;
    }
    if (lane < warps) warpTotals[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  const int before = (warp > 0 ? warpTotals[warp - 1] : 0) + inclusive - v;
  *total = warpTotals[warps - 1];
  __syncthreads();  // warpTotals is reused by the next call
  return before;
}

/**
 * One block. (1) Radix select, 8 bits at a time from the top: a histogram of the next digit among
 * the keys that match the digits fixed so far finds the digit of the k-th largest key. After four
 * passes `prefix` is that key, and `need` says how many keys equal to it belong to the top k.
 * (2) A pass in index order keeps every key above it and the first `need` equal ones, writing
 * their indices in ascending order.
 */
__global__ void __launch_bounds__(kTopKThreads)
    topKSelect(int32_t* __restrict__ out, const float* __restrict__ vote, int32_t count, int32_t k, int32_t indexBase) {
  __shared__ unsigned hist[256];
  __shared__ unsigned prefix, prefixMask;
  __shared__ int need;
  if (threadIdx.x == 0) {
    prefix = 0;
    prefixMask = 0;
    need = k;
  }
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0;
    __syncthreads();
    const unsigned p = prefix, pm = prefixMask;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
      const unsigned key = orderKey(vote[i]);
      if ((key & pm) == p) atomicAdd(&hist[(key >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int above = 0;
      for (int d = 255; d >= 0; d--) {
        if (above + static_cast<int>(hist[d]) >= need) {
          prefix |= static_cast<unsigned>(d) << shift;
          prefixMask |= 255u << shift;
          need -= above;
          break;
        }
        above += hist[d];
      }
    }
    __syncthreads();
  }
  const unsigned kth = prefix;
  const int equalWanted = need;
  int equalSeen = 0, written = 0;
  for (int c0 = 0; c0 < count; c0 += blockDim.x) {
    const int i = c0 + threadIdx.x;
    const unsigned key = i < count ? orderKey(vote[i]) : 0u;
    const bool isEqual = i < count && key == kth;
    const bool isAbove = i < count && key > kth;
    int equalTotal, keptTotal;
    const int equalRank = equalSeen + blockExclusiveScan(isEqual ? 1 : 0, &equalTotal);
    const bool keep = isAbove || (isEqual && equalRank < equalWanted);
    const int pos = written + blockExclusiveScan(keep ? 1 : 0, &keptTotal);
    if (keep) out[pos] = i + indexBase;
    equalSeen += equalTotal;
    written += keptTotal;
  }
}

}  // namespace

void launchSelectVote(float* vote, const float* qbar, const void* K, DType kvType, int32_t candLo, int32_t candHi,
                      int32_t Hq, int32_t Hkv, int32_t D, float* workspace, cudaStream_t stream) {
  const int32_t count = candHi - candLo;
  if (count <= 0) return;
  float* logits = workspace;                                // [Hq, count]
  float* stats = workspace + static_cast<size_t>(Hq) * count;  // [2, Hq]
  const size_t smem = static_cast<size_t>(Hq) * D * sizeof(float);
  withType(kvType, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    check(cudaFuncSetAttribute(voteLogits<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
          "voteLogits shared memory");
    const unsigned blocks = std::min<unsigned>(ceilDiv(count, kVoteWarps), 4096u);
    voteLogits<T><<<blocks, kVoteWarps * 32, smem, stream>>>(logits, qbar, static_cast<const T*>(K), candLo, count, Hq,
                                                             Hkv, D);
  });
  checkLaunch("voteLogits");
  headSoftmaxStats<<<Hq, 1024, 0, stream>>>(stats, logits, count, Hq);
  checkLaunch("headSoftmaxStats");
  voteSum<<<ceilDiv(count, 256), 256, 0, stream>>>(vote, logits, stats, count, Hq);
  checkLaunch("voteSum");
}

void launchTopK(int32_t* out, const float* vote, int32_t count, int32_t k, int32_t indexBase, cudaStream_t stream) {
  if (k <= 0) return;
  if (k > count) throw std::invalid_argument("topK: k exceeds the candidate count");
  topKSelect<<<1, kTopKThreads, 0, stream>>>(out, vote, count, k, indexBase);
  checkLaunch("topKSelect");
}

}  // namespace ctx::cuda
