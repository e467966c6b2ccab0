// The planner: tensors become values, layers get kernels (chosen, or restored from an engine file) or become
// zero-copy aliases, and activations get offsets in one arena. Engine::build and Engine::load both end here.
#include "builder/planner.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "device/timing_cache.h"
#include "ops/op.h"

namespace kiln {
const DeviceBackend& check_device(const Graph& source, const BuildOptions& o) {
  if (o.precision != DType::Float && o.precision != DType::Float16 && o.precision != DType::BFloat16)
    throw Error(std::string("precision must be float32, float16 or bfloat16, not ") +
                dtype_name(o.precision));
  if (o.threads < 0 || o.threads > kMaxThreads)
    throw Error(model_prefix(source) + "threads " + std::to_string(o.threads) + " is out of range [0, " +
                std::to_string(kMaxThreads) + "] (0: every core)");
  const DeviceBackend* b = find_device_backend(o.device);
  if (!b) {
    std::string names;
    for (const std::string& d : device_names()) names += (names.empty() ? "" : ", ") + d;
    throw Error(model_prefix(source) + "device '" + o.device +
                "' is not available in this build (devices: " + names + ")");
  }
  if (std::string why = b->unavailable_reason(); !why.empty())
    throw Error(model_prefix(source) + "device '" + o.device + "': " + why);
  return *b;
}

namespace {

constexpr size_t kListedUnsupported = 40;  // an error lists this many layers without a kernel, then counts

backend::LayerDesc describe_layer(const EnginePlan& plan, const PlannedLayer& layer) {
  backend::LayerDesc d;
  d.node = layer.node;
  d.opset = plan.graph->opset(layer.node->domain);
  d.threads = plan.options.threads;
  d.options = &plan.options;
  d.timing_cache = plan.timing_cache;
  auto operand = [&](int v) {
    backend::LayerDesc::Operand o;
    if (v < 0) return o;
    const ValueSlot& s = plan.values[static_cast<size_t>(v)];
    o.present = true;
    o.dtype = s.dtype;
    o.dims = s.dims;
    if (s.constant) o.constant = &s.constant->values();
    return o;
  };
  for (int v : layer.inputs) d.inputs.push_back(operand(v));
  for (int v : layer.outputs) d.outputs.push_back(operand(v));
  return d;
}

// `host`: the device runs on host memory (DeviceBackend::host), so every value counts against the memory
// limit.
void index_values(EnginePlan& plan, bool host) {
  Graph& g = *plan.graph;
  std::unordered_map<const Tensor*, int> index;
  auto value_of = [&](Tensor* t) -> int {
    if (!t) return -1;
    if (auto it = index.find(t); it != index.end()) return it->second;
    const std::string what = "tensor '" + t->name + "'" +
                             (t->producer() ? " (output of node " + t->producer()->label() + ")" : "");
    // Values without a byte layout in an arena run only on devices with per-run plans (the CPU).
    if (t->dtype == DType::String || t->dtype == DType::Sequence || t->dtype == DType::Optional)
      throw Error(model_prefix(g) + what + ": " + dtype_name(t->dtype) + " values are not supported on " +
                  plan.options.device);
    if (!t->has_static_shape() || t->dtype == DType::Undefined) {
      const bool inputs_static = std::all_of(g.inputs.begin(), g.inputs.end(),
                                             [](const Tensor* in) { return in->has_static_shape(); });
      throw Error(model_prefix(g) + what + " has no static shape after inference (" +
                  (t->shape ? to_string(*t->shape) : "unknown rank") + "); " +
                  (inputs_static ? "it depends on input values: data-dependent shapes are not supported"
                                 : "give input shapes with --shapes"));
    }
    ValueSlot v;
    v.dtype = t->dtype;
    v.dims = static_dims(*t->shape);
    // Sizes are checked once here; ValueSlot::nbytes and every sum over slots below rely on it.
    const auto bytes = checked_nbytes(v.dtype, v.dims);
    if (!bytes)
      throw Error(model_prefix(g) + what + ": shape " + describe_tensor(v.dtype, v.dims) +
                  " overflows 64 bits");
    if (host) check_memory(*bytes, model_prefix(g) + what);
    if (auto* c = dynamic_cast<const Constant*>(t)) {
      v.kind = ValueSlot::Kind::Constant;
      v.constant = c;
    } else if (std::find(g.inputs.begin(), g.inputs.end(), t) != g.inputs.end()) {
      v.kind = ValueSlot::Kind::Input;
    }
    plan.values.push_back(v);
    return index[t] = static_cast<int>(plan.values.size()) - 1;
  };
  plan.inputs.clear();
  plan.outputs.clear();
  plan.input_values.clear();
  plan.output_values.clear();
  for (Tensor* t : g.inputs) {
    if (t->is_constant()) continue;  // an initializer listed as input is not something users bind
    plan.input_values.push_back(value_of(t));
    plan.inputs.push_back({t->name, t->dtype, plan.values.back().dims});
  }
  for (PlannedLayer& layer : plan.layers) {
    layer.inputs.clear();
    layer.outputs.clear();
    for (Tensor* t : layer.node->inputs()) layer.inputs.push_back(value_of(t));
    for (Tensor* t : layer.node->outputs()) layer.outputs.push_back(value_of(t));
  }
  for (Tensor* t : g.outputs) {
    plan.output_values.push_back(value_of(t));
    plan.outputs.push_back({t->name, t->dtype, plan.values[plan.output_values.back()].dims});
  }
}

// A pure view op (Reshape, Flatten, Squeeze, Unsqueeze, Identity, inference Dropout without mask) of an arena
// value, with an output of the same byte size, can be an alias of its input.
bool can_alias(const EnginePlan& plan, const PlannedLayer& layer) {
  const Node& n = *layer.node;
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  if (n.op != "Reshape" && n.op != "Flatten" && n.op != "Squeeze" && n.op != "Unsqueeze" &&
      n.op != "Identity" && n.op != "Dropout")
    return false;
  if (layer.inputs.empty() || layer.outputs.empty() || layer.inputs[0] < 0 || layer.outputs[0] < 0)
    return false;
  for (size_t k = 1; k < layer.outputs.size(); ++k)
    if (layer.outputs[k] >= 0) return false;  // Dropout's mask is a new tensor
  if (n.op == "Dropout" && layer.inputs.size() > 2 && layer.inputs[2] >= 0) {
    // training_mode must be a constant false: with a non-zero ratio training Dropout is not a view.
    const ValueSlot& t = plan.values[static_cast<size_t>(layer.inputs[2])];
    if (!t.constant || t.constant->values().numel() != 1 || t.constant->values().as_int64(0) != 0)
      return false;
  }
  const ValueSlot& x = plan.values[static_cast<size_t>(layer.inputs[0])];
  const ValueSlot& y = plan.values[static_cast<size_t>(layer.outputs[0])];
  // Constants live outside the arena: a view of one keeps its (copying) kernel. Graph inputs are arena values
  // like any other, so a view of an input is fine.
  return x.kind != ValueSlot::Kind::Constant && y.kind == ValueSlot::Kind::Activation && x.dtype == y.dtype &&
         x.nbytes() == y.nbytes();
}

// A Concat is done in place when every input is an activation written by an earlier layer that is not a view
// (`own_buffer`, kept by the caller while walking the layers in order), used by no other in-place Concat
// (`claimed`), and each input is one contiguous block of the output (all dims before the axis are 1). Marks
// its inputs in `claimed`.
bool can_concat_in_place(const EnginePlan& plan, const PlannedLayer& layer,
                         const std::vector<bool>& own_buffer, std::vector<bool>& claimed) {
  const Node& n = *layer.node;
  if ((!n.domain.empty() && n.domain != "ai.onnx") || n.op != "Concat") return false;
  if (layer.outputs.size() != 1 || layer.outputs[0] < 0 || layer.inputs.empty()) return false;
  const ValueSlot& y = plan.values[static_cast<size_t>(layer.outputs[0])];
  if (y.kind != ValueSlot::Kind::Activation) return false;
  int64_t axis = n.attrs.get_int("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(y.dims.size());
  for (int64_t d = 0; d < axis; ++d)
    if (y.dims[static_cast<size_t>(d)] != 1) return false;
  std::vector<int> seen;
  for (int v : layer.inputs) {
    if (v < 0) return false;
    const ValueSlot& x = plan.values[static_cast<size_t>(v)];
    if (x.kind != ValueSlot::Kind::Activation || x.dtype != y.dtype || claimed[static_cast<size_t>(v)])
      return false;
    if (std::find(seen.begin(), seen.end(), v) != seen.end()) return false;
    seen.push_back(v);
    if (!own_buffer[static_cast<size_t>(v)]) return false;  // a view of another value, or a graph input
  }
  for (int v : layer.inputs) claimed[static_cast<size_t>(v)] = true;
  return true;
}

// `host`: inputs are copied in per run (DeviceBackend::host); a device keeps them for the whole run.
void plan_memory(EnginePlan& plan, bool host) {
  // Alias layers: a view's output lives in its input's bytes; an in-place Concat's inputs live in their
  // slices of its output. Chains (a view of a concat input, a concat of concats) resolve to one root below.
  for (ValueSlot& v : plan.values) v.alias_of = -1, v.alias_offset = 0;
  for (const PlannedLayer& layer : plan.layers) {
    if (!layer.is_alias) continue;
    const Node& n = *layer.node;
    if (n.op == "Concat") {
      size_t offset = 0;
      for (int in : layer.inputs) {
        plan.values[static_cast<size_t>(in)].alias_of = layer.outputs[0];
        plan.values[static_cast<size_t>(in)].alias_offset = offset;
        offset += plan.values[static_cast<size_t>(in)].nbytes();
      }
    } else {
      plan.values[static_cast<size_t>(layer.outputs[0])].alias_of = layer.inputs[0];
    }
  }
  auto root_of = [&](size_t v) {
    while (plan.values[v].alias_of >= 0) v = static_cast<size_t>(plan.values[v].alias_of);
    return v;
  };
  // Lifetime of each arena value in layer steps: [first write, last read]. Inputs are written before
  // step 0; graph outputs are read after the last step.
  const int end = static_cast<int>(plan.layers.size());
  std::vector<int> first(plan.values.size(), end + 1), last(plan.values.size(), -2);
  for (int v : plan.input_values) first[static_cast<size_t>(v)] = -1;
  for (int step = 0; step < end; ++step) {
    for (int v : plan.layers[static_cast<size_t>(step)].outputs)
      if (v >= 0) first[static_cast<size_t>(v)] = std::min(first[static_cast<size_t>(v)], step);
    for (int v : plan.layers[static_cast<size_t>(step)].inputs)
      if (v >= 0) last[static_cast<size_t>(v)] = std::max(last[static_cast<size_t>(v)], step);
  }
  for (int v : plan.output_values) last[static_cast<size_t>(v)] = end;
  // On a device, inputs keep their buffer for the whole run: a context without data transfers (trtexec's
  // --noDataTransfers) uploads them once and runs again on the same bytes. A host device copies them in every
  // run.
  if (!host)
    for (int v : plan.input_values) last[static_cast<size_t>(v)] = end;
  for (size_t v = 0; v < plan.values.size(); ++v)
    last[v] = std::max(last[v], first[v]);  // written but never read: still needs a buffer
  // A root buffer lives from the first write to the last read of anything inside it.
  for (size_t v = 0; v < plan.values.size(); ++v) {
    if (plan.values[v].alias_of < 0) continue;
    const size_t root = root_of(v);
    first[root] = std::min(first[root], first[v]);
    last[root] = std::max(last[root], last[v]);
  }
  std::vector<size_t> order;
  plan.total_activation_bytes = 0;
  constexpr size_t kAlign = 64;
  auto aligned = [](size_t n) { return (n + kAlign - 1) / kAlign * kAlign; };
  for (size_t v = 0; v < plan.values.size(); ++v) {
    if (plan.values[v].kind == ValueSlot::Kind::Constant || plan.values[v].alias_of >= 0) continue;
    order.push_back(v);
    plan.total_activation_bytes += aligned(plan.values[v].nbytes());
  }
  // Largest first, each at the lowest offset that doesn't overlap a placed value alive at the same time.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return plan.values[a].nbytes() > plan.values[b].nbytes(); });
  std::vector<size_t> placed;
  plan.arena_bytes = 0;
  for (size_t v : order) {
    const size_t size = aligned(plan.values[v].nbytes());
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t p : placed)
      if (first[p] <= last[v] && first[v] <= last[p])
        busy.emplace_back(plan.values[p].offset, plan.values[p].offset + aligned(plan.values[p].nbytes()));
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (offset + size <= lo) break;
      offset = std::max(offset, hi);
    }
    plan.values[v].offset = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    placed.push_back(v);
  }
  // Offsets inside roots: a value's offset is its parent's plus its own, resolved parents first.
  std::vector<bool> resolved(plan.values.size(), false);
  std::function<size_t(size_t)> resolve = [&](size_t v) -> size_t {
    ValueSlot& s = plan.values[v];
    if (s.alias_of < 0 || resolved[v]) return s.offset;
    s.offset = resolve(static_cast<size_t>(s.alias_of)) + s.alias_offset;
    resolved[v] = true;
    return s.offset;
  };
  for (size_t v = 0; v < plan.values.size(); ++v) resolve(v);
}

// What a layer that has no kernel is listed as: node, op and operand dtypes and shapes.
std::string unsupported_entry(const backend::LayerDesc& desc) {
  std::string operands;
  for (const backend::LayerDesc::Operand& o : desc.inputs) {
    if (!operands.empty()) operands += ", ";
    operands += o.present ? std::string(dtype_name(o.dtype)) + " " + to_string(make_shape(o.dims)) : "-";
  }
  const Node& n = *desc.node;
  return "node " + n.label() + (ops::find_op(n.domain, n.op) ? "" : ", an op kiln does not know,") +
         " with inputs " + operands;
}

// The layer's operands after the first that are engine inputs: what DeviceBackend::by_input_values may
// choose a kernel by.
std::vector<size_t> input_value_operands(const EnginePlan& plan, const PlannedLayer& layer) {
  std::vector<size_t> operands;
  for (size_t i = 1; i < layer.inputs.size(); ++i)
    if (layer.inputs[i] >= 0 &&
        plan.values[static_cast<size_t>(layer.inputs[i])].kind == ValueSlot::Kind::Input)
      operands.push_back(i);
  return operands;
}

// The first kernel that supports the layer; else, where some of its operands are engine inputs and the device
// can, a kernel chosen per run by their values; else the host fallback when the build allows it; null
// otherwise (the caller lists every such layer in one error).
std::unique_ptr<backend::Kernel> choose_kernel(const EnginePlan& plan, const DeviceBackend& device,
                                               PlannedLayer& layer) {
  const backend::LayerDesc desc = describe_layer(plan, layer);
  if (const backend::KernelFactory* f =
          backend::first_supporting(plan.options.device, desc, plan.options.reference_kernels)) {
    layer.info.kernel = f->name;
    return f->create(desc);
  }
  if (const std::vector<size_t> operands = input_value_operands(plan, layer);
      !operands.empty() && device.by_input_values) {
    layer.info.kernel = kByInputValuesKernel;
    build_log(plan.options,
              "layer " + layer.info.name + " (" + layer.node->op +
                  "): its kernel is chosen at run time by the values of its inputs from the engine's");
    return device.by_input_values(desc, operands);
  }
  const ops::OpSchema* schema = ops::find_op(layer.node->domain, layer.node->op);
  if (!plan.options.allow_host_fallback || !device.host_fallback || !schema || !schema->reference)
    return nullptr;
  layer.info.kernel = kHostFallbackKernel;
  build_log(plan.options, "layer " + layer.info.name + " (" + layer.node->op + ") has no " +
                              plan.options.device +
                              " kernel: it runs on the host, its inputs and outputs copied each run");
  return device.host_fallback(desc);
}

// The kernel an engine file recorded for a layer, re-created by name (and state) without choosing again.
std::unique_ptr<backend::Kernel> restore_kernel(const EnginePlan& plan, PlannedLayer& layer,
                                                const std::string& state, const std::string& file) {
  const Node& n = *layer.node;
  if (layer.info.kernel == kHostFallbackKernel) {
    const DeviceBackend* device = find_device_backend(plan.options.device);
    if (!device || !device->host_fallback)
      throw Error(file + ": layer '" + printable(layer.info.name) + "' runs on the host, which device '" +
                  printable(plan.options.device) + "' cannot do");
    return device->host_fallback(describe_layer(plan, layer));
  }
  if (layer.info.kernel == kByInputValuesKernel) {
    const DeviceBackend* device = find_device_backend(plan.options.device);
    const std::vector<size_t> operands = input_value_operands(plan, layer);
    if (!device || !device->by_input_values || operands.empty())
      throw Error(file + ": layer '" + printable(layer.info.name) +
                  "' is recorded with a kernel chosen by input values, which it cannot have here");
    return device->by_input_values(describe_layer(plan, layer), operands);
  }
  const backend::KernelFactory* factory =
      backend::find_kernel(plan.options.device, n.domain, n.op, layer.info.kernel);
  if (!factory)
    throw Error(file + ": layer '" + printable(layer.info.name) + "' needs kernel '" +
                printable(layer.info.kernel) + "' for " + n.op +
                ", which this kiln build does not have; rebuild the engine");
  backend::LayerDesc desc = describe_layer(plan, layer);
  if (!factory->supports(desc))
    throw Error(file + ": kernel '" + printable(layer.info.kernel) + "' no longer supports layer '" +
                printable(layer.info.name) + "'");
  try {
    return !state.empty() && factory->deserialize ? factory->deserialize(desc, state) : factory->create(desc);
  } catch (const Error& e) {
    throw Error(file + ": " + e.what());
  } catch (const std::exception& e) {  // a plugin's deserialize is user code
    throw Error(file + ": layer '" + printable(layer.info.name) + "': kernel '" +
                printable(layer.info.kernel) + "' rejected its state: " + printable(e.what()));
  }
}

// The hinted kernel for a layer, or null when there is no hint or the kernel does not take the layer's
// shapes.
std::unique_ptr<backend::Kernel> hinted_kernel(const EnginePlan& plan, PlannedLayer& layer,
                                               const KernelHints& hints) {
  auto it = hints.find(layer.info.name);
  if (it == hints.end() || it->second.first == kAliasKernel) return nullptr;
  const auto& [name, state] = it->second;
  const Node& n = *layer.node;
  if (name == kHostFallbackKernel || name == kByInputValuesKernel)
    return nullptr;  // chosen again: last resorts
  const backend::KernelFactory* f = backend::find_kernel(plan.options.device, n.domain, n.op, name);
  if (!f || (plan.options.reference_kernels && f->name != "reference")) return nullptr;
  backend::LayerDesc desc = describe_layer(plan, layer);
  if (!f->supports(desc)) return nullptr;
  layer.info.kernel = f->name;
  return !state.empty() && f->deserialize ? f->deserialize(desc, state) : f->create(desc);
}

}  // namespace

