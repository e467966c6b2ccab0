// Shared by the CPU kernels: SIMD function clones and the size at which threading starts to pay.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

// Compiles a function for AVX-512, AVX2 and baseline x86-64; the loader picks the best the CPU has.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KILN_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_SIMD_CLONES
#endif

// After a lambda's parameter list: the lambda is always inlined, so a loop inside it is compiled for the
// SIMD clone that calls it (an out-of-line lambda would be compiled for baseline x86-64 only).
#if defined(__GNUC__)
#define KILN_INLINE_LAMBDA __attribute__((always_inline))
#else
#define KILN_INLINE_LAMBDA
#endif

namespace kiln::backend {
// Below this many elements, starting threads costs more than it saves.
constexpr int64_t kParallelMin = int64_t{1} << 20;

// Calls f(begin, end) over [0, n) split into `threads` contiguous parts when `work` reaches `min_work`.
template <class F>
void parallel_for(int64_t n, int64_t work, int threads, const F& f, int64_t min_work = kParallelMin) {
  const int t = work >= min_work ? static_cast<int>(std::min<int64_t>(threads, n)) : 1;
  if (t <= 1) return f(int64_t{0}, n);
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(t - 1));
  for (int k = 1; k < t; ++k) pool.emplace_back([&, k] { f(n * k / t, n * (k + 1) / t); });
  f(int64_t{0}, n / t);
  for (auto& th : pool) th.join();
}

// e^x for float, branch-free (vectorizable): 2^n · p(r) with r = x − n·ln2, |r| ≤ ln2/2; a degree-6
// polynomial gives ~1 ulp. Inputs are clamped to the finite range; NaN propagates through the arithmetic.
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.3f), 88.7f);
  // Round to nearest by the 1.5·2^23 trick: plain arithmetic, so it vectorizes on every target.
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // Scale by 2^n in two halves so n = 128 (x near the top of the range) does not overflow the exponent.
  const int32_t ni = static_cast<int32_t>(n);
  const int32_t h = ni / 2;
  int32_t b1 = (h + 127) << 23, b2 = (ni - h + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, 4);
  std::memcpy(&s2, &b2, 4);
  return p * s1 * s2;
}

// The math the CPU kernels evaluate activations with (ops::activate): exp_approx keeps their loops
// vectorized; tanh and log1p are libm's.
struct CpuMath {
  static float exp(float x) { return exp_approx(x); }
  static float exp_minus_1(float x) { return exp_approx(x) - 1.f; }
  static float tanh(float x) { return std::tanh(x); }
  static float log1p(float x) { return std::log1p(x); }
};
}  // namespace kiln::backend
