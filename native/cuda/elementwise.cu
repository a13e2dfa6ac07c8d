// Memory-bound kernels of the CUDA kernel set: conversions, row moves, embedding gather, RMSNorm,
// fused SwiGLU, RoPE from a positions vector, and TokenSelect's mean rotated query.
// Contracts (what each computes) are in src/kernels.h; the comments here are about the mapping
// of threads to data.

#include <algorithm>
#include <type_traits>

#include "common.cuh"
#include "random.h"

namespace ctx::cuda {

namespace {

constexpr int kThreads = 256;

/** Enough blocks for a grid-stride loop over count elements, capped. */
unsigned gridFor(size_t count) { return static_cast<unsigned>(std::min<size_t>(ceilDiv(count, kThreads), 65535u * 4u)); }

// ---- conversions and fills ----------------------------------------------------------------------

template <typename To, typename From>
__global__ void convertKernel(To* __restrict__ dst, const From* __restrict__ src, size_t count) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    dst[i] = fromFloat<To>(toFloat(src[i]));
  }
}

template <typename T>
__global__ void fillRandomKernel(T* __restrict__ dst, size_t count, uint64_t seed, float scale, float offset) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    dst[i] = fromFloat<T>(offset + scale * uniformSigned(seed, i));
  }
}

// ---- rows ----------------------------------------------------------------------------------------

/**
 * One block per row r: copies row idx[r] of src to row r of dst (gather), or row r of src to row
 * idx[r] of dst (scatter). Word is the widest unit that divides the row and the pointers.
 */
template <typename Word>
__global__ void moveRowsKernel(char* __restrict__ dst, const char* __restrict__ src, const int32_t* __restrict__ idx,
                               size_t rowBytes, bool scatter) {
  const size_t r = blockIdx.x;
  const size_t from = scatter ? r : static_cast<size_t>(idx[r]);
  const size_t to = scatter ? static_cast<size_t>(idx[r]) : r;
  const Word* s = reinterpret_cast<const Word*>(src + from * rowBytes);
  Word* d = reinterpret_cast<Word*>(dst + to * rowBytes);
  for (size_t w = threadIdx.x; w < rowBytes / sizeof(Word); w += blockDim.x) d[w] = s[w];
}

__global__ void addInPlaceKernel(float* __restrict__ x, const float* __restrict__ y, size_t count) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    x[i] += y[i];
  }
}

// ---- transformer pieces ------------------------------------------------------------------------------

/** One block per row i: x[i, :] = table[tokens[i], :] or the beacon row. */
template <typename T>
__global__ void embedKernel(float* __restrict__ x, const T* __restrict__ table, const T* __restrict__ beaconRow,
                            const int32_t* __restrict__ tokens, const uint8_t* __restrict__ beacon, int32_t dim) {
  const int32_t i = blockIdx.x;
  const bool isBeacon = beacon != nullptr && beacon[i] != 0;
  const T* src = isBeacon ? beaconRow : table + static_cast<size_t>(tokens[i]) * dim;
  for (int32_t j = threadIdx.x; j < dim; j += blockDim.x) x[static_cast<size_t>(i) * dim + j] = toFloat(src[j]);
}

/**
 * One block per row: ss = Σ x², inv = 1/sqrt(ss/dim + eps), out = w · (x · inv).
 * The block sums in f32: each thread a strided partial, then warps, then the block.
 */
template <typename Out>
__global__ void rmsnormKernel(Out* __restrict__ out, const float* __restrict__ x, const float* __restrict__ w,
                              int32_t dim, float eps) {
  __shared__ float partial[32];
  const float* xi = x + static_cast<size_t>(blockIdx.x) * dim;
  float ss = 0;
  for (int32_t j = threadIdx.x; j < dim; j += blockDim.x) ss += xi[j] * xi[j];
  ss = warpSum(ss);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
    v = warpSum(v);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  const float inv = 1.0f / sqrtf(partial[0] / dim + eps);
  Out* o = out + static_cast<size_t>(blockIdx.x) * dim;
  for (int32_t j = threadIdx.x; j < dim; j += blockDim.x) o[j] = fromFloat<Out>(w[j] * (xi[j] * inv));
}

