// Shape/type inference with value propagation, and constant folding on top of it.
//
// One walk in topological order. For each node the op schema infers output dtypes and shapes from what is
// known about the inputs, including input *values* when they are constants or were computed earlier in
// the walk (the output of Shape on a static tensor, the Concat of such values, ...). When every input
// value is known and the op has a reference kernel, the kernel computes the outputs' values too. That is
// what resolves PyTorch's Shape→Gather→Concat→Reshape chains: ONNX's own inference stops at them.
#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

#include "kiln/passes.h"
#include "ops/graph_eval.h"
#include "ops/op.h"
#include "ops/util.h"

namespace kiln {
namespace {

// Constants at most this big are handed to shape inference even when the node cannot be evaluated
// (Reshape's target shape, Pad's pads, Resize's scales). Weights are never loaded just for inference.
constexpr size_t kShapeValueBytes = 64 << 10;

std::string where(const Graph& g, const Node& n) {
  return (g.source.empty() ? std::string() : g.source + ": ") + "node " + n.label() + ": ";
}

std::string registered_plugins() {
  std::string names;
  for (const ops::OpSchema* s : ops::all_ops())
    if (s->from_plugin) names += (names.empty() ? "" : ", ") + s->op;
  return names.empty() ? "none" : names;
}

std::optional<size_t> static_bytes(DType dtype, const std::optional<Shape>& shape) {
  if (!shape || !is_static(*shape) || dtype == DType::Undefined || dtype == DType::String)
    return std::nullopt;
  size_t n = dtype_size(dtype);
  for (const Dim& d : *shape) n *= static_cast<size_t>(d.value);
  return n;
}

// Merge an inferred shape into what the tensor already declares: inferred static dims win over unknown
// ones; two different static sizes are an error (the file's value_info contradicts its own graph).
// `overridden`: where a contradicted declaration of an intermediate tensor is recorded (the computed shape
// wins); a graph output's contradicted declaration is an error.
void merge_shape(const Graph& g, const Node& n, Tensor& t, const std::optional<Shape>& inferred,
                 std::vector<std::string>& overridden) {
  if (!inferred) return;
  auto contradicted = [&] {
    const std::string what = where(g, n) + "output '" + printable(t.name) + "' is declared " +
                             printable(to_string(*t.shape)) + " but computes " + printable(to_string(*inferred));
    if (std::find(g.outputs.begin(), g.outputs.end(), &t) != g.outputs.end()) throw Error(what);
    overridden.push_back(what);
    t.shape = inferred;
  };
  if (!t.shape || t.shape->size() != inferred->size()) {
    if (t.shape && is_static(*t.shape) && is_static(*inferred)) return contradicted();
    t.shape = inferred;
    return;
  }
  for (size_t k = 0; k < inferred->size(); ++k) {
    Dim& have = (*t.shape)[k];
    const Dim& got = (*inferred)[k];
    if (have.is_static() && got.is_static() && have.value != got.value) return contradicted();
    if (got.is_static() || (!have.is_static() && have.symbol.empty())) have = got;
  }
}

// Merge an inferred dtype likewise: a declared dtype (the file's value_info) that differs is an error, not
// silently overwritten; an undefined one takes the inferred dtype.
void merge_dtype(const Graph& g, const Node& n, Tensor& t, DType inferred) {
  if (inferred == DType::Undefined) return;
  if (t.dtype != DType::Undefined && t.dtype != inferred)
    throw Error(where(g, n) + "output '" + printable(t.name) + "' is declared " + dtype_name(t.dtype) +
                " but computes " + dtype_name(inferred));
  t.dtype = inferred;
}

class Propagator {
 public:
  Propagator(Graph& g, const PropagateOptions& o) : graph_(g), options_(o) {}

  PropagateReport run() {
    graph_.toposort();
    for (const Tensor* t : graph_.inputs) check_input_size(*t);
    for (const auto& node : graph_.nodes()) visit(*node);
    report_.unknown_shapes = count_unknown_shapes(graph_);
    return report_;
  }

  // Values computed during the walk, by tensor (Variables only; Constants carry their own).
  std::unordered_map<const Tensor*, TensorData>& values() { return values_; }

