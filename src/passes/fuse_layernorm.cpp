// Layer normalization as exporters write it before opset 17, collapsed into one LayerNormalization:
//
//   X ─ ReduceMean(axes) ─┐
//   X ──────────────────── Sub ─┬─ Pow(2) ─ ReduceMean(axes) ─ Add(eps) ─ Sqrt ─┐
//                               └──────────────────────────────────────────── Div ─ [Mul(γ) ─ [Add(β)]]
//
// axes must be X's trailing axes (keepdims = 1, the same in both ReduceMeans), the exponent exactly 2, eps a
// scalar constant, γ/β constants of X's dtype that broadcast over the normalized dims only. A chain that
// doesn't fit is left alone and the reason recorded.
//
// The domain: at opset >= 17 the node is ONNX's own LayerNormalization. Older graphs get
// kiln.LayerNormalization (the same contract, src/ops/norm.cpp): bumping the graph's opset would change the
// meaning of other ops (Softmax before 13, Split ...), and an ONNX LayerNormalization in an opset-12 graph is
// not a valid model for other tools reading the optimized graph.
#include <set>

#include "passes/pattern.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

using pattern::constant_value;
using pattern::Step;

// ReduceMean's axes (attribute, or input 1 from opset 18), normalized against `rank`, or empty.
std::set<int64_t> reduce_axes(const Node* n, int64_t rank) {
  std::vector<int64_t> axes;
  if (n->inputs().size() > 1 && n->input(1)) {
    auto v = pattern::int_list(n->input(1));
    if (!v) return {};
    axes = *v;
  } else {
    axes = n->attrs.get_ints("axes", {});
  }
  std::set<int64_t> out;
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) return {};
    out.insert(a < 0 ? a + rank : a);
  }
  return out.size() == axes.size() ? out : std::set<int64_t>{};
}

bool is_scalar_constant(const Tensor* t, double* value) {
  const TensorData* v = constant_value(t);
  if (!v || v->numel() != 1 || !dtype_is_float(v->dtype())) return false;
  *value = v->as_double(0);
  return true;
}

Tensor* other_input(const Node* n, const Tensor* chain) {
  return n->input(0) == chain ? n->input(1) : n->input(0);
}

struct Match {
  std::vector<Node*> nodes;  // every node replaced
  Tensor* x = nullptr;
  int64_t axis = 0;
  float eps = 0;
  TensorData gamma, beta;  // X's dtype, dims = the normalized dims; beta empty without the Add
};

// γ or β expanded to the normalized dims, or nullopt when it is not a constant of X's dtype broadcasting
// over them only (its trailing dims each 1 or equal, any extra leading dims 1).
std::optional<TensorData> affine(const Tensor* t, const std::vector<int64_t>& norm, DType dt) {
  const TensorData* v = constant_value(t);
  if (!v || v->dtype() != dt) return std::nullopt;
  const auto& d = v->dims();
  const size_t k = norm.size();
  for (size_t i = 0; i < d.size(); ++i) {
    const bool leading = i + k < d.size();
    if (leading ? d[i] != 1 : (d[i] != 1 && d[i] != norm[i + k - d.size()])) return std::nullopt;
  }
  int64_t inner = 1;
  for (int64_t n : norm) inner *= n;
  std::vector<double> vals(static_cast<size_t>(inner));
  for (int64_t flat = 0; flat < inner; ++flat) {  // the source element of each normalized position
    int64_t rest = flat, src = 0, stride = 1;
    for (size_t j = k; j-- > 0;) {
      const int64_t idx = rest % norm[j];
      rest /= norm[j];
      const int64_t vdim = j + d.size() >= k ? d[j + d.size() - k] : 1;  // v's matching dim (1 if none)
      if (vdim != 1) src += idx * stride;
      stride *= vdim;
    }
    vals[static_cast<size_t>(flat)] = v->as_double(src);
  }
  if (dt == DType::Float) {
    std::vector<float> f(vals.begin(), vals.end());
    return TensorData::from_vector(dt, norm, f);
  }
  return std::nullopt;  // other float types: the kernels here are fp32; leave them unfused
}

