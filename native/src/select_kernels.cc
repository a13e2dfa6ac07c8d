#include "select_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <limits>
#include <mutex>
#include <numeric>
#include <thread>

#include "dtype.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CTX_WIDE_PATH 1
// Functions compiled for AVX2 + FMA + F16C, called only after wideCpu() said the CPU has them.
#define CTX_WIDE __attribute__((target("avx2,fma,f16c")))
#endif

namespace ctx {
namespace {

// ---- threads ------------------------------------------------------------------------------------

/** All n threads wait here until every one has arrived (one per phase of a call). */
class Barrier {
 public:
  explicit Barrier(int32_t n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t generation = generation_;
    if (++arrived_ == n_) {
      arrived_ = 0;
      generation_++;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != generation; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int32_t n_;
  int32_t arrived_ = 0;
  int64_t generation_ = 0;
};

/** Runs fn(t) for t in [0, n): n − 1 new threads and the caller (t = 0). */
template <typename Fn>
void onThreads(int32_t n, Fn&& fn) {
  std::vector<std::thread> workers;
  for (int32_t t = 1; t < n; t++) workers.emplace_back([&fn, t] { fn(t); });
  fn(0);
  for (auto& w : workers) w.join();
}

/**
 * Calls fn(lo, hi) for chunks [lo, hi) of [0, n), `chunk` rows each, claimed from a counter the
 * threads share: a thread that gets less of the CPU (a busy machine) takes fewer chunks, so the
 * others do not wait for an equal share from it at the next barrier.
 */
template <typename Fn>
void forChunks(std::atomic<int32_t>& next, int32_t n, int32_t chunk, Fn&& fn) {
  for (;;) {
    const int64_t lo = static_cast<int64_t>(next.fetch_add(1)) * chunk;
    if (lo >= n) return;
    fn(static_cast<int32_t>(lo), static_cast<int32_t>(std::min<int64_t>(n, lo + chunk)));
  }
}

/** Rows per chunk: a multiple of 8 (the vote's lanes). */
constexpr int32_t kChunkRows = 512;

/** Threads worth starting for `rows` rows of work (a thread start costs tens of microseconds). */
int32_t threadsFor(int64_t rows, int32_t threads) {
  constexpr int64_t kRowsPerThread = 2048;
  return static_cast<int32_t>(std::max<int64_t>(1, std::min<int64_t>(threads, rows / kRowsPerThread)));
}

bool wideCpu() {
#ifdef CTX_WIDE_PATH
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return ok;
#else
  return false;
#endif
}

#ifdef CTX_WIDE_PATH
/** The first ⌊n/8⌋·8 of n halves as float32 (F16C); returns how many. */
CTX_WIDE int32_t halvesToFloatWide(const uint16_t* h, int32_t n, float* out) {
  int32_t d = 0;
  for (; d + 8 <= n; d += 8) _mm256_storeu_ps(out + d, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + d))));
  return d;
}
#endif

/** Row r of head array `a` (D values of the KV dtype) as float32 into out. */
void rowToFloat(const KvHeads& kv, const void* a, int64_t r, float* out) {
  const int32_t D = kv.D;
  if (!kv.half) {
    std::copy_n(static_cast<const float*>(a) + r * D, D, out);
    return;
  }
  const uint16_t* h = static_cast<const uint16_t*>(a) + r * D;
  int32_t d = 0;
#ifdef CTX_WIDE_PATH
  if (wideCpu()) d = halvesToFloatWide(h, D, out);
#endif
  for (; d < D; d++) out[d] = halfToFloat(h[d]);
}

// ---- the vote, plain loops ------------------------------------------------------------------------

/** Scores s[h·stride + j] = q̄_h · K_g[from + j] for rows j in [lo, hi), heads of KV head g; max per head. */
void scoresPlain(const float* qbar, int32_t G, const KvHeads& keys, int32_t g, int32_t from, int32_t lo, int32_t hi, float* s, int64_t stride, float* maxima) {
  const int32_t D = keys.D;
  std::vector<float> k(D);
  for (int32_t j = lo; j < hi; j++) {
    rowToFloat(keys, keys.heads[g], from + j, k.data());
    for (int32_t b = 0; b < G; b++) {
      const int32_t h = g * G + b;
      const float* q = qbar + static_cast<int64_t>(h) * D;
      float dot = 0;
      for (int32_t d = 0; d < D; d++) dot += q[d] * k[d];
      s[h * stride + j] = dot;
      maxima[h] = std::max(maxima[h], dot);
    }
  }
}

/** e = exp(s − m) in place over [lo, hi) of one head's scores; returns Σ e. */
double expSumPlain(float* s, int32_t lo, int32_t hi, float m) {
  double sum = 0;
  for (int32_t j = lo; j < hi; j++) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}

/** vote[j] = Σ_h e[h·stride + j] / Z_h over [lo, hi). */
void votePlain(const float* e, int32_t Hq, int64_t stride, const double* invZ, int32_t lo, int32_t hi, double* vote) {
  for (int32_t j = lo; j < hi; j++) {
    double v = 0;
    for (int32_t h = 0; h < Hq; h++) v += e[h * stride + j] * invZ[h];
    vote[j] = std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;  // NaN keys rank last
  }
}

// ---- the vote, AVX2 + FMA + F16C ----------------------------------------------------------------

#ifdef CTX_WIDE_PATH
/** The 8 lane sums of a[0..7], as one vector: lane b = Σ lanes of a[b]. */
CTX_WIDE inline __m256 laneSums(const __m256* a) {
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]);
  const __m256 t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]);
  const __m256 t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1);  // [a0..a3 over lanes 0-3 | a0..a3 over lanes 4-7]
  const __m256 u1 = _mm256_hadd_ps(t2, t3);  // the same for a4..a7
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/**
 * exp(x) for x ≤ 0 (scores less their maximum), to about 1 ulp: x = n·ln2 + r, |r| ≤ ln2/2,
 * exp(r) by its Taylor series to r⁷ (remainder < 6e-9 relative), times 2ⁿ; 0 below float's range.
 */