 private:
  const TensorData* known_value(const Tensor* t, bool load_large) {
    if (auto it = values_.find(t); it != values_.end()) return &it->second;
    if (auto* c = dynamic_cast<const Constant*>(t)) {
      auto bytes = static_bytes(c->dtype, c->shape);
      if (load_large || (bytes && *bytes <= kShapeValueBytes)) return &c->values();
    }
    return nullptr;
  }

  // A graph input whose declared dims cannot be multiplied out is refused by name before anything uses it
  // (node outputs get the same check in ops::infer_node).
  void check_input_size(const Tensor& t) const {
    if (t.shape && !ops::static_size_fits(t.dtype, *t.shape))
      throw Error((graph_.source.empty() ? "" : graph_.source + ": ") + "input '" + printable(t.name) +
                  "' has shape " + to_string(*t.shape) + ", whose size overflows 64 bits");
  }

  bool is_known(const Tensor* t) const { return t->is_constant() || values_.count(t); }

  void visit(const Node& node) {
    ++report_.nodes_visited;
    const ops::OpSchema* schema = ops::find_op(node.domain, node.op);
    if (!schema) {
      std::string id = (node.domain.empty() ? "" : node.domain + ".") + node.op;
      if (!options_.allow_unknown_ops)
        throw Error(
            where(graph_, node) + "unknown op '" + id + "': neither an op kiln implements nor a registered " +
            "plugin (registered plugins: " + registered_plugins() +
            "); implement a kiln::PluginCreator named '" + node.op + "' and load it with --plugins=LIB.so");
      report_.unknown_ops.push_back(node.label());
      return;
    }
    const int64_t opset = graph_.opset(node.domain);
    bool all_known = !node.inputs().empty() || node.op == "Constant" || schema->min_inputs == 0;
    for (Tensor* t : node.inputs())
      if (t && !is_known(t)) all_known = false;
    if (all_known && ops::reads_uncaptured_outer(node)) all_known = false;  // its kernel lacks those values

    ops::InferContext ctx(node, opset);
    for (Tensor* t : node.inputs()) {
      ops::InputInfo info;
      if (t) {
        info.present = true;
        info.dtype = t->dtype;
        info.shape = t->shape;
        info.value = known_value(t, all_known);
        info.element = t->element;
      }
      ctx.in.push_back(info);
    }
    ctx.out.resize(node.outputs().size());
    try {
      ops::infer_node(*schema, ctx);
    } catch (const Error& e) {
      throw Error(prefixed(e.what()));
    }
    for (size_t k = 0; k < node.outputs().size(); ++k) {
      Tensor* t = node.output(k);
      if (!t) continue;
      merge_dtype(graph_, node, *t, ctx.out[k].dtype);
      merge_shape(graph_, node, *t, ctx.out[k].shape, report_.overridden_value_info);
      if (!t->element) t->element = ctx.out[k].element;
      if (ctx.out[k].value) store_value(node, *t, std::move(*ctx.out[k].value));
    }
    if (all_known) evaluate(node, *schema, opset);
  }

  std::string prefixed(const std::string& message) const {
    // Inference errors already name the node; add the file once.
    if (graph_.source.empty() || message.rfind(graph_.source, 0) == 0) return message;
    return graph_.source + ": " + message;
  }

  void store_value(const Node& node, Tensor& t, TensorData v) {
    merge_dtype(graph_, node, t, v.dtype());
    merge_shape(graph_, node, t, make_shape(v.dims()), report_.overridden_value_info);
    if (values_.emplace(&t, std::move(v)).second) ++report_.values_computed;
  }

  void evaluate(const Node& node, const ops::OpSchema& schema, int64_t opset) {
    bool done = true;
    for (Tensor* t : node.outputs())
      if (t && !values_.count(t)) done = false;
    if (done) return;
    if (!schema.reference) {
      not_folded(node, "op has no reference kernel yet");
      return;
    }
    for (Tensor* t : node.outputs()) {
      if (!t) continue;
      auto bytes = static_bytes(t->dtype, t->shape);
      if (bytes && *bytes > fold_cap(*t)) {
        not_folded(node, "output '" + t->name + "' would be " + std::to_string(*bytes) +
                             " bytes, over the fold cap of " + std::to_string(options_.max_folded_bytes));
        return;
      }
    }
    ops::KernelContext kctx(node, opset);
    for (Tensor* t : node.inputs()) kctx.in.push_back(t ? known_value(t, true) : nullptr);
    kctx.out.resize(node.outputs().size());
    try {
      ops::run_reference(schema, kctx);
    } catch (const Error& e) {
      throw Error(prefixed(e.what()));
    }
    for (size_t k = 0; k < node.outputs().size(); ++k) {
      Tensor* t = node.output(k);
      if (!t) continue;
      if (kctx.out[k].nbytes() > fold_cap(*t)) {
        not_folded(node, "output '" + t->name + "' is over the fold cap");
        values_.erase(t);
        continue;
      }
      store_value(node, *t, std::move(kctx.out[k]));
    }
  }

