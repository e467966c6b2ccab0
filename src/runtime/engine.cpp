// Engine accessors and ExecutionContext: bind inputs, run the layers over one arena, read outputs.
#include <chrono>
#include <cstring>
#include <new>

#include "kiln/engine.h"
#include "runtime/plan.h"

namespace kiln {

Engine::Engine(std::unique_ptr<EnginePlan> plan) : plan_(std::move(plan)) {}
Engine::~Engine() = default;

const std::vector<TensorInfo>& Engine::inputs() const { return plan_->inputs; }
const std::vector<TensorInfo>& Engine::outputs() const { return plan_->outputs; }
const std::vector<LayerInfo>& Engine::layers() const { return plan_->layer_infos; }
size_t Engine::planned_activation_bytes() const { return plan_->arena_bytes; }
size_t Engine::total_activation_bytes() const { return plan_->total_activation_bytes; }
const Graph& Engine::graph() const { return *plan_->graph; }

std::unique_ptr<ExecutionContext> Engine::create_context() const {
  return std::unique_ptr<ExecutionContext>(new ExecutionContext(*this));
}

ExecutionContext::ExecutionContext(const Engine& engine) : engine_(engine) {
  constexpr std::align_val_t kAlign{64};
  const size_t n = std::max<size_t>(engine.plan_->arena_bytes, 1);
  auto* p = static_cast<unsigned char*>(::operator new(n, kAlign));
  arena_ = std::shared_ptr<unsigned char>(p, [kAlign](unsigned char* q) { ::operator delete(q, kAlign); });
}

ExecutionContext::~ExecutionContext() = default;

void ExecutionContext::set_input(const std::string& name, const TensorData& value) {
  const auto& inputs = engine_.plan_->inputs;
  for (const TensorInfo& in : inputs) {
    if (in.name != name) continue;
    if (value.dtype() != in.dtype || value.dims() != in.dims)
      throw Error("input '" + name + "' must be " + dtype_name(in.dtype) + " " + to_string(make_shape(in.dims)) +
                  ", got " + dtype_name(value.dtype()) + " " + to_string(make_shape(value.dims())));
    inputs_[name] = value;
    return;
  }
  std::string names;
  for (const TensorInfo& in : inputs) names += (names.empty() ? "" : ", ") + in.name;
  throw Error("the engine has no input '" + name + "' (inputs: " + names + ")");
}

void ExecutionContext::run() {
  const EnginePlan& plan = *engine_.plan_;
  unsigned char* arena = arena_.get();
  for (size_t k = 0; k < plan.inputs.size(); ++k) {
    auto it = inputs_.find(plan.inputs[k].name);
    if (it == inputs_.end()) throw Error("input '" + plan.inputs[k].name + "' was not set");
    const ValueSlot& slot = plan.values[static_cast<size_t>(plan.input_values[k])];
    std::memcpy(arena + slot.offset, it->second.raw(), slot.nbytes());
  }
  auto view = [&](int v) {
    backend::TensorView t;
    if (v < 0) return t;
    const ValueSlot& slot = plan.values[static_cast<size_t>(v)];
    t.dtype = slot.dtype;
    t.dims = slot.dims;
    t.data = slot.kind == ValueSlot::Kind::Constant ? const_cast<void*>(slot.constant->values().raw())
                                                    : static_cast<void*>(arena + slot.offset);
    return t;
  };
  layer_times_ms_.assign(profiling_ ? plan.layers.size() : 0, 0.0);
  std::vector<backend::TensorView> ins, outs;
  for (size_t k = 0; k < plan.layers.size(); ++k) {
    const PlannedLayer& layer = plan.layers[k];
    if (layer.is_alias) continue;  // its output already is its input's bytes (plan_memory); time stays 0
    ins.clear();
    outs.clear();
    for (int v : layer.inputs) ins.push_back(view(v));
    for (int v : layer.outputs) outs.push_back(view(v));
    auto t0 = std::chrono::steady_clock::now();
    layer.kernel->run(ins, outs);
    if (profiling_)
      layer_times_ms_[k] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  for (size_t k = 0; k < plan.outputs.size(); ++k) {
    backend::TensorView v = view(plan.output_values[k]);
    TensorData out(v.dtype, v.dims);
    std::memcpy(out.raw(), v.data, v.nbytes());
    outputs_[plan.outputs[k].name] = std::move(out);
  }
}

const TensorData& ExecutionContext::output(const std::string& name) const {
  auto it = outputs_.find(name);
  if (it == outputs_.end()) throw Error("no output '" + name + "' (run() first, and check the name)");
  return it->second;
}

}  // namespace kiln
