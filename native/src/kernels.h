// The kernel-set interface: where tensors live and the math on them.
//
// The native backend's host code (device_model.cc: weights; sequence.cc: KV storage and a step's
// layers) is written once, in C++. Every operation on tensor data goes through this interface,
// which has two implementations:
//
//   cpu_kernels.cc      plain C++ loops over host memory, float32 everywhere. Always compiled into
//                       the addon; it makes the whole native path testable without a GPU.
//   cuda/*.cu           CUDA kernels over device memory (ctx_cuda_kernels.so, opened with dlopen only
//                       when a GPU is present). float32 or bf16 weights/activations, fp32 accumulation.
//
// So the two kernel sets differ only in the kernel bodies; the host code is shared.
//
// Conventions
// - "Device pointers": memory returned by alloc(). For the CPU set that is host memory.
// - Every call is asynchronous with respect to the host unless it says otherwise (CUDA: one stream,
//   in order). download() and synchronize() wait.
// - Errors (a failed launch, out of memory) are thrown as std::runtime_error. Both sides are built
//   by the same g++ against the same libstdc++, so the exception crosses the dlopen boundary.
// - Row-major everywhere. A Matrix [rows, cols] is a linear layer's weight [out, in], as stored in
//   the safetensors files; y = x · Wᵀ.
// - Shapes in comments: n = rows of the step, T = key rows, Hq/Hkv = query/KV heads, D = head dim.
//
// The interface crosses a shared-library boundary, so it uses only plain types (no STL).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ctx {

// Bumped whenever this header changes in a way that breaks the vtable; the addon refuses a
// ctx_cuda_kernels.so built from another version.
constexpr int kKernelsAbiVersion = 3;

enum class DType : int32_t { F32 = 0, BF16 = 1 };

inline size_t dtypeSize(DType t) { return t == DType::F32 ? 4 : 2; }
inline const char* dtypeName(DType t) { return t == DType::F32 ? "f32" : "bf16"; }

/** A weight matrix [rows, cols] in device memory, element type `dtype`. */
struct Matrix {
  void* data = nullptr;
  DType dtype = DType::F32;
  int32_t rows = 0;
  int32_t cols = 0;
};

/**
 * Which keys each query row sees, for attention():
 * - ranges == nullptr: causal with an offset, row i sees keys [0, causalOffset + i].
 * - otherwise ranges is a device array [n, 6]: row i sees [a0,a1) ∪ [b0,b1) ∪ [c0,c1)
 *   (empty ranges are [0,0)); keysLo/keysHi bound the union over all rows (a hint to skip tiles).
 */
struct AttentionMask {
  int32_t causalOffset = 0;
  const int32_t* ranges = nullptr;
  int32_t keysLo = 0;
  int32_t keysHi = 0;
};

/** What a kernel set reports about where it runs. */
struct KernelSetInfo {
  char name[128];    // e.g. "host (C++ loops)" or "NVIDIA H100 80GB HBM3 (sm_90)"
  uint64_t totalMemoryBytes;  // device memory (0 for the CPU set)
};

class Kernels {
 public:
  virtual ~Kernels() = default;

  virtual void info(KernelSetInfo* out) const = 0;
  /** Element type of weight matrices and of activations fed to matmul (F32 or BF16). */
  virtual DType computeType() const = 0;
  /** Element type of stored K/V rows. */
  virtual DType kvType() const = 0;

