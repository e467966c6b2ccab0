// fuse_elementwise_chains: maximal chains of fp32 element-wise nodes become one kiln.ElementwiseChain node.
//
//   x ─ Mul(γ [C,1,1]) ─ Add(0.5) ─ Elu ─ y      →      x ─ kiln.ElementwiseChain(γ, 0.5) ─ y
//
// Every link tensor has exactly one use and is not a graph output; every node is a default-domain activation
// (ops/activation.h) with only its own attributes, or a Neg, Abs, Sqrt, Exp, Add, Sub, Mul or Div without any;
// shapes are static and every link has the chain input's shape and dtype (fp32); a binary node's other
// operand is a scalar constant, a per-channel constant ([C,1,..,1] against the data) or a tensor of exactly
// the data's shape. Anything else is left alone. The fused node's reference kernel runs the member ops' own
// reference kernels, so the rewrite is exact.
#include <algorithm>
#include <set>

#include "ops/activation.h"
#include "passes/pattern.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

namespace ec = internal_ops::elementwise_chain;

bool is_unary(const std::string& op) {
  const std::optional<ops::Activation> a = ops::activation_of(op);
  return (a && ops::fusable_into_chain(*a)) || op == "Neg" || op == "Abs" || op == "Sqrt" || op == "Exp";
}
bool is_binary(const std::string& op) { return op == "Add" || op == "Sub" || op == "Mul" || op == "Div"; }

// The node is a supported element-wise op with a plain form (no legacy broadcast/axis attributes).
bool eligible(const Node* n) {
  if (!pattern::is_onnx(n) || n->outputs().size() != 1 || !n->output(0)) return false;
  const bool unary = is_unary(n->op), binary = is_binary(n->op);
  if (!unary && !binary) return false;
  if (n->inputs().size() != (unary ? 1u : 2u)) return false;
  for (Tensor* t : n->inputs())
    if (!t) return false;
  // An activation with only its own float attributes; the arithmetic ops with none.
  return ops::is_activation(n->op) ? ops::activation_of(*n).has_value() : n->attrs.size() == 0;
}

bool float_with_dims(const Tensor* t, const std::vector<int64_t>& dims) {
  return t && t->dtype == DType::Float && t->has_static_shape() && static_dims(*t->shape) == dims;
}

// Whether `t` can be the other operand of a binary step on data of `dims` without changing its shape.
bool valid_operand(const Tensor* t, const std::vector<int64_t>& dims) {
  if (!t || t->dtype != DType::Float || !t->has_static_shape()) return false;
  const std::vector<int64_t> d = static_dims(*t->shape);
  if (d.size() > dims.size()) return false;
  if (d == dims) return true;  // same shape (a residual, or a full-size constant)
  if (!t->is_constant()) return false;
  if (checked_numel(d) == 1) return true;  // scalar
  // Per-channel: left-padded to the data's rank, every axis is 1 except axis 1, which is C.
  if (dims.size() < 2) return false;
  std::vector<int64_t> p(dims.size() - d.size(), 1);
  p.insert(p.end(), d.begin(), d.end());
  for (size_t k = 0; k < p.size(); ++k)
    if (p[k] != (k == 1 ? dims[1] : 1)) return false;
  return true;
}

struct Step {
  Node* node;
  int data_slot;  // which input of the node carries the chain value (0 for unary)
};

// The node as a step on data tensor `data` of `dims`, or data_slot < 0 if it does not fit.
int data_slot_of(const Node* n, const Tensor* data, const std::vector<int64_t>& dims, int slot_hint) {
  if (!eligible(n) || !float_with_dims(n->output(0), dims)) return -1;
  if (is_unary(n->op)) return n->input(0) == data ? 0 : -1;
  for (int s : {slot_hint, 1 - slot_hint}) {
    if (s < 0 || n->input(static_cast<size_t>(s)) != data) continue;
    if (valid_operand(n->input(static_cast<size_t>(1 - s)), dims)) return s;
  }
  return -1;
}

}  // namespace

