// kiln — CUDA backend, device side: the warp / block reductions the row kernels share (reductions, ArgMax,
// Softmax / LogSoftmax / Hardmax, LayerNormalization), and the reduction states they combine. Included only
// by .cu files.
//
// Two launch shapes cover every layout [outer, n, inner] these ops see:
//   - rows (inner == 1, the reduced elements contiguous): a group of LANES threads per row — a warp (LANES
//     32, 8 rows per 256-thread block) for short rows, the whole block (LANES == blockDim.x) for long ones;
//   - columns (inner > 1): a block of (BX, BY) threads, BX adjacent columns (coalesced loads) and BY threads
//     splitting each column's n elements, combined through shared memory.
// Every combine is a fixed tree, so results do not depend on scheduling (no atomics).
#pragma once
#include <cstdint>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda::rowred {

constexpr int kBlock = 256;  // threads per block of every launch shape here
constexpr unsigned kFullMask = 0xffffffffu;

// Accumulator-type math: float for fp32/fp16/bf16 data, double for float64 data.
__device__ __forceinline__ float acc_exp(float v) {
  return expf(v);
}
__device__ __forceinline__ double acc_exp(double v) {
  return exp(v);
}
__device__ __forceinline__ float acc_max(float a, float b) {
  return fmaxf(a, b);
}
__device__ __forceinline__ double acc_max(double a, double b) {
  return fmax(a, b);
}
__device__ __forceinline__ float acc_min(float a, float b) {
  return fminf(a, b);
}
__device__ __forceinline__ double acc_min(double a, double b) {
  return fmin(a, b);
}

// Running maximum and sum of exp(v - max) (LogSumExp, Softmax): one exp per element, no overflow.
template <class A>
struct MaxExpSumT {
  A m, s;
};
using MaxExpSum = MaxExpSumT<float>;
// Best value and its index (ArgMax / ArgMin / Hardmax); index -1: no element seen.
template <class A>
struct ArgBestT {
  A v;
  long long i;
};
using ArgBest = ArgBestT<float>;

__device__ __forceinline__ float shfl_down(float v, int off) {
  return __shfl_down_sync(kFullMask, v, off);
}
__device__ __forceinline__ double shfl_down(double v, int off) {
  return __shfl_down_sync(kFullMask, v, off);
}
template <class A>
__device__ __forceinline__ MaxExpSumT<A> shfl_down(MaxExpSumT<A> v, int off) {
  return {__shfl_down_sync(kFullMask, v.m, off), __shfl_down_sync(kFullMask, v.s, off)};
}
template <class A>
__device__ __forceinline__ ArgBestT<A> shfl_down(ArgBestT<A> v, int off) {
  return {__shfl_down_sync(kFullMask, v.v, off), __shfl_down_sync(kFullMask, v.i, off)};
}
__device__ __forceinline__ float shfl_first(float v) {
  return __shfl_sync(kFullMask, v, 0);
}
__device__ __forceinline__ double shfl_first(double v) {
  return __shfl_sync(kFullMask, v, 0);
}
template <class A>
__device__ __forceinline__ MaxExpSumT<A> shfl_first(MaxExpSumT<A> v) {
  return {__shfl_sync(kFullMask, v.m, 0), __shfl_sync(kFullMask, v.s, 0)};
}
template <class A>
__device__ __forceinline__ ArgBestT<A> shfl_first(ArgBestT<A> v) {
  return {__shfl_sync(kFullMask, v.v, 0), __shfl_sync(kFullMask, v.i, 0)};
}

// ------------------------------------------------------------------------------------ states and combines
template <class A = float>
__device__ __forceinline__ MaxExpSumT<A> max_exp_sum_init() {
  return {A(-INFINITY), A(0)};
}
// A -inf element adds exp(-inf) = 0; skipping it avoids exp(-inf - -inf) = NaN while the state is empty.
template <class A>
__device__ __forceinline__ void max_exp_sum_add(MaxExpSumT<A>& a, A v) {
  if (v == A(-INFINITY)) return;
  if (v > a.m) {
    a.s = a.s * acc_exp(a.m - v) + A(1);
    a.m = v;
  } else {
    a.s += acc_exp(v - a.m);
  }
}
template <class A>
__device__ __forceinline__ void max_exp_sum_merge(MaxExpSumT<A>& a, const MaxExpSumT<A>& b) {
  if (b.m == A(-INFINITY)) return;
  if (a.m == A(-INFINITY)) {
    a = b;
    return;
  }
  const A m = acc_max(a.m, b.m);
  a.s = a.s * acc_exp(a.m - m) + b.s * acc_exp(b.m - m);
  a.m = m;
}

