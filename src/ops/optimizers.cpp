// ai.onnx.preview.training optimizers: Adagrad, Momentum, Adam, with the ONNX spec's update formulas. Inputs:
// R (learning rate), T (update count), then n tensors X, n gradients G and n of each state (Adagrad: H;
// Momentum: V; Adam: V, H). Outputs: the n updated X, then the n updated states of each kind. Computed in
// double.
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

constexpr const char* kTraining = "ai.onnx.preview.training";

size_t states(const std::string& op) {
  return op == "Adam" ? 2 : 1;
}

// The number n of optimized tensors, checked against the input and output counts.
template <class Ctx>
size_t tensor_count(const Ctx& ctx) {
  const size_t groups = 2 + states(ctx.node.op), in = ctx.node.inputs().size();
  if (in < 2 + groups || (in - 2) % groups || ctx.node.outputs().size() != (in - 2) / groups * (groups - 1))
    ctx.fail("takes R, T and " + std::to_string(groups) + " groups of n inputs (X, G, states) and gives " +
             std::to_string(groups - 1) + " groups of n outputs; got " + std::to_string(in) + " inputs and " +
             std::to_string(ctx.node.outputs().size()) + " outputs");
  return (in - 2) / groups;
}

// Output o of group g (0: X, then the states) mirrors input group 0 (X) or g + 1 (skipping G).
size_t mirrored_input(size_t o, size_t n) {
  const size_t g = o / n, i = o % n;
  return 2 + (g == 0 ? 0 : g + 1) * n + i;
}

void infer_optimizer(InferContext& ctx) {
  const size_t n = tensor_count(ctx);
  for (size_t o = 0; o < ctx.out.size(); ++o)
    set_out(ctx, o, ctx.input(mirrored_input(o, n)).dtype, in_shape(ctx, mirrored_input(o, n)));
}

double scalar(const KernelContext& ctx, size_t k, const char* what) {
  const TensorData& t = ctx.input(k);
  if (t.numel() != 1)
    ctx.fail(std::string(what) + " must have one element, got " + describe_tensor(t.dtype(), t.dims()));
  return t.as_double(0);
}

void optimizer_kernel(KernelContext& ctx) {
  const size_t n = tensor_count(ctx);
  const std::string& op = ctx.node.op;
  const Attributes& a = ctx.node.attrs;
  const double r = scalar(ctx, 0, "R"), t = scalar(ctx, 1, "T");
  const double norm = a.get_float("norm_coefficient", 0.0f);
  const std::string mode = a.get_string("mode", "standard");
  if (op == "Momentum") {
    for (const char* required : {"alpha", "beta", "mode", "norm_coefficient"})
      if (!a.has(required)) ctx.fail(std::string("attribute '") + required + "' is required");
    if (mode != "standard" && mode != "nesterov") ctx.fail("mode '" + mode + "' is not standard or nesterov");
  }
  for (size_t i = 0; i < n; ++i) {
    const TensorData& x = ctx.input(2 + i);
    std::vector<std::vector<double>> in;  // X, G, states
    for (size_t g = 0; g < 2 + states(op); ++g) {
      const TensorData& v = ctx.input(2 + g * n + i);
      if (v.dims() != x.dims())
        ctx.fail("input " + std::to_string(2 + g * n + i) + " is " + describe_tensor(v.dtype(), v.dims()) +
                 ", but X is " + describe_tensor(x.dtype(), x.dims()));
      in.push_back(load_real(ctx, v));
    }
    std::vector<double> x_new(in[0].size()), s1(in[0].size()), s2(in[0].size());
    for (size_t e = 0; e < x_new.size(); ++e) {
      const double xv = in[0][e], g = norm * xv + in[1][e];  // the regularized gradient
      if (op == "Adagrad") {
        const double rate = r / (1 + t * a.get_float("decay_factor", 0.0f));
        s1[e] = in[2][e] + g * g;
        x_new[e] = xv - rate * g / (std::sqrt(s1[e]) + a.get_float("epsilon", 1e-6f));
      } else if (op == "Momentum") {
        const double alpha = a.get_float("alpha", 0.0f), beta = t > 0 ? a.get_float("beta", 0.0f) : 1.0;
        s1[e] = alpha * in[2][e] + beta * g;
        x_new[e] = xv - r * (mode == "standard" ? s1[e] : g + alpha * s1[e]);
      } else {  // Adam
        const double alpha = a.get_float("alpha", 0.9f), beta = a.get_float("beta", 0.999f);
        s1[e] = alpha * in[2][e] + (1 - alpha) * g;
        s2[e] = beta * in[3][e] + (1 - beta) * g * g;
        const double rate = t > 0 ? r * std::sqrt(1 - std::pow(beta, t)) / (1 - std::pow(alpha, t)) : r;
        x_new[e] = (1 - a.get_float("norm_coefficient_post", 0.0f)) *
                   (xv - rate * s1[e] / (std::sqrt(s2[e]) + a.get_float("epsilon", 1e-6f)));
      }
    }
    ctx.out[i] = store_real(ctx, x.dtype(), x.dims(), x_new);
    ctx.out[n + i] = store_real(ctx, ctx.input(2 + 2 * n + i).dtype(), x.dims(), s1);
    if (op == "Adam") ctx.out[2 * n + i] = store_real(ctx, ctx.input(2 + 3 * n + i).dtype(), x.dims(), s2);
  }
}

#define KILN_OPTIMIZER(name, n_states)                \
  KILN_REGISTER_OP({.op = name,                       \
                    .domain = kTraining,              \
                    .min_inputs = 2 + 2 + (n_states), \
                    .max_inputs = kVariadic,          \
                    .min_outputs = 1 + (n_states),    \
                    .max_outputs = kVariadic,         \
                    .infer = infer_optimizer,         \
                    .reference = optimizer_kernel});
KILN_OPTIMIZER("Adagrad", 1)
KILN_OPTIMIZER("Momentum", 1)
KILN_OPTIMIZER("Adam", 2)
#undef KILN_OPTIMIZER

}  // namespace
}  // namespace kiln::ops
