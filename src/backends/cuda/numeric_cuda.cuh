// CUDA kernels over every numeric dtype (the generators Range / EyeLike / ConstantOfShape / windows, CumSum,
// OneHot's indices): the device type of each dtype, and how a value of it converts as the reference's
// Ty::load / Ty::store do (16-bit floats through float, the rest by C++ casts). Included only by .cu files.
#pragma once
#include <cstdint>

#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/numeric_types_cuda.cuh"

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

// Calls f(T{}) with T the device storage type of a numeric DType other than bool (numeric_types_cuda.cuh's
// table, the one list of numeric dtypes); throws for the others. `supports` of the kernels that use it checks
// is_numeric_dtype first.
inline bool is_numeric_dtype(DType t) {
  return t != DType::Bool && numeric::is_numeric(t);
}

template <typename F>
void dispatch_numeric(DType t, F&& f) {
  if (!is_numeric_dtype(t)) throw Error(std::string("CUDA kernel: unsupported dtype ") + dtype_name(t));
  numeric::dispatch(t, [&](auto n) {
    using N = decltype(n);
    if constexpr (!N::is_bool) f(typename N::storage{});
  });
}

}  // namespace kiln::cuda
