// Device element types for the generic numeric CUDA kernels (numeric_*_cuda.cu): every numeric dtype — bool,
// the signed and unsigned integers, float16, bfloat16, float32, float64 — as a storage type and the type the
// reference computes in (ops/util.h's Ty: half types in float, bool as bool), with the reference's load and
// store (half types round to nearest even once on store; bool stores 0/1 and loads non-zero as true).
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda::numeric {

template <class S, class C, DType D>
struct Num {
  using storage = S;
  using compute = C;
  static constexpr DType dtype = D;
  static constexpr bool is_bool = D == DType::Bool;
  static constexpr bool is_half = D == DType::Float16 || D == DType::BFloat16;
  static constexpr bool is_float = is_half || D == DType::Float || D == DType::Double;
  __device__ __forceinline__ static C load(S v) {
    if constexpr (is_half)
      return to_float(v);
    else if constexpr (is_bool)
      return v != 0;
    else
      return v;
  }
  __device__ __forceinline__ static S store(C v) {
    if constexpr (is_half)
      return from_float<S>(static_cast<float>(v));
    else if constexpr (is_bool)
      return v ? 1 : 0;
    else
      return v;
  }
};

using BoolT = Num<uint8_t, bool, DType::Bool>;
using Int8T = Num<int8_t, int8_t, DType::Int8>;
using Int16T = Num<int16_t, int16_t, DType::Int16>;
using Int32T = Num<int32_t, int32_t, DType::Int32>;
using Int64T = Num<int64_t, int64_t, DType::Int64>;
using UInt8T = Num<uint8_t, uint8_t, DType::UInt8>;
using UInt16T = Num<uint16_t, uint16_t, DType::UInt16>;
using UInt32T = Num<uint32_t, uint32_t, DType::UInt32>;
using UInt64T = Num<uint64_t, uint64_t, DType::UInt64>;
using HalfT = Num<__half, float, DType::Float16>;
using BFloat16T = Num<__nv_bfloat16, float, DType::BFloat16>;
using FloatT = Num<float, float, DType::Float>;
using DoubleT = Num<double, double, DType::Double>;

inline bool is_numeric(DType t) {
  switch (t) {
    case DType::Bool:
    case DType::Int8:
    case DType::Int16:
    case DType::Int32:
    case DType::Int64:
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
    case DType::Float16:
    case DType::BFloat16:
    case DType::Float:
    case DType::Double:
      return true;
    default:
      return false;
  }
}

// Calls f(Num<...>{}) for numeric dtype t; throws for any other.
template <typename F>
void dispatch(DType t, F&& f) {
  switch (t) {
    case DType::Bool:
      return f(BoolT{});
    case DType::Int8:
      return f(Int8T{});
    case DType::Int16:
      return f(Int16T{});
    case DType::Int32:
      return f(Int32T{});
    case DType::Int64:
      return f(Int64T{});
    case DType::UInt8:
      return f(UInt8T{});
    case DType::UInt16:
      return f(UInt16T{});
    case DType::UInt32:
      return f(UInt32T{});
    case DType::UInt64:
      return f(UInt64T{});
    case DType::Float16:
      return f(HalfT{});
    case DType::BFloat16:
      return f(BFloat16T{});
    case DType::Float:
      return f(FloatT{});
    case DType::Double:
      return f(DoubleT{});
    default:
      throw Error(std::string("CUDA numeric kernel: unsupported dtype ") + dtype_name(t));
  }
}

// The unsigned type integer arithmetic on C wraps in (C's promoted type, made unsigned): C++'s signed
// overflow is undefined, and uint16 * uint16 promotes to a signed int that can overflow.
template <class C>
using WrapT = std::make_unsigned_t<decltype(C{} + C{})>;

}  // namespace kiln::cuda::numeric
