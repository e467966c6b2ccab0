// kiln — helpers shared by the op implementations: broadcasting, axes, dtype dispatch, indexing, attributes.
#pragma once
#include <cstring>
#include <optional>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include "ops/op.h"

namespace kiln::ops {

constexpr int kVariadic = 1 << 20;   // max_inputs/max_outputs of variadic ops
constexpr int64_t kLatestOpset = 18;  // what a graph without an opset import is read as

// ------------------------------------------------------------------------------------------- shapes
// Shape of input k: the declared shape, else the dims of its known value.
std::optional<Shape> in_shape(const InferContext& ctx, size_t k);
// Numpy broadcasting of shapes. Symbolic dims survive when they meet 1 or the same symbol; a symbol
// meeting a static size > 1 becomes that size (the only size it can legally have). nullopt if any rank
// is unknown. Incompatible static sizes fail naming the node.
std::optional<Shape> broadcast_shapes(const InferContext& ctx, const std::vector<std::optional<Shape>>& shapes);
std::vector<int64_t> broadcast_dims(const KernelContext& ctx, const std::vector<std::vector<int64_t>>& dims);
int64_t numel(const std::vector<int64_t>& dims);
// Whether the static dims of `shape` (unknown ones skipped) have an element count and byte size that fit in 64
// bits: the check every inferred shape and every graph input passes.
bool static_size_fits(DType dtype, const Shape& shape);
std::vector<int64_t> strides_of(const std::vector<int64_t>& dims);
// Strides to read an input of `in_dims` broadcast to `out_dims` (0 along broadcast dims).
std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims);
// ------------------------------------------------------ index math shared by references and backends
// Slicing a dim of size n from start to end by step (ONNX Slice): the clamped start and the element count.
// Negative bounds count from the end; forward steps clamp to [0, n], backward steps to [-1, n-1].
std::pair<int64_t, int64_t> slice_range(int64_t start, int64_t end, int64_t step, int64_t n);
// Resize: the input coordinate of output coordinate x along an axis of `in` -> `out` elements at `scale`, for
// coordinate_transformation_mode `mode`; nullopt for a mode kiln does not know.
std::optional<double> resize_source_coord(const std::string& mode, double x, int64_t in, int64_t out, double scale,
                                          double roi_start = 0, double roi_end = 1);
// Resize nearest_mode: the input index of coordinate x ("simple" is Upsample's and Resize-10's rule: truncate
// when upsampling, ceil when downsampling); nullopt for an unknown mode.
std::optional<int64_t> resize_nearest_index(const std::string& mode, double x, bool down);
// Shape from dims; -1 entries become unknown dims.
Shape dims_to_shape(const std::vector<int64_t>& dims);

