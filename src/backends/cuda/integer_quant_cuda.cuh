// kiln — CUDA backend: the quantization parameters of the integer Conv/MatMul kernels (integer_conv_cuda.cu,
// integer_matmul_cuda.cu) and their requantization, as src/ops/qlinear.cpp defines them.
//
// Every parameter (zero point, scale, bias) is read on the device inside the kernel, so it may be a constant
// or a graph input alike. Its layout is the reference's expand_param rule (src/ops/quantize.cpp): one element
// for all, a 1-D parameter along one axis, or a parameter of the tensor's rank that broadcasts to it. All
// three become strides over the coordinates of the tensor it is expanded over (0 where it does not vary), so
// a kernel finds a parameter's element as the dot product of its coordinates and those strides.
//
// Requantization repeats the reference's double arithmetic operation by operation (IEEE round-to-nearest
// intrinsics, so the compiler contracts nothing into fused multiply-adds):
//   y = saturate(round_half_even((acc + bias) * a_scale * b_scale / y_scale) + y_zero_point), NaN → 0.
// Sums of products are exact in int64 (the reference sums exact whole numbers in double).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda::integer {

// Output spaces have this rank: a kernel's own space (MatMul: batch axes, M, N; Conv: N, M, spatial axes) is
// right-aligned in it, the leading axes of size 1, so that coordinate loops have a fixed length (registers).
constexpr int kMaxRank = 8;

// A parameter's element type, as the kernel loads it.
enum class ParamType : int { None, UInt8, Int8, Int32, Float, Float16, BFloat16 };

inline ParamType param_type(DType t) {
  switch (t) {
    case DType::UInt8:
      return ParamType::UInt8;
    case DType::Int8:
      return ParamType::Int8;
    case DType::Int32:
      return ParamType::Int32;
    case DType::Float:
      return ParamType::Float;
    case DType::Float16:
      return ParamType::Float16;
    case DType::BFloat16:
      return ParamType::BFloat16;
    default:
      return ParamType::None;
  }
}

// One parameter: its device data (null: absent, reads 0) and its strides over the kernel's output space.
struct Param {
  const void* data = nullptr;
  ParamType type = ParamType::None;
  int64_t stride[kMaxRank] = {};
};

// Coordinates of flat index i in a space of `dims` (kMaxRank axes, row-major).
__device__ __forceinline__ void coords_of(int64_t i, const int64_t* dims, int64_t* c) {
#pragma unroll
  for (int k = kMaxRank - 1; k >= 0; --k) {
    c[k] = i % dims[k];
    i /= dims[k];
  }
}

__device__ __forceinline__ int64_t dot(const int64_t* c, const int64_t* stride) {
  int64_t off = 0;
#pragma unroll
  for (int k = 0; k < kMaxRank; ++k) off += c[k] * stride[k];
  return off;
}

// Its value at output coordinates `c`, exactly as a double.
__device__ __forceinline__ double load_param(const Param& p, const int64_t* c) {
  if (p.data == nullptr) return 0.0;
  const int64_t off = dot(c, p.stride);
  switch (p.type) {
    case ParamType::UInt8:
      return static_cast<double>(static_cast<const uint8_t*>(p.data)[off]);
    case ParamType::Int8:
      return static_cast<double>(static_cast<const int8_t*>(p.data)[off]);
    case ParamType::Int32:
      return static_cast<double>(static_cast<const int32_t*>(p.data)[off]);
    case ParamType::Float:
      return static_cast<double>(static_cast<const float*>(p.data)[off]);
    case ParamType::Float16:
      return static_cast<double>(__half2float(static_cast<const __half*>(p.data)[off]));
    case ParamType::BFloat16:
      return static_cast<double>(__bfloat162float(static_cast<const __nv_bfloat16*>(p.data)[off]));
    default:
      return 0.0;
  }
}

