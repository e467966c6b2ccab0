// A small declarative matcher for the rewrites: a pattern is a chain of ops, each reading the previous
// one's output, which nobody else reads. Passes declare the chain and then validate its constants; the
// helpers below are the checks they share.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "kiln/graph.h"
#include "kiln/passes.h"
#include "ops/internal_ops.h"

namespace kiln::pattern {

struct Step {
  const char* op;                          // the default-domain op, or nullptr when `accepts` decides
  bool commutative = false;                // the previous output may be either input (Mul, Add)
  bool (*accepts)(const Node*) = nullptr;  // a family of ops (any fusable activation, ...)
};

inline bool is_graph_output(const Graph& g, const Tensor* t) {
  return std::find(g.outputs.begin(), g.outputs.end(), t) != g.outputs.end();
}

inline bool is_onnx(const Node* n) {
  return n->domain.empty() || n->domain == "ai.onnx";
}

// The chain starting at `first`, or an empty vector. Every link's tensor has exactly one use and is not a
// graph output, so replacing the chain cannot change what anyone else reads.
inline std::vector<Node*> match_chain(const Graph& g, Node* first, std::initializer_list<Step> steps) {
  std::vector<Node*> out;
  Node* n = first;
  for (const Step& s : steps) {
    if (!n || !is_onnx(n) || (s.accepts ? !s.accepts(n) : n->op != s.op)) return {};
    if (!out.empty()) {
      const Tensor* link = out.back()->output(0);
      const size_t slot = link->uses()[0].second;
      if (!s.commutative && slot != 0) return {};
    }
    out.push_back(n);
    const Tensor* t = n->output(0);
    const bool last = out.size() == steps.size();
    if (last) break;
    if (!t || n->outputs().size() != 1 || t->uses().size() != 1 || is_graph_output(g, t)) return {};
    n = t->uses()[0].first;
  }
  return out;
}

// The value of a Constant tensor, or nullptr.
inline const TensorData* constant_value(const Tensor* t) {
  const auto* c = dynamic_cast<const Constant*>(t);
  return c ? &c->values() : nullptr;
}

// A rank-1 int64/int32 constant as int64 values, or nullopt.
inline std::optional<std::vector<int64_t>> int_list(const Tensor* t) {
  const TensorData* v = constant_value(t);
  if (!v || v->rank() != 1 || (v->dtype() != DType::Int64 && v->dtype() != DType::Int32)) return std::nullopt;
  return v->to_int64_vector();
}

inline std::string name_of(const Node* n) {
  return n->name.empty() ? n->op : n->name;
}

// What a fused node records as its members: the node's kiln_fused list, or just its own name.
inline std::vector<std::string> fused_names(const Node* n) {
  if (const Attribute* a = n->attrs.find(internal_ops::kFusedNames))
    if (const auto* v = std::get_if<std::vector<std::string>>(&a->value)) return *v;
  return {name_of(n)};
}

// Declares the kiln domain on a graph that now holds kiln-internal ops (an exported engine must import it).
inline void use_kiln_domain(Graph& g) {
  if (g.opset(internal_ops::kDomain) == 0) g.set_opset(internal_ops::kDomain, 1);
}

// The matches of a rewrite anchored at ONNX `anchor_op` nodes. `match_at(g, node, match, ok)` fills `match`
// and sets `ok`, or returns why a near-miss was rejected (reported to `rejected`; "" when the node is no
// candidate). Matches are collected first and rewritten afterwards, so rewriting never disturbs the walk.
template <class Match, class MatchAt>
std::vector<Match> collect_matches(Graph& g, const char* anchor_op, MatchAt match_at,
                                   std::vector<NotFolded>* rejected) {
  std::vector<Match> matches;
  for (const auto& up : g.nodes()) {
    if (up->op != anchor_op || !is_onnx(up.get())) continue;
    Match m;
    bool ok = false;
    const std::string why = match_at(g, up.get(), m, ok);
    if (ok)
      matches.push_back(std::move(m));
    else if (!why.empty() && rejected)
      rejected->push_back({up->label(), why});
  }
  return matches;
}

}  // namespace kiln::pattern
