// TokenSelect's two per-layer loops over the cpu backend's KV store (src/backend/cpu/vote.ts and
// keys.ts call them; the ONNX Runtime graphs there are the fallback when the addon is absent).
// The store's arrays are read in place: per KV head one row-major [rows, D] array of IEEE halves
// (f16 KV, the default) or of float32.
//
//   softVoteTopK   the soft vote over candidate rows [from, to) and its top k:
//                    S_h = q̄_h K_gᵀ (g = h / G, G = Hq / Hkv; no 1/√D)      [nc]
//                    vote = Σ_h softmax(S_h)                               [nc], in double
//                  returns the k rows with the largest vote (ties to the lower row), ascending.
//   gatherRotated  rows of the keys and values in float32: output row i is stored row rows[i]
//                  (or i), its key rotated by cos/sin row i times `scale` (non-interleaved RoPE over
//                  the first R dims; the rest as stored), at unit length for softplus-attention models.
//
// Both split rows over up to `threads` std::threads. On x86 with AVX2, FMA and F16C (checked at run
// time) the inner loops use them; elsewhere plain loops compute the same.
#pragma once

#include <cstdint>
#include <vector>

namespace ctx {

/** One layer's per-KV-head arrays of the store, each [≥ rows, D]. */
struct KvHeads {
  bool half = false;                 // IEEE f16 bits (uint16_t) when true, else float32
  std::vector<const void*> heads;    // [Hkv]
  int32_t D = 0;
};

/** q̄ [Hq·D]; candidates [from, to); returns min(k, to − from) ascending row indices. */
std::vector<int32_t> softVoteTopK(const float* qbar, int32_t Hq, const KvHeads& keys, int32_t from, int32_t to, int32_t k, int32_t threads);

/** The RoPE rows of the outputs: cos/sin [count, R/2] row-major (row i for output row i). */
struct RopeRows {
  const float* cos = nullptr;
  const float* sin = nullptr;
  int32_t R = 0;
  float scale = 1.0f;
  bool unitLength = false;
};

/**
 * Writes `count` rows into outK/outV (per KV head, [≥ count, D] float32): stored row rows[i]
 * (rows == nullptr: row i), the key rotated by `rope`'s row i, the value as stored.
 */
void gatherRotated(const KvHeads& keys, const KvHeads& values, const int32_t* rows, int32_t count, const RopeRows& rope,
                   const std::vector<float*>& outK, const std::vector<float*>& outV, int32_t threads);

}  // namespace ctx
