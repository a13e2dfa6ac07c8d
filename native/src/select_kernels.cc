// TokenSelect's vote and gather over the cpu backend's KV store (what they compute: select_kernels.h).
// Each call splits its rows into chunks that up to `threads` std::threads claim in turn, in phases
// separated by a barrier (the vote: scores and maxima, exps and their sums, the vote itself); the
// top k is then picked on the calling thread.
#include "select_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <numeric>
#include <thread>

#include "dtype.h"
#include "wide_math.h"

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

/** Rows per chunk of a phase. */
constexpr int32_t kChunkRows = 512;

/** Threads worth starting for `rows` rows of work, at least `perThread` each (a thread start costs tens of microseconds). */
int32_t threadsFor(int64_t rows, int32_t threads, int64_t perThread) {
  return static_cast<int32_t>(std::max<int64_t>(1, std::min<int64_t>(threads, rows / perThread)));
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

// ---- the vote's scores, in lanes of 8 query heads ----------------------------------------------
//
// Scores are held [Hkv·NB, nc, 8]: block (g, bi) holds, for each candidate row j, the scores of the
// query heads g·G + 8·bi … + 7 of KV head g's group (NB = ⌈G/8⌉ blocks per group; lanes past G
// hold 0 — their q̄ rows are zero — and count nowhere). A row's 8 scores are one vector: each key
// row is loaded once per block, and the softmax runs lane-wise (a lane is a head).

constexpr int32_t kLanes = 8;

/** q̄ [Hq·D] as [Hkv·NB, 8, D]: zero rows past each group's G heads. */
std::vector<float> laneQueries(const float* qbar, int32_t Hkv, int32_t G, int32_t D) {
  const int32_t NB = (G + kLanes - 1) / kLanes;
  std::vector<float> q(static_cast<size_t>(Hkv) * NB * kLanes * D, 0.0f);
  for (int32_t g = 0; g < Hkv; g++) {
    std::copy_n(qbar + static_cast<int64_t>(g) * G * D, G * D, q.begin() + static_cast<int64_t>(g) * NB * kLanes * D);
  }
  return q;
}

/** Scores of rows [lo, hi) of KV head g's blocks (plain loops), and their lane-wise maxima into m [Hkv·NB·8]. */
void scoresPlain(const float* q8, int32_t NB, const KvHeads& keys, int32_t g, int32_t from, int32_t nc, int32_t lo, int32_t hi, float* s, float* m) {
  const int32_t D = keys.D;
  std::vector<float> k(D);
  for (int32_t j = lo; j < hi; j++) {
    rowToFloat(keys, keys.heads[g], from + j, k.data());
    for (int32_t bi = 0; bi < NB; bi++) {
      const int64_t blk = static_cast<int64_t>(g) * NB + bi;
      for (int32_t b = 0; b < kLanes; b++) {
        const float* q = q8 + (blk * kLanes + b) * D;
        float dot = 0;
        for (int32_t d = 0; d < D; d++) dot += q[d] * k[d];
        s[(blk * nc + j) * kLanes + b] = dot;
        m[blk * kLanes + b] = std::max(m[blk * kLanes + b], dot);
      }
    }
  }
}

/** e = exp(s − m) in place for rows [lo, hi) of block blk; adds Σ e (double) per lane to z. */
void expSumPlain(float* s, int64_t blk, int32_t nc, int32_t lo, int32_t hi, const float* m, double* z) {
  for (int32_t j = lo; j < hi; j++) {
    float* e = s + (blk * nc + j) * kLanes;
    for (int32_t b = 0; b < kLanes; b++) {
      e[b] = std::exp(e[b] - m[blk * kLanes + b]);
      z[blk * kLanes + b] += e[b];
    }
  }
}

/** vote[j] = Σ over lanes of e / Z (invZ: 0 for the padding lanes), rows [lo, hi). */
void votePlain(const float* e, int32_t blocks, int32_t nc, const double* invZ, int32_t lo, int32_t hi, double* vote) {
  for (int32_t j = lo; j < hi; j++) {
    double v = 0;
    for (int32_t blk = 0; blk < blocks; blk++) {
      for (int32_t b = 0; b < kLanes; b++) v += e[(static_cast<int64_t>(blk) * nc + j) * kLanes + b] * invZ[blk * kLanes + b];
    }
    vote[j] = std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;  // NaN keys rank last
  }
}

// ---- the same with AVX2 + FMA + F16C ------------------------------------------------------------

#ifdef CTX_WIDE_PATH
constexpr int32_t kWideMaxD = 256;
constexpr int32_t kWideMaxBlocks = 4;  // G ≤ 32

/**
 * scoresPlain with each key row loaded (f16 widened) once per row and the 8 heads of a block in
 * 8 independent accumulators (registers), summed across lanes together into the row's vector.
 * D % 8 == 0, D ≤ 256, NB ≤ 4.
 */
CTX_WIDE void scoresWide(const float* q8, int32_t NB, const KvHeads& keys, int32_t g, int32_t from, int32_t nc, int32_t lo, int32_t hi, float* s, float* m) {
  const int32_t D = keys.D;
  const int32_t V = D / 8;
  __m256 k[kWideMaxD / 8];
  __m256 mx[kWideMaxBlocks];
  for (int32_t bi = 0; bi < NB; bi++) mx[bi] = _mm256_loadu_ps(m + (static_cast<int64_t>(g) * NB + bi) * kLanes);
  for (int32_t j = lo; j < hi; j++) {
    const int64_t row = static_cast<int64_t>(from + j) * D;
    if (keys.half) {
      const uint16_t* h = static_cast<const uint16_t*>(keys.heads[g]) + row;
      for (int32_t v = 0; v < V; v++) k[v] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 8 * v)));
    } else {
      const float* f = static_cast<const float*>(keys.heads[g]) + row;
      for (int32_t v = 0; v < V; v++) k[v] = _mm256_loadu_ps(f + 8 * v);
    }
    for (int32_t bi = 0; bi < NB; bi++) {
      const int64_t blk = static_cast<int64_t>(g) * NB + bi;
      const float* q = q8 + blk * kLanes * D;
      __m256 acc[kLanes];
#pragma GCC unroll 8
      for (int32_t b = 0; b < kLanes; b++) acc[b] = _mm256_setzero_ps();
      for (int32_t v = 0; v < V; v++) {
#pragma GCC unroll 8
        for (int32_t b = 0; b < kLanes; b++) acc[b] = _mm256_fmadd_ps(_mm256_loadu_ps(q + b * D + 8 * v), k[v], acc[b]);
      }
      const __m256 scores = laneSums(acc);
      _mm256_storeu_ps(s + (blk * nc + j) * kLanes, scores);
      mx[bi] = _mm256_max_ps(mx[bi], scores);
    }
  }
  for (int32_t bi = 0; bi < NB; bi++) _mm256_storeu_ps(m + (static_cast<int64_t>(g) * NB + bi) * kLanes, mx[bi]);
}

