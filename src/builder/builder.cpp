// The builder: graph → optimized graph → one layer per node → finish_plan (kernels, memory, device).
#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>
#include <unordered_map>

#include "builder/builder.h"
#include "builder/planner.h"
#include "device/kernel.h"
#include "kiln/passes.h"

namespace kiln {
namespace {

std::string prefix(const Graph& g) { return g.source.empty() ? "" : g.source + ": "; }

void log(const BuildOptions& o, const std::string& message) {
  if (o.log) o.log("[build] " + message);
}

bool enabled(const BuildOptions& o, const std::string& rewrite) {
  return std::find(o.skip_rewrites.begin(), o.skip_rewrites.end(), rewrite) == o.skip_rewrites.end();
}

// Fix input shapes the user gave (symbolic batch, unknown dims) before inference.
void apply_input_shapes(Graph& g, const BuildOptions& o) {
  for (const auto& [name, dims] : o.input_shapes) {
    auto it = std::find_if(g.inputs.begin(), g.inputs.end(),
                           [&, &name = name](Tensor* t) { return t->name == name; });
    if (it == g.inputs.end()) throw Error(prefix(g) + "--shapes names '" + name + "', which is not a model input");
    Tensor* t = *it;
    if (t->shape && t->shape->size() != dims.size())
      throw Error(prefix(g) + "input '" + name + "' has rank " + std::to_string(t->shape->size()) +
                  ", but the given shape " + to_string(make_shape(dims)) + " has rank " +
                  std::to_string(dims.size()));
    if (t->shape)
      for (size_t k = 0; k < dims.size(); ++k)
        if ((*t->shape)[k].is_static() && (*t->shape)[k].value != dims[k])
          throw Error(prefix(g) + "input '" + name + "' is " + to_string(*t->shape) + ", not " +
                      to_string(make_shape(dims)));
    t->shape = make_shape(dims);
  }
}

}  // namespace

std::unique_ptr<EnginePlan> build_plan(const Graph& source, const BuildOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  auto plan = std::make_unique<EnginePlan>();
  plan->options = options;
  if (plan->options.threads == 0)
    plan->options.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  check_device(source, plan->options);
  for (const std::string& r : options.skip_rewrites)
    if (r != "groupnorm" && r != "pad_into_conv" && r != "conv_activation" && r != "elementwise" &&
        r != "concat_in_place")
      throw Error("unknown rewrite '" + r + "' (groupnorm, pad_into_conv, conv_activation, elementwise, concat_in_place)");
  plan->graph = source.copy();
  Graph& g = *plan->graph;
  apply_input_shapes(g, options);
  log(options, "folding constants and inferring shapes (" + std::to_string(g.num_nodes()) + " nodes)");
  PropagateReport r = fold_constants(g, options.fold);
  log(options, "folded " + std::to_string(r.folded_nodes) + " nodes; " + std::to_string(g.num_nodes()) + " left");
  g.cleanup();
  g.toposort();
  // GroupNorm subgraphs (as PyTorch exports them) become one kiln.GroupNorm layer with its activation.
  std::vector<NotFolded> gn_rejected;
  const size_t gn_fused =
      !enabled(options, "groupnorm") || backend::kernels_for(plan->options.device, "kiln", "GroupNorm").empty()
          ? 0
          : fuse_groupnorm(g, &gn_rejected);
  log(options, "fused " + std::to_string(gn_fused) + " GroupNorm subgraphs");
  if (options.verbose)
    for (const NotFolded& r : gn_rejected) log(options, "GroupNorm not fused at " + r.node + ": " + r.reason);
  // Convolution fusions (constants are folded now, so Pad amounts are known). Conv+activation becomes
  // kiln.FusedConv, so it is done only where the device has a kernel for that op.
  const size_t pads_fused = enabled(options, "pad_into_conv") ? fuse_pad_into_conv(g) : 0;
  const size_t acts_fused =
      !enabled(options, "conv_activation") || backend::kernels_for(plan->options.device, "kiln", "FusedConv").empty()
          ? 0
          : fuse_conv_activation(g);
  log(options, "fused " + std::to_string(pads_fused) + " Pad into Conv, " + std::to_string(acts_fused) +
                   " activations into Conv");
  // What is left of element-wise chains (scale/shift/activation/residual) runs as one pass over memory.
  const size_t chains_fused =
      !enabled(options, "elementwise") || backend::kernels_for(plan->options.device, "kiln", "ElementwiseChain").empty()
          ? 0
          : fuse_elementwise_chains(g);
  log(options, "fused " + std::to_string(chains_fused) + " element-wise chains");
  if (options.precision != DType::Float) {
    const size_t lowered = lower_float_precision(g, options.precision);
    log(options, "precision " + std::string(dtype_name(options.precision)) + ": " + std::to_string(lowered) +
                     " tensors converted, fp32 inputs/outputs kept");
  }

  for (const auto& node : g.nodes()) {
    PlannedLayer layer;
    layer.node = node.get();
    layer.info.name = node->name.empty() ? g.unique_name(node->op) : node->name;
    layer.info.op = node->op;
    // Fusion passes record the original node names on the node that survives.
    const Attribute* fused = node->attrs.find("kiln_fused");
    const auto* names = fused ? std::get_if<std::vector<std::string>>(&fused->value) : nullptr;
    layer.info.fused = names ? *names : std::vector<std::string>{layer.info.name};
    if (node->domain == "kiln") layer.info.op = "kiln." + node->op;
    plan->layers.push_back(std::move(layer));
  }
  finish_plan(*plan);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  log(options, std::to_string(plan->layers.size()) + " layers, activation memory " +
                   std::to_string(plan->arena_bytes) + " bytes planned (" +
                   std::to_string(plan->total_activation_bytes) + " without reuse), built in " +
                   std::to_string(static_cast<int>(ms)) + " ms");
  return plan;
}

}  // namespace kiln