KernelHints kernel_hints(const EnginePlan& plan) {
  KernelHints hints;
  for (const PlannedLayer& l : plan.layers)
    hints[l.info.name] = {l.info.kernel, l.kernel ? l.kernel->serialize() : std::string()};
  return hints;
}

namespace {

// A graph whose inputs are static but some tensor's shape is not: it depends on values computed while
// running. Strings, sequences and optionals (rank-0 values holding others) have no place in an arena either:
// a graph with any runs per run too.
bool has_data_dependent_shapes(const Graph& g) {
  for (const Tensor* t : g.inputs)
    if (!t->is_constant() && !t->has_static_shape()) return false;  // unknown input shapes: an error instead
  auto held_as_value = [](const Tensor* t) {
    return t && (t->dtype == DType::String || dtype_is_container(t->dtype));
  };
  if (std::any_of(g.inputs.begin(), g.inputs.end(), held_as_value)) return true;
  for (const auto& node : g.nodes()) {
    if (std::any_of(node->inputs().begin(), node->inputs().end(), held_as_value)) return true;
    for (const Tensor* t : node->outputs())
      if (t && (!t->has_static_shape() || t->dtype == DType::Undefined || held_as_value(t))) return true;
  }
  return false;
}

// Before a data-dependent plan on a device with its own memory: the layers that could not run there however
// their shapes turn out — no kernel of the device for their op, or values only the host holds — in one error.
void check_device_kernels(const EnginePlan& plan, const DeviceBackend& device) {
  std::vector<std::string> refused;
  auto host_only = [](const Tensor* t) {
    return t && (t->dtype == DType::String || dtype_is_container(t->dtype));
  };
  for (const PlannedLayer& layer : plan.layers) {
    const Node& n = *layer.node;
    const bool values = std::any_of(n.inputs().begin(), n.inputs().end(), host_only) ||
                        std::any_of(n.outputs().begin(), n.outputs().end(), host_only);
    if (values)
      refused.push_back("node " + n.label() + " (its string, sequence or optional values live on the host)");
    else if (backend::kernels_for(device.name, n.domain, n.op).empty())
      refused.push_back("node " + n.label());
  }
  if (refused.empty()) return;
  std::string list;
  for (size_t k = 0; k < refused.size() && k < kListedUnsupported; ++k) list += "\n  " + refused[k];
  if (refused.size() > kListedUnsupported)
    list += "\n  ... and " + std::to_string(refused.size() - kListedUnsupported) + " more";
  throw Error(model_prefix(*plan.graph) + std::to_string(refused.size()) + " layer" +
              (refused.size() == 1 ? " has" : "s have") + " no " + device.name +
              " kernel (--allowHostFallback runs them on the host):" + list);
}

// A data-dependent plan: engine inputs and outputs (dims -1 where unknown) and one layer entry per node; the
// executor does the rest per run.
void finish_data_dependent_plan(EnginePlan& plan) {
  plan.data_dependent = true;
  const Graph& g = *plan.graph;
  auto info = [](const Tensor* t) {
    TensorInfo i{t->name, t->dtype, {}};
    if (t->shape)
      for (const Dim& d : *t->shape) i.dims.push_back(d.is_static() ? d.value : -1);
    return i;
  };
  plan.inputs.clear();
  plan.outputs.clear();
  for (const Tensor* t : g.inputs)
    if (!t->is_constant()) plan.inputs.push_back(info(t));
  for (const Tensor* t : g.outputs) plan.outputs.push_back(info(t));
  plan.layer_infos.clear();
  for (PlannedLayer& layer : plan.layers) {
    layer.info.kernel = kPerRunKernel;
    plan.layer_infos.push_back(layer.info);
  }
  build_log(plan.options,
            "shapes depend on computed values: kernels are chosen and memory allocated per run");
}

}  // namespace

