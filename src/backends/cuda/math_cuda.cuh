// What the CUDA math and signal kernels (cuda.einsum, cuda.det, cuda.dft, cuda.stft, cuda.mel_weight_matrix)
// share: the real dtypes their references compute in double (float, float16, bfloat16, double), and scalar
// operands read on the device. ONNX's node tests feed scalars such as STFT's frame_step or MelWeightMatrix's
// edges as graph inputs, so these kernels read every such scalar from device memory inside the kernel (a
// constant one is uploaded by the executor like any input): one path, whether the scalar is constant or not.
// Included only by .cu files.
#pragma once
#include <cstdint>

#include "backends/cuda/movement_cuda.cuh"
#include "backends/cuda/numeric_cuda.cuh"

namespace kiln::cuda::math {

using movement::factory;
using movement::kThreads;
using movement::LayerDesc;
using movement::TensorView;

// The float dtypes whose reference kernels load into double and round once on store (ops::load_real).
inline bool is_real_dtype(DType t) {
  return t == DType::Float || t == DType::Float16 || t == DType::BFloat16 || t == DType::Double;
}

// Calls f(T{}) with T the device storage type of a real dtype; throws for any other (supports() checks).
template <typename F>
void dispatch_real(DType t, F&& f) {
  switch (t) {
    case DType::Float:
      return f(float{});
    case DType::Float16:
      return f(__half{});
    case DType::BFloat16:
      return f(__nv_bfloat16{});
    case DType::Double:
      return f(double{});
    default:
      throw Error(std::string("CUDA math kernel: unsupported dtype ") + dtype_name(t));
  }
}

// A one-element int32 or int64 operand, present; what the scalar inputs must be to be read on the device.
inline bool is_int_scalar(const LayerDesc::Operand& o) {
  return o.present && (o.dtype == DType::Int32 || o.dtype == DType::Int64) && ops::numel(o.dims) == 1;
}
inline bool is_real_scalar(const LayerDesc::Operand& o) {
  return o.present && is_real_dtype(o.dtype) && ops::numel(o.dims) == 1;
}

// How a device scalar is stored: its element size for integers (4 or 8); for reals one of the codes below.
enum RealCode : int { kRealFloat = 0, kRealHalf = 1, kRealBFloat16 = 2, kRealDouble = 3 };
inline int real_code(DType t) {
  return t == DType::Float16    ? kRealHalf
         : t == DType::BFloat16 ? kRealBFloat16
         : t == DType::Double   ? kRealDouble
                                : kRealFloat;
}

__device__ __forceinline__ int64_t read_int_scalar(const void* p, int size) {
  return size == 4 ? static_cast<int64_t>(*static_cast<const int32_t*>(p)) : *static_cast<const int64_t*>(p);
}

__device__ __forceinline__ double read_real_scalar(const void* p, int code) {
  switch (code) {
    case kRealHalf:
      return load_double(*static_cast<const __half*>(p));
    case kRealBFloat16:
      return load_double(*static_cast<const __nv_bfloat16*>(p));
    case kRealDouble:
      return *static_cast<const double*>(p);
    default:
      return *static_cast<const float*>(p);
  }
}

}  // namespace kiln::cuda::math
