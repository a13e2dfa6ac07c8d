// The AVX2 + FMA + F16C pieces the cpu backend's loops share (select_kernels.cc, attention_rows.cc).
// Functions marked CTX_WIDE are compiled for those extensions whatever the build's target and may be
// called only after wideCpu() said the CPU has them; CTX_WIDE_PATH is defined only where the
// compiler targets x86-64 (elsewhere the callers keep their plain loops).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CTX_WIDE_PATH 1
#define CTX_WIDE __attribute__((target("avx2,fma,f16c")))
#endif

namespace ctx {

/** Whether this CPU runs CTX_WIDE code (AVX2, FMA and F16C); false off x86-64. */
inline bool wideCpu() {
#ifdef CTX_WIDE_PATH
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return ok;
#else
  return false;
#endif
}

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

/** Σ of the 8 lanes of v. */
CTX_WIDE inline float sum8(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

/** max of the 8 lanes of v. */
CTX_WIDE inline float max8(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
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
#endif  // CTX_WIDE_PATH

}  // namespace ctx
