// Engine and ExecutionContext: build (the builder), save/load (engine files), bind inputs, run the layers
// through the device's executor, read outputs.
#include "kiln/engine.h"

#include "builder/builder.h"
#include "device/device_backend.h"
#include "device/plan.h"
#include "runtime/engine_file.h"

namespace kiln {

Engine::Engine(std::unique_ptr<EnginePlan> plan) : plan_(std::move(plan)) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::build(const Graph& graph, const BuildOptions& options) {
  return std::unique_ptr<Engine>(new Engine(build_plan(graph, options)));
}

std::unique_ptr<Engine> Engine::load(const std::string& path, const BuildOptions& options) {
  return std::unique_ptr<Engine>(new Engine(read_engine_file(path, options)));
}

void Engine::save(const std::string& path) const {
  write_engine_file(*plan_, device_description(), path);
}

const std::vector<TensorInfo>& Engine::inputs() const {
  return plan_->inputs;
}
const std::vector<TensorInfo>& Engine::outputs() const {
  return plan_->outputs;
}
const std::vector<LayerInfo>& Engine::layers() const {
  return plan_->layer_infos;
}
size_t Engine::planned_activation_bytes() const {
  return plan_->arena_bytes;
}
size_t Engine::total_activation_bytes() const {
  return plan_->total_activation_bytes;
}
const Graph& Engine::graph() const {
  return *plan_->graph;
}
const BuildOptions& Engine::options() const {
  return plan_->options;
}

MemoryReport Engine::memory() const {
  MemoryReport r;
  if (plan_->device_state) r = plan_->device_state->memory;
  r.activations = plan_->arena_bytes;
  return r;
}

std::string Engine::device_description() const {
  const DeviceBackend* b = find_device_backend(plan_->options.device);
  return b && b->describe ? b->describe() : "";
}

std::unique_ptr<ExecutionContext> Engine::create_context() const {
  return std::unique_ptr<ExecutionContext>(new ExecutionContext(*this));
}

ExecutionContext::ExecutionContext(const Engine& engine) : engine_(engine) {
  const EnginePlan& plan = *engine.plan_;
  const DeviceBackend* b = find_device_backend(plan.options.device);
  if (!b) throw Error("device '" + plan.options.device + "' is not registered");  // the builder checked it
  executor_ = b->create_executor(plan);
}

ExecutionContext::~ExecutionContext() = default;

void ExecutionContext::set_input(const std::string& name, const TensorData& value) {
  const auto& inputs = engine_.plan_->inputs;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const TensorInfo& in = inputs[k];
    if (in.name != name) continue;
    if (value.dtype() != in.dtype || value.dims() != in.dims)
      throw Error("input '" + name + "' must be " + dtype_name(in.dtype) + " " +
                  to_string(make_shape(in.dims)) + ", got " + dtype_name(value.dtype()) + " " +
                  to_string(make_shape(value.dims())));
    executor_->set_input(k, value);
    return;
  }
  std::string names;
  for (const TensorInfo& in : inputs) names += (names.empty() ? "" : ", ") + in.name;
  throw Error("the engine has no input '" + name + "' (inputs: " + names + ")");
}

void ExecutionContext::run() {
  Executor::RunOptions o;
  o.profiling = profiling_;
  o.use_graph = use_graph_;
  o.data_transfers = data_transfers_;
  outputs_.clear();
  executor_->run(o, layer_times_ms_, times_);
  if (!data_transfers_) return;  // output() downloads on demand
  const EnginePlan& plan = *engine_.plan_;
  for (size_t k = 0; k < plan.outputs.size(); ++k) outputs_[plan.outputs[k].name] = executor_->output(k);
}

const TensorData& ExecutionContext::output(const std::string& name) const {
  auto it = outputs_.find(name);
  if (it != outputs_.end()) return it->second;
  const EnginePlan& plan = *engine_.plan_;
  for (size_t k = 0; k < plan.outputs.size(); ++k)
    if (plan.outputs[k].name == name && !data_transfers_) return outputs_[name] = executor_->output(k);
  throw Error("no output '" + name + "' (run() first, and check the name)");
}

}  // namespace kiln
