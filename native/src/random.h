// The seeded hash behind Kernels::fillRandom, shared by the CPU and CUDA kernel sets so both fill
// the same values for the same (seed, index).
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define CTX_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define CTX_HOST_DEVICE inline
#endif

namespace ctx {

/** splitmix64's finaliser: a well-mixed 64-bit hash of x. */
CTX_HOST_DEVICE uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/** Uniform in [-1, 1) from (seed, i): the top 24 bits of the hash. */
CTX_HOST_DEVICE float uniformSigned(uint64_t seed, uint64_t i) {
  const uint64_t h = mix64(seed * 0x632be59bd9b4e019ull + i);
  return static_cast<float>(h >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

}  // namespace ctx
