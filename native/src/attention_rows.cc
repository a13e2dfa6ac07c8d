#include "attention_rows.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "wide_math.h"

namespace ctx {
namespace {

// One query row and one KV group: the group's G heads against the same n keys and values.
//   q, out  [G, D] (the group's heads, contiguous in the row)     s  [G, ≥n] score scratch
// Keys and values are read in blocks of BLOCK rows that every head of the group uses while the
// block is in L1, so each row comes from memory once per group rather than once per head.
constexpr int BLOCK = 64;
// Keys a worker thread should have to itself before one is started.
constexpr int kMinKeysPerThread = 4096;
using GroupFn = void (*)(const float* q, const float* keys, const float* values, int n, int G, int D, float scale, float* s, int stride, float* out);

void attendGroupPlain(const float* q, const float* keys, const float* values, int n, int G, int D, float scale, float* s, int stride, float* out) {
  for (int h = 0; h < G; h++) {
    const float* qh = q + static_cast<size_t>(h) * D;
    float* sh = s + static_cast<size_t>(h) * stride;
    float* oh = out + static_cast<size_t>(h) * D;
    float max = -INFINITY;
    for (int j = 0; j < n; j++) {
      const float* k = keys + static_cast<size_t>(j) * D;
      float dot = 0;
      for (int d = 0; d < D; d++) dot += qh[d] * k[d];
      sh[j] = dot * scale;
      max = std::max(max, sh[j]);
    }
    float sum = 0;
    for (int j = 0; j < n; j++) sum += (sh[j] = std::exp(sh[j] - max));
    std::fill(oh, oh + D, 0.0f);
    for (int j = 0; j < n; j++) {
      const float* v = values + static_cast<size_t>(j) * D;
      for (int d = 0; d < D; d++) oh[d] += sh[j] * v[d];
    }
    for (int d = 0; d < D; d++) oh[d] /= sum;
  }
}

#ifdef CTX_WIDE_PATH
// ---- AVX2 + FMA (wide_math.h; head dims that are multiples of 8) ------------------------------

// q · k for eight consecutive keys: one accumulator per key over the D/8 chunks (eight independent
// FMA chains), then laneSums turns the eight accumulators into the eight sums.
CTX_WIDE inline __m256 dot8Keys(const float* q, const float* k, int D) {
  __m256 a[8];
#pragma GCC unroll 8
  for (int r = 0; r < 8; r++) a[r] = _mm256_setzero_ps();
  for (int d = 0; d < D; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++) a[r] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + static_cast<size_t>(r) * D + d), a[r]);
  }
  return laneSums(a);
}

CTX_WIDE float dot(const float* q, const float* k, int D) {
  __m256 acc = _mm256_setzero_ps();
  for (int d = 0; d < D; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), acc);
  return sum8(acc);
}