/** out = silu(g) · u = g / (1 + e^-g) · u, elementwise. */
template <typename Out>
__global__ void swigluKernel(Out* __restrict__ out, const float* __restrict__ gate, const float* __restrict__ up,
                             size_t count) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < count; i += size_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = fromFloat<Out>(g / (1.0f + expf(-g)) * up[i]);
  }
}

/**
 * One block per output row r; thread t of heads*D/2 handles the pair (j, j + D/2) of one head:
 *   a = pos · invFreq[j] (f32), c = cos a · scale, s = sin a · scale
 *   out[j] = x[j] c − x[j+D/2] s,  out[j+D/2] = x[j+D/2] c + x[j] s
 */
template <typename Out, typename In>
__global__ void ropeKernel(Out* __restrict__ out, const In* __restrict__ in, const int32_t* __restrict__ rowIdx,
                           const int32_t* __restrict__ positions, int32_t heads, int32_t D,
                           const float* __restrict__ invFreq, float scale) {
  const int32_t r = blockIdx.x;
  const int32_t half = D / 2;
  const size_t width = static_cast<size_t>(heads) * D;
  const In* src = in + static_cast<size_t>(rowIdx ? rowIdx[r] : r) * width;
  Out* dst = out + static_cast<size_t>(r) * width;
  const float pos = static_cast<float>(positions[r]);
  for (int32_t t = threadIdx.x; t < heads * half; t += blockDim.x) {
    const int32_t h = t / half, j = t % half;
    float s, c;
    sincosf(pos * invFreq[j], &s, &c);
    c *= scale;
    s *= scale;
    const float x0 = toFloat(src[h * D + j]), x1 = toFloat(src[h * D + j + half]);
    dst[h * D + j] = fromFloat<Out>(x0 * c - x1 * s);
    dst[h * D + j + half] = fromFloat<Out>(x1 * c + x0 * s);
  }
}

/** Thread per (head, pair j): qbar = (1/n) Σ_i RoPE(q_i, posStart + i), accumulated like the reference. */
__global__ void meanRotatedQueryKernel(float* __restrict__ qbar, const float* __restrict__ q, int32_t n, int32_t Hq,
                                       int32_t D, int32_t posStart, const float* __restrict__ invFreq, float scale) {
  const int32_t half = D / 2;
  const int32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= Hq * half) return;
  const int32_t h = t / half, j = t % half;
  float a0 = 0, a1 = 0;
  for (int32_t i = 0; i < n; i++) {
    float s, c;
    sincosf(static_cast<float>(posStart + i) * invFreq[j], &s, &c);
    c *= scale;
    s *= scale;
    const float* qi = q + static_cast<size_t>(i) * Hq * D + h * D;
    a0 += (qi[j] * c - qi[j + half] * s) / n;
    a1 += (qi[j + half] * c + qi[j] * s) / n;
  }
  qbar[h * D + j] = a0;
  qbar[h * D + j + half] = a1;
}

}  // namespace

// ---- launchers ------------------------------------------------------------------------------------

void launchConvert(void* dst, DType dt, const void* src, DType st, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  if (dt == st) {
    check(cudaMemcpyAsync(dst, src, count * dtypeSize(dt), cudaMemcpyDeviceToDevice, stream), "convert (copy)");
    return;
  }
  withType(dt, [&](auto* to) {
    using To = std::remove_pointer_t<decltype(to)>;
    withType(st, [&](auto* from) {
      using From = std::remove_pointer_t<decltype(from)>;
      convertKernel<To, From><<<gridFor(count), kThreads, 0, stream>>>(static_cast<To*>(dst),
                                                                        static_cast<const From*>(src), count);
    });
  });
  checkLaunch("convert");
}