CTX_WIDE inline __m256 expNonPositive(__m256 x) {
  const __m256 lowest = _mm256_set1_ps(-87.33654f);  // ln(FLT_MIN)
  const __m256 under = _mm256_cmp_ps(x, lowest, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lowest), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 in two parts (Cody–Waite) so that n·ln2 is subtracted without rounding error.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i twoN = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(twoN)));
}

constexpr int32_t kWideMaxD = 256;

/**
 * scoresPlain with each key row loaded (f16 widened) once and shared by the G query heads of its
 * group, taken 8 at a time: q8 holds them as [Hkv, ⌈G/8⌉·8, D] with zero rows past G, so a block
 * always has 8 independent accumulators (registers; summed across lanes together). D % 8 == 0, D ≤ 256.
 */
CTX_WIDE void scoresWide(const float* q8, int32_t G, const KvHeads& keys, int32_t g, int32_t from, int32_t lo, int32_t hi, float* s, int64_t stride, float* maxima) {
  const int32_t D = keys.D;
  const int32_t V = D / 8;
  const int32_t G8 = (G + 7) / 8 * 8;
  __m256 k[kWideMaxD / 8];
  for (int32_t j = lo; j < hi; j++) {
    const int64_t row = static_cast<int64_t>(from + j) * D;
    if (keys.half) {
      const uint16_t* h = static_cast<const uint16_t*>(keys.heads[g]) + row;
      for (int32_t v = 0; v < V; v++) k[v] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 8 * v)));
    } else {
      const float* f = static_cast<const float*>(keys.heads[g]) + row;
      for (int32_t v = 0; v < V; v++) k[v] = _mm256_loadu_ps(f + 8 * v);
    }
    for (int32_t b0 = 0; b0 < G; b0 += 8) {
      const float* q = q8 + (static_cast<int64_t>(g) * G8 + b0) * D;
      __m256 acc[8];
#pragma GCC unroll 8
      for (int32_t b = 0; b < 8; b++) acc[b] = _mm256_setzero_ps();
      for (int32_t v = 0; v < V; v++) {
#pragma GCC unroll 8
        for (int32_t b = 0; b < 8; b++) acc[b] = _mm256_fmadd_ps(_mm256_loadu_ps(q + b * D + 8 * v), k[v], acc[b]);
      }
      alignas(32) float dots[8];
      _mm256_store_ps(dots, laneSums(acc));
      const int32_t nb = std::min(8, G - b0);
      for (int32_t b = 0; b < nb; b++) s[(g * G + b0 + b) * stride + j] = dots[b];
    }
  }
  // Each head's maximum over these rows, 8 at a time.
  for (int32_t b = 0; b < G; b++) {
    const int32_t h = g * G + b;
    const float* sh = s + h * stride;
    __m256 m = _mm256_set1_ps(maxima[h]);
    int32_t j = lo;
    for (; j + 8 <= hi; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(sh + j));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    float best = *std::max_element(lanes, lanes + 8);
    for (; j < hi; j++) best = std::max(best, sh[j]);
    maxima[h] = best;
  }
}

