// Resize and Upsample: shape inference only. Output size is floor(in * scale), or 'sizes' directly.
// Forms: Upsample-7/8 (scales attribute), Upsample-9 and Resize-10 (X, scales), Resize-11+ (X, roi,
// scales, sizes; scales or sizes, an empty tensor meaning absent), Resize-18 (axes, keep_aspect_ratio_policy).
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

// A present input with a known non-zero length (roi/scales may be given as empty tensors).
bool given(const InferContext& ctx, size_t k) {
  if (!ctx.has_input(k)) return false;
  auto n = known_length(ctx, k);
  return !n || *n > 0;
}

void set_scaled(InferContext& ctx, const Shape& x, const std::vector<int64_t>& axes, const std::vector<double>& scales) {
  if (scales.size() != axes.size())
    ctx.fail("scales has " + std::to_string(scales.size()) + " entries for " + std::to_string(axes.size()) + " axes");
  Shape out = x;
  for (size_t j = 0; j < axes.size(); ++j) {
    if (scales[j] <= 0) ctx.fail("scales must be positive");
    Dim& d = out[axes[j]];
    // float32 arithmetic, as ONNX Runtime does: scales are float32 and the rounding must agree.
    if (d.is_static()) d = Dim(static_cast<int64_t>(std::floor(static_cast<float>(d.value) * static_cast<float>(scales[j]))));
    else if (scales[j] != 1.0) d = Dim();
  }
  set_out(ctx, 0, ctx.input(0).dtype, out);
}

std::vector<double> doubles(const TensorData& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.as_double(i));
  return v;
}

void infer_resize(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0);
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  const int64_t r = static_cast<int64_t>(x->size());
  std::vector<int64_t> axes;
  if (ctx.node.attrs.has("axes")) axes = normalize_axes(ctx, ctx.node.attrs.get_ints("axes"), r);
  else for (int64_t k = 0; k < r; ++k) axes.push_back(k);
  auto unknown = [&] { set_out(ctx, 0, dt, Shape(x->size(), Dim())); };

  // Where scales live for this form.
  const bool upsample_attr = ctx.node.op == "Upsample" && ctx.opset < 9;
  const size_t scales_at = (ctx.node.op == "Upsample" || ctx.opset < 11) ? 1 : 2;
  if (upsample_attr) {
    auto f = ctx.node.attrs.get_floats("scales");
    return set_scaled(ctx, *x, axes, std::vector<double>(f.begin(), f.end()));
  }
  if (given(ctx, scales_at)) {
    if (!ctx.value(scales_at)) return unknown();
    return set_scaled(ctx, *x, axes, doubles(*ctx.value(scales_at)));
  }
  if (scales_at == 2 && given(ctx, 3)) {
    if (!ctx.value(3)) return unknown();
    auto sizes = ctx.value(3)->to_int64_vector();
    if (sizes.size() != axes.size())
      ctx.fail("sizes has " + std::to_string(sizes.size()) + " entries for " + std::to_string(axes.size()) + " axes");
    const std::string policy = ctx.node.attrs.get_string("keep_aspect_ratio_policy", "stretch");
    Shape out = *x;
    if (policy == "stretch") {
      for (size_t j = 0; j < axes.size(); ++j) out[axes[j]] = Dim(sizes[j]);
    } else if (policy == "not_larger" || policy == "not_smaller") {
      // One scale for every axis: the smallest (largest) of sizes/in, then round(in * scale).
      double scale = policy == "not_larger" ? 1e300 : 0;
      for (size_t j = 0; j < axes.size(); ++j) {
        const Dim& d = (*x)[axes[j]];
        if (!d.is_static()) return unknown();
        const double s = static_cast<double>(sizes[j]) / d.value;
        scale = policy == "not_larger" ? std::min(scale, s) : std::max(scale, s);
      }
      for (int64_t a : axes) out[a] = Dim(static_cast<int64_t>(std::round((*x)[a].value * scale)));
    } else {
      ctx.fail("unknown keep_aspect_ratio_policy '" + policy + "'");
    }
    return set_out(ctx, 0, dt, out);
  }
  ctx.fail("needs either scales or sizes");
}

KILN_REGISTER_OP({.op = "Resize", .min_inputs = 1, .max_inputs = 4, .infer = infer_resize});
KILN_REGISTER_OP({.op = "Upsample", .min_inputs = 1, .max_inputs = 2, .infer = infer_resize});

}  // namespace
}  // namespace kiln::ops
