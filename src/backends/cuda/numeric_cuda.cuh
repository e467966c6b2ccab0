// CUDA kernels over every numeric dtype (the generators Range / EyeLike / ConstantOfShape / windows, CumSum,
// OneHot's indices): the device type of each dtype, and how a value of it converts as the reference's
// Ty::load / Ty::store do (16-bit floats through float, the rest by C++ casts). Included only by .cu files.
#pragma once
#include <cstdint>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {

template <typename T>
constexpr bool is_device_float_v = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                   std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

// The value of x as a double (16-bit floats widen exactly through float; integers convert as C++ does).
template <typename T>
__device__ __forceinline__ double load_double(T x) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>)
    return static_cast<double>(to_float(x));
  else
    return static_cast<double>(x);
}

// The reference's T::store(T::compute(v)) for a double v: 16-bit floats round through float (twice, as the
// reference does), the others are one C++ cast.
template <typename T>
__device__ __forceinline__ T store_double(double v) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>)
    return from_float<T>(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

// Calls f(T{}) with T the device type of a numeric DType (bool and the non-numeric types throw); `supports`
// of the kernels that use it checks is_numeric_dtype first.
inline bool is_numeric_dtype(DType t) {
  switch (t) {
    case DType::Float:
    case DType::Float16:
    case DType::BFloat16:
    case DType::Double:
    case DType::Int8:
    case DType::Int16:
    case DType::Int32:
    case DType::Int64:
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
      return true;
    default:
      return false;
  }
}

template <typename F>
void dispatch_numeric(DType t, F&& f) {
  switch (t) {
    case DType::Float:
      return f(float{});
    case DType::Float16:
      return f(__half{});
    case DType::BFloat16:
      return f(__nv_bfloat16{});
    case DType::Double:
      return f(double{});
    case DType::Int8:
      return f(int8_t{});
    case DType::Int16:
      return f(int16_t{});
    case DType::Int32:
      return f(int32_t{});
    case DType::Int64:
      return f(int64_t{});
    case DType::UInt8:
      return f(uint8_t{});
    case DType::UInt16:
      return f(uint16_t{});
    case DType::UInt32:
      return f(uint32_t{});
    case DType::UInt64:
      return f(uint64_t{});
    default:
      throw Error(std::string("CUDA kernel: unsupported dtype ") + dtype_name(t));
  }
}

}  // namespace kiln::cuda
