// BatchNormalization (inference mode, and opset-14 training mode), InstanceNormalization, GroupNormalization,
// LayerNormalization, MeanVarianceNormalization: shape inference and reference kernels. Statistics are
// two-pass (mean, then variance about it) in double.
#include <algorithm>
#include <cmath>

#include "ops/internal_ops.h"
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

// ------------------------------------------------------------------------------------ reference kernels
// Computed in double (load_real) and rounded once into the output dtype (store_real), see util.h.

// Input k as doubles, checked to hold `n` entries.
std::vector<double> load_vector(const KernelContext& ctx, size_t k, int64_t n, const char* what) {
  const TensorData& t = ctx.input(k);
  if (t.numel() != n) ctx.fail(std::string(what) + " has " + std::to_string(t.numel()) + " entries, expected " + std::to_string(n));
  return load_real(ctx, t);
}

struct Stats {
  double mean, var;
};
// Mean and (biased) variance of v[0..n), two-pass.
Stats stats_of(const double* v, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += v[i];
  const double mean = n > 0 ? sum / static_cast<double>(n) : 0.0;
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) sq += (v[i] - mean) * (v[i] - mean);
  return {mean, n > 0 ? sq / static_cast<double>(n) : 0.0};
}

// Y = scale[c] * (X - mean[c]) / sqrt(var[c] + epsilon) + B[c], channels on axis 1. In training mode (opset
// >= 14) mean and var are the batch's (biased variance over every axis but 1), and the optional outputs are
// the running statistics input * momentum + batch * (1 - momentum).
void batch_norm_kernel(KernelContext& ctx) {
  const bool training = ctx.node.attrs.get_int("training_mode", 0) != 0;
  if (ctx.opset < 9 && ctx.node.attrs.get_int("spatial", 1) == 0)
    ctx.fail("BatchNormalization with spatial=0 is not supported");
  if (ctx.opset < 14 && ctx.out.size() > 1)
    ctx.fail("BatchNormalization's pre-opset-14 training outputs (saved mean/var) are not supported");
  if (!training && ctx.out.size() > 1) ctx.fail("running_mean/running_var outputs need training_mode=1");
  const TensorData& x = ctx.input(0);
  if (x.rank() < 2) ctx.fail("input must be at least 2-D [N, C, ...]");
  const int64_t batch = x.dims()[0], c = x.dims()[1], inner = numel({x.dims().begin() + 2, x.dims().end()});
  const double eps = ctx.node.attrs.get_float("epsilon", 1e-5f);
  const auto scale = load_vector(ctx, 1, c, "scale"), bias = load_vector(ctx, 2, c, "bias");
  auto mean = load_vector(ctx, 3, c, "mean"), var = load_vector(ctx, 4, c, "var");
  std::vector<double> y = load_real(ctx, x);
  if (training) {
    const double momentum = ctx.node.attrs.get_float("momentum", 0.9f);
    std::vector<double> running_mean(mean), running_var(var), channel(static_cast<size_t>(batch * inner));
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t n = 0; n < batch; ++n)
        std::copy_n(y.data() + (n * c + ch) * inner, inner, channel.data() + n * inner);
      const Stats s = stats_of(channel.data(), batch * inner);
      mean[ch] = s.mean;
      var[ch] = s.var;
      running_mean[ch] = running_mean[ch] * momentum + s.mean * (1 - momentum);
      running_var[ch] = running_var[ch] * momentum + s.var * (1 - momentum);
    }
    if (ctx.out.size() > 1) ctx.out[1] = store_real(ctx, ctx.input(3).dtype(), {c}, running_mean);
    if (ctx.out.size() > 2) ctx.out[2] = store_real(ctx, ctx.input(4).dtype(), {c}, running_var);
  }
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t ch = 0; ch < c; ++ch) {
      const double a = scale[ch] / std::sqrt(var[ch] + eps);
      double* p = y.data() + (n * c + ch) * inner;
      for (int64_t i = 0; i < inner; ++i) p[i] = a * (p[i] - mean[ch]) + bias[ch];
    }
  ctx.out[0] = store_real(ctx, x.dtype(), x.dims(), y);
}

