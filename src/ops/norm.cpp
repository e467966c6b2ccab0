// BatchNormalization, InstanceNormalization, GroupNormalization, LayerNormalization: shape inference only.
#include "ops/util.h"

namespace kiln::ops {
namespace {

// Input k must be 1-D with `n` entries (when both are known).
void check_vector(InferContext& ctx, size_t k, const Dim& n, const char* what) {
  auto s = in_shape(ctx, k);
  if (!s) return;
  if (s->size() != 1) ctx.fail(std::string(what) + " must be 1-D, got " + to_string(*s));
  if ((*s)[0].is_static() && n.is_static() && (*s)[0].value != n.value)
    ctx.fail(std::string(what) + " has " + std::to_string((*s)[0].value) + " entries, expected " + std::to_string(n.value));
}

// X of rank >= 2 with channels at axis 1; returns the channel dim.
Dim channels(InferContext& ctx, const std::optional<Shape>& x) {
  if (!x) return Dim();
  if (x->size() < 2) ctx.fail("input must be at least 2-D [N, C, ...], got " + to_string(*x));
  return (*x)[1];
}

void infer_batch_norm(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  const Dim c = channels(ctx, x);
  const char* names[] = {"scale", "bias", "mean", "var"};
  for (size_t k = 1; k < 5; ++k) check_vector(ctx, k, c, names[k - 1]);
  set_out(ctx, 0, ctx.input(0).dtype, x);
  for (size_t k = 1; k < ctx.out.size(); ++k) set_out(ctx, k, ctx.input(k < 3 ? 3 : 4).dtype, Shape{c});  // training stats
}

void infer_instance_norm(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  const Dim c = channels(ctx, x);
  if (x && x->size() < 3) ctx.fail("input must be at least 3-D [N, C, spatial...], got " + to_string(*x));
  check_vector(ctx, 1, c, "scale");
  check_vector(ctx, 2, c, "bias");
  set_out(ctx, 0, ctx.input(0).dtype, x);
}

// Opset 18 GroupNormalization: scale and bias have num_groups entries (opset 21 moved them to C).
void infer_group_norm(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  const Dim c = channels(ctx, x);
  const int64_t groups = ctx.node.attrs.get_int("num_groups", 0);
  if (groups < 1) ctx.fail("num_groups must be given and >= 1");
  if (c.is_static() && c.value % groups != 0)
    ctx.fail(std::to_string(c.value) + " channels are not divisible by num_groups " + std::to_string(groups));
  const Dim per = ctx.opset >= 21 ? c : Dim(groups);
  check_vector(ctx, 1, per, "scale");
  check_vector(ctx, 2, per, "bias");
  set_out(ctx, 0, ctx.input(0).dtype, x);
}

void infer_layer_norm(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  const DType dt = ctx.input(0).dtype;
  set_out(ctx, 0, dt, x);
  const DType stash = static_cast<DType>(ctx.node.attrs.get_int("stash_type", 1));
  if (!x) {
    for (size_t k = 1; k < ctx.out.size(); ++k) set_out(ctx, k, stash, std::nullopt);
    return;
  }
  const int64_t r = static_cast<int64_t>(x->size());
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", -1), r);
  // Scale (and bias) must broadcast to the normalized dims x[axis:].
  Shape normalized(x->begin() + axis, x->end());
  for (size_t k : {1, 2})
    if (auto s = in_shape(ctx, k)) broadcast_shapes(ctx, {normalized, s});
  Shape stats(x->begin(), x->begin() + axis);
  stats.resize(static_cast<size_t>(r), Dim(1));
  for (size_t k = 1; k < ctx.out.size(); ++k) set_out(ctx, k, stash, stats);
}

KILN_REGISTER_OP({.op = "BatchNormalization", .min_inputs = 5, .max_inputs = 5, .max_outputs = 5, .infer = infer_batch_norm});
KILN_REGISTER_OP({.op = "InstanceNormalization", .min_inputs = 3, .max_inputs = 3, .infer = infer_instance_norm});
KILN_REGISTER_OP({.op = "GroupNormalization", .min_inputs = 3, .max_inputs = 3, .infer = infer_group_norm});
KILN_REGISTER_OP({.op = "LayerNormalization", .min_inputs = 2, .max_inputs = 3, .max_outputs = 3, .infer = infer_layer_norm});

}  // namespace
}  // namespace kiln::ops
