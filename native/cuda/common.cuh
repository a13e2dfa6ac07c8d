// Shared pieces of the CUDA kernel set: error checks, element loads/stores for f32 and bf16, warp
// reductions, and the PTX wrappers for the tensor-core path (cp.async, ldmatrix, mma.sync).
// Every launcher declared at the bottom is implemented in one of the .cu files beside this one and
// called by cuda_kernels.cu, which implements ctx::Kernels (src/kernels.h).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels.h"

namespace ctx::cuda {

using bf16 = __nv_bfloat16;

// ---- errors ---------------------------------------------------------------------------------------

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

/** After a launch: a bad configuration shows up here; faults show up at the next synchronize. */
inline void checkLaunch(const char* kernel) { check(cudaGetLastError(), kernel); }

inline unsigned ceilDiv(size_t a, size_t b) { return static_cast<unsigned>((a + b - 1) / b); }

// ---- elements -------------------------------------------------------------------------------------

__device__ __forceinline__ float toFloat(float v) { return v; }
__device__ __forceinline__ float toFloat(bf16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T fromFloat(float v);
template <>
__device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ bf16 fromFloat<bf16>(float v) { return __float2bfloat16_rn(v); }

/** Calls f with a null pointer of the C++ type that DType t names (dispatch on the element type). */
template <typename F>
void withType(DType t, F&& f) {
  if (t == DType::F32) f(static_cast<float*>(nullptr));
  else f(static_cast<bf16*>(nullptr));
}

// ---- reductions -----------------------------------------------------------------------------------

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// ---- tensor-core PTX (sm_80+) ---------------------------------------------------------------------

/** 16-byte async copy global -> shared; copies zeros instead when !valid (src is then not read). */
__device__ __forceinline__ void cpAsync16(void* smem, const void* gmem, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int Pending>
__device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

/** Four 8×8 b16 matrices from shared memory; lane l gives the address of row l%8 of matrix l/8. */
__device__ __forceinline__ void ldmatrixX4(unsigned (&r)[4], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
/** The same, each matrix transposed. */
__device__ __forceinline__ void ldmatrixX4Trans(unsigned (&r)[4], const void* smem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

/**
 * d[16×8] += a[16×16] · b[16×8], bf16 inputs, f32 accumulation (one warp).
 * Fragments (g = lane/4, t = lane%4):
 *   a: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
 *   b: b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
 *   d: d0,d1 = D[g][2t..2t+1], d2,d3 = D[g+8][2t..2t+1]
 */
__device__ __forceinline__ void mmaBf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/** Two floats -> one register of two bf16 (lo in the low half, as the mma fragments expect). */
__device__ __forceinline__ unsigned packBf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned*>(&v);
}

// ---- launchers (host functions; all run on `stream`) ----------------------------------------------

// elementwise.cu
void launchConvert(void* dst, DType dt, const void* src, DType st, size_t count, cudaStream_t stream);
void launchFillRandom(void* dst, DType t, size_t count, uint64_t seed, float scale, float offset, cudaStream_t stream);
void launchGatherRows(void* dst, const void* src, const int32_t* idx, int32_t count, size_t rowBytes, bool scatter,
                      cudaStream_t stream);
void launchAddInPlace(float* x, const float* y, size_t count, cudaStream_t stream);
void launchEmbed(float* x, const Matrix& table, const Matrix* beaconRow, const int32_t* tokens, const uint8_t* beacon,
                 int32_t n, cudaStream_t stream);
void launchRmsnorm(void* out, DType outType, const float* x, const float* w, int32_t n, int32_t dim, float eps,
                   cudaStream_t stream);
void launchSwiglu(void* out, DType outType, const float* gate, const float* up, size_t count, cudaStream_t stream);
void launchRope(void* out, DType outType, const void* in, DType inType, const int32_t* rowIdx, const int32_t* positions,
                int32_t count, int32_t heads, int32_t headDim, const float* invFreq, float scale, cudaStream_t stream);
void launchMeanRotatedQuery(float* qbar, const float* q, int32_t n, int32_t Hq, int32_t D, int32_t posStart,
                            const float* invFreq, float scale, cudaStream_t stream);

// gemm.cu
void launchMatmul(float* C, const void* A, const Matrix& W, const float* bias, int32_t n, bool accumulate,
                  cudaStream_t stream);

// attention.cu. `workspace` holds split-KV partial results: see attentionWorkspaceBytes.
size_t attentionWorkspaceBytes(int32_t n, int32_t T, int32_t Hq, int32_t D, int32_t multiprocessors);
void launchAttention(void* out, DType outType, const float* q, const void* K, const void* V, DType kvType, int32_t n,
                     int32_t T, int32_t Hq, int32_t Hkv, int32_t D, float scale, const AttentionMask& mask,
                     float* workspace, int32_t multiprocessors, cudaStream_t stream);

// select.cu. `workspace` holds Hq * count + 2 * Hq floats.
void launchSelectVote(float* vote, const float* qbar, const void* K, DType kvType, int32_t candLo, int32_t candHi,
                      int32_t Hq, int32_t Hkv, int32_t D, float* workspace, cudaStream_t stream);
void launchTopK(int32_t* out, const float* vote, int32_t count, int32_t k, int32_t indexBase, cudaStream_t stream);

}  // namespace ctx::cuda