// Normalizes each contiguous run of `len` values (one per (n, group)), then applies scale/bias of the
// parameter each value belongs to: (run * len + i) / per_param % n_params.
void normalize_runs(std::vector<double>& y, int64_t len, int64_t per_param, int64_t n_params, double eps,
                    const std::vector<double>& scale, const std::vector<double>& bias) {
  const int64_t runs = len > 0 ? static_cast<int64_t>(y.size()) / len : 0;
  for (int64_t r = 0; r < runs; ++r) {
    double* p = y.data() + r * len;
    const Stats s = stats_of(p, len);
    const double inv = 1.0 / std::sqrt(s.var + eps);
    for (int64_t i = 0; i < len; ++i) {
      const int64_t ch = ((r * len + i) / per_param) % n_params;
      p[i] = (p[i] - s.mean) * inv * scale[ch] + bias[ch];
    }
  }
}

// Per (n, c): statistics over the spatial dims.
void instance_norm_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() < 3) ctx.fail("input must be at least 3-D [N, C, spatial...]");
  const int64_t c = x.dims()[1], inner = numel({x.dims().begin() + 2, x.dims().end()});
  const double eps = ctx.node.attrs.get_float("epsilon", 1e-5f);
  const auto scale = load_vector(ctx, 1, c, "scale"), bias = load_vector(ctx, 2, c, "bias");
  std::vector<double> y = load_real(ctx, x);
  normalize_runs(y, inner, inner, c, eps, scale, bias);
  ctx.out[0] = store_real(ctx, x.dtype(), x.dims(), y);
}

// Per (n, group): statistics over the group's C/G channels and the spatial dims. Scale/bias have one entry
// per group (opset 18) or per channel (opset 21).
void group_norm_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() < 2) ctx.fail("input must be at least 2-D [N, C, ...]");
  const int64_t c = x.dims()[1], inner = numel({x.dims().begin() + 2, x.dims().end()});
  const int64_t groups = ctx.node.attrs.get_int("num_groups", 0);
  if (groups < 1 || c % groups != 0) ctx.fail("num_groups must be >= 1 and divide the channels");
  const double eps = ctx.node.attrs.get_float("epsilon", 1e-5f);
  const bool per_channel = ctx.opset >= 21;
  const int64_t n_params = per_channel ? c : groups;
  const auto scale = load_vector(ctx, 1, n_params, "scale"), bias = load_vector(ctx, 2, n_params, "bias");
  std::vector<double> y = load_real(ctx, x);
  const int64_t len = (c / groups) * inner;
  normalize_runs(y, len, per_channel ? inner : len, n_params, eps, scale, bias);
  ctx.out[0] = store_real(ctx, x.dtype(), x.dims(), y);
}

// Statistics over X[axis:] per leading index; scale (and bias) broadcast to X[axis:]. Optional outputs
// Mean and InvStdDev have X's rank with 1s from axis on, in stash_type.
void layer_norm_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const int64_t r = x.rank();
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", -1), r);
  const double eps = ctx.node.attrs.get_float("epsilon", 1e-5f);
  const std::vector<int64_t> norm_dims(x.dims().begin() + axis, x.dims().end());
  const int64_t inner = numel(norm_dims), outer = numel({x.dims().begin(), x.dims().begin() + axis});
  // scale/bias expanded to one value per normalized position.
  auto expanded = [&](size_t k, double def) {
    std::vector<double> v(static_cast<size_t>(inner), def);
    if (!ctx.has_input(k)) return v;
    const TensorData& t = ctx.input(k);
    if (broadcast_dims(ctx, {norm_dims, t.dims()}) != norm_dims)
      ctx.fail(std::string(k == 1 ? "scale " : "bias ") + to_string(make_shape(t.dims())) + " does not broadcast to " +
               to_string(make_shape(norm_dims)));
    const auto src = load_real(ctx, t);
    const auto str = broadcast_strides(t.dims(), norm_dims);
    int64_t i = 0;
    for_each_index(norm_dims, [&](const std::vector<int64_t>& idx) { v[i++] = src[dot(idx, str)]; });
    return v;
  };
  const auto scale = expanded(1, 1.0), bias = expanded(2, 0.0);
  std::vector<double> y = load_real(ctx, x), mean(outer), inv_std(outer);
  for (int64_t o = 0; o < outer; ++o) {
    double* p = y.data() + o * inner;
    const Stats s = stats_of(p, inner);
    mean[o] = s.mean;
    inv_std[o] = 1.0 / std::sqrt(s.var + eps);
    for (int64_t i = 0; i < inner; ++i) p[i] = (p[i] - s.mean) * inv_std[o] * scale[i] + bias[i];
  }
  ctx.out[0] = store_real(ctx, x.dtype(), x.dims(), y);
  std::vector<int64_t> stat_dims(x.dims().begin(), x.dims().begin() + axis);
  stat_dims.resize(static_cast<size_t>(r), 1);
  const DType stash = static_cast<DType>(ctx.node.attrs.get_int("stash_type", 1));
  if (ctx.out.size() > 1) ctx.out[1] = store_real(ctx, stash, stat_dims, mean);
  if (ctx.out.size() > 2) ctx.out[2] = store_real(ctx, stash, stat_dims, inv_std);
}

