// Shared by the CPU kernels: SIMD function clones and the size at which threading starts to pay.
#pragma once
#include <cstdint>

// Compiles a function for AVX-512, AVX2 and baseline x86-64; the loader picks the best the CPU has.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define KILN_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_SIMD_CLONES
#endif

namespace kiln::backend {
// Below this many elements, starting threads costs more than it saves.
constexpr int64_t kParallelMin = int64_t{1} << 20;
}  // namespace kiln::backend
