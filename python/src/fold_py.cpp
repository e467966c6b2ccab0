// kiln._kiln.fold_onnx: kiln's constant folding for ONNX bytes, for kiln.gs's Graph.fold_constants. It
// returns only the values that folded (not a model), and reads large weights through a callback only when
// folding needs them, so a model's weights never cross into C++ or back as protobuf bytes.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "convert.h"
#include "kiln/error.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"
#include "log.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace kiln::py {
namespace {

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

// The values kiln folded: every Constant of `folded` that was not one in the model given (its initializers),
// as {name: (ONNX Runtime type name, dims, bytes or list of str)}. Built under the GIL.
nb::dict folded_values(const Graph& folded, const std::set<std::string>& given) {
  nb::dict out;
  for (const Tensor* t : folded.all_tensors()) {
    if (!t->is_constant() || given.count(t->name)) continue;
    const TensorData& v = static_cast<const Constant*>(t)->values();
    if (v.dtype() == DType::Sequence || v.dtype() == DType::Optional) continue;
    nb::object data;
    if (v.dtype() == DType::String) {
      nb::list strings;
      for (const std::string& s : v.strings()) strings.append(nb::str(s.data(), s.size()));
      data = strings;
    } else {
      data = nb::bytes(static_cast<const char*>(v.raw()), v.nbytes());
    }
    out[nb::str(std::string(t->name).c_str())] = nb::make_tuple(ort_type_name(v.dtype()), v.dims(), data);
  }
  return out;
}

// Fills `dst` from the Python reader's buffer; called (GIL released around it) when kiln first needs a
// weight.
void read_from_python(const nb::callable& reader, const std::string& location, uint64_t offset,
                      uint64_t length, void* dst) {
  nb::gil_scoped_acquire gil;
  try {
    nb::object buffer = reader(location, offset, length);
    Py_buffer view;
    if (PyObject_GetBuffer(buffer.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) throw nb::python_error();
    const bool fits = static_cast<uint64_t>(view.len) == length;
    if (fits) std::memcpy(dst, view.buf, length);
    PyBuffer_Release(&view);
    if (!fits) throw Error("read_external('" + location + "') returned the wrong number of bytes");
  } catch (nb::python_error& e) {
    throw Error("read_external('" + location + "'): " + e.what());
  }
}

// kiln._kiln.fold_onnx (docstring below).
nb::dict fold_onnx(nb::bytes model, std::optional<nb::callable> read_external, bool fold_shapes,
                   std::optional<size_t> size_threshold, bool error_ok) {
  std::vector<std::string> warnings;
  ImportOptions import;
  import.on_warning = [&warnings](const std::string& w) { warnings.push_back(w);
};
if (read_external)
  import.read_external = [reader = *read_external](const std::string& location, uint64_t offset,
                                                   uint64_t length, void* dst) {
    read_from_python(reader, location, offset, length, dst);
};  // namespace
const std::string bytes(model.c_str(), model.size());
std::unique_ptr<Graph> graph;
std::set<std::string> given;
{
  nb::gil_scoped_release release;
  graph = import_onnx_bytes(bytes, "<model>", ".", import);
  for (const Tensor* t : graph->all_tensors())
    if (t->is_constant()) given.insert(t->name);
  PropagateOptions options;
  options.allow_unknown_ops = error_ok;
  // No threshold: fold everything (a 16x margin for weights stays inside size_t).
  options.max_folded_bytes = size_threshold ? *size_threshold : std::numeric_limits<size_t>::max() / 32;
  if (fold_shapes) {
    fold_constants(*graph, options);
  } else {
    graph->toposort();
    std::unique_ptr<Graph> folded = graph->copy();
    fold_constants(*folded, options);
    apply_constant_only(*graph, *folded);
  }
}
log_warnings(warnings);
return folded_values(*graph, given);
}  // namespace kiln::py

}  // namespace

void bind_fold(nb::module_& m) {
  m.def(
      "fold_onnx", &fold_onnx, "model"_a, "read_external"_a = nb::none(), "fold_shapes"_a = true,
      "size_threshold"_a = nb::none(), "error_ok"_a = true,
      "Folds an ONNX model's constants with kiln's folding (shape chains included); returns what folded: "
      "{tensor name: (ONNX Runtime type name, dims, bytes, or a list of str for strings)} for every tensor "
      "that became a constant. read_external(location, offset, length) -> a buffer of exactly `length` bytes "
      "supplies tensors stored as external data (called only for those the folding reads; no files are "
      "opened). fold_shapes=False folds only what Constants alone compute. size_threshold: largest folded "
      "tensor in bytes (None: no limit). error_ok: ops kiln does not know are left unfolded instead of "
      "raising kiln.Error; a node that fails to fold raises kiln.Error either way.");
}

}  // namespace kiln::py