// MeanVarianceNormalization: (X - mean) / (sqrt(var) + 1e-9) with the statistics over `axes` (default N, H,
// W), as the ONNX function body computes it (epsilon added to the standard deviation).
std::vector<int64_t> mvn_axes(const auto& ctx, int64_t rank) {
  return normalize_axes(ctx, ctx.node.attrs.get_ints("axes", {0, 2, 3}), rank);
}
void infer_mvn(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  if (x) mvn_axes(ctx, static_cast<int64_t>(x->size()));
  set_out(ctx, 0, ctx.input(0).dtype, x);
}
void mvn_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  std::vector<int64_t> stat_dims = x.dims();
  for (int64_t a : mvn_axes(ctx, x.rank())) stat_dims[a] = 1;
  const auto to_stat = broadcast_strides(stat_dims, x.dims());  // input index → statistics offset
  const int64_t groups = numel(stat_dims);
  const double count = groups > 0 ? static_cast<double>(x.numel() / groups) : 1.0;
  std::vector<double> y = load_real(ctx, x), mean(static_cast<size_t>(groups)), var(mean.size());
  // Three passes over X: the sums, the squared deviations from the mean, the normalized values.
  for (int pass = 0; pass < 3; ++pass) {
    int64_t i = 0;
    for_each_index(x.dims(), [&](const std::vector<int64_t>& idx) {
      const size_t g = static_cast<size_t>(dot(idx, to_stat));
      double& v = y[static_cast<size_t>(i++)];
      if (pass == 0)
        mean[g] += v / count;
      else if (pass == 1)
        var[g] += (v - mean[g]) * (v - mean[g]) / count;
      else
        v = (v - mean[g]) / (std::sqrt(var[g]) + 1e-9);
    });
  }
  ctx.out[0] = store_real(ctx, x.dtype(), x.dims(), y);
}

KILN_REGISTER_OP({.op = "MeanVarianceNormalization", .infer = infer_mvn, .reference = mvn_kernel});
KILN_REGISTER_OP({.op = "BatchNormalization", .min_inputs = 5, .max_inputs = 5, .max_outputs = 5, .infer = infer_batch_norm,
                  .reference = batch_norm_kernel});
KILN_REGISTER_OP({.op = "InstanceNormalization", .min_inputs = 3, .max_inputs = 3, .infer = infer_instance_norm,
                  .reference = instance_norm_kernel});
KILN_REGISTER_OP({.op = "GroupNormalization", .min_inputs = 3, .max_inputs = 3, .infer = infer_group_norm,
                  .reference = group_norm_kernel});
KILN_REGISTER_OP({.op = "LayerNormalization", .min_inputs = 2, .max_inputs = 3, .max_outputs = 3, .infer = infer_layer_norm,
                  .reference = layer_norm_kernel});
// The same contract in kiln's domain: what fuse_layernorm writes into graphs whose opset predates 17.
KILN_REGISTER_OP({.op = internal_ops::layer_norm::kOp, .domain = internal_ops::kDomain, .min_inputs = 2, .max_inputs = 3, .max_outputs = 3,
                  .infer = infer_layer_norm, .reference = layer_norm_kernel});

}  // namespace
}  // namespace kiln::ops
