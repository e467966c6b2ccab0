// inline_if: If(cond, captured...) whose branches give one static shape and dtype per output becomes both
// branches' nodes (captured inputs read from the If's) and y_i = Where(cond, then_i, else_i), for devices
// without an If kernel (a CUDA graph cannot branch on device data). Both branches always run: correct as ONNX
// ops have no side effects; costs the branch not taken (one failing at run time fails the graph). cond: one
// bool of rank <= the outputs' (Where's broadcast keeps their shape). Refused: differing or unknown shapes or
// dtypes, sequences, optionals, strings, nested control flow, opset < 9 (no Where).
#include "passes/inline_body.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

struct Match {
  Node* node = nullptr;
  std::unique_ptr<Graph> branch[2];  // then, else
};

std::string match_at(Graph& g, Node* n, Match& m, bool& ok, const PropagateOptions& fold) {
  m.node = n;
  if (g.opset("") < 9) return "Where needs opset 9";
  const auto captured = static_cast<size_t>(n->attrs.get_int(internal_ops::kCaptured, 0));
  const Tensor* cond = n->input(0);
  if (n->inputs().size() != 1 + captured || !cond) return "its inputs are not cond and captured values";
  if (cond->dtype != DType::Bool || !cond->has_static_shape() ||
      static_dims(*cond->shape) != std::vector<int64_t>(cond->shape->size(), 1))
    return "cond is not a bool of one element and static shape";
  std::vector<inline_body::Type> types;
  for (size_t k = 1; k < n->inputs().size(); ++k) types.push_back({n->input(k)->dtype, n->input(k)->shape});
  for (int b = 0; b < 2; ++b)
    if (auto why = inline_body::typed_copy(n, b ? "else_branch" : "then_branch", types, fold, m.branch[b]);
        !why.empty())
      return why;
  for (size_t i = 0; i < n->outputs().size(); ++i) {
    const Tensor *t = m.branch[0]->outputs[i], *e = m.branch[1]->outputs[i];
    if (!inline_body::plain_static(t) || !inline_body::plain_static(e) || t->dtype != e->dtype ||
        static_dims(*t->shape) != static_dims(*e->shape) || cond->shape->size() > t->shape->size())
      return "output " + std::to_string(i) + " differs between the branches or is no static tensor";
  }
  ok = true;
  return "";
}

}  // namespace

size_t inline_if(Graph& g, const PropagateOptions& fold, std::vector<NotFolded>* rejected) {
  return inline_body::rewrite_all<Match>(g, "If", fold, rejected, match_at, [&](Match& m) {
    const std::string stem = pattern::name_of(m.node);
    const std::vector<Tensor*> in = m.node->inputs(), captured(in.begin() + 1, in.end()),
                               outputs = m.node->outputs();
    g.remove_node(m.node);  // its outputs stay, written by the Wheres below
    const auto t = inline_body::copy_into(g, *m.branch[0], captured, stem + "/then");
    const auto e = inline_body::copy_into(g, *m.branch[1], captured, stem + "/else");
    for (size_t i = 0; i < outputs.size(); ++i)
      if (outputs[i]) g.add_node("Where", {in[0], t[i], e[i]}, {outputs[i]}, g.unique_name(stem + "/select"));
  });
}

}  // namespace kiln
