// ctx_cuda_kernels.so: the CUDA kernel set (ctx::Kernels from src/kernels.h) and the three C functions
// the addon looks up with dlsym: ctx_cuda_abi_version, ctx_cuda_probe, ctx_cuda_create_kernels.
//
// Memory: plain cudaMalloc (never managed memory), counted here so ctx can report what it holds and
// its peak. Work: one non-blocking stream per kernel set, so every call is ordered after the last.
// The CUDA runtime is linked statically; it loads the driver (libcuda.so.1) on the first call, so
// this library opens fine on a machine without one and ctx_cuda_probe reports why.

#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "common.cuh"

namespace ctx::cuda {

namespace {

std::string mib(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f MiB", bytes / 1048576.0);
  return buf;
}

class CudaKernels final : public Kernels {
 public:
  CudaKernels(int device, DType compute) : device_(device), compute_(compute) {
    check(cudaSetDevice(device_), "cudaSetDevice");
    check(cudaGetDeviceProperties(&props_, device_), "cudaGetDeviceProperties");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }

  ~CudaKernels() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    for (auto& [p, bytes] : sizes_) cudaFree(p);
    cudaStreamDestroy(stream_);
  }

  void info(KernelSetInfo* out) const override {
    std::snprintf(out->name, sizeof out->name, "%s (sm_%d%d, %s)", props_.name, props_.major, props_.minor,
                  dtypeName(compute_));
    out->totalMemoryBytes = props_.totalGlobalMem;
  }
  DType computeType() const override { return compute_; }
  DType kvType() const override { return compute_; }