/** expSumPlain, a row's 8 lanes at a time. */
CTX_WIDE void expSumWide(float* s, int64_t blk, int32_t nc, int32_t lo, int32_t hi, const float* m, double* z) {
  const __m256 mv = _mm256_loadu_ps(m + blk * kLanes);
  __m256d z0 = _mm256_setzero_pd(), z1 = _mm256_setzero_pd();
  for (int32_t j = lo; j < hi; j++) {
    float* row = s + (blk * nc + j) * kLanes;
    const __m256 e = expNonPositive(_mm256_sub_ps(_mm256_loadu_ps(row), mv));
    _mm256_storeu_ps(row, e);
    z0 = _mm256_add_pd(z0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    z1 = _mm256_add_pd(z1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  _mm256_storeu_pd(z + blk * kLanes, _mm256_add_pd(_mm256_loadu_pd(z + blk * kLanes), z0));
  _mm256_storeu_pd(z + blk * kLanes + 4, _mm256_add_pd(_mm256_loadu_pd(z + blk * kLanes + 4), z1));
}

/** votePlain, a row's 8 lanes at a time (as two vectors of 4 doubles). */
CTX_WIDE void voteWide(const float* e, int32_t blocks, int32_t nc, const double* invZ, int32_t lo, int32_t hi, double* vote) {
  for (int32_t j = lo; j < hi; j++) {
    __m256d v = _mm256_setzero_pd();
    for (int32_t blk = 0; blk < blocks; blk++) {
      const __m256 x = _mm256_loadu_ps(e + (static_cast<int64_t>(blk) * nc + j) * kLanes);
      v = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_loadu_pd(invZ + blk * kLanes), v);
      v = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), _mm256_loadu_pd(invZ + blk * kLanes + 4), v);
    }
    alignas(32) double parts[4];
    _mm256_store_pd(parts, v);
    const double sum = (parts[0] + parts[1]) + (parts[2] + parts[3]);
    vote[j] = std::isnan(sum) ? -std::numeric_limits<double>::infinity() : sum;  // NaN keys rank last
  }
}

