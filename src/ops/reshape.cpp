// Reshape (0 copies the input dim unless allowzero, one -1 is inferred) and Flatten. Both are views:
// the kernels reuse the input buffer with the dims inference computes.
#include "ops/util.h"

namespace kiln::ops {
namespace {

// Product of dims[b, e): a single dim passes through (keeps a symbol), otherwise known only when static.
Dim product(const InferContext& ctx, const Shape& s, size_t b, size_t e) {
  if (e == b + 1) return s[b];
  std::vector<int64_t> dims;
  for (size_t k = b; k < e; ++k) {
    if (!s[k].is_static()) return Dim();
    dims.push_back(s[k].value);
  }
  auto p = checked_numel(dims);
  if (!p) ctx.fail("the product of input dims " + to_string(s) + " overflows 64 bits");
  return Dim(*p);
}

void infer_reshape(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  const TensorData* target = ctx.value(1);
  if (!target) {
    return set_out(ctx, 0, dt, shape_of_known_rank(ctx, 1));
  }
  const auto spec = target->to_int64_vector();
  const bool allowzero = ctx.node.attrs.get_int("allowzero", 0) != 0;
  auto in = in_shape(ctx, 0);
  Shape out;
  int64_t infer_at = -1;
  for (size_t k = 0; k < spec.size(); ++k) {
    const int64_t v = spec[k];
    if (v == -1) {
      if (infer_at >= 0) ctx.fail("shape has more than one -1: " + to_string(dims_to_shape(spec)));
      infer_at = static_cast<int64_t>(k);
      out.push_back(Dim());
    } else if (v == 0 && !allowzero) {
      if (in && k >= in->size())
        ctx.fail("shape entry " + std::to_string(k) + " is 0 (copy) but the input has rank " + std::to_string(in->size()));
      out.push_back(in ? (*in)[k] : Dim());
    } else if (v < 0) {
      ctx.fail("shape entry " + std::to_string(v) + " is invalid");
    } else {
      out.push_back(Dim(v));
    }
  }
  if (in && is_static(*in)) {
    std::vector<int64_t> known_dims;
    for (size_t k = 0; k < out.size(); ++k)
      if (static_cast<int64_t>(k) != infer_at) known_dims.push_back(out[k].value);
    const auto total_or = checked_numel(static_dims(*in)), known_or = checked_numel(known_dims);
    if (!total_or || !known_or)
      ctx.fail("cannot reshape " + to_string(*in) + " to " + to_string(dims_to_shape(spec)) +
               ": the size overflows 64 bits");
    const int64_t total = *total_or, known = *known_or;
    if (infer_at >= 0) {
      if (known == 0 || total % known != 0)
        ctx.fail("cannot reshape " + to_string(*in) + " to " + to_string(dims_to_shape(spec)));
      out[infer_at] = Dim(total / known);
    } else if (known != total) {
      ctx.fail("cannot reshape " + to_string(*in) + " (" + std::to_string(total) + " elements) to " +
               to_string(out));
    }
  }
  set_out(ctx, 0, dt, out);
}

void infer_flatten(InferContext& ctx) {
  auto s = in_shape(ctx, 0);
  if (!s) return set_out(ctx, 0, ctx.input(0).dtype, Shape{Dim(), Dim()});
  const int64_t r = static_cast<int64_t>(s->size());
  int64_t axis = ctx.node.attrs.get_int("axis", 1);
  if (axis < -r || axis > r) ctx.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
  if (axis < 0) axis += r;
  set_out(ctx, 0, ctx.input(0).dtype, Shape{product(ctx, *s, 0, axis), product(ctx, *s, axis, r)});
}

KILN_REGISTER_OP({.op = "Reshape", .min_inputs = 2, .max_inputs = 2, .infer = infer_reshape, .reference = copy_input_kernel});
KILN_REGISTER_OP({.op = "Flatten", .infer = infer_flatten, .reference = copy_input_kernel});

}  // namespace
}  // namespace kiln::ops
