// kiln — helpers shared by the indexing ops (GatherElements, ScatterElements, GatherND, ScatterND, ...):
// index validation and the scatter reductions.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>

#include "ops/util.h"

namespace kiln::ops {

// Fails unless `t` (the dtype of input `what`) is int32/int64 or not yet known.
template <class Ctx>
void require_index_dtype(const Ctx& ctx, DType t, const char* what) {
  if (t != DType::Undefined && t != DType::Int32 && t != DType::Int64)
    ctx.fail(std::string(what) + " must be int32 or int64, got " + dtype_name(t));
}

// Element j of the index tensor `idx` (input `what`) as a position on an axis of size n: negative values
// count from the end; anything outside [-n, n) fails naming the input, the element and the range.
inline int64_t checked_index(const KernelContext& ctx, const TensorData& idx, int64_t j, int64_t n,
                             const char* what) {
  const int64_t k = idx.as_int64(j);
  if (k < -n || k >= n)
    ctx.fail(std::string(what) + " element " + std::to_string(j) + " is " + std::to_string(k) +
             ", out of range for an axis of size " + std::to_string(n));
  return k < 0 ? k + n : k;
}

// An int64/int32 scalar operand (0-D or one element), e.g. CumSum's axis or Trilu's k.
inline int64_t scalar_operand(const KernelContext& ctx, size_t k, const char* what) {
  const TensorData& t = ctx.input(k);
  if (t.numel() != 1)
    ctx.fail(std::string(what) + " must hold exactly one value, got " + std::to_string(t.numel()));
  if (t.dtype() != DType::Int64 && t.dtype() != DType::Int32)
    ctx.fail(std::string(what) + " must be int32 or int64, got " + dtype_name(t.dtype()));
  return t.as_int64(0);
}

// How many blocks of n x inner elements a tensor of `total` elements holds along an axis (0 when it is
// empty).
inline int64_t outer_count(int64_t total, int64_t n, int64_t inner) {
  return n != 0 && inner != 0 ? total / (n * inner) : 0;
}

// A tensor seen along its optional `axis` attribute (absent: flattened to 1-D, as Compress and Unique read it):
// n elements along the axis, blocks of `inner` after it, `outer` of those before it.
struct AxisSplit {
  std::vector<int64_t> dims;
  int64_t axis = 0, n = 0, inner = 0, outer = 0;
};
template <class Ctx>
AxisSplit split_at_optional_axis(const Ctx& ctx, const TensorData& x) {
  AxisSplit s;
  const bool has_axis = ctx.node.attrs.has("axis");
  s.dims = has_axis ? x.dims() : std::vector<int64_t>{x.numel()};
  s.axis = has_axis ? normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), x.rank()) : 0;
  s.n = s.dims[static_cast<size_t>(s.axis)];
  s.inner = numel({s.dims.begin() + s.axis + 1, s.dims.end()});
  s.outer = outer_count(x.numel(), s.n, s.inner);
  return s;
}

// a < b on element type T's compute values, with NaN ordered above every number and equal to NaN: a strict
// weak order (std::sort's requirement) even when NaNs occur.
template <class T>
bool total_less(typename T::compute a, typename T::compute b) {
  if constexpr (T::is_float) {
    if (std::isnan(a) || std::isnan(b)) return !std::isnan(a) && std::isnan(b);
  }
  return a < b;
}

enum class Reduction { None, Add, Mul, Max, Min };

template <class Ctx>
Reduction read_reduction(const Ctx& ctx) {
  const std::string r = ctx.node.attrs.get_string("reduction", "none");
  if (r == "none") return Reduction::None;
  if (r == "add") return Reduction::Add;
  if (r == "mul") return Reduction::Mul;
  if (r == "max") return Reduction::Max;
  if (r == "min") return Reduction::Min;
  ctx.fail("unknown reduction '" + r + "' (expected none, add, mul, max or min)");
}

// `a` combined with the update `b` under reduction r, on the element type T. Integer add/mul wrap (two's
// complement, computed in uint64) instead of overflowing; bools add as OR and multiply as AND.
template <class T>
typename T::storage reduce_into(Reduction r, typename T::storage a, typename T::storage b) {
  using S = typename T::storage;
  if (r == Reduction::None) return b;
  if constexpr (T::is_float || T::is_bool) {
    const auto x = T::load(a), y = T::load(b);
    switch (r) {
      case Reduction::Add:
        return T::store(T::is_bool ? (x || y) : x + y);
      case Reduction::Mul:
        return T::store(T::is_bool ? (x && y) : x * y);
      case Reduction::Max:
        return T::store(std::max(x, y));
      default:
        return T::store(std::min(x, y));
    }
  } else {
    switch (r) {
      case Reduction::Add:
        return static_cast<S>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
      case Reduction::Mul:
        return static_cast<S>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
      case Reduction::Max:
        return std::max(a, b);
      default:
        return std::min(a, b);
    }
  }
}

}  // namespace kiln::ops
