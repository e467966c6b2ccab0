// fuse_batchnorm_into_conv: Conv → BatchNormalization (inference) becomes one Conv with rescaled weights and
// a new bias, as every inference compiler does at build time:
//   s[m] = scale[m] / sqrt(var[m] + eps)
//   W'[m, ...] = W[m, ...] * s[m]            B'[m] = (B[m] - mean[m]) * s[m] + bias[m]     (B = 0 without
//   one)
// Computed in double, stored in W's dtype. The Conv's output must be read only by the BatchNormalization,
// every operand must be a constant of the right size, and the BatchNormalization must be in inference mode
// with one output. The Conv keeps its name and records the BatchNormalization's in kiln_fused.
#include <cmath>

#include "passes/pattern.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

using pattern::constant_value;

// The BatchNormalization's per-channel operand k (1 scale, 2 bias, 3 mean, 4 var) as doubles, or empty.
std::vector<double> channel_vector(const Node* bn, size_t k, int64_t m) {
  const TensorData* v = constant_value(bn->input(k));
  if (!v || !dtype_is_float(v->dtype()) || v->rank() != 1 || v->numel() != m) return {};
  std::vector<double> out(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) out[static_cast<size_t>(i)] = v->as_double(i);
  return out;
}

struct Folded {
  Node *conv, *bn;
  TensorData weights, bias;
};

// The folded weights and bias, or nullopt when anything does not fit.
std::optional<Folded> fold(Node* conv, Node* bn) {
  if (bn->outputs().size() != 1 || bn->inputs().size() != 5) return std::nullopt;
  if (bn->attrs.get_int("training_mode", 0) != 0) return std::nullopt;
  const TensorData* w = constant_value(conv->input(1));
  if (!w || !dtype_is_float(w->dtype()) || w->rank() < 3) return std::nullopt;
  const int64_t m = w->dims()[0], per_m = w->numel() / std::max<int64_t>(m, 1);
  const TensorData* b =
      conv->inputs().size() > 2 && conv->input(2) ? constant_value(conv->input(2)) : nullptr;
  if (conv->inputs().size() > 2 && conv->input(2) && (!b || b->numel() != m)) return std::nullopt;
  const auto scale = channel_vector(bn, 1, m), shift = channel_vector(bn, 2, m),
             mean = channel_vector(bn, 3, m), var = channel_vector(bn, 4, m);
  if (scale.empty() || shift.empty() || mean.empty() || var.empty()) return std::nullopt;
  const double eps = bn->attrs.get_float("epsilon", 1e-5f);
  std::vector<float> w2(static_cast<size_t>(w->numel())), b2(static_cast<size_t>(m));
  for (int64_t o = 0; o < m; ++o) {
    const double var_eps = var[static_cast<size_t>(o)] + eps;
    if (!(var_eps > 0)) return std::nullopt;  // a negative or NaN variance: leave it to the runtime
    const double s = scale[static_cast<size_t>(o)] / std::sqrt(var_eps);
    for (int64_t i = 0; i < per_m; ++i)
      w2[static_cast<size_t>(o * per_m + i)] = static_cast<float>(w->as_double(o * per_m + i) * s);
    const double old_bias = b ? b->as_double(o) : 0.0;
    b2[static_cast<size_t>(o)] =
        static_cast<float>((old_bias - mean[static_cast<size_t>(o)]) * s + shift[static_cast<size_t>(o)]);
  }
  Folded f{conv, bn, TensorData::from_vector(DType::Float, w->dims(), w2),
           TensorData::from_vector(DType::Float, {m}, b2)};
  if (w->dtype() != DType::Float) {
    f.weights = convert_float(f.weights, w->dtype());
    f.bias = convert_float(f.bias, w->dtype());
  }
  return f;
}

}  // namespace

size_t fuse_batchnorm_into_conv(Graph& g) {
  std::vector<Folded> matches;
  for (const auto& up : g.nodes()) {
    Node* conv = up.get();
    if (conv->op != "Conv" || !pattern::is_onnx(conv) || conv->outputs().size() != 1) continue;
    const std::vector<Node*> chain = pattern::match_chain(g, conv, {{"Conv"}, {"BatchNormalization"}});
    if (chain.empty()) continue;
    if (auto f = fold(chain[0], chain[1])) matches.push_back(std::move(*f));
  }
  for (Folded& f : matches) {
    const std::string base = pattern::name_of(f.conv);
    Constant* w = g.add_constant(g.unique_name(base + "_bn_weight"), std::move(f.weights));
    Constant* b = g.add_constant(g.unique_name(base + "_bn_bias"), std::move(f.bias));
    std::vector<std::string> names = pattern::fused_names(f.conv);
    names.push_back(pattern::name_of(f.bn));
    Tensor* out = f.bn->output(0);
    Attributes attrs = f.conv->attrs;
    attrs.set(internal_ops::kFusedNames, std::move(names));
    Tensor* x = f.conv->input(0);
    const std::string name = f.conv->name;
    Node* fused = g.replace_nodes({f.conv, f.bn}, "Conv", {x, w, b}, {out}, name);
    fused->attrs = std::move(attrs);
  }
  if (!matches.empty()) {
    g.cleanup();   // the old weights and BatchNormalization constants
    g.toposort();  // replace_nodes appends the new node at the end
  }
  return matches.size();
}

}  // namespace kiln
