// The builder: graph → optimized graph → one layer per node → finish_plan (kernels, memory, device).
#include "builder/builder.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>
#include <unordered_map>

#include "builder/planner.h"
#include "device/kernel.h"
#include "ops/internal_ops.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

bool enabled(const BuildOptions& o, const std::string& rewrite) {
  return std::find(o.skip_rewrites.begin(), o.skip_rewrites.end(), rewrite) == o.skip_rewrites.end();
}

// Fix input shapes the user gave (symbolic batch, unknown dims) before inference.
void apply_input_shapes(Graph& g, const BuildOptions& o) {
  for (const auto& [name, dims] : o.input_shapes) {
    auto it = std::find_if(g.inputs.begin(), g.inputs.end(),
                           [&, &name = name](Tensor* t) { return t->name == name; });
    if (it == g.inputs.end())
      throw Error(model_prefix(g) + "--shapes names '" + name + "', which is not a model input");
    Tensor* t = *it;
    if (t->shape && t->shape->size() != dims.size())
      throw Error(model_prefix(g) + "input '" + name + "' has rank " + std::to_string(t->shape->size()) +
                  ", but the given shape " + to_string(make_shape(dims)) + " has rank " +
                  std::to_string(dims.size()));
    if (t->shape)
      for (size_t k = 0; k < dims.size(); ++k)
        if ((*t->shape)[k].is_static() && (*t->shape)[k].value != dims[k])
          throw Error(model_prefix(g) + "input '" + name + "' is " + to_string(*t->shape) + ", not " +
                      to_string(make_shape(dims)));
    t->shape = make_shape(dims);
  }
}

// Walks the rewrite pipeline: each rewrite runs unless skipped, and a rewrite into a kiln-internal op only
// where the device has a kernel for it (there is no host fallback for a layer the device cannot run).
void run_rewrites(Graph& g, const BuildOptions& o) {
  RewriteContext context;
  context.verbose = o.verbose;
  context.fold = o.fold;
  context.log = [&o](const std::string& m) { build_log(o, m); };
  for (const Rewrite& r : rewrite_pipeline()) {
    if (!enabled(o, r.name)) continue;
    const auto kernels = *r.needs ? backend::kernels_for(o.device, internal_ops::kDomain, r.needs)
                                  : std::vector<const backend::KernelFactory*>{};
    if (*r.needs &&
        std::none_of(kernels.begin(), kernels.end(), [](auto* f) { return f->name != "reference"; })) {
      build_log(o, std::string(r.name) + ": skipped, no " + o.device + " kernel of its own for kiln." + r.needs);
      continue;
    }
    if (*r.unless_kernel_for && !backend::kernels_for(o.device, "", r.unless_kernel_for).empty()) continue;
    build_log(o, std::string(r.name) + ": " + std::to_string(r.apply(g, context)) + " rewritten (" +
                     r.summary + ")");
  }
}

}  // namespace

std::vector<std::string> rewrite_names() {
  std::vector<std::string> names;
  for (const Rewrite& r : rewrite_pipeline()) names.push_back(r.name);
  names.push_back(kConcatInPlace);  // a planner decision, not a graph rewrite (builder/planner.cpp)
  return names;
}

void check_profiles(const Graph& source, const BuildOptions& options) {
  const std::string where = model_prefix(source);
  for (size_t p = 0; p < options.profiles.size(); ++p) {
    const std::string profile = "profile " + std::to_string(p);
    for (const auto& [name, range] : options.profiles[p]) {
      auto it = std::find_if(source.inputs.begin(), source.inputs.end(),
                             [&, &name = name](const Tensor* t) { return t->name == name; });
      if (it == source.inputs.end() || (*it)->is_constant())
        throw Error(where + profile + " names '" + printable(name) + "', which is not a model input");
      if (options.input_shapes.count(name))
        throw Error(where + profile + ": input '" + name + "' has a fixed shape (--shapes); give it one or the other");
      const Tensor& t = **it;
      const size_t rank = range.opt.size();
      if (range.min.size() != rank || range.max.size() != rank || (t.shape && t.shape->size() != rank))
        throw Error(where + profile + ": input '" + name + "': min, opt and max must have the model's rank (" +
                    (t.shape ? std::to_string(t.shape->size()) : std::string("unknown")) + ")");
      for (size_t d = 0; d < rank; ++d) {
        const std::string dim = "input '" + name + "' dim " + std::to_string(d);
        if (!(0 < range.min[d] && range.min[d] <= range.opt[d] && range.opt[d] <= range.max[d]))
          throw Error(where + profile + ": " + dim + ": needs 0 < min <= opt <= max, got " +
                      std::to_string(range.min[d]) + ", " + std::to_string(range.opt[d]) + ", " +
                      std::to_string(range.max[d]));
        if (t.shape && (*t.shape)[d].is_static() &&
            (range.min[d] != (*t.shape)[d].value || range.max[d] != (*t.shape)[d].value))
          throw Error(where + profile + ": " + dim + " is " + std::to_string((*t.shape)[d].value) +
                      " in the model; its range must be that value only");
      }
    }
    for (const Tensor* t : source.inputs)
      if (!t->is_constant() && !t->has_static_shape() && !options.input_shapes.count(t->name) &&
          !options.profiles[p].count(t->name))
        throw Error(where + profile + " gives no range for dynamic input '" + t->name + "' (" +
                    (t->shape ? to_string(*t->shape) : std::string("unknown shape")) + ")");
  }
}

