// What inline_if and unroll_scan share: typing a copy of a control-flow subgraph for the values its node
// feeds it, and copying its nodes into the enclosing graph. A refused match leaves the node as it was.
#pragma once
#include <memory>
#include <tuple>
#include <unordered_map>

#include "kiln/passes.h"
#include "passes/pattern.h"

namespace kiln::inline_body {

// A value Gather, Concat and Where route on any device: a tensor (no sequence, optional, string), static
// shape.
inline bool plain_static(const Tensor* t) {
  return t && t->dtype != DType::Undefined && t->dtype != DType::String && !dtype_is_container(t->dtype) &&
         t->has_static_shape();
}

using Type = std::pair<DType, std::optional<Shape>>;  // a subgraph input's dtype and shape

// Copies n's subgraph `attr` into `out`, inputs typed as `inputs` (may be sharper than its declarations),
// folded (no device runs Constant nodes) under the node's opsets. Returns why it cannot be inlined, "" when
// it can.
inline std::string typed_copy(const Node* n, const char* attr, const std::vector<Type>& inputs,
                              const PropagateOptions& fold, std::unique_ptr<Graph>& out) {
  const Attribute* a = n->attrs.find(attr);
  const GraphPtr* body = a ? std::get_if<GraphPtr>(&a->value) : nullptr;
  if (!body || !*body || (*body)->inputs.size() != inputs.size() || !(*body)->outer_scope_names().empty() ||
      (*body)->outputs.size() != n->outputs().size())
    return std::string(attr) + " is missing or does not take or give exactly the node's values";
  out = (*body)->copy();
  out->opset_imports = n->graph()->opset_imports;
  for (size_t k = 0; k < inputs.size(); ++k)
    std::tie(out->inputs[k]->dtype, out->inputs[k]->shape) = inputs[k];
  for (const auto& node : out->nodes())
    for (const auto& [name, v] : node->attrs.items())
      if (std::holds_alternative<GraphPtr>(v.value) || std::holds_alternative<std::vector<GraphPtr>>(v.value))
        return "its subgraph holds nested control flow (" + node->op + "), not rewritten here";
  try {
    fold_constants(*out, fold);
  } catch (const Error& e) {
    return std::string("its subgraph does not infer: ") + e.what();
  }
  return "";
}

// Copies the nodes of `body` (a typed_copy) into `g`, fresh names from `stem`, its inputs read as `inputs`.
// Returns what stands for its outputs (an input or a constant where the body passes one through).
inline std::vector<Tensor*> copy_into(Graph& g, const Graph& body, const std::vector<Tensor*>& inputs,
                                      const std::string& stem) {
  std::unordered_map<const Tensor*, Tensor*> to{{nullptr, nullptr}};  // null: an omitted optional operand
  for (size_t k = 0; k < inputs.size(); ++k) to[body.inputs[k]] = inputs[k];
  auto mapped = [&](Tensor* t) -> Tensor* {
    if (auto it = to.find(t); it != to.end()) return it->second;
    const std::string name = g.unique_name(stem + "/" + t->name);
    auto* c = t->is_constant()
                  ? static_cast<Tensor*>(g.add_constant(name, static_cast<Constant*>(t)->values()))
                  : g.add_variable(name, t->dtype, t->shape);
    c->element = t->element;
    return to[t] = c;
  };
  auto all = [&](const std::vector<Tensor*>& ts) {
    std::vector<Tensor*> r;
    for (Tensor* t : ts) r.push_back(mapped(t));
    return r;
  };
  for (const auto& n : body.nodes())
    g.add_node(n->op, all(n->inputs()), all(n->outputs()),
               g.unique_name(stem + "/" + pattern::name_of(n.get())), n->domain)
        ->attrs = n->attrs;
  return all(body.outputs);
}

// Matches `op` nodes, rewrites each, drops captured values only they read, orders and types the new nodes.
template <class Match, class MatchAt, class Rewrite>
size_t rewrite_all(Graph& g, const char* op, const PropagateOptions& fold, std::vector<NotFolded>* rejected,
                   MatchAt match_at, Rewrite rewrite) {
  auto at = [&](Graph& gr, Node* n, Match& m, bool& ok) { return match_at(gr, n, m, ok, fold); };
  std::vector<Match> matches = pattern::collect_matches<Match>(g, op, at, rejected);
  if (matches.empty()) return 0;
  for (Match& m : matches) rewrite(m);
  g.cleanup();
  g.toposort();
  infer_shapes(g, fold);
  return matches.size();
}

}  // namespace kiln::inline_body