// Matches from the first ReduceMean; returns the reason it is rejected ("" = no such chain at all, or a
// match filled into `m` when `ok`).
std::string match_at(const Graph& g, Node* mean1, Match& m, bool& ok) {
  ok = false;
  const std::vector<Node*> head = pattern::match_chain(g, mean1, {{"ReduceMean"}, {"Sub", true}});
  if (head.empty()) return "";
  Node* sub = head[1];
  Tensor* x = mean1->input(0);
  if (sub->input(0) != x || sub->input(1) != mean1->output(0)) return "";
  const Tensor* centered = sub->output(0);
  if (centered->uses().size() != 2 || pattern::is_graph_output(g, centered)) return "";
  Node* pow = nullptr;
  for (const auto& [user, slot] : centered->uses())
    if (user->op == "Pow" && slot == 0) pow = user;
  if (!pow) return "";
  const std::vector<Node*> var =
      pattern::match_chain(g, pow, {{"Pow"}, {"ReduceMean"}, {"Add", true}, {"Sqrt"}, {"Div", true}});
  if (var.empty()) return "";
  Node *mean2 = var[1], *add_eps = var[2], *sqrt = var[3], *div = var[4];
  if (div->input(0) != centered || div->input(1) != sqrt->output(0)) return "";
  // From here on it is the layer-norm chain: say why when it does not fit.
  if (!x->has_static_shape() || x->shape->empty()) return "X's shape is not static";
  const std::vector<int64_t> xd = static_dims(*x->shape);
  const int64_t rank = static_cast<int64_t>(xd.size());
  const std::set<int64_t> axes = reduce_axes(mean1, rank);
  if (axes.empty() || *axes.rbegin() != rank - 1 || *axes.begin() != rank - static_cast<int64_t>(axes.size()))
    return "ReduceMean axes are not X's trailing axes";
  if (reduce_axes(mean2, rank) != axes) return "the two ReduceMeans reduce different axes";
  if (mean1->attrs.get_int("keepdims", 1) != 1 || mean2->attrs.get_int("keepdims", 1) != 1)
    return "ReduceMean keepdims is not 1";
  double exponent = 0, eps = 0;
  if (!is_scalar_constant(pow->input(1), &exponent) || exponent != 2.0)
    return "Pow's exponent is not a constant 2";
  if (!is_scalar_constant(other_input(add_eps, mean2->output(0)), &eps) || !(eps >= 0))
    return "epsilon is not a non-negative scalar constant";
  m.x = x;
  m.axis = *axes.begin();
  m.eps = static_cast<float>(eps);
  m.nodes = {mean1, sub, pow, mean2, add_eps, sqrt, div};
  const std::vector<int64_t> norm(xd.begin() + m.axis, xd.end());
  if (x->dtype != DType::Float) return "X is not float32";
  // The affine tail, each step only when its operand fits (a Mul by a tensor stays a Mul after the norm).
  const Tensor* out = div->output(0);
  if (out->uses().size() == 1 && !pattern::is_graph_output(g, out)) {
    Node* mul = out->uses()[0].first;
    if (mul->op == "Mul" && pattern::is_onnx(mul))
      if (auto gamma = affine(other_input(mul, out), norm, x->dtype)) {
        m.gamma = *gamma;
        m.nodes.push_back(mul);
        out = mul->output(0);
        if (out->uses().size() == 1 && !pattern::is_graph_output(g, out)) {
          Node* add = out->uses()[0].first;
          if (add->op == "Add" && pattern::is_onnx(add))
            if (auto beta = affine(other_input(add, out), norm, x->dtype)) {
              m.beta = *beta;
              m.nodes.push_back(add);
            }
        }
      }
  }
  if (m.gamma.empty_type()) {
    std::vector<float> ones(static_cast<size_t>(checked_numel(norm).value_or(0)), 1.f);
    m.gamma = TensorData::from_vector(DType::Float, norm, ones);
  }
  ok = true;
  return "";
}

}  // namespace

size_t fuse_layernorm(Graph& g, std::vector<NotFolded>* rejected) {
  std::vector<Match> matches = pattern::collect_matches<Match>(g, "ReduceMean", match_at, rejected);
  const bool onnx17 = g.opset("") >= 17;
  for (Match& m : matches) {
    std::vector<std::string> names;
    for (Node* n : m.nodes) names.push_back(pattern::name_of(n));
    const std::string base = m.nodes[0]->name.empty() ? "layernorm" : m.nodes[0]->name;
    std::vector<Tensor*> inputs{m.x, g.add_constant(g.unique_name(base + "_scale"), m.gamma)};
    if (!m.beta.empty_type()) inputs.push_back(g.add_constant(g.unique_name(base + "_bias"), m.beta));
    Node* fused = g.replace_nodes(m.nodes, internal_ops::layer_norm::kOp, inputs, {m.nodes.back()->output(0)},
                                  base, onnx17 ? "" : internal_ops::kDomain);
    fused->attrs.set("axis", m.axis);
    fused->attrs.set("epsilon", m.eps);
    fused->attrs.set(internal_ops::kFusedNames, names);
  }
  if (!matches.empty()) {
    if (!onnx17) pattern::use_kiln_domain(g);
    g.cleanup();   // the old γ/β/eps/exponent constants
    g.toposort();  // replace_nodes appends the fused node at the end
  }
  return matches.size();
}

}  // namespace kiln