// Calls f(index) for every multi-index of `dims` in row-major order (once for a scalar, never if empty).
template <class F>
void for_each_index(const std::vector<int64_t>& dims, F&& f) {
  for (int64_t d : dims)
    if (d == 0) return;
  std::vector<int64_t> idx(dims.size(), 0);
  while (true) {
    f(static_cast<const std::vector<int64_t>&>(idx));
    int64_t k = static_cast<int64_t>(dims.size()) - 1;
    for (; k >= 0; --k) {
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
    if (k < 0) return;
  }
}

inline int64_t dot(const std::vector<int64_t>& idx, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (size_t k = 0; k < idx.size(); ++k) off += idx[k] * strides[k];
  return off;
}

// The `output_datatype` attribute of the signal ops (windows, MelWeightMatrix): a numeric dtype, float by default.
template <class Ctx>
DType output_datatype(const Ctx& ctx) {
  const DType dt = static_cast<DType>(ctx.node.attrs.get_int("output_datatype", static_cast<int64_t>(DType::Float)));
  if (dtype_size(dt) == 0 || dt == DType::Bool)
    ctx.fail("output_datatype " + std::to_string(static_cast<int>(dt)) + " is not a numeric type");
  return dt;
}

// Axis in [-rank, rank) → [0, rank); anything else fails with a message naming the axis and the rank.
template <class Ctx>
int64_t normalize_axis(const Ctx& ctx, int64_t axis, int64_t rank, const char* what = "axis") {
  if (axis < -rank || axis >= rank)
    ctx.fail(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}
template <class Ctx>
std::vector<int64_t> normalize_axes(const Ctx& ctx, std::vector<int64_t> axes, int64_t rank, const char* what = "axes") {
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& a : axes) {
    a = normalize_axis(ctx, a, rank, what);
    if (seen[a]) ctx.fail(std::string(what) + " repeats axis " + std::to_string(a));
    seen[a] = true;
  }
  return axes;
}

// ------------------------------------------------------------------------------------ dtype dispatch
// One element type: how it is stored and the type arithmetic uses (half types compute in float).
template <class S, class C, DType D>
struct Ty {
  using storage = S;
  using compute = C;
  static constexpr DType dtype = D;
  static C load(S v) {
    if constexpr (D == DType::Float16) return half_to_float(v);
    else if constexpr (D == DType::BFloat16) return bfloat16_to_float(v);
    else if constexpr (D == DType::Bool) return v != 0;
    else return static_cast<C>(v);
  }
  static S store(C v) {
    if constexpr (D == DType::Float16) return float_to_half(static_cast<float>(v));
    else if constexpr (D == DType::BFloat16) return float_to_bfloat16(static_cast<float>(v));
    else if constexpr (D == DType::Bool) return v ? 1 : 0;
    else return static_cast<S>(v);
  }
  static constexpr bool is_float = D == DType::Float || D == DType::Double || D == DType::Float16 || D == DType::BFloat16;
  static constexpr bool is_bool = D == DType::Bool;
  static constexpr bool is_signed = is_float || std::is_signed_v<S>;
};

// Calls f(Ty<...>{}) for the tensor element type `t`; other types (string, complex) fail naming the dtype.
template <class Ctx, class F>
void dispatch(const Ctx& ctx, DType t, F&& f) {
  switch (t) {
    case DType::Float: return f(Ty<float, float, DType::Float>{});
    case DType::Double: return f(Ty<double, double, DType::Double>{});
    case DType::Float16: return f(Ty<uint16_t, float, DType::Float16>{});
    case DType::BFloat16: return f(Ty<uint16_t, float, DType::BFloat16>{});
    case DType::Int8: return f(Ty<int8_t, int8_t, DType::Int8>{});
    case DType::Int16: return f(Ty<int16_t, int16_t, DType::Int16>{});
    case DType::Int32: return f(Ty<int32_t, int32_t, DType::Int32>{});
    case DType::Int64: return f(Ty<int64_t, int64_t, DType::Int64>{});
    case DType::UInt8: return f(Ty<uint8_t, uint8_t, DType::UInt8>{});
    case DType::UInt16: return f(Ty<uint16_t, uint16_t, DType::UInt16>{});
    case DType::UInt32: return f(Ty<uint32_t, uint32_t, DType::UInt32>{});
    case DType::UInt64: return f(Ty<uint64_t, uint64_t, DType::UInt64>{});
    case DType::Bool: return f(Ty<uint8_t, bool, DType::Bool>{});
    default: ctx.fail(std::string("unsupported dtype ") + dtype_name(t));
  }
}

template <class Ctx>
[[noreturn]] void unsupported(const Ctx& ctx, DType t) {
  ctx.fail(std::string("unsupported dtype ") + dtype_name(t));
}

// Calls f(type tag) for floating-point dtypes; any other dtype fails naming it.
template <class F>
void dispatch_float(const KernelContext& ctx, DType t, F&& f) {
  dispatch(ctx, t, [&](auto ty) {
    if constexpr (decltype(ty)::is_float) f(ty);
    else unsupported(ctx, t);
  });
}
// Reference kernels of the compute ops work in double: load any float dtype, and round once when storing.
std::vector<double> load_real(const KernelContext& ctx, const TensorData& t);
TensorData store_real(const KernelContext& ctx, DType dt, const std::vector<int64_t>& dims,
                      const std::vector<double>& v);

// Byte-level element copy, for data-movement kernels that are dtype-agnostic (strings excluded).
size_t element_size(const KernelContext& ctx, const TensorData& t);

// ----------------------------------------------------------------------------------------- attributes
// An int list that newer opsets pass as input k and older ones as attribute `attr`. Infer form:
// nullopt when the input is present but its value is not known; `def` when neither is given.
std::optional<std::vector<int64_t>> ints_arg(const InferContext& ctx, size_t k, const std::string& attr,
                                             const std::vector<int64_t>& def = {});
std::vector<int64_t> ints_arg(const KernelContext& ctx, size_t k, const std::string& attr,
                              const std::vector<int64_t>& def = {});
// A rank-1 int list whose length is known even when its values are not (for rank inference).
std::optional<int64_t> known_length(const InferContext& ctx, size_t k);
// Output rank taken from input k's known length (a shape operand whose values are not known): that many unknown
// dims; nullopt when the length is unknown. Fails naming the node beyond kMaxInferredRank (a declared length is
// not data).
constexpr int64_t kMaxInferredRank = 1024;
std::optional<Shape> shape_of_known_rank(const InferContext& ctx, size_t k);

// Set output k's dtype and shape.
inline void set_out(InferContext& ctx, size_t k, DType dtype, std::optional<Shape> shape) {
  if (k >= ctx.out.size()) return;
  ctx.out[k].dtype = dtype;
  ctx.out[k].shape = std::move(shape);
}

// --------------------------------------------------------------------------- sliding windows (conv/pool)
// Window attributes of Conv/ConvTranspose/pools for `n` spatial dims, defaults filled in and validated.
struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: n begins then n ends
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;
};
// `kernel` is the kernel_shape attribute or, when absent, `kernel_from_weight` (unknown: -1 entries).
Window read_window(const InferContext& ctx, size_t n, const std::vector<int64_t>& kernel_from_weight);
// Output size along spatial axis i of a convolution/pool over an input of size `in`.
Dim window_out(const InferContext& ctx, const Window& w, size_t i, const Dim& in);

// Kernel entry points shared by several files.
void copy_input_kernel(KernelContext& ctx);  // output 0 = input 0 reshaped to the shape infer computes
// Infers through the node's own infer fn and returns output k's static dims (for data-movement kernels
// whose output shape computation already lives in infer).
std::vector<int64_t> inferred_dims(const KernelContext& ctx, size_t k = 0);

}  // namespace kiln::ops