CTX_WIDE void attendGroupWide(const float* q, const float* keys, const float* values, int n, int G, int D, float scale, float* s, int stride, float* out) {
  // Scores, block by block; each head's running max.
  const __m256 vscale = _mm256_set1_ps(scale);
  float max[16];
  std::fill(max, max + G, -INFINITY);
  for (int j0 = 0; j0 < n; j0 += BLOCK) {
    const int j1 = std::min(n, j0 + BLOCK);
    for (int h = 0; h < G; h++) {
      const float* qh = q + static_cast<size_t>(h) * D;
      float* sh = s + static_cast<size_t>(h) * stride;
      __m256 vmax = _mm256_set1_ps(max[h]);
      int j = j0;
      for (; j + 8 <= j1; j += 8) {
        const __m256 v = _mm256_mul_ps(dot8Keys(qh, keys + static_cast<size_t>(j) * D, D), vscale);
        _mm256_storeu_ps(sh + j, v);
        vmax = _mm256_max_ps(vmax, v);
      }
      max[h] = max8(vmax);
      for (; j < j1; j++) max[h] = std::max(max[h], sh[j] = dot(qh, keys + static_cast<size_t>(j) * D, D) * scale);
    }
  }
  // Softmax numerators in place, and each head's sum.
  float inv[16];
  for (int h = 0; h < G; h++) {
    float* sh = s + static_cast<size_t>(h) * stride;
    const __m256 vmax = _mm256_set1_ps(max[h]);
    __m256 vsum = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256 e = expNonPositive(_mm256_sub_ps(_mm256_loadu_ps(sh + j), vmax));
      _mm256_storeu_ps(sh + j, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    float sum = sum8(vsum);
    for (; j < n; j++) sum += (sh[j] = std::exp(sh[j] - max[h]));
    inv[h] = 1.0f / sum;
  }
  // out_h = Σ_t s_{h,t} v_t: per block, per head, 64 dims (eight accumulators) at a time, the
  // accumulators carried in `out` between blocks.
  std::fill(out, out + static_cast<size_t>(G) * D, 0.0f);
  for (int t0 = 0; t0 < n; t0 += BLOCK) {
    const int t1 = std::min(n, t0 + BLOCK);
    for (int h = 0; h < G; h++) {
      const float* sh = s + static_cast<size_t>(h) * stride;
      for (int d0 = 0; d0 < D; d0 += 64) {
        float* o = out + static_cast<size_t>(h) * D + d0;
        if (D - d0 >= 64) {
          __m256 acc[8];
#pragma GCC unroll 8
          for (int w = 0; w < 8; w++) acc[w] = _mm256_loadu_ps(o + 8 * w);
          for (int t = t0; t < t1; t++) {
            const __m256 p = _mm256_set1_ps(sh[t]);
            const float* v = values + static_cast<size_t>(t) * D + d0;
#pragma GCC unroll 8
            for (int w = 0; w < 8; w++) acc[w] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * w), acc[w]);
          }
#pragma GCC unroll 8
          for (int w = 0; w < 8; w++) _mm256_storeu_ps(o + 8 * w, acc[w]);
        } else {
          for (int w = 0; w < (D - d0) / 8; w++) {
            __m256 acc = _mm256_loadu_ps(o + 8 * w);
            for (int t = t0; t < t1; t++) acc = _mm256_fmadd_ps(_mm256_set1_ps(sh[t]), _mm256_loadu_ps(values + static_cast<size_t>(t) * D + d0 + 8 * w), acc);
            _mm256_storeu_ps(o + 8 * w, acc);
          }
        }
      }
    }
  }
  for (int h = 0; h < G; h++) {
    const __m256 vinv = _mm256_set1_ps(inv[h]);
    float* oh = out + static_cast<size_t>(h) * D;
    for (int d = 0; d < D; d += 8) _mm256_storeu_ps(oh + d, _mm256_mul_ps(_mm256_loadu_ps(oh + d), vinv));
  }
}

#endif  // CTX_WIDE_PATH

GroupFn pickGroupFn(int G, int D) {
#ifdef CTX_WIDE_PATH
  if (wideCpu() && D % 8 == 0 && G <= 16) return attendGroupWide;
#endif
  return attendGroupPlain;
}

}  // namespace

void attendCausal(const CausalAttention& a, int threads) {
  const int D = a.headDim;
  const int kvHeads = static_cast<int>(a.keys.size());
  const int G = a.heads / kvHeads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const GroupFn group = pickGroupFn(G, D);
  const int stride = std::max(a.T, 1);
  // Work items (row i, KV group g), dealt round-robin to the threads; a thread is worth starting
  // (tens of microseconds) only for long key runs.
  const int items = a.rows * kvHeads;
  const int n = std::max(1, std::min({threads, items, a.T / kMinKeysPerThread}));
  auto work = [&](int t) {
    std::vector<float> scores(static_cast<size_t>(G) * stride);
    for (int item = t; item < items; item += n) {
      const int i = item / kvHeads;
      const int g = item % kvHeads;
      const int keys = std::min(a.T, a.offset + i + 1);
      const size_t at = (static_cast<size_t>(i) * a.heads + static_cast<size_t>(g) * G) * D;
      if (keys <= 0) std::fill(a.out + at, a.out + at + static_cast<size_t>(G) * D, 0.0f);
      else group(a.q + at, a.keys[g], a.values[g], keys, G, D, scale, scores.data(), stride, a.out + at);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < n; t++) workers.emplace_back(work, t);
  work(0);
  for (std::thread& w : workers) w.join();
}

}  // namespace ctx
