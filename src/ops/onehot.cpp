// OneHot: indices of any numeric type -> a new axis of size depth holding values[1] ("on") at each index and
// values[0] ("off") elsewhere. Negative indices count from the end; indices outside [-depth, depth) give an
// all-off row (the spec's rule, not an error). Float indices and depth are truncated toward zero.
#include "ops/indexing.h"

namespace kiln::ops {
namespace {

// Element j as an integer (truncated); nullopt when it is not finite or does not fit in int64.
std::optional<int64_t> integral(const TensorData& t, int64_t j) {
  if (!dtype_is_float(t.dtype())) return t.as_int64(j);
  const double v = t.as_double(j);
  if (!(std::fabs(v) < 9.2e18)) return std::nullopt;
  return static_cast<int64_t>(v);
}

int64_t checked_depth(const auto& ctx, const TensorData& t) {
  if (t.numel() != 1) ctx.fail("depth must hold exactly one value, got " + std::to_string(t.numel()));
  const auto d = integral(t, 0);
  if (!d || *d < 1) ctx.fail("depth must be a positive integer, got " + std::to_string(t.as_double(0)));
  return *d;
}

int64_t onehot_axis(const auto& ctx, int64_t in_rank) {
  return normalize_axis(ctx, ctx.node.attrs.get_int("axis", -1), in_rank + 1);
}

void infer_onehot(InferContext& ctx) {
  for (size_t k : {0, 1})
    if (const DType t = ctx.input(k).dtype; t == DType::String || t == DType::Bool)
      ctx.fail(std::string(k ? "depth" : "indices") + " must be numeric, got " + dtype_name(t));
  if (auto v = in_shape(ctx, 2); v && !(v->size() == 1 && (!(*v)[0].is_static() || (*v)[0].value == 2)))
    ctx.fail("values must be a 2-element vector [off, on], got shape " + to_string(*v));
  auto idx = in_shape(ctx, 0);
  if (!idx) return set_out(ctx, 0, ctx.input(2).dtype, std::nullopt);
  Shape out = *idx;
  const int64_t axis = onehot_axis(ctx, static_cast<int64_t>(idx->size()));
  out.insert(out.begin() + axis, ctx.value(1) ? Dim(checked_depth(ctx, *ctx.value(1))) : Dim());
  set_out(ctx, 0, ctx.input(2).dtype, out);
}

void onehot_kernel(KernelContext& ctx) {
  const TensorData &idx = ctx.input(0), &values = ctx.input(2);
  const int64_t depth = checked_depth(ctx, ctx.input(1));
  if (values.rank() != 1 || values.numel() != 2) ctx.fail("values must be a 2-element vector [off, on]");
  const int64_t axis = onehot_axis(ctx, idx.rank());
  std::vector<int64_t> dims = idx.dims();
  dims.insert(dims.begin() + axis, depth);
  TensorData out(values.dtype(), dims);
  const size_t es = element_size(ctx, values);
  const auto* v = static_cast<const unsigned char*>(values.raw());
  auto* o = static_cast<unsigned char*>(out.raw());
  for (int64_t e = 0; e < out.numel(); ++e) std::memcpy(o + e * es, v, es);
  const int64_t inner = numel({idx.dims().begin() + axis, idx.dims().end()});
  for (int64_t j = 0; j < idx.numel(); ++j) {
    const auto k = integral(idx, j);
    if (!k || *k < -depth || *k >= depth) continue;
    const int64_t at = ((j / inner) * depth + (*k < 0 ? *k + depth : *k)) * inner + j % inner;
    std::memcpy(o + at * es, v + es, es);
  }
  ctx.out[0] = out;
}

KILN_REGISTER_OP(
    {.op = "OneHot", .min_inputs = 3, .max_inputs = 3, .infer = infer_onehot, .reference = onehot_kernel});

}  // namespace
}  // namespace kiln::ops