  // ---- memory -------------------------------------------------------------------------------
  virtual void* alloc(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  /** Bytes currently allocated through alloc(), and the most ever allocated at once. */
  virtual size_t bytesInUse() const = 0;
  virtual size_t peakBytes() const = 0;
  virtual void resetPeak() = 0;
  virtual void upload(void* dst, const void* hostSrc, size_t bytes) = 0;
  /** Waits for earlier work, then copies to the host. */
  virtual void download(void* hostDst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void synchronize() = 0;

  /** dst[i] = convert(src[i]) for count elements (F32 <-> BF16, or a plain copy). */
  virtual void convert(void* dst, DType dstType, const void* src, DType srcType, size_t count) = 0;
  /** Fills count elements with offset + scale * u, u uniform in [-1, 1) from a hash of (seed, i). */
  virtual void fillRandom(void* dst, DType type, size_t count, uint64_t seed, float scale, float offset) = 0;

  // ---- row movement ----------------------------------------------------------------------------
  /** dst[r] = src[idx[r]] for r < count; rows of rowBytes bytes (any element type). */
  virtual void gatherRows(void* dst, const void* src, const int32_t* idx, int32_t count, size_t rowBytes) = 0;
  /** dst[idx[r]] = src[r] for r < count. */
  virtual void scatterRows(void* dst, const void* src, const int32_t* idx, int32_t count, size_t rowBytes) = 0;
  /** x[i] += y[i] for count floats. */
  virtual void addInPlace(float* x, const float* y, size_t count) = 0;

  // ---- the transformer's pieces ----------------------------------------------------------------
  /**
   * x[i, :] = table[tokens[i], :], or beaconRow[0, :] where beacon[i] != 0 (beacon may be null).
   * x: [n, hidden] f32. table: [V, hidden]; beaconRow: [1, hidden] (null when the model has none).
   */
  virtual void embed(float* x, const Matrix& table, const Matrix* beaconRow, const int32_t* tokens,
                     const uint8_t* beacon, int32_t n) = 0;

  /** out[i, :] = w * x[i, :] / sqrt(mean(x[i, :]^2) + eps); x [n, dim] f32, out in outType. */
  virtual void rmsnorm(void* out, DType outType, const float* x, const float* w, int32_t n, int32_t dim,
                       float eps) = 0;

  /**
   * C[n, W.rows] = A[n, W.cols] · Wᵀ (+ bias) — or C += that when accumulate.
   * A has element type W.dtype (computeType()); C and bias are f32; accumulation is f32.
   */
  virtual void matmul(float* C, const void* A, const Matrix& W, const float* bias, int32_t n, bool accumulate) = 0;

  /** out[i] = silu(gate[i]) * up[i] for count elements; gate/up f32, out in outType. */
  virtual void swiglu(void* out, DType outType, const float* gate, const float* up, size_t count) = 0;

  /**
   * RoPE (rotate-half layout) of count rows of heads×D values:
   *   row r reads in[rowIdx ? rowIdx[r] : r], rotates each head by angle(positions[r], j),
   *   angle = fround(pos * invFreq[j]), j < D/2:
   *     out[j]       = x[j] * c - x[j + D/2] * s
   *     out[j + D/2] = x[j + D/2] * c + x[j] * s        with c = cos(angle)*scale, s = sin(angle)*scale
   * in/out element types as given; invFreq is a device array [D/2].
   */
  virtual void rope(void* out, DType outType, const void* in, DType inType, const int32_t* rowIdx,
                    const int32_t* positions, int32_t count, int32_t heads, int32_t headDim,
                    const float* invFreq, float scale) = 0;

  /**
   * out[i, h, :] = Σ_j softmax_j(q[i,h]·K[j,g]·scale) V[j,g] over the keys row i sees (mask),
   * g = h / (Hq/Hkv). q: [n, Hq*D] f32 (already rotated); K, V: [T, Hkv*D] in kvType() (K rotated);
   * out: [n, Hq*D] in outType. Every row must see at least one key.
   */
  virtual void attention(void* out, DType outType, const float* q, const void* K, const void* V, int32_t n,
                         int32_t T, int32_t Hq, int32_t Hkv, int32_t D, float scale, const AttentionMask& mask) = 0;

  // ---- TokenSelect ------------------------------------------------------------------------------
  /** qbar[h, :] = (1/n) Σ_i RoPE(q[i, h, :], posStart + i); q [n, Hq*D] f32 (pre-RoPE), qbar [Hq*D]. */
  virtual void meanRotatedQuery(float* qbar, const float* q, int32_t n, int32_t Hq, int32_t D, int32_t posStart,
                                const float* invFreq, float scale) = 0;
  /**
   * The soft vote over candidate keys j in [candLo, candHi) of K [*, Hkv*D] (kvType, pre-RoPE):
   *   vote[j - candLo] = Σ_h softmax_j(qbar_h · K[j, h / (Hq/Hkv)])      (no 1/√D)
   */
  virtual void selectVote(float* vote, const float* qbar, const void* K, int32_t candLo, int32_t candHi,
                          int32_t Hq, int32_t Hkv, int32_t D) = 0;
  /**
   * out[0..k) = indexBase + the k positions of the largest values in vote[0..count), ascending;
   * among equal values the lower position wins. Requires k <= count.
   */
  virtual void topK(int32_t* out, const float* vote, int32_t count, int32_t k, int32_t indexBase) = 0;

  // ---- benchmarks -------------------------------------------------------------------------------
  /** Seconds per C = A·Wᵀ of [m,k]·[n,k]ᵀ on random data in computeType(), averaged over iters. */
  virtual double timeMatmul(int32_t m, int32_t n, int32_t k, int32_t iters) = 0;
};

}  // namespace ctx

// What ctx_cuda_kernels.so exports (C linkage, looked up with dlsym).
extern "C" {
struct CtxCudaDevice {
  char name[256];
  uint64_t totalMemoryBytes;
  uint64_t freeMemoryBytes;
  int32_t major, minor;       // compute capability
  int32_t driverVersion;      // e.g. 13000 for 13.0
  int32_t runtimeVersion;
  int32_t multiprocessors;
};
/** kKernelsAbiVersion of the library. */
typedef int32_t (*CtxCudaAbiVersionFn)();
/** Fills up to max devices; returns the count, or -1 with the reason in err. */
typedef int32_t (*CtxCudaProbeFn)(CtxCudaDevice* out, int32_t max, char* err, size_t errLen);
/** A CUDA kernel set on `device` with computeType dtype (0 f32, 1 bf16); null with the reason in err. */
typedef ctx::Kernels* (*CtxCudaCreateFn)(int32_t device, int32_t dtype, char* err, size_t errLen);
}
