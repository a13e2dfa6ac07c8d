// The CPU kernel set: every operation of kernels.h as plain loops over host memory, with double
// accumulation. It is written for obviousness, not speed: its job is to run the native backend's
// host code (device_model.cc, sequence.cc) in CI, where there is no GPU, so that it can be checked
// against the TypeScript reference backend.
//
// Compute type F32 is the normal mode. BF16 emulates the CUDA bf16 path on the host: weights,
// activations fed to matmul and stored K/V are rounded to bf16 at the same points as on the GPU,
// so it predicts the bf16 path's error (and the GPU tests compare the CUDA bf16 kernels with it).

#include "cpu_kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "dtype.h"
#include "random.h"

namespace ctx {

namespace {

float loadAs(const void* p, DType t, size_t i) {
  return t == DType::F32 ? static_cast<const float*>(p)[i] : bf16ToFloat(static_cast<const uint16_t*>(p)[i]);
}

void storeAs(void* p, DType t, size_t i, float v) {
  if (t == DType::F32) static_cast<float*>(p)[i] = v;
  else static_cast<uint16_t*>(p)[i] = floatToBf16(v);
}

/** p as f32: p itself when it already is, else widened into tmp. */
const float* asF32(const void* p, DType t, size_t count, std::vector<float>& tmp) {
  if (t == DType::F32) return static_cast<const float*>(p);
  tmp.resize(count);
  for (size_t i = 0; i < count; i++) tmp[i] = loadAs(p, t, i);
  return tmp.data();
}

class CpuKernels final : public Kernels {
 public:
  explicit CpuKernels(DType compute) : compute_(compute) {}
  ~CpuKernels() override {
    for (auto& [p, bytes] : sizes_) std::free(p);
  }

  void info(KernelSetInfo* out) const override {
    std::snprintf(out->name, sizeof out->name, "host (C++ loops, %s)",
                  compute_ == DType::F32 ? "f32" : "bf16 emulated");
    out->totalMemoryBytes = 0;
  }
  DType computeType() const override { return compute_; }
  DType kvType() const override { return compute_; }

  // ---- memory ----
  void* alloc(size_t bytes) override {
    void* p = std::malloc(std::max<size_t>(bytes, 1));
    if (!p) throw std::runtime_error("out of memory: cannot allocate " + std::to_string(bytes) + " bytes");
    sizes_[p] = bytes;
    inUse_ += bytes;
    peak_ = std::max(peak_, inUse_);
    return p;
  }
  void release(void* p) override {
    auto it = sizes_.find(p);
    if (it == sizes_.end()) return;
    inUse_ -= it->second;
    sizes_.erase(it);
    std::free(p);
  }
  size_t bytesInUse() const override { return inUse_; }
  size_t peakBytes() const override { return peak_; }
  void resetPeak() override { peak_ = inUse_; }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { std::memmove(dst, src, bytes); }
  void synchronize() override {}

  void convert(void* dst, DType dt, const void* src, DType st, size_t count) override {
    if (dt == st) {
      std::memmove(dst, src, count * dtypeSize(dt));
      return;
    }
    for (size_t i = 0; i < count; i++) storeAs(dst, dt, i, loadAs(src, st, i));
  }

  void fillRandom(void* dst, DType t, size_t count, uint64_t seed, float scale, float offset) override {
    for (size_t i = 0; i < count; i++) storeAs(dst, t, i, offset + scale * uniformSigned(seed, i));
  }

  // ---- rows ----
  void gatherRows(void* dst, const void* src, const int32_t* idx, int32_t count, size_t rowBytes) override {
    for (int32_t r = 0; r < count; r++) {
      std::memcpy(static_cast<char*>(dst) + r * rowBytes, static_cast<const char*>(src) + idx[r] * rowBytes, rowBytes);
    }
  }
  void scatterRows(void* dst, const void* src, const int32_t* idx, int32_t count, size_t rowBytes) override {
    for (int32_t r = 0; r < count; r++) {
      std::memcpy(static_cast<char*>(dst) + idx[r] * rowBytes, static_cast<const char*>(src) + r * rowBytes, rowBytes);
    }
  }
  void addInPlace(float* x, const float* y, size_t count) override {
    for (size_t i = 0; i < count; i++) x[i] += y[i];
  }

  // ---- transformer ----
  void embed(float* x, const Matrix& table, const Matrix* beaconRow, const int32_t* tokens, const uint8_t* beacon,
             int32_t n) override {
    const int32_t dim = table.cols;
    for (int32_t i = 0; i < n; i++) {
      const bool isBeacon = beacon && beacon[i];
      const Matrix& src = isBeacon ? *beaconRow : table;
      const size_t row = isBeacon ? 0 : static_cast<size_t>(tokens[i]);
      for (int32_t j = 0; j < dim; j++) x[static_cast<size_t>(i) * dim + j] = loadAs(src.data, src.dtype, row * dim + j);
    }
  }