size_t fuse_elementwise_chains(Graph& g) {
  std::set<const Node*> claimed;
  std::vector<std::pair<Tensor*, std::vector<Step>>> chains;
  for (const auto& up : g.nodes()) {
    Node* first = up.get();
    if (claimed.count(first) || !eligible(first)) continue;
    // The chain's data input: a unary node's input; for a binary node the non-constant input whose shape the
    // output keeps (input 0 when both qualify).
    Tensor* x = nullptr;
    int slot = -1;
    for (int s : {0, 1}) {
      Tensor* cand = first->input(static_cast<size_t>(s));
      if (!cand || cand->is_constant() || cand->dtype != DType::Float || !cand->has_static_shape()) continue;
      const std::vector<int64_t> dims = static_dims(*cand->shape);
      if (data_slot_of(first, cand, dims, s) == s) {
        x = cand;
        slot = s;
        break;
      }
      if (is_unary(first->op)) break;
    }
    if (!x) continue;
    const std::vector<int64_t> dims = static_dims(*x->shape);
    std::vector<Step> chain{{first, slot}};
    while (true) {
      Tensor* t = chain.back().node->output(0);
      if (t->uses().size() != 1 || pattern::is_graph_output(g, t)) break;
      const auto [next, use_slot] = t->uses()[0];
      if (claimed.count(next)) break;
      const int s = data_slot_of(next, t, dims, static_cast<int>(use_slot));
      if (s != static_cast<int>(use_slot)) break;
      chain.push_back({next, s});
    }
    if (chain.size() < 2) continue;
    for (const Step& s : chain) claimed.insert(s.node);
    chains.emplace_back(x, std::move(chain));
  }
  for (auto& [x, chain] : chains) {
    std::vector<Tensor*> inputs{x};
    std::vector<std::string> steps, names;
    std::vector<int64_t> operand, data_first;
    std::vector<float> alpha, beta;
    bool has_beta = false;
    std::vector<Node*> nodes;
    for (const Step& s : chain) {
      Node* n = s.node;
      nodes.push_back(n);
      steps.push_back(n->op);
      names.push_back(pattern::name_of(n));
      data_first.push_back(s.data_slot == 0 ? 1 : 0);
      const std::optional<ops::ActivationParams> act = ops::activation_of(*n);
      alpha.push_back(act ? act->alpha : 0.f);
      beta.push_back(act ? act->beta : 0.f);
      has_beta = has_beta || (act && *ops::activation_info(act->act).beta_attr);
      if (is_unary(n->op)) {
        operand.push_back(-1);
        continue;
      }
      Tensor* other = n->input(static_cast<size_t>(1 - s.data_slot));
      auto it = std::find(inputs.begin(), inputs.end(), other);
      if (it == inputs.end()) it = inputs.insert(inputs.end(), other);
      operand.push_back(static_cast<int64_t>(it - inputs.begin()));
    }
    Tensor* out = chain.back().node->output(0);
    const std::string base = chain.front().node->name.empty() ? "elementwise_chain" : chain.front().node->name;
    Node* fused = g.replace_nodes(nodes, ec::kOp, inputs, {out}, g.unique_name(base + "_chain"), internal_ops::kDomain);
    fused->attrs.set(ec::kSteps, steps);
    fused->attrs.set(ec::kOperand, operand);
    fused->attrs.set(ec::kDataFirst, data_first);
    fused->attrs.set(ec::kAlpha, alpha);
    if (has_beta) fused->attrs.set(ec::kBeta, beta);  // only where a step has one (absent: the defaults)
    fused->attrs.set(internal_ops::kFusedNames, names);
  }
  if (!chains.empty()) {
    pattern::use_kiln_domain(g);
    g.cleanup();
    g.toposort();
  }
  return chains.size();
}

}  // namespace kiln
