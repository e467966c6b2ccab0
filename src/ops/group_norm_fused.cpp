// kiln.GroupNorm (domain "kiln"): group normalization with per-channel affine and an optional activation,
// the layer the fuse_groupnorm pass collapses PyTorch's exported GroupNorm subgraph into. Its contract is
// TensorRT's GroupNormalizationPlugin's: inputs X [N, C, ...], scale [C], bias [C]; attributes
//   num_groups (int, must divide C), epsilon (float, default 1e-5),
//   activation (string: "" or an activation of ops/activation.h), alpha / beta (floats: its parameters where
//     it has them; absent: the ONNX defaults, e.g. Elu's alpha 1),
//   kiln_fused (strings, informational: the original node names).
// y = act(scale[c] * (x - mean_g) / sqrt(var_g + eps) + bias[c]), statistics over each group of C/G channels
// and all spatial positions (biased variance), as InstanceNormalization over [N, G, -1] computes them.
#include <cmath>

#include "ops/activation.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

// The fused activation, after checking the attributes.
template <class Ctx>
ActivationParams check_attributes(const Ctx& ctx) {
  const std::optional<ActivationParams> act = fused_activation(ctx.node.attrs, kGroupNormActivation);
  if (!act)
    ctx.fail("unsupported activation '" + ctx.node.attrs.get_string("activation", "") +
             "' (not an activation)");
  if (ctx.node.attrs.get_int("num_groups", 0) <= 0) ctx.fail("num_groups must be a positive integer");
  return *act;
}

void infer_group_norm(InferContext& ctx) {
  check_attributes(ctx);
  const auto x = in_shape(ctx, 0);
  if (x) {
    if (x->size() < 2) ctx.fail("X must have rank >= 2, got " + to_string(*x));
    const Dim& c = (*x)[1];
    const int64_t groups = ctx.node.attrs.get_int("num_groups", 0);
    if (c.is_static() && c.value % groups != 0)
      ctx.fail("num_groups " + std::to_string(groups) + " does not divide the " + std::to_string(c.value) +
               " channels");
    for (size_t k : {size_t{1}, size_t{2}}) {
      const auto s = in_shape(ctx, k);
      if (s && c.is_static() && (s->size() != 1 || !(*s)[0].is_static() || (*s)[0].value != c.value))
        ctx.fail(std::string(k == 1 ? "scale" : "bias") + " must be [" + std::to_string(c.value) + "], got " +
                 to_string(*s));
    }
  }
  set_out(ctx, 0, ctx.input(0).dtype, x);
}

void group_norm_kernel(KernelContext& ctx) {
  const ActivationParams act = check_attributes(ctx);
  const TensorData& xt = ctx.input(0);
  const std::vector<int64_t>& dims = xt.dims();
  if (dims.size() < 2) ctx.fail("X must have rank >= 2");
  const int64_t n = dims[0], c = dims[1], groups = ctx.node.attrs.get_int("num_groups", 0);
  if (c % groups != 0) ctx.fail("num_groups does not divide the channels");
  if (ctx.input(1).numel() != c || ctx.input(2).numel() != c) ctx.fail("scale and bias must have C elements");
  const int64_t spatial = xt.numel() / std::max<int64_t>(n * c, 1), per_group = c / groups * spatial;
  const double eps = ctx.node.attrs.get_float("epsilon", 1e-5f);
  const std::vector<double> x = load_real(ctx, xt), scale = load_real(ctx, ctx.input(1)),
                            bias = load_real(ctx, ctx.input(2));
  std::vector<double> y(x.size());
  for (int64_t b = 0; b < n * groups; ++b) {
    const double* xs = x.data() + b * per_group;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < per_group; ++i) mean += xs[i];
    mean /= static_cast<double>(per_group);
    for (int64_t i = 0; i < per_group; ++i) var += (xs[i] - mean) * (xs[i] - mean);
    const double inv_std = 1.0 / std::sqrt(var / static_cast<double>(per_group) + eps);
    for (int64_t i = 0; i < per_group; ++i) {
      const int64_t channel = (b % groups) * (c / groups) + i / spatial;
      const double v = (xs[i] - mean) * inv_std * scale[channel] + bias[channel];
      y[b * per_group + i] = apply<StdMath>(act.act, v, double(act.alpha), double(act.beta));
    }
  }
  ctx.out[0] = store_real(ctx, xt.dtype(), dims, y);
}

KILN_REGISTER_OP({.op = internal_ops::group_norm::kOp, .domain = internal_ops::kDomain, .min_inputs = 3, .max_inputs = 3, .infer = infer_group_norm,
                  .reference = group_norm_kernel});

}  // namespace
}  // namespace kiln::ops