/** rotateRow for half % 8 == 0, 8 dims at a time (the same float operations, so the same results). */
CTX_WIDE void rotateRowWide(const float* x, const float* c, const float* sn, const RopeRows& rope, int32_t D, float* k) {
  const int32_t half = rope.R / 2;
  const __m256 scale = _mm256_set1_ps(rope.scale);
  for (int32_t d = 0; d < half; d += 8) {
    const __m256 x0 = _mm256_loadu_ps(x + d), x1 = _mm256_loadu_ps(x + d + half);
    const __m256 cv = _mm256_mul_ps(_mm256_loadu_ps(c + d), scale), sv = _mm256_mul_ps(_mm256_loadu_ps(sn + d), scale);
    _mm256_storeu_ps(k + d, _mm256_sub_ps(_mm256_mul_ps(x0, cv), _mm256_mul_ps(x1, sv)));
    _mm256_storeu_ps(k + d + half, _mm256_add_ps(_mm256_mul_ps(x1, cv), _mm256_mul_ps(x0, sv)));
  }
  std::copy(x + rope.R, x + D, k + rope.R);
}
#endif

/**
 * One key row x [D] into k: non-interleaved RoPE over the first R dims by c/sn [R/2] times the
 * scale, as step/rope.ts rotate computes it (the dims past R stay as stored); at unit length for
 * softplus-attention models.
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
      const float cs = c[d] * rope.scale, ss = sn[d] * rope.scale;
      k[d] = x[d] * cs - x[d + half] * ss;
      k[d + half] = x[d + half] * cs + x[d] * ss;
    }
    std::copy(x + rope.R, x + D, k + rope.R);
  }
  if (rope.unitLength) {
    double ss = 0;
    for (int32_t d = 0; d < D; d++) ss += static_cast<double>(k[d]) * k[d];
    const float norm = static_cast<float>(std::sqrt(ss));
    if (norm > 0) for (int32_t d = 0; d < D; d++) k[d] /= norm;
  }
}

/**
 * The k-th largest of v[0, n) (1 ≤ k ≤ n; v ≥ +0, as votes are, so the values order as their bit
 * patterns): a histogram of the bits' top 16 (sign, exponent, 4 mantissa bits) finds the bucket
 * that holds it, then nth_element runs within that bucket only — a few hundred values of ~30K,
 * where nth_element over a copy of all of them took a fifth of a layer's vote at 32K rows.
 */
