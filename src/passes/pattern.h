// A small declarative matcher for the rewrites: a pattern is a chain of ops, each reading the previous
// one's output, which nobody else reads. Passes declare the chain and then validate its constants.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <vector>

#include "kiln/graph.h"

namespace kiln::pattern {

struct Step {
  const char* op;
  bool commutative = false;  // the previous output may be either input (Mul, Add)
};

inline bool is_graph_output(const Graph& g, const Tensor* t) {
  return std::find(g.outputs.begin(), g.outputs.end(), t) != g.outputs.end();
}

inline bool is_onnx(const Node* n) { return n->domain.empty() || n->domain == "ai.onnx"; }

// The chain starting at `first`, or an empty vector. Every link's tensor has exactly one use and is not a
// graph output, so replacing the chain cannot change what anyone else reads.
inline std::vector<Node*> match_chain(const Graph& g, Node* first, std::initializer_list<Step> steps) {
  std::vector<Node*> out;
  Node* n = first;
  for (const Step& s : steps) {
    if (!n || n->op != s.op || !is_onnx(n)) return {};
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

}  // namespace kiln::pattern
