// NonZero and Compress: ops whose output size depends on input values. Their inference leaves that dim
// unknown unless the deciding input is a known value; the reference kernels produce outputs of any size.
//   NonZero: int64 [rank, count] with the coordinates of the non-zero elements in row-major order (a scalar
//            counts as a one-element vector).
//   Compress: the slices along `axis` (of the flattened input when there is none) whose condition is true; a
//            condition shorter than the axis selects nothing past its end.
#include "ops/indexing.h"

namespace kiln::ops {
namespace {

void infer_nonzero(InferContext& ctx) {
  if (ctx.input(0).dtype == DType::String) ctx.fail("input must be numeric or bool, got string");
  const int64_t r = ctx.rank(0);
  set_out(ctx, 0, DType::Int64,
          r < 0 ? std::nullopt : std::optional<Shape>(Shape{Dim(std::max<int64_t>(r, 1)), Dim()}));
}

void nonzero_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const std::vector<int64_t> dims = x.rank() ? x.dims() : std::vector<int64_t>{1};
  std::vector<int64_t> flat;  // row-major positions of the non-zero elements
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    const auto* src = x.data<typename T::storage>();
    for (int64_t i = 0; i < x.numel(); ++i)
      if (T::load(src[i]) != typename T::compute(0)) flat.push_back(i);
  });
  const int64_t count = static_cast<int64_t>(flat.size()), r = static_cast<int64_t>(dims.size());
  TensorData out(DType::Int64, {r, count});
  auto* o = out.data<int64_t>();
  const std::vector<int64_t> strides = strides_of(dims);
  for (int64_t j = 0; j < count; ++j)
    for (int64_t d = 0; d < r; ++d) o[d * count + j] = flat[j] / strides[d] % dims[d];
  ctx.out[0] = out;
}

// The selected positions along an axis of size n; a true entry at or past n fails.
std::vector<int64_t> selected(const auto& ctx, const TensorData& cond, int64_t n) {
  if (cond.dtype() != DType::Bool)
    ctx.fail(std::string("condition must be bool, got ") + dtype_name(cond.dtype()));
  if (cond.rank() != 1) ctx.fail("condition must be 1-D, got rank " + std::to_string(cond.rank()));
  std::vector<int64_t> sel;
  for (int64_t j = 0; j < cond.numel(); ++j)
    if (cond.as_int64(j) != 0) {
      if (j >= n)
        ctx.fail("condition element " + std::to_string(j) + " is true but the axis has " + std::to_string(n) +
                 " entries");
      sel.push_back(j);
    }
  return sel;
}

void infer_compress(InferContext& ctx) {
  if (const DType t = ctx.input(1).dtype; t != DType::Undefined && t != DType::Bool)
    ctx.fail(std::string("condition must be bool, got ") + dtype_name(t));
  auto x = in_shape(ctx, 0);
  const TensorData* cond = ctx.value(1);
  if (!x) return set_out(ctx, 0, ctx.input(0).dtype, std::nullopt);
  Shape out{Dim()};
  Dim n;
  if (ctx.node.attrs.has("axis")) {
    const int64_t axis =
        normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), static_cast<int64_t>(x->size()));
    out = *x;
    n = (*x)[axis];
    out[axis] = Dim();
    if (cond && n.is_static()) out[axis] = Dim(static_cast<int64_t>(selected(ctx, *cond, n.value).size()));
  } else if (is_static(*x) && cond) {
    out[0] = Dim(static_cast<int64_t>(selected(ctx, *cond, numel(static_dims(*x))).size()));
  }
  set_out(ctx, 0, ctx.input(0).dtype, out);
}

void compress_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const AxisSplit split = split_at_optional_axis(ctx, x);
  const std::vector<int64_t>& dims = split.dims;
  const int64_t axis = split.axis, n = split.n, inner = split.inner, outer = split.outer;
  const std::vector<int64_t> sel = selected(ctx, ctx.input(1), n);
  std::vector<int64_t> out_dims = dims;
  out_dims[axis] = static_cast<int64_t>(sel.size());
  TensorData out(x.dtype(), out_dims);
  const size_t es = element_size(ctx, x), row = static_cast<size_t>(inner) * es;
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (const int64_t j : sel) {
      std::memcpy(dst, src + (o * n + j) * row, row);
      dst += row;
    }
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "NonZero", .infer = infer_nonzero, .reference = nonzero_kernel});
KILN_REGISTER_OP({.op = "Compress",
                  .min_inputs = 2,
                  .max_inputs = 2,
                  .infer = infer_compress,
                  .reference = compress_kernel});

}  // namespace
}  // namespace kiln::ops