  // ---- memory ----
  void* alloc(size_t bytes) override {
    use();
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 256));
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky allocation error
      size_t freeB = 0, totalB = 0;
      cudaMemGetInfo(&freeB, &totalB);
      throw std::runtime_error("out of GPU memory: cannot allocate " + mib(bytes) + " (" + mib(freeB) + " free of " +
                               mib(totalB) + ", ctx holds " + mib(inUse_) + ")");
    }
    std::lock_guard<std::mutex> lock(mu_);
    sizes_[p] = bytes;
    inUse_ += bytes;
    peak_ = std::max(peak_, inUse_);
    return p;
  }
  void release(void* p) override {
    if (!p) return;
    use();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sizes_.find(p);
      if (it == sizes_.end()) return;
      inUse_ -= it->second;
      sizes_.erase(it);
    }
    // cudaFree waits for the device, so work still queued on p finishes first.
    check(cudaFree(p), "cudaFree");
  }
  size_t bytesInUse() const override { return inUse_; }
  size_t peakBytes() const override { return peak_; }
  void resetPeak() override { peak_ = inUse_; }
  void upload(void* dst, const void* src, size_t bytes) override {
    use();
    // From pageable memory this returns once the bytes are staged, so the caller may reuse src.
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
  }
  void download(void* dst, const void* src, size_t bytes) override {
    use();
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    check(cudaStreamSynchronize(stream_), "download (kernels before it)");
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    use();
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copy");
  }
  void synchronize() override {
    use();
    check(cudaStreamSynchronize(stream_), "synchronize (a kernel failed)");
  }

  void convert(void* dst, DType dt, const void* src, DType st, size_t count) override {
    use();
    launchConvert(dst, dt, src, st, count, stream_);
  }
  void fillRandom(void* dst, DType t, size_t count, uint64_t seed, float scale, float offset) override {
    use();
    launchFillRandom(dst, t, count, seed, scale, offset, stream_);
  }

  // ---- rows ----
  void gatherRows(void* dst, const void* src, const int32_t* idx, int32_t count, size_t rowBytes) override {
    use();
    launchGatherRows(dst, src, idx, count, rowBytes, false, stream_);
  }
  void scatterRows(void* dst, const void* src, const int32_t* idx, int32_t count, size_t rowBytes) override {
    use();
    launchGatherRows(dst, src, idx, count, rowBytes, true, stream_);
  }
  void addInPlace(float* x, const float* y, size_t count) override {
    use();
    launchAddInPlace(x, y, count, stream_);
  }

  // ---- transformer ----
  void embed(float* x, const Matrix& table, const Matrix* beaconRow, const int32_t* tokens, const uint8_t* beacon,
             int32_t n) override {
    use();
    launchEmbed(x, table, beaconRow, tokens, beacon, n, stream_);
  }
  void rmsnorm(void* out, DType outType, const float* x, const float* w, int32_t n, int32_t dim, float eps) override {
    use();
    launchRmsnorm(out, outType, x, w, n, dim, eps, stream_);
  }
  void matmul(float* C, const void* A, const Matrix& W, const float* bias, int32_t n, bool accumulate) override {
    use();
    launchMatmul(C, A, W, bias, n, accumulate, stream_);
  }
  void swiglu(void* out, DType outType, const float* gate, const float* up, size_t count) override {
    use();
    launchSwiglu(out, outType, gate, up, count, stream_);
  }
  void rope(void* out, DType outType, const void* in, DType inType, const int32_t* rowIdx, const int32_t* positions,
            int32_t count, int32_t heads, int32_t headDim, const float* invFreq, float scale) override {
    use();
    launchRope(out, outType, in, inType, rowIdx, positions, count, heads, headDim, invFreq, scale, stream_);
  }
  void attention(void* out, DType outType, const float* q, const void* K, const void* V, int32_t n, int32_t T,
                 int32_t Hq, int32_t Hkv, int32_t D, float scale, const AttentionMask& mask) override {
    use();
    const size_t ws = attentionWorkspaceBytes(n, T, Hq, D, props_.multiProcessorCount);
    launchAttention(out, outType, q, K, V, kvType(), n, T, Hq, Hkv, D, scale, mask,
                    static_cast<float*>(workspace(ws)), props_.multiProcessorCount, stream_);
  }

  // ---- TokenSelect ----
  void meanRotatedQuery(float* qbar, const float* q, int32_t n, int32_t Hq, int32_t D, int32_t posStart,
                        const float* invFreq, float scale) override {
    use();
    launchMeanRotatedQuery(qbar, q, n, Hq, D, posStart, invFreq, scale, stream_);
  }
  void selectVote(float* vote, const float* qbar, const void* K, int32_t candLo, int32_t candHi, int32_t Hq,
                  int32_t Hkv, int32_t D) override {
    use();
    const size_t ws = (static_cast<size_t>(Hq) * (candHi - candLo) + 2 * Hq) * sizeof(float);
    launchSelectVote(vote, qbar, K, kvType(), candLo, candHi, Hq, Hkv, D, static_cast<float*>(workspace(ws)), stream_);
  }
  void topK(int32_t* out, const float* vote, int32_t count, int32_t k, int32_t indexBase) override {
    use();
    launchTopK(out, vote, count, k, indexBase, stream_);
  }

  double timeMatmul(int32_t m, int32_t n, int32_t k, int32_t iters) override {
    use();
    const size_t es = dtypeSize(compute_);
    void* a = alloc(static_cast<size_t>(m) * k * es);
    void* w = alloc(static_cast<size_t>(n) * k * es);
    auto* c = static_cast<float*>(alloc(static_cast<size_t>(m) * n * sizeof(float)));
    Matrix W{w, compute_, n, k};
    double seconds = 0;
    try {
      fillRandom(a, compute_, static_cast<size_t>(m) * k, 11, 1.0f, 0.0f);
      fillRandom(w, compute_, static_cast<size_t>(n) * k, 12, 1.0f, 0.0f);
      for (int i = 0; i < 3; i++) launchMatmul(c, a, W, nullptr, m, false, stream_);  // warm up
      cudaEvent_t start, stop;
      check(cudaEventCreate(&start), "cudaEventCreate");
      check(cudaEventCreate(&stop), "cudaEventCreate");
      check(cudaEventRecord(start, stream_), "cudaEventRecord");
      for (int i = 0; i < iters; i++) launchMatmul(c, a, W, nullptr, m, false, stream_);
      check(cudaEventRecord(stop, stream_), "cudaEventRecord");
      check(cudaEventSynchronize(stop), "timeMatmul");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
      cudaEventDestroy(start);
      cudaEventDestroy(stop);
      seconds = ms / 1000.0 / std::max(iters, 1);
    } catch (...) {
      release(a);
      release(w);
      release(c);
      throw;
    }
    release(a);
    release(w);
    release(c);
    return seconds;
  }

 private:
  /** Makes this kernel set's device current on the calling thread (steps run on worker threads). */
  void use() { check(cudaSetDevice(device_), "cudaSetDevice"); }

  /** A grow-only scratch buffer for kernels that need temporary space (split-KV partials, votes). */
  void* workspace(size_t bytes) {
    if (bytes <= workspaceBytes_) return workspace_;
    if (workspace_) release(workspace_);
    workspace_ = nullptr;
    workspaceBytes_ = 0;
    workspace_ = alloc(bytes);
    workspaceBytes_ = bytes;
    return workspace_;
  }

  int device_;
  DType compute_;
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;
  size_t inUse_ = 0, peak_ = 0;
  void* workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
};

