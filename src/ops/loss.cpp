// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (opset 12/13): input [N, C, d1, ...], integer target
// [N, d1, ...], optional per-class weight [C], ignore_index, reduction none/sum/mean.
//   loss[n, d] = -w[t] * x[n, t, d] with t = target[n, d] (0 where t == ignore_index)
// mean divides the sum by the sum of the weights of the targets not ignored (ONNX; 0/0 is NaN when every
// target is ignored). SoftmaxCrossEntropyLoss is the same on log_softmax(scores) over axis 1, which it may
// also output. Computed in double, rounded once.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/util.h"

namespace kiln::ops {
namespace {

template <class Ctx>
std::string reduction_of(const Ctx& ctx) {
  std::string r = ctx.node.attrs.get_string("reduction", "mean");
  if (r != "none" && r != "sum" && r != "mean")
    ctx.fail("reduction must be none, sum or mean, got '" + r + "'");
  return r;
}

void infer_loss(InferContext& ctx) {
  const std::string reduction = reduction_of(ctx);
  const DType dt = ctx.input(0).dtype, tt = ctx.input(1).dtype;
  if (dt != DType::Undefined && !dtype_is_float(dt))
    ctx.fail(std::string("input must be a float tensor, not ") + dtype_name(dt));
  if (tt != DType::Undefined && tt != DType::Int32 && tt != DType::Int64)
    ctx.fail(std::string("target must be int32 or int64, not ") + dtype_name(tt));
  auto x = in_shape(ctx, 0), t = in_shape(ctx, 1);
  if (x && x->size() < 2) ctx.fail("input must be [N, C, d1, ...] (rank >= 2), got " + to_string(*x));
  if (x && t && t->size() + 1 != x->size())
    ctx.fail("target " + to_string(*t) + " must have the input's rank minus one (input " + to_string(*x) +
             ")");
  std::optional<Shape> out = Shape{};
  if (reduction == "none") {
    out = t;
    if (!out && x) {  // target is the input without its class axis
      out = *x;
      out->erase(out->begin() + 1);
    }
  }
  set_out(ctx, 0, dt, out);
  set_out(ctx, 1, dt, x);  // SoftmaxCrossEntropyLoss's log_prob
}

// The loss of log-probabilities `x` (dims [N, C, d...]) against ctx's target and weight inputs.
TensorData nll(const KernelContext& ctx, const std::vector<double>& x, const std::vector<int64_t>& xdims,
               DType dt) {
  const TensorData& target = ctx.input(1);
  if (xdims.size() < 2) ctx.fail("input must be [N, C, d1, ...] (rank >= 2)");
  std::vector<int64_t> tdims = xdims;
  tdims.erase(tdims.begin() + 1);
  if (target.dims() != tdims)
    ctx.fail("target " + to_string(make_shape(target.dims())) + " does not match input " +
             to_string(make_shape(xdims)) + " without its class axis");
  if (target.dtype() != DType::Int32 && target.dtype() != DType::Int64) unsupported(ctx, target.dtype());
  const int64_t c = xdims[1], n = xdims[0], inner = numel({xdims.begin() + 2, xdims.end()});
  std::vector<double> weight(static_cast<size_t>(c), 1.0);
  if (ctx.has_input(2)) {
    if (ctx.input(2).dims() != std::vector<int64_t>{c})
      ctx.fail("weight must be [C] = [" + std::to_string(c) + "]");
    weight = load_real(ctx, ctx.input(2));
  }
  const bool has_ignore = ctx.node.attrs.has("ignore_index");
  const int64_t ignore = ctx.node.attrs.get_int("ignore_index", 0);
  std::vector<double> loss(static_cast<size_t>(n * inner));
  double sum = 0, weight_sum = 0;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < inner; ++i) {
      const size_t at = static_cast<size_t>(b * inner + i);
      const int64_t t = target.as_int64(static_cast<int64_t>(at));
      if (has_ignore && t == ignore) continue;  // loss 0, weight 0
      if (t < 0 || t >= c)
        ctx.fail("target value " + std::to_string(t) + " is out of range for " + std::to_string(c) +
                 " classes");
      loss[at] = -weight[t] * x[static_cast<size_t>((b * c + t) * inner + i)];
      sum += loss[at];
      weight_sum += weight[t];
    }
  const std::string reduction = reduction_of(ctx);
  if (reduction == "none") return store_real(ctx, dt, tdims, loss);
  return store_real(ctx, dt, {}, {reduction == "sum" ? sum : sum / weight_sum});
}

void nll_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  ctx.out[0] = nll(ctx, load_real(ctx, x), x.dims(), x.dtype());
}

void sce_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() < 2) ctx.fail("scores must be [N, C, d1, ...] (rank >= 2)");
  std::vector<double> v = load_real(ctx, x);
  const int64_t c = x.dims()[1], inner = numel({x.dims().begin() + 2, x.dims().end()});
  for (int64_t b = 0; b < x.dims()[0]; ++b)
    for (int64_t i = 0; i < inner; ++i) {  // log_softmax over the class axis, the row maximum subtracted
      auto at = [&](int64_t k) -> double& { return v[static_cast<size_t>((b * c + k) * inner + i)]; };
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t k = 0; k < c; ++k) mx = std::max(mx, at(k));
      for (int64_t k = 0; k < c; ++k) sum += std::exp(at(k) - mx);
      for (int64_t k = 0; k < c; ++k) at(k) -= mx + std::log(sum);
    }
  ctx.out[0] = nll(ctx, v, x.dims(), x.dtype());
  if (ctx.out.size() > 1) ctx.out[1] = store_real(ctx, x.dtype(), x.dims(), v);
}

KILN_REGISTER_OP({.op = "NegativeLogLikelihoodLoss",
                  .since_opset = 12,
                  .min_inputs = 2,
                  .max_inputs = 3,
                  .infer = infer_loss,
                  .reference = nll_kernel});
KILN_REGISTER_OP({.op = "SoftmaxCrossEntropyLoss",
                  .since_opset = 12,
                  .min_inputs = 2,
                  .max_inputs = 3,
                  .max_outputs = 2,
                  .infer = infer_loss,
                  .reference = sce_kernel});

}  // namespace
}  // namespace kiln::ops
