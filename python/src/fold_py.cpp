// kiln._kiln.fold_onnx: kiln's constant folding for ONNX bytes (what `kiln surgeon sanitize --fold-constants
// --cleanup --toposort` does to a file), for kiln.gs's Graph.fold_constants.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>

#include <limits>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "kiln/error.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace kiln::py {
namespace {

void log_warning(const std::string& message) {
  nb::module_::import_("logging").attr("getLogger")("kiln").attr("warning")(message);
}

// Nodes computable from Constants alone (no graph input reaches them, no Shape of a non-constant): what
// folding without shapes (onnx_graphsurgeon's fold_shapes=False) may replace. Nodes with subgraphs are left
// alone.
bool has_subgraph(const Node& n) {
  for (const auto& [name, attr] : n.attrs.items())
    if (std::holds_alternative<GraphPtr>(attr.value) ||
        std::holds_alternative<std::vector<GraphPtr>>(attr.value))
      return true;
  return false;
}

std::set<const Node*> constant_only_nodes(const Graph& g) {
  std::set<const Node*> out;
  std::set<const Tensor*> known;
  for (const auto& node : g.nodes()) {  // toposorted by the caller
    const Node* n = node.get();
    if (has_subgraph(*n)) continue;
    bool all = true;
    for (const Tensor* t : n->inputs())
      if (t && !t->is_constant() && !known.count(t)) all = false;
    if (!all) continue;
    out.insert(n);
    for (const Tensor* t : n->outputs())
      if (t) known.insert(t);
  }
  return out;
}

// Replaces, in `g`, the outputs of its constant-only nodes that something else reads by the values `folded`
// (a fully folded copy of `g`) computed for them.
void apply_constant_only(Graph& g, const Graph& folded) {
  const std::set<const Node*> foldable = constant_only_nodes(g);
  std::vector<std::pair<Tensor*, const Constant*>> boundary;
  for (const Node* n : foldable)
    for (Tensor* t : n->outputs()) {
      if (!t) continue;
      const Tensor* f = folded.find_tensor(t->name);
      if (!f || !f->is_constant()) continue;
      boundary.emplace_back(t, static_cast<const Constant*>(f));
    }
  for (auto& [t, f] : boundary) {
    const std::string name = t->name;
    Constant* c = g.add_constant(g.unique_name(name + "_folded"), f->values());
    g.replace_all_uses(t, c);
    g.rename_tensor(t, g.unique_name(name + "_unfolded"));
    g.rename_tensor(c, name);
  }
}

}  // namespace

void bind_fold(nb::module_& m) {
  m.def(
      "fold_onnx",
      [](nb::bytes model, bool fold_shapes, std::optional<size_t> size_threshold, bool error_ok) -> nb::bytes {
    std::vector<std::string> warnings;
    ImportOptions import;
    import.on_warning = [&warnings](const std::string& w) { warnings.push_back(w); };
        std::string out;
        {
    std::string bytes(model.c_str(), model.size());
    nb::gil_scoped_release release;
    std::unique_ptr<Graph> graph = import_onnx_bytes(bytes, "<model>", ".", import);
    PropagateOptions options;
    options.allow_unknown_ops = error_ok;
    // No threshold: fold everything (a 16x margin for weights stays inside size_t).
    options.max_folded_bytes = size_threshold ? *size_threshold : std::numeric_limits<size_t>::max() / 32;
    try {
      if (fold_shapes) {
        fold_constants(*graph, options);
      } else {
        graph->toposort();
        std::unique_ptr<Graph> folded = graph->copy();
        fold_constants(*folded, options);
        apply_constant_only(*graph, *folded);
      }
    } catch (const Error& e) {
      if (!error_ok) throw;
      warnings.push_back(std::string("fold_constants: nothing folded: ") + e.what());
      graph = import_onnx_bytes(bytes, "<model>", ".", import);
    }
    graph->cleanup();
    graph->toposort();
    out = export_onnx_bytes(*graph);
        }
        for (const std::string& w : warnings) log_warning(w);
        return nb::bytes(out.data(), out.size());
},
      "model"_a, "fold_shapes"_a = true, "size_threshold"_a = nb::none(), "error_ok"_a = true,
      "Folds an ONNX model's constants with kiln's folding (shape chains included), then removes dead nodes and "
      "sorts it; returns the model's bytes. fold_shapes=False folds only what Constants alone compute. "
      "size_threshold: largest folded tensor in bytes (None: no limit). error_ok: unknown ops are skipped and a "
      "failing fold leaves the model unfolded (logged on logger 'kiln') instead of raising kiln.Error.");
}

}  // namespace kiln::py