void copyError(char* err, size_t len, const std::string& msg) {
  if (!err || len == 0) return;
  std::snprintf(err, len, "%s", msg.c_str());
}

}  // namespace

}  // namespace ctx::cuda

extern "C" {

__attribute__((visibility("default"))) int32_t ctx_cuda_abi_version() { return ctx::kKernelsAbiVersion; }

__attribute__((visibility("default"))) int32_t ctx_cuda_probe(CtxCudaDevice* out, int32_t max, char* err,
                                                              size_t errLen) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    std::string why = cudaGetErrorString(e);
    if (e == cudaErrorInsufficientDriver) {
      why = "no NVIDIA driver found, or it is older than the CUDA " + std::to_string(CUDART_VERSION / 1000) + "." +
            std::to_string(CUDART_VERSION % 1000 / 10) + " runtime ctx was built with (cudaGetDeviceCount: " + why + ")";
    } else if (e == cudaErrorNoDevice) {
      why = "no CUDA-capable GPU is present (cudaGetDeviceCount: " + why + ")";
    } else {
      why = "cudaGetDeviceCount failed: " + why;
    }
    ctx::cuda::copyError(err, errLen, why);
    return -1;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  const int32_t n = std::min<int32_t>(count, max);
  for (int32_t i = 0; i < n; i++) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      ctx::cuda::copyError(err, errLen, "cudaGetDeviceProperties failed for device " + std::to_string(i));
      return -1;
    }
    CtxCudaDevice& d = out[i];
    std::memset(&d, 0, sizeof d);
    std::snprintf(d.name, sizeof d.name, "%s", p.name);
    d.totalMemoryBytes = p.totalGlobalMem;
    size_t freeB = 0, totalB = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&freeB, &totalB) == cudaSuccess) d.freeMemoryBytes = freeB;
    cudaGetLastError();
    d.major = p.major;
    d.minor = p.minor;
    d.driverVersion = driver;
    d.runtimeVersion = runtime;
    d.multiprocessors = p.multiProcessorCount;
  }
  return n;
}

__attribute__((visibility("default"))) ctx::Kernels* ctx_cuda_create_kernels(int32_t device, int32_t dtype, char* err,
                                                                             size_t errLen) {
  try {
    return new ctx::cuda::CudaKernels(device, dtype == 1 ? ctx::DType::BF16 : ctx::DType::F32);
  } catch (const std::exception& e) {
    ctx::cuda::copyError(err, errLen, e.what());
    return nullptr;
  }
}

}  // extern "C"