  // The fold cap exists so that a node expanding a few bytes into a huge tensor (ConstantOfShape, Expand,
  // Tile, Range) does not bloat the engine. A value whose every use is a weight operand is different: kernels
  // prepack weights at build time and can only do so for constants (recomputed, the ONNX "light" VGG-19's
  // 411 MB FC weight took 74% of each inference), and at run time it would occupy the same bytes in the
  // activation arena while its consumer runs, so storing it costs no more peak memory than computing it.
  // Such values get a cap of kWeightFoldFactor times the normal one (1 GiB by default) instead.
  static constexpr size_t kWeightFoldFactor = 16;
  size_t fold_cap(const Tensor& t) const {
    const size_t cap = options_.max_folded_bytes;
    if (t.uses().empty() || std::count(graph_.outputs.begin(), graph_.outputs.end(), &t)) return cap;
    for (const auto& [user, index] : t.uses())
      if (!is_weight_operand(*user, index)) return cap;
    return cap > SIZE_MAX / kWeightFoldFactor ? SIZE_MAX : cap * kWeightFoldFactor;
  }
  static bool is_weight_operand(const Node& user, size_t index) {
    if (!user.domain.empty()) return false;
    if (user.op == "Gemm" || user.op == "Conv" || user.op == "ConvTranspose") return index == 1 || index == 2;
    return user.op == "MatMul" && index == 1;
  }

  void not_folded(const Node& node, const std::string& reason) {
    report_.not_folded.push_back({node.label(), reason});
  }

  Graph& graph_;
  const PropagateOptions& options_;
  PropagateReport report_;
  std::unordered_map<const Tensor*, TensorData> values_;
};

}  // namespace

PropagateReport infer_shapes(Graph& graph, const PropagateOptions& options) {
  return Propagator(graph, options).run();
}

PropagateReport fold_constants(Graph& graph, const PropagateOptions& options) {
  Propagator propagator(graph, options);
  PropagateReport report = propagator.run();
  auto& values = propagator.values();

  // Snapshot the foldable nodes first: rewiring while iterating graph.nodes() would invalidate it.
  std::vector<Node*> foldable;
  for (const auto& node : graph.nodes()) {
    bool all_outputs_known = !node->outputs().empty();
    for (Tensor* t : node->outputs())  // sequences and optionals stay computed: ONNX constants are tensors
      if (t && (!values.count(t) || dtype_is_container(values.at(t).dtype()))) all_outputs_known = false;
    if (all_outputs_known) foldable.push_back(node.get());
  }
  std::unordered_set<Tensor*> graph_inputs(graph.inputs.begin(), graph.inputs.end());
  for (Node* node : foldable) {
    std::vector<Tensor*> outs = node->outputs();
    node->clear_io();  // dead now: the cleanup below deletes it (one pass instead of an erase per node)
    for (Tensor* t : outs) {
      if (!t) continue;
      // Keep the tensor's name: a folded graph output must still be found by name. The variable moves aside
      // under a name no tensor has (it has no producer and no uses left, so cleanup deletes it).
      std::string name = t->name;
      std::string doc = t->doc_string;
      std::string aside = name + "__folding";
      for (int k = 1; graph.find_tensor(aside); ++k) aside = name + "__folding_" + std::to_string(k);
      graph.rename_tensor(t, aside);
      Constant* c = graph.add_constant(name, std::move(values.at(t)));
      c->doc_string = doc;
      values.erase(t);
      graph.replace_all_uses(t, c);
      if (graph_inputs.count(t))
        std::replace(graph.inputs.begin(), graph.inputs.end(), t, static_cast<Tensor*>(c));
    }
    ++report.folded_nodes;
  }
  graph.cleanup();
  report.unknown_shapes = count_unknown_shapes(graph);
  return report;
}

}  // namespace kiln
