// GroupNorm as PyTorch exports it, collapsed into one kiln.GroupNorm layer:
//
//   X ─ Reshape(·, [0, G, -1]) ─ InstanceNormalization(scale = 1, B = 0, eps) ─ Reshape(·, shape of X)
//     ─ Mul(γ [C,1,..]) ─ Add(β [C,1,..]) [─ Elu | Relu]
//
// Runs after constant folding (the second Reshape's shape is then a constant). Every matched constant is
// validated; a match that doesn't fit (scale not all ones, bias not zero, γ not per-channel, G not dividing C,
// shapes unknown) is left alone and the reason recorded.
#include <cmath>

#include "kiln/passes.h"
#include "ops/activation.h"
#include "passes/pattern.h"

namespace kiln {
namespace {

using pattern::constant_value;
namespace gn = internal_ops::group_norm;

bool all_equal(const TensorData& t, double v) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t.as_double(i) != v) return false;
  return true;
}

// γ or β as [C]: the constant operand of Mul/Add must hold C values laid out per channel of X
// ([C], [C,1,...] with rank(X)-1 dims, or [1,C,1,...]).
std::optional<TensorData> per_channel(const Tensor* t, int64_t channels, size_t x_rank) {
  const TensorData* v = constant_value(t);
  if (!v || !dtype_is_float(v->dtype()) || v->numel() != channels) return std::nullopt;
  const auto& d = v->dims();
  const bool ok = (d.size() == x_rank - 1 && d[0] == channels) || (d.size() == x_rank && d[0] == 1 && d[1] == channels);
  if (!ok) return std::nullopt;
  return v->reshaped({channels});
}

struct Match {
  std::vector<Node*> nodes;  // Reshape, InstanceNormalization, Reshape, Mul, Add [, activation]
  Tensor* x;
  TensorData gamma, beta;
  int64_t groups;
  float eps;
};

// Checks a matched chain; returns the reason it is rejected, or "" and fills `m`.
std::string validate(const std::vector<Node*>& chain, Match& m) {
  Node *reshape1 = chain[0], *norm = chain[1], *reshape2 = chain[2], *mul = chain[3], *add = chain[4];
  m.x = reshape1->input(0);
  if (!m.x->has_static_shape() || m.x->shape->size() < 3) return "X's shape is not static with rank >= 3";
  const std::vector<int64_t> xd = static_dims(*m.x->shape);
  const int64_t channels = xd[1];
  const TensorData* target = constant_value(reshape1->input(1));
  if (!target || target->numel() != 3) return "first Reshape's shape is not a constant [0|N, G, -1]";
  const std::vector<int64_t> t = target->to_int64_vector();
  if (!(t[0] == 0 || t[0] == xd[0]) || t[2] != -1 || t[1] <= 0) return "first Reshape is not [0|N, G, -1]";
  m.groups = t[1];
  if (channels % m.groups != 0) return "G = " + std::to_string(m.groups) + " does not divide C = " + std::to_string(channels);
  const TensorData *scale = constant_value(norm->input(1)), *bias = constant_value(norm->input(2));
  if (!scale || scale->numel() != m.groups || !all_equal(*scale, 1.0)) return "InstanceNormalization scale is not all ones";
  if (!bias || bias->numel() != m.groups || !all_equal(*bias, 0.0)) return "InstanceNormalization bias is not all zeros";
  m.eps = norm->attrs.get_float("epsilon", 1e-5f);
  const TensorData* back = constant_value(reshape2->input(1));
  if (!back || back->to_int64_vector() != xd) return "second Reshape does not restore X's shape";
  const size_t rank = xd.size();
  // Mul/Add are commutative: the affine constant is whichever input is not the chain.
  auto other = [](Node* n, const Node* prev) { return n->input(0) == prev->output(0) ? n->input(1) : n->input(0); };
  auto gamma = per_channel(other(mul, reshape2), channels, rank);
  auto beta = per_channel(other(add, mul), channels, rank);
  if (!gamma) return "Mul's operand is not a per-channel constant γ";
  if (!beta) return "Add's operand is not a per-channel constant β";
  m.gamma = gamma->dtype() == m.x->dtype ? *gamma : TensorData();
  m.beta = beta->dtype() == m.x->dtype ? *beta : TensorData();
  if (m.gamma.empty_type() || m.beta.empty_type()) return "γ/β dtype differs from X's";
  m.nodes = chain;
  return "";
}

}  // namespace

size_t fuse_groupnorm(Graph& g, std::vector<NotFolded>* rejected, GroupNormTarget target) {
  std::vector<Match> matches;
  for (const auto& up : g.nodes()) {
    if (up->op != "Reshape" || !pattern::is_onnx(up.get())) continue;
    std::vector<Node*> chain = pattern::match_chain(
        g, up.get(), {{"Reshape"}, {"InstanceNormalization"}, {"Reshape"}, {"Mul", true}, {"Add", true}});
    if (chain.empty()) continue;
    Match m;
    std::string why = validate(chain, m);
    if (!why.empty()) {
      if (rejected) rejected->push_back({chain[1]->label(), why});
      continue;
    }
    // An activation that only this GroupNorm feeds is applied in the same pass over the data.
    const Tensor* out = chain.back()->output(0);
    if (target == GroupNormTarget::Native && out->uses().size() == 1 && !pattern::is_graph_output(g, out)) {
      Node* act = out->uses()[0].first;
      const std::optional<ops::ActivationParams> a = ops::activation_of(*act);
      if (a && ops::fusable_into_group_norm(a->act) && act->outputs().size() == 1)
        m.nodes.push_back(act);
    }
    matches.push_back(std::move(m));
  }
  for (Match& m : matches) {
    Node* last = m.nodes.back();
    std::vector<std::string> names;
    for (Node* n : m.nodes) names.push_back(pattern::name_of(n));
    const bool plugin = target == GroupNormTarget::Plugin;
    Attributes attrs;
    attrs.set(gn::kNumGroups, m.groups);  // the plugin's field has the same name
    attrs.set(plugin ? "eps" : gn::kEpsilon, m.eps);
    if (plugin) {
      attrs.set("plugin_version", std::string("1"));
      attrs.set("plugin_namespace", std::string(""));
    } else if (const std::optional<ops::ActivationParams> a = ops::activation_of(*last);
               a && ops::fusable_into_group_norm(a->act)) {
      ops::set_fused_activation(attrs, ops::kGroupNormActivation, *a);
    }
    if (!plugin) attrs.set(internal_ops::kFusedNames, names);  // a plugin node gets only the plugin's own fields
    const std::string base = m.nodes[1]->name.empty() ? "groupnorm" : m.nodes[1]->name;
    Constant* gamma = g.add_constant(g.unique_name(base + "_gamma"), m.gamma);
    Constant* beta = g.add_constant(g.unique_name(base + "_beta"), m.beta);
    Tensor* out = last->output(0);
    Node* fused = plugin ? g.replace_nodes(m.nodes, "GroupNormalizationPlugin", {m.x, gamma, beta}, {out}, base)
                         : g.replace_nodes(m.nodes, gn::kOp, {m.x, gamma, beta}, {out}, base, internal_ops::kDomain);
    fused->attrs = std::move(attrs);
  }
  if (!matches.empty()) {
    if (target == GroupNormTarget::Native) pattern::use_kiln_domain(g);
    g.cleanup();    // the old γ/β/shape constants
    g.toposort();   // replace_nodes appends the fused node at the end
  }
  return matches.size();
}

}  // namespace kiln