  void rmsnorm(void* out, DType outType, const float* x, const float* w, int32_t n, int32_t dim, float eps) override {
    for (int32_t i = 0; i < n; i++) {
      const float* xi = x + static_cast<size_t>(i) * dim;
      double ss = 0;
      for (int32_t j = 0; j < dim; j++) ss += static_cast<double>(xi[j]) * xi[j];
      const float meanSq = static_cast<float>(ss / dim);
      const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(meanSq) + eps));
      for (int32_t j = 0; j < dim; j++) storeAs(out, outType, static_cast<size_t>(i) * dim + j, w[j] * (xi[j] * inv));
    }
  }

  void matmul(float* C, const void* A, const Matrix& W, const float* bias, int32_t n, bool accumulate) override {
    const int32_t in = W.cols, outDim = W.rows;
    // A and W share the compute type (bf16 only in the emulation mode: widened to f32 here).
    std::vector<float> aTmp, wTmp;
    const float* a = asF32(A, W.dtype, static_cast<size_t>(n) * in, aTmp);
    const float* w = asF32(W.data, W.dtype, static_cast<size_t>(outDim) * in, wTmp);
    for (int32_t i = 0; i < n; i++) {
      const float* ai = a + static_cast<size_t>(i) * in;
      for (int32_t o = 0; o < outDim; o++) {
        const float* wo = w + static_cast<size_t>(o) * in;
        double acc = 0;
        for (int32_t k = 0; k < in; k++) acc += static_cast<double>(ai[k]) * wo[k];
        const float v = static_cast<float>(bias ? acc + bias[o] : acc);
        float& c = C[static_cast<size_t>(i) * outDim + o];
        c = accumulate ? c + v : v;
      }
    }
  }