template <class A>
struct MaxExpSumOpT {
  __device__ MaxExpSumT<A> init() const { return max_exp_sum_init<A>(); }
  __device__ void combine(MaxExpSumT<A>& a, const MaxExpSumT<A>& b) const { max_exp_sum_merge(a, b); }
};
using MaxExpSumOp = MaxExpSumOpT<float>;

// The reference's rule: the first best element (`last`: the last one) wins; strict comparisons, so a NaN
// never replaces a number (NaN inputs are not otherwise matched to the reference).
template <class A>
struct ArgBestOpT {
  bool is_max, last;
  __device__ ArgBestT<A> init() const { return {A(is_max ? -INFINITY : INFINITY), -1}; }
  __device__ bool better(const ArgBestT<A>& b, const ArgBestT<A>& a) const {
    if (b.i < 0) return false;
    if (a.i < 0) return true;
    if (is_max ? b.v > a.v : b.v < a.v) return true;
    return b.v == a.v && (last ? b.i > a.i : b.i < a.i);
  }
  __device__ void add(ArgBestT<A>& a, A v, long long i) const {
    const ArgBestT<A> b{v, i};
    if (better(b, a)) a = b;
  }
  __device__ void combine(ArgBestT<A>& a, const ArgBestT<A>& b) const {
    if (better(b, a)) a = b;
  }
};
using ArgBestOp = ArgBestOpT<float>;

struct SumOp {
  __device__ float init() const { return 0.f; }
  __device__ void combine(float& a, float b) const { a += b; }
};

// ------------------------------------------------------------------------------------ group reductions
template <class S, class Op>
__device__ __forceinline__ S warp_reduce(S s, const Op& op) {
  for (int off = 16; off > 0; off >>= 1) op.combine(s, shfl_down(s, off));
  return s;
}

// Reduces `s` over a group of LANES threads (32: one warp; otherwise the whole block, blockDim.x == LANES)
// and returns the result to every thread of the group. Every thread of the group must call it.
template <int LANES, class S, class Op>
__device__ __forceinline__ S group_reduce(S s, const Op& op) {
  static_assert(LANES == 32 || (LANES % 32 == 0 && LANES <= 1024), "a warp or a whole block");
  s = warp_reduce(s, op);
  if constexpr (LANES == 32) {
    return shfl_first(s);
  } else {
    __shared__ S partial[LANES / 32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) partial[warp] = s;
    __syncthreads();
    if (warp == 0) {
      s = lane < LANES / 32 ? partial[lane] : op.init();
      s = warp_reduce(s, op);
      if (lane == 0) partial[0] = s;
    }
    __syncthreads();
    s = partial[0];
    __syncthreads();  // the caller may reduce again right away
    return s;
  }
}

// Reduces `s` over threadIdx.y of a (kBlock / BY, BY) block and returns each column's result to all of its
// threads. Every thread of the block must call it.
template <int BY, class S, class Op>
__device__ __forceinline__ S column_reduce(S s, const Op& op) {
  if constexpr (BY == 1) {
    return s;
  } else {
    constexpr int BX = kBlock / BY;
    __shared__ S part[BY][BX];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    for (int k = BY / 2; k > 0; k >>= 1) {
      if (static_cast<int>(threadIdx.y) < k)
        op.combine(part[threadIdx.y][threadIdx.x], part[threadIdx.y + k][threadIdx.x]);
      __syncthreads();
    }
    s = part[0][threadIdx.x];
    __syncthreads();  // the caller may reduce again right away
    return s;
  }
}

// Grid size for `work` independent units, capped (the kernels loop over the rest).
inline unsigned int grid_for_units(int64_t work) {
  const int64_t cap = int64_t{1} << 20;
  return static_cast<unsigned int>(work < 1 ? 1 : (work > cap ? cap : work));
}

}  // namespace kiln::cuda::rowred