/** expSumPlain in lanes of 8 (lo, hi multiples of 8; the padding past the candidates holds −inf). */
CTX_WIDE double expSumWide(float* s, int32_t lo, int32_t hi, float m) {
  const __m256 mv = _mm256_set1_ps(m);
  __m256d sum0 = _mm256_setzero_pd(), sum1 = _mm256_setzero_pd();
  for (int32_t j = lo; j < hi; j += 8) {
    const __m256 e = expNonPositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
    _mm256_storeu_ps(s + j, e);
    sum0 = _mm256_add_pd(sum0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    sum1 = _mm256_add_pd(sum1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double parts[4];
  _mm256_store_pd(parts, _mm256_add_pd(sum0, sum1));
  return (parts[0] + parts[1]) + (parts[2] + parts[3]);
}

/** votePlain in lanes of 4 doubles (lo, hi multiples of 8). */
CTX_WIDE void voteWide(const float* e, int32_t Hq, int64_t stride, const double* invZ, int32_t lo, int32_t hi, double* vote) {
  for (int32_t j = lo; j < hi; j += 4) {
    __m256d v = _mm256_setzero_pd();
    for (int32_t h = 0; h < Hq; h++) v = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(e + h * stride + j)), _mm256_set1_pd(invZ[h]), v);
    // NaN keys rank last: a NaN lane becomes −inf.
    v = _mm256_blendv_pd(v, _mm256_set1_pd(-std::numeric_limits<double>::infinity()), _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
    _mm256_storeu_pd(vote + j, v);
  }
}

/** rotateRow for half % 8 == 0, 8 dims at a time (the same float operations, so the same results). */
CTX_WIDE void rotateRowWide(const float* x, const float* c, const float* sn, const RopeRows& rope, int32_t D, float* k) {
  const int32_t half = rope.R / 2;
  const __m256 scale = _mm256_set1_ps(rope.scale);
  for (int32_t d = 0; d < half; d += 8) {
    const __m256 x0 = _mm256_loadu_ps(x + d), x1 = _mm256_loadu_ps(x + d + half);
    const __m256 cv = _mm256_loadu_ps(c + d), sv = _mm256_loadu_ps(sn + d);
    _mm256_storeu_ps(k + d, _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(x0, cv), _mm256_mul_ps(x1, sv)), scale));
    _mm256_storeu_ps(k + d + half, _mm256_mul_ps(_mm256_add_ps(_mm256_mul_ps(x1, cv), _mm256_mul_ps(x0, sv)), scale));
  }
  for (int32_t d = rope.R; d < D; d++) k[d] = x[d] * rope.scale;
}
#endif