  void swiglu(void* out, DType outType, const float* gate, const float* up, size_t count) override {
    for (size_t i = 0; i < count; i++) {
      const double g = gate[i];
      storeAs(out, outType, i, static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]));
    }
  }

  void rope(void* out, DType outType, const void* in, DType inType, const int32_t* rowIdx, const int32_t* positions,
            int32_t count, int32_t heads, int32_t D, const float* invFreq, float scale) override {
    const int32_t half = D / 2;
    const size_t width = static_cast<size_t>(heads) * D;
    std::vector<double> c(half), s(half);
    for (int32_t r = 0; r < count; r++) {
      const size_t src = static_cast<size_t>(rowIdx ? rowIdx[r] : r) * width;
      const size_t dst = static_cast<size_t>(r) * width;
      for (int32_t j = 0; j < half; j++) {
        const float angle = static_cast<float>(positions[r]) * invFreq[j];
        // cos and sin rounded to f32, then scaled and applied in double (as the reference does).
        c[j] = static_cast<double>(static_cast<float>(std::cos(static_cast<double>(angle)))) * scale;
        s[j] = static_cast<double>(static_cast<float>(std::sin(static_cast<double>(angle)))) * scale;
      }
      for (int32_t h = 0; h < heads; h++) {
        for (int32_t j = 0; j < half; j++) {
          const double x0 = loadAs(in, inType, src + h * D + j);
          const double x1 = loadAs(in, inType, src + h * D + j + half);
          storeAs(out, outType, dst + h * D + j, static_cast<float>(x0 * c[j] - x1 * s[j]));
          storeAs(out, outType, dst + h * D + j + half, static_cast<float>(x1 * c[j] + x0 * s[j]));
        }
      }
    }
  }

  void attention(void* out, DType outType, const float* q, const void* K, const void* V, int32_t n, int32_t T,
                 int32_t Hq, int32_t Hkv, int32_t D, float scale, const AttentionMask& mask) override {
    const int32_t group = Hq / Hkv;
    const size_t kvElems = static_cast<size_t>(T) * Hkv * D;
    std::vector<float> kTmp, vTmp;
    const float* k = asF32(K, compute_, kvElems, kTmp);
    const float* v = asF32(V, compute_, kvElems, vTmp);
    std::vector<double> scores(T);
    std::vector<double> acc(D);
    std::vector<std::pair<int32_t, int32_t>> visible;
    for (int32_t i = 0; i < n; i++) {
      visible.clear();
      if (!mask.ranges) {
        visible.push_back({0, std::min(T, mask.causalOffset + i + 1)});
      } else {
        for (int r = 0; r < 3; r++) {
          const int32_t a = mask.ranges[6 * i + 2 * r], b = mask.ranges[6 * i + 2 * r + 1];
          if (b > a) visible.push_back({a, b});
        }
      }
      for (int32_t h = 0; h < Hq; h++) {
        const float* qi = q + (static_cast<size_t>(i) * Hq + h) * D;
        const int32_t g = h / group;
        double mx = -INFINITY;
        for (auto [a, b] : visible) {
          for (int32_t j = a; j < b; j++) {
            const float* kj = k + (static_cast<size_t>(j) * Hkv + g) * D;
            double dot = 0;
            for (int32_t d = 0; d < D; d++) dot += static_cast<double>(qi[d]) * kj[d];
            scores[j] = dot * scale;
            mx = std::max(mx, scores[j]);
          }
        }
        double sum = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (auto [a, b] : visible) {
          for (int32_t j = a; j < b; j++) {
            const double p = std::exp(scores[j] - mx);
            sum += p;
            const float* vj = v + (static_cast<size_t>(j) * Hkv + g) * D;
            for (int32_t d = 0; d < D; d++) acc[d] += p * vj[d];
          }
        }
        for (int32_t d = 0; d < D; d++) {
          storeAs(out, outType, (static_cast<size_t>(i) * Hq + h) * D + d, static_cast<float>(acc[d] / sum));
        }
      }
    }
  }

  // ---- TokenSelect ----
  void meanRotatedQuery(float* qbar, const float* q, int32_t n, int32_t Hq, int32_t D, int32_t posStart,
                        const float* invFreq, float scale) override {
    std::vector<float> rotated(static_cast<size_t>(n) * Hq * D);
    std::vector<int32_t> pos(n);
    std::iota(pos.begin(), pos.end(), posStart);
    rope(rotated.data(), DType::F32, q, DType::F32, nullptr, pos.data(), n, Hq, D, invFreq, scale);
    // Accumulated in f32, one row at a time, like the reference (qbar += q_i / n).
    for (int32_t c = 0; c < Hq * D; c++) {
      float sum = 0;
      for (int32_t i = 0; i < n; i++) sum = static_cast<float>(sum + static_cast<double>(rotated[static_cast<size_t>(i) * Hq * D + c]) / n);
      qbar[c] = sum;
    }
  }

  void selectVote(float* vote, const float* qbar, const void* K, int32_t candLo, int32_t candHi, int32_t Hq,
                  int32_t Hkv, int32_t D) override {
    const int32_t count = candHi - candLo, group = Hq / Hkv;
    std::vector<float> kTmp;
    const float* k = asF32(K, compute_, static_cast<size_t>(candHi) * Hkv * D, kTmp);
    std::vector<double> logit(count), total(count, 0.0);
    for (int32_t h = 0; h < Hq; h++) {
      const float* qh = qbar + static_cast<size_t>(h) * D;
      const int32_t g = h / group;
      double mx = -INFINITY;
      for (int32_t c = 0; c < count; c++) {
        const float* kj = k + (static_cast<size_t>(candLo + c) * Hkv + g) * D;
        double dot = 0;
        for (int32_t d = 0; d < D; d++) dot += static_cast<double>(qh[d]) * kj[d];
        logit[c] = dot;
        mx = std::max(mx, dot);
      }
      double sum = 0;
      for (int32_t c = 0; c < count; c++) sum += std::exp(logit[c] - mx);
      for (int32_t c = 0; c < count; c++) total[c] += std::exp(logit[c] - mx) / sum;
    }
    for (int32_t c = 0; c < count; c++) vote[c] = static_cast<float>(total[c]);
  }

  void topK(int32_t* out, const float* vote, int32_t count, int32_t k, int32_t indexBase) override {
    if (k > count) throw std::invalid_argument("topK: k exceeds the candidate count");
    std::vector<int32_t> order(count);
    std::iota(order.begin(), order.end(), 0);
    // Larger value first; among equal values, the lower position first.
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return vote[a] > vote[b] || (vote[a] == vote[b] && a < b);
    });
    std::sort(order.begin(), order.begin() + k);
    for (int32_t i = 0; i < k; i++) out[i] = order[i] + indexBase;
  }

  double timeMatmul(int32_t m, int32_t n, int32_t k, int32_t iters) override {
    std::vector<float> a(static_cast<size_t>(m) * k), w(static_cast<size_t>(n) * k), c(static_cast<size_t>(m) * n);
    fillRandom(a.data(), compute_, a.size(), 1, 1, 0);
    fillRandom(w.data(), compute_, w.size(), 2, 1, 0);
    Matrix W{w.data(), compute_, n, k};
    const auto t0 = std::chrono::steady_clock::now();
    for (int32_t i = 0; i < iters; i++) matmul(c.data(), a.data(), W, nullptr, m, false);
    const auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double>(t1 - t0).count() / std::max(iters, 1);
  }

 private:
  DType compute_;
  std::unordered_map<void*, size_t> sizes_;
  size_t inUse_ = 0, peak_ = 0;
};

}  // namespace

std::shared_ptr<Kernels> createCpuKernels(DType computeType) { return std::make_shared<CpuKernels>(computeType); }

}  // namespace ctx