// The output's parameters: none for ConvInteger/MatMulInteger (int32 results), all for QLinear*.
struct Requant {
  bool qlinear = false;
  Param a_scale, b_scale, y_scale, y_zp, bias;
};

// The value stored for the exact sum `acc` at output coordinates `c`. Y int32: the sum itself, saturated
// (the reference fails a sum beyond int32; a device kernel cannot, so it saturates). Y 8-bit: requantized.
template <typename Y>
__device__ __forceinline__ Y finish(int64_t acc, const Requant& r, const int64_t* c) {
  constexpr double lo = static_cast<double>(std::numeric_limits<Y>::min());
  constexpr double hi = static_cast<double>(std::numeric_limits<Y>::max());
  double v = static_cast<double>(acc);
  if (r.qlinear) {
    v = __dadd_rn(v, load_param(r.bias, c));
    v = __dmul_rn(v, load_param(r.a_scale, c));
    v = __dmul_rn(v, load_param(r.b_scale, c));
    v = __ddiv_rn(v, load_param(r.y_scale, c));
    v = __dadd_rn(rint(v), load_param(r.y_zp, c));  // rint: half to even
  }
  if (isnan(v)) return Y(0);
  return static_cast<Y>(v < lo ? lo : (v > hi ? hi : v));
}

// ------------------------------------------------------------------------------------------------ host side

inline int64_t volume(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

// Strides of a parameter of `pdims` over a tensor of `dims` by the reference's expand_param rule (axis < 0:
// per tensor or same rank only); false where the reference fails the layout. Axes of size 1 get stride 0.
inline bool param_strides(const std::vector<int64_t>& pdims, const std::vector<int64_t>& dims, int64_t axis,
                          std::vector<int64_t>& strides) {
  const size_t rank = dims.size();
  strides.assign(rank, 0);
  if (volume(pdims) == 1) return true;
  if (pdims.size() == 1 && axis >= 0 && static_cast<size_t>(axis) < rank && pdims[0] == dims[axis]) {
    if (dims[axis] != 1) strides[axis] = 1;
    return true;
  }
  if (pdims.size() != rank) return false;
  int64_t s = 1;
  for (size_t k = rank; k-- > 0;) {
    if (pdims[k] != 1 && pdims[k] != dims[k]) return false;
    if (pdims[k] != 1) strides[k] = s;
    s *= pdims[k];
  }
  return true;
}

// `v` (one value per axis of a space of rank <= kMaxRank) right-aligned into kMaxRank slots, `fill` before.
inline std::vector<int64_t> right_aligned(const std::vector<int64_t>& v, int64_t fill) {
  std::vector<int64_t> out(static_cast<size_t>(kMaxRank) - v.size(), fill);
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

// A Param of dtype `t` with strides over the kMaxRank-slot space (`data` is set at enqueue time).
inline Param make_param(DType t, const std::vector<int64_t>& slot_strides) {
  Param p;
  p.type = param_type(t);
  for (int k = 0; k < kMaxRank; ++k) p.stride[k] = slot_strides[static_cast<size_t>(k)];
  return p;
}

inline bool is_8bit(DType t) {
  return t == DType::UInt8 || t == DType::Int8;
}

// Calls f(T{}) with T the element type of an 8-bit operand.
template <typename F>
void dispatch_8bit(DType t, F&& f) {
  if (t == DType::UInt8)
    f(uint8_t{});
  else if (t == DType::Int8)
    f(int8_t{});
  else
    throw Error(std::string("integer kernel: operand dtype ") + dtype_name(t) + " is not uint8 or int8");
}

// Calls f(Y{}) with Y the output element type: int32 (ConvInteger/MatMulInteger) or 8-bit (QLinear*).
template <typename F>
void dispatch_output(DType t, F&& f) {
  if (t == DType::Int32)
    f(int32_t{});
  else
    dispatch_8bit(t, f);
}

}  // namespace kiln::cuda::integer