/**
 * One key row x [D] into k: non-interleaved RoPE over the first R dims by c/sn [R/2] (the rest as
 * stored), then the scale on all D dims — in the order of ONNX's RotaryEmbedding followed by Mul
 * (keys.ts); at unit length for softplus-attention models.
 */
void rotateRow(const float* x, const float* c, const float* sn, const RopeRows& rope, int32_t D, bool wide, float* k) {
  const int32_t half = rope.R / 2;
#ifdef CTX_WIDE_PATH
  if (wide) {
    rotateRowWide(x, c, sn, rope, D, k);
  } else
#endif
  {
    for (int32_t d = 0; d < half; d++) {
      k[d] = (x[d] * c[d] - x[d + half] * sn[d]) * rope.scale;
      k[d + half] = (x[d + half] * c[d] + x[d] * sn[d]) * rope.scale;
    }
    for (int32_t d = rope.R; d < D; d++) k[d] = x[d] * rope.scale;
  }
  if (rope.unitLength) {
    double ss = 0;
    for (int32_t d = 0; d < D; d++) ss += static_cast<double>(k[d]) * k[d];
    const float norm = static_cast<float>(std::sqrt(ss));
    if (norm > 0) for (int32_t d = 0; d < D; d++) k[d] /= norm;
  }
}

}  // namespace

std::vector<int32_t> softVoteTopK(const float* qbar, int32_t Hq, const KvHeads& keys, int32_t from, int32_t to, int32_t k, int32_t threads) {
  const int32_t nc = to - from;
  const int32_t Hkv = static_cast<int32_t>(keys.heads.size());
  const int32_t G = Hq / Hkv;
  std::vector<int32_t> top;
  if (nc <= 0 || k <= 0) return top;
  if (k >= nc) {
    top.resize(nc);
    std::iota(top.begin(), top.end(), from);
    return top;
  }
#ifdef CTX_WIDE_PATH
  const bool wide = wideCpu() && keys.D % 8 == 0 && keys.D <= kWideMaxD;
#else
  const bool wide = false;
#endif
  // Scores, then their exps in place: [Hq, stride], rows padded to a multiple of 8 with −inf (exp 0).
  const int64_t stride = (nc + 7) / 8 * 8;
  thread_local std::vector<float> scores;
  thread_local std::vector<double> vote;
  scores.resize(Hq * stride);
  vote.resize(stride);
  for (int32_t h = 0; h < Hq; h++) std::fill(scores.begin() + h * stride + nc, scores.begin() + (h + 1) * stride, -std::numeric_limits<float>::infinity());

  const int32_t n = threadsFor(nc, threads);
  std::vector<float> maxima(static_cast<size_t>(n) * Hq, -std::numeric_limits<float>::infinity());  // [thread, Hq]
  std::vector<double> sums(static_cast<size_t>(n) * Hq, 0.0);                                        // [thread, Hq]
  Barrier barrier(n);
  // q̄ for the wide loop: [Hkv, ⌈G/8⌉·8, D], zero rows past each group's G heads.
  const int32_t G8 = (G + 7) / 8 * 8;
  std::vector<float> q8(wide ? static_cast<size_t>(Hkv) * G8 * keys.D : 0, 0.0f);
  for (int32_t g = 0; wide && g < Hkv; g++) std::copy_n(qbar + static_cast<int64_t>(g) * G * keys.D, G * keys.D, q8.begin() + static_cast<int64_t>(g) * G8 * keys.D);
  float* s = scores.data();  // thread_local: the workers read the caller's buffers through these pointers
  double* vt = vote.data();
  std::atomic<int32_t> next[3] = {{0}, {0}, {0}};  // each phase's next chunk
  const int32_t padded = static_cast<int32_t>(stride);
  onThreads(n, [&](int32_t t) {
    // 1. scores, and each head's maximum over the rows this thread took
    forChunks(next[0], nc, kChunkRows, [&](int32_t lo, int32_t hi) {
      for (int32_t g = 0; g < Hkv; g++) {
#ifdef CTX_WIDE_PATH
        if (wide) {
          scoresWide(q8.data(), G, keys, g, from, lo, hi, s, stride, &maxima[t * Hq]);
          continue;
        }
#endif
        scoresPlain(qbar, G, keys, g, from, lo, hi, s, stride, &maxima[t * Hq]);
      }
    });
    barrier.wait();
    // 2. exp(s − max) in place, and its sum (double) per head; the wide loop runs over the padding too
    std::vector<float> m(Hq, -std::numeric_limits<float>::infinity());
    for (int32_t h = 0; h < Hq; h++) {
      for (int32_t u = 0; u < n; u++) m[h] = std::max(m[h], maxima[u * Hq + h]);
    }
    forChunks(next[1], wide ? padded : nc, kChunkRows, [&](int32_t lo, int32_t hi) {
      for (int32_t h = 0; h < Hq; h++) {
#ifdef CTX_WIDE_PATH
        if (wide) {
          sums[t * Hq + h] += expSumWide(s + h * stride, lo, hi, m[h]);
          continue;
        }
#endif
        sums[t * Hq + h] += expSumPlain(s + h * stride, lo, hi, m[h]);
      }
    });
    barrier.wait();
    // 3. vote = Σ_h e_h / Z_h (double)
    std::vector<double> invZ(Hq);
    for (int32_t h = 0; h < Hq; h++) {
      double Z = 0;
      for (int32_t u = 0; u < n; u++) Z += sums[u * Hq + h];
      invZ[h] = 1.0 / Z;
    }
    forChunks(next[2], wide ? padded : nc, kChunkRows, [&](int32_t lo, int32_t hi) {
#ifdef CTX_WIDE_PATH
      if (wide) {
        voteWide(s, Hq, stride, invZ.data(), lo, hi, vt);
        return;
      }
#endif
      votePlain(s, Hq, stride, invZ.data(), lo, hi, vt);
    });
  });

  // The k largest votes, ties to the lower row: τ = the k-th largest vote; every row above τ, and
  // the first rows at τ until there are k — collected in row order, so already ascending.
  std::vector<double> sorted(vt, vt + nc);
  std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<double>());
  const double tau = sorted[k - 1];
  int32_t atTau = k - static_cast<int32_t>(std::count_if(vt, vt + nc, [tau](double v) { return v > tau; }));
  top.reserve(k);
  for (int32_t j = 0; j < nc; j++) {
    if (vt[j] > tau || (vt[j] == tau && atTau-- > 0)) top.push_back(from + j);
  }
  return top;
}

