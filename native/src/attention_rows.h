// Causal attention for a few query rows on the host: the cpu backend's decoded row, which ONNX
// Runtime's attention graph serves mostly with per-call overhead (src/backend/cpu/attention.ts).
//
// For each query row i and head h (KV head g = h / G, G = heads / kvHeads):
//   n      = min(T, offset + i + 1)                  row i sees keys [0, n)
//   s_j    = q_{i,h} · k_{g,j} / √D                   j < n
//   out_{i,h} = Σ_j softmax(s)_j v_{g,j}             [D]
// q and out are [rows, heads·D] row-major; keys and values per KV head [≥T, D], all float32 and
// already rotated. Sums run in float32, as ONNX Runtime's do.
#pragma once

#include <cstdint>
#include <vector>

namespace ctx {

struct CausalAttention {
  const float* q;
  int rows;
  int heads;
  int headDim;
  std::vector<const float*> keys;    // per KV head
  std::vector<const float*> values;  // per KV head
  int T;
  int offset;
  float* out;
};

/** Splits the (row, KV group) pairs over up to `threads` threads when the key runs are long. */
void attendCausal(const CausalAttention& a, int threads);

}  // namespace ctx