void launchFillRandom(void* dst, DType t, size_t count, uint64_t seed, float scale, float offset, cudaStream_t stream) {
  if (count == 0) return;
  withType(t, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    fillRandomKernel<T><<<gridFor(count), kThreads, 0, stream>>>(static_cast<T*>(dst), count, seed, scale, offset);
  });
  checkLaunch("fillRandom");
}

void launchGatherRows(void* dst, const void* src, const int32_t* idx, int32_t count, size_t rowBytes, bool scatter,
                      cudaStream_t stream) {
  if (count <= 0) return;
  const auto aligned = [&](size_t a) {
    return rowBytes % a == 0 && reinterpret_cast<uintptr_t>(dst) % a == 0 && reinterpret_cast<uintptr_t>(src) % a == 0;
  };
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  const unsigned threads = 128;
  if (aligned(16)) moveRowsKernel<uint4><<<count, threads, 0, stream>>>(d, s, idx, rowBytes, scatter);
  else if (aligned(4)) moveRowsKernel<uint32_t><<<count, threads, 0, stream>>>(d, s, idx, rowBytes, scatter);
  else moveRowsKernel<uint8_t><<<count, threads, 0, stream>>>(d, s, idx, rowBytes, scatter);
  checkLaunch(scatter ? "scatterRows" : "gatherRows");
}

void launchAddInPlace(float* x, const float* y, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  addInPlaceKernel<<<gridFor(count), kThreads, 0, stream>>>(x, y, count);
  checkLaunch("addInPlace");
}

void launchEmbed(float* x, const Matrix& table, const Matrix* beaconRow, const int32_t* tokens, const uint8_t* beacon,
                 int32_t n, cudaStream_t stream) {
  withType(table.dtype, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    embedKernel<T><<<n, kThreads, 0, stream>>>(x, static_cast<const T*>(table.data),
                                               beaconRow ? static_cast<const T*>(beaconRow->data) : nullptr, tokens,
                                               beacon, table.cols);
  });
  checkLaunch("embed");
}

void launchRmsnorm(void* out, DType outType, const float* x, const float* w, int32_t n, int32_t dim, float eps,
                   cudaStream_t stream) {
  if (n <= 0) return;
  const unsigned threads = dim >= 1024 ? 1024 : dim >= 256 ? 256 : 64;
  withType(outType, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    rmsnormKernel<T><<<n, threads, 0, stream>>>(static_cast<T*>(out), x, w, dim, eps);
  });
  checkLaunch("rmsnorm");
}

void launchSwiglu(void* out, DType outType, const float* gate, const float* up, size_t count, cudaStream_t stream) {
  if (count == 0) return;
  withType(outType, [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    swigluKernel<T><<<gridFor(count), kThreads, 0, stream>>>(static_cast<T*>(out), gate, up, count);
  });
  checkLaunch("swiglu");
}

void launchRope(void* out, DType outType, const void* in, DType inType, const int32_t* rowIdx, const int32_t* positions,
                int32_t count, int32_t heads, int32_t headDim, const float* invFreq, float scale, cudaStream_t stream) {
  if (count <= 0) return;
  const unsigned threads = std::min(256, std::max(32, heads * headDim / 2));
  withType(outType, [&](auto* po) {
    using Out = std::remove_pointer_t<decltype(po)>;
    withType(inType, [&](auto* pi) {
      using In = std::remove_pointer_t<decltype(pi)>;
      ropeKernel<Out, In><<<count, threads, 0, stream>>>(static_cast<Out*>(out), static_cast<const In*>(in), rowIdx,
                                                         positions, heads, headDim, invFreq, scale);
    });
  });
  checkLaunch("rope");
}

void launchMeanRotatedQuery(float* qbar, const float* q, int32_t n, int32_t Hq, int32_t D, int32_t posStart,
                            const float* invFreq, float scale, cudaStream_t stream) {
  const int32_t pairs = Hq * D / 2;
  meanRotatedQueryKernel<<<ceilDiv(pairs, 128), 128, 0, stream>>>(qbar, q, n, Hq, D, posStart, invFreq, scale);
  checkLaunch("meanRotatedQuery");
}

}  // namespace ctx::cuda