void finish_plan(EnginePlan& plan, const RecordedKernels* recorded, const KernelHints* hints) {
  const DeviceBackend& device = check_device(*plan.graph, plan.options);
  const BuildOptions& options = plan.options;
  if (device.data_dependent_shapes && has_data_dependent_shapes(*plan.graph)) {
    if (!device.host && !options.allow_host_fallback) check_device_kernels(plan, device);
    finish_data_dependent_plan(plan);
    return;
  }
  index_values(plan, device.host);
  TimingCache cache(recorded ? std::string() : options.timing_cache_file);
  plan.timing_cache = recorded ? nullptr : &cache;
  const bool concat_in_place = std::find(options.skip_rewrites.begin(), options.skip_rewrites.end(),
                                         kConcatInPlace) == options.skip_rewrites.end();
  std::vector<bool> claimed(plan.values.size(), false);     // inputs of in-place Concats
  std::vector<bool> own_buffer(plan.values.size(), false);  // written by a layer that is not a view
  std::vector<std::string> unsupported;                     // layers no kernel takes, all listed at the end
  for (size_t k = 0; k < plan.layers.size(); ++k) {
    PlannedLayer& layer = plan.layers[k];
    if (recorded) {
      // An engine file says which layers the builder aliased; each must still be one.
      const bool alias = layer.info.kernel == kAliasKernel;
      if (!alias)
        for (int v : layer.outputs)
          if (v >= 0) own_buffer[static_cast<size_t>(v)] = true;
      if (alias) {
        if (!can_concat_in_place(plan, layer, own_buffer, claimed) && !can_alias(plan, layer))
          throw Error(recorded->file + ": layer '" + printable(layer.info.name) +
                      "' is recorded as an alias, which it cannot be");
        layer.is_alias = true;
      } else {
        layer.kernel = restore_kernel(plan, layer, recorded->states[k], recorded->file);
      }
      continue;
    }
    if ((concat_in_place && can_concat_in_place(plan, layer, own_buffer, claimed)) ||
        can_alias(plan, layer)) {
      layer.is_alias = true;  // a zero-copy view, or producers writing into their slices: nothing to run
      layer.info.kernel = kAliasKernel;
    } else {
      if (hints) layer.kernel = hinted_kernel(plan, layer, *hints);
      if (!layer.kernel) layer.kernel = choose_kernel(plan, device, layer);
      if (!layer.kernel) {
        unsupported.push_back(unsupported_entry(describe_layer(plan, layer)));
        continue;
      }
    }
    if (!layer.is_alias)
      for (int v : layer.outputs)
        if (v >= 0) own_buffer[static_cast<size_t>(v)] = true;
    if (options.verbose)
      build_log(options, "layer " + layer.info.name + " (" + layer.info.op + ") -> " + layer.info.kernel);
    if ((k + 1) % 25 == 0)
      build_log(options, "kernels chosen for " + std::to_string(k + 1) + "/" +
                             std::to_string(plan.layers.size()) + " layers");
  }
  plan.timing_cache = nullptr;
  cache.save();
  if (!unsupported.empty()) {
    std::string list;
    for (size_t k = 0; k < unsupported.size() && k < kListedUnsupported; ++k) list += "\n  " + unsupported[k];
    if (unsupported.size() > kListedUnsupported)
      list += "\n  ... and " + std::to_string(unsupported.size() - kListedUnsupported) + " more";
    throw Error(model_prefix(*plan.graph) + std::to_string(unsupported.size()) + " layer" +
                (unsupported.size() == 1 ? " has" : "s have") + " no " + options.device + " kernel" +
                (device.host_fallback && !options.allow_host_fallback
                     ? " (--allowHostFallback runs them on the host)"
                     : "") +
                ":" + list);
  }
  size_t on_host = 0;
  for (const PlannedLayer& layer : plan.layers) on_host += layer.info.kernel == kHostFallbackKernel;
  if (on_host)
    build_log(options, std::to_string(on_host) + " of " + std::to_string(plan.layers.size()) +
                           " layers run on the host (allowed host fallback)");
  if (cache.hits() + cache.misses() > 0)
    build_log(options, "timing cache: " + std::to_string(cache.hits()) + " hits, " +
                           std::to_string(cache.misses()) + " timed" +
                           (options.timing_cache_file.empty() ? "" : " (" + options.timing_cache_file + ")"));
  plan_memory(plan, device.host);
  if (device.host) check_memory(plan.arena_bytes, model_prefix(*plan.graph) + "the activation arena");
  plan.device_state = device.prepare(plan);
  plan.layer_infos.clear();
  for (PlannedLayer& layer : plan.layers) {
    if (layer.kernel) layer.info.tactic = layer.kernel->describe();
    plan.layer_infos.push_back(layer.info);
  }
}

}  // namespace kiln