void gatherRotated(const KvHeads& keys, const KvHeads& values, const int32_t* rows, int32_t count, const RopeRows& rope,
                   const std::vector<float*>& outK, const std::vector<float*>& outV, int32_t threads) {
  const int32_t D = keys.D;
  const int32_t half = rope.R / 2;
  const int32_t Hkv = static_cast<int32_t>(keys.heads.size());
  const bool wide = wideCpu() && half % 8 == 0;
  const int32_t n = threadsFor(count, threads);
  std::atomic<int32_t> next{0};
  onThreads(n, [&](int32_t) {
    std::vector<float> x(D);
    forChunks(next, count, kChunkRows, [&](int32_t lo, int32_t hi) {
      for (int32_t i = lo; i < hi; i++) {
        const int64_t r = rows ? rows[i] : i;
        const float* c = rope.cos + static_cast<int64_t>(i) * half;
        const float* sn = rope.sin + static_cast<int64_t>(i) * half;
        for (int32_t g = 0; g < Hkv; g++) {
          rowToFloat(keys, keys.heads[g], r, x.data());
          rotateRow(x.data(), c, sn, rope, D, wide, outK[g] + static_cast<int64_t>(i) * D);
          rowToFloat(values, values.heads[g], r, outV[g] + static_cast<int64_t>(i) * D);
        }
      }
    });
  });
}

}  // namespace ctx