double kthLargest(const double* v, int32_t n, int32_t k) {
  thread_local std::vector<int32_t> hist;
  thread_local std::vector<double> bucket;
  const auto top16 = [](double x) {
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return static_cast<uint32_t>(b >> 48);
  };
  hist.assign(1 << 16, 0);
  for (int32_t j = 0; j < n; j++) hist[top16(v[j])]++;
  int32_t b = (1 << 16) - 1;
  int32_t above = 0;  // values in buckets above b
  while (above + hist[b] < k) above += hist[b--];
  bucket.clear();
  for (int32_t j = 0; j < n; j++) {
    if (top16(v[j]) == static_cast<uint32_t>(b)) bucket.push_back(v[j]);
  }
  const int32_t r = k - above - 1;  // its rank within the bucket, largest first
  std::nth_element(bucket.begin(), bucket.begin() + r, bucket.end(), std::greater<double>());
  return bucket[r];
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
  const int32_t D = keys.D;
  const int32_t NB = (G + kLanes - 1) / kLanes;
  const int32_t blocks = Hkv * NB;
#ifdef CTX_WIDE_PATH
  const bool wide = wideCpu() && D % 8 == 0 && D <= kWideMaxD && NB <= kWideMaxBlocks;
#else
  const bool wide = false;
#endif
  const std::vector<float> q8 = laneQueries(qbar, Hkv, G, D);
  // Scores [blocks, nc, 8], then their exps in place; the vote [nc].
  thread_local std::vector<float> scores;
  thread_local std::vector<double> vote;
  scores.resize(static_cast<size_t>(blocks) * nc * kLanes);
  vote.resize(nc);
  float* s = scores.data();  // thread_local: the workers reach the caller's buffers through these
  double* vt = vote.data();

  const int32_t n = threadsFor(nc, threads, 2048);
  const int32_t lanes = blocks * kLanes;
  std::vector<float> maxima(static_cast<size_t>(n) * lanes, -std::numeric_limits<float>::infinity());  // [thread, lane]
  std::vector<double> sums(static_cast<size_t>(n) * lanes, 0.0);                                        // [thread, lane]
  Barrier barrier(n);
  std::atomic<int32_t> next[3] = {{0}, {0}, {0}};  // each phase's next chunk
  onThreads(n, [&](int32_t t) {
    // 1. scores, and each lane's maximum over the rows this thread took
    float* mt = &maxima[static_cast<size_t>(t) * lanes];
    forChunks(next[0], nc, kChunkRows, [&](int32_t lo, int32_t hi) {
      for (int32_t g = 0; g < Hkv; g++) {
#ifdef CTX_WIDE_PATH
        if (wide) {
          scoresWide(q8.data(), NB, keys, g, from, nc, lo, hi, s, mt);
          continue;
        }
#endif
        scoresPlain(q8.data(), NB, keys, g, from, nc, lo, hi, s, mt);
      }
    });
    barrier.wait();
    // 2. exp(s − max) in place, and its sum per lane (double)
    std::vector<float> m(lanes, -std::numeric_limits<float>::infinity());
    for (int32_t u = 0; u < n; u++) {
      for (int32_t l = 0; l < lanes; l++) m[l] = std::max(m[l], maxima[static_cast<size_t>(u) * lanes + l]);
    }
    double* zt = &sums[static_cast<size_t>(t) * lanes];
    forChunks(next[1], nc, kChunkRows, [&](int32_t lo, int32_t hi) {
      for (int32_t blk = 0; blk < blocks; blk++) {
#ifdef CTX_WIDE_PATH
        if (wide) {
          expSumWide(s, blk, nc, lo, hi, m.data(), zt);
          continue;
        }
#endif
        expSumPlain(s, blk, nc, lo, hi, m.data(), zt);
      }
    });
    barrier.wait();
    // 3. vote = Σ over heads of e / Z (double); the padding lanes weigh 0
    std::vector<double> invZ(lanes, 0.0);
    for (int32_t l = 0; l < lanes; l++) {
      if ((l / kLanes) % NB * kLanes + l % kLanes >= G) continue;
      double Z = 0;
      for (int32_t u = 0; u < n; u++) Z += sums[static_cast<size_t>(u) * lanes + l];
      invZ[l] = 1.0 / Z;
    }
    forChunks(next[2], nc, kChunkRows, [&](int32_t lo, int32_t hi) {
#ifdef CTX_WIDE_PATH
      if (wide) {
        voteWide(s, blocks, nc, invZ.data(), lo, hi, vt);
        return;
      }
#endif
      votePlain(s, blocks, nc, invZ.data(), lo, hi, vt);
    });
  });

  // The k largest votes, ties to the lower row: τ = the k-th largest vote; every row above τ, and
  // the first rows at τ until there are k — collected in row order, so already ascending.
  const double tau = kthLargest(vt, nc, k);
  int32_t atTau = k - static_cast<int32_t>(std::count_if(vt, vt + nc, [tau](double v) { return v > tau; }));
  top.reserve(k);
  for (int32_t j = 0; j < nc; j++) {
    if (vt[j] > tau || (vt[j] == tau && atTau-- > 0)) top.push_back(from + j);
  }
  return top;
}

/** A gather's rows per thread: its rows are scattered over cold memory, so a second thread pays off early. */
constexpr int64_t kGatherRowsPerThread = 512;

void gatherRotated(const KvHeads& keys, const KvHeads& values, const int32_t* rows, int32_t count, const RopeRows& rope,
                   const std::vector<float*>& outK, const std::vector<float*>& outV, int32_t threads) {
  const int32_t D = keys.D;
  const int32_t half = rope.R / 2;
  const int32_t Hkv = static_cast<int32_t>(keys.heads.size());
  const bool wide = wideCpu() && half % 8 == 0;
  const int32_t n = threadsFor(count, threads, kGatherRowsPerThread);
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