ShapeMap profile_point(const OptimizationProfile& p, std::vector<int64_t> ShapeRange::*point) {
  ShapeMap dims;
  for (const auto& [name, range] : p) dims[name] = range.*point;
  return dims;
}

std::unique_ptr<Graph> generic_graph(const Graph& source, const BuildOptions& options) {
  auto g = source.copy();
  apply_input_shapes(*g, options);
  build_log(options, "folding the weights of the dynamic-shape graph (" + std::to_string(g->num_nodes()) + " nodes)");
  fold_constants(*g, options.fold);
  g->cleanup();
  g->toposort();
  return g;
}

std::unique_ptr<EnginePlan> build_plan(const Graph& source, const BuildOptions& options, const KernelHints* hints) {
  auto t0 = std::chrono::steady_clock::now();
  auto plan = std::make_unique<EnginePlan>();
  plan->options = options;
  if (plan->options.threads == 0)
    plan->options.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  check_device(source, plan->options);
  const std::vector<std::string> known = rewrite_names();
  for (const std::string& r : options.skip_rewrites)
    if (std::find(known.begin(), known.end(), r) == known.end()) {
      std::string names;
      for (const std::string& k : known) names += (names.empty() ? "" : ", ") + k;
      throw Error("unknown rewrite '" + printable(r) + "' (" + names + ")");
    }
  plan->graph = source.copy();
  Graph& g = *plan->graph;
  // Control-flow bodies' outer-scope reads become node inputs (before inference: shapes see the captured form),
  // so liveness and memory planning see them. Idempotent: a dynamic engine's plans capture again harmlessly.
  capture_outer_references(g);
  apply_input_shapes(g, options);
  build_log(options, "folding constants and inferring shapes (" + std::to_string(g.num_nodes()) + " nodes)");
  PropagateReport r = fold_constants(g, options.fold);
  build_log(options, "folded " + std::to_string(r.folded_nodes) + " nodes; " + std::to_string(g.num_nodes()) +
                         " left");
  if (!r.overridden_value_info.empty())
    build_log(options, "warning: " + std::to_string(r.overridden_value_info.size()) +
                           " declared shapes (value_info) contradict the graph; the computed ones are used, e.g. " +
                           r.overridden_value_info.front());
  g.cleanup();
  g.toposort();
  run_rewrites(g, plan->options);
  if (options.precision != DType::Float) {
    const size_t lowered = lower_float_precision(g, options.precision);
    build_log(options, "precision " + std::string(dtype_name(options.precision)) + ": " +
                           std::to_string(lowered) + " tensors converted, fp32 inputs/outputs kept");
  }

  for (const auto& node : g.nodes()) {
    PlannedLayer layer;
    layer.node = node.get();
    layer.info.name = node->name.empty() ? g.unique_name(node->op) : node->name;
    layer.info.op = node->op;
    // Fusion passes record the original node names on the node that survives.
    const Attribute* fused = node->attrs.find(internal_ops::kFusedNames);
    const auto* names = fused ? std::get_if<std::vector<std::string>>(&fused->value) : nullptr;
    layer.info.fused = names ? *names : std::vector<std::string>{layer.info.name};
    if (node->domain == internal_ops::kDomain)
      layer.info.op = std::string(internal_ops::kDomain) + "." + node->op;
    plan->layers.push_back(std::move(layer));
  }
  finish_plan(*plan, nullptr, hints);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  build_log(options, std::to_string(plan->layers.size()) + " layers, activation memory " +
                         std::to_string(plan->arena_bytes) + " bytes planned (" +
                         std::to_string(plan->total_activation_bytes) + " without reuse), built in " +
                         std::to_string(static_cast<int>(ms)) + " ms");
  return plan;
}

}  // namespace kiln
