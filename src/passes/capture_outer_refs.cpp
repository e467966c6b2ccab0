// capture_outer_references: makes the values If/Loop/Scan subgraphs read from enclosing scopes explicit
// inputs.
//
// ONNX subgraphs read outer values by name. The engine runs one kernel per node on the node's inputs only,
// and plans memory from dataflow, so each such value becomes a trailing input of the control-flow node (ONNX
// Runtime's "implicit inputs") and a trailing input of every one of its subgraphs, bound by position; the
// node records the count in internal_ops::kCaptured. Nested control flow is captured the same way, top-down,
// so a subgraph reads nothing by name from outside.
//
// The builder runs this on its private copy of the graph, before inference. It is not done at import: the
// captured form is not standard ONNX (If takes one input), and a user graph must stay exportable and editable
// by name. Engine files carry the captured form and re-import it unchanged (every subgraph is
// self-contained).
#include <set>

#include "ops/internal_ops.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

std::vector<Graph*> subgraphs_of(const Node& n) {
  std::vector<Graph*> out;
  for (const auto& [name, a] : n.attrs.items()) {
    if (const auto* g = std::get_if<GraphPtr>(&a.value); g && *g) out.push_back(g->get());
    if (const auto* gs = std::get_if<std::vector<GraphPtr>>(&a.value))
      for (const GraphPtr& g : *gs)
        if (g) out.push_back(g.get());
  }
  return out;
}

size_t capture_graph(Graph& g) {
  size_t captured = 0;
  for (const auto& node : g.nodes()) {
    Node& n = *node;
    const std::vector<Graph*> subgraphs = subgraphs_of(n);
    if (subgraphs.empty()) continue;
    std::set<std::string> names;  // sorted: the order of the new inputs is deterministic
    for (Graph* sg : subgraphs)
      for (const std::string& name : sg->outer_scope_names()) names.insert(name);
    for (const std::string& name : names) {
      Tensor* outer = g.find_tensor(name);
      if (!outer)
        throw Error((g.source.empty() ? "" : g.source + ": ") + "node " + n.label() + ": a subgraph reads '" +
                    printable(name) + "', which no enclosing graph defines");
      n.add_input(outer);
      for (Graph* sg : subgraphs) {
        Tensor* v = sg->find_tensor(name);
        // A subgraph that does not read the name (a sibling branch does) gets an unused input; one whose own
        // tensor has that name gets the input under a fresh name.
        if (!v || !sg->is_outer_reference(v)) v = sg->add_variable(v ? sg->unique_name(name) : name);
        if (v->dtype == DType::Undefined) v->dtype = outer->dtype;
        if (!v->shape) v->shape = outer->shape;
        if (!v->element) v->element = outer->element;
        sg->inputs.push_back(v);
      }
    }
    if (!names.empty()) {
      const int64_t before = n.attrs.get_int(internal_ops::kCaptured, 0);
      n.attrs.set(internal_ops::kCaptured, before + static_cast<int64_t>(names.size()));
      captured += names.size();
    }
    for (Graph* sg : subgraphs) {
      sg->toposort();  // the evaluator runs subgraph nodes in stored order
      captured += capture_graph(*sg);
    }
  }
  return captured;
}

}  // namespace

size_t capture_outer_references(Graph& graph) {
  return capture_graph(graph);
}

}  // namespace kiln
