// kiln — CUDA backend, device side: loads and stores of float / half / bfloat16 with float arithmetic, and
// the dtype dispatch .cu files use to instantiate a kernel per element type. Included only by .cu files.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {

__device__ __forceinline__ float to_float(float v) {
  return v;
}
__device__ __forceinline__ float to_float(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// The math kernels evaluate activations with (ops::activate, ops/activation.h). CudaMath is the accurate
// libdevice one (element-wise ops, which the reference checks closely); CudaFastMath takes exp from
// ex2.approx (__expf, ~2 ulp) for epilogues fused into convolutions and normalizations.
struct CudaMath {
  __device__ static float exp(float x) { return expf(x); }
  __device__ static float exp_minus_1(float x) { return expf(x) - 1.f; }
  __device__ static float tanh(float x) { return tanhf(x); }
  __device__ static float log1p(float x) { return log1pf(x); }
};
struct CudaFastMath {
  __device__ static float exp(float x) { return __expf(x); }
  __device__ static float exp_minus_1(float x) { return __expf(x) - 1.f; }
  __device__ static float tanh(float x) { return tanhf(x); }
  __device__ static float log1p(float x) { return log1pf(x); }
};

// Calls f(T{}) with T the device type of a float DType; throws for other dtypes.
template <typename F>
void dispatch_float_type(DType t, F&& f) {
  switch (t) {
    case DType::Float:
      f(float{});
      break;
    case DType::Float16:
      f(__half{});
      break;
    case DType::BFloat16:
      f(__nv_bfloat16{});
      break;
    default:
      throw Error(std::string("CUDA kernel: unsupported dtype ") + dtype_name(t));
  }
}

inline unsigned int blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned int>(b < 1 ? 1 : (b > 1 << 30 ? 1 << 30 : b));
}

// Calls f(U{}) with U the unsigned type of an element's size: for kernels that move elements without
// looking at their values (copies, gathers, Where, MaxUnpool).
template <typename F>
void dispatch_bits(size_t size, F&& f) {
  switch (size) {
    case 1:
      return f(uint8_t{});
    case 2:
      return f(uint16_t{});
    case 4:
      return f(uint32_t{});
    case 8:
      return f(uint64_t{});
    default:
      throw Error("CUDA kernel: unsupported element size " + std::to_string(size));
  }
}

}  // namespace kiln::cuda
