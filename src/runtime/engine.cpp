// Engine and ExecutionContext: build (the builder), save/load (engine files), bind inputs, run the layers
// through the device's executor, read outputs.
#include "kiln/engine.h"

#include "builder/builder.h"
#include "device/device_backend.h"
#include "device/plan.h"
#include "runtime/dynamic_shapes.h"
#include "runtime/engine_file.h"

namespace kiln {

Engine::Engine(std::shared_ptr<EnginePlan> plan, std::unique_ptr<DynamicShapes> dynamic)
    : plan_(std::move(plan)), dynamic_(std::move(dynamic)), inputs_(plan_->inputs) {
  if (!dynamic_) return;
  // An input's dims are -1 where the generic graph leaves them open.
  for (TensorInfo& in : inputs_)
    for (const Tensor* t : dynamic_->generic->inputs)
      if (t->name == in.name && t->shape)
        for (size_t k = 0; k < in.dims.size() && k < t->shape->size(); ++k)
          if (!(*t->shape)[k].is_static()) in.dims[k] = -1;
}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::build(const Graph& graph, const BuildOptions& options) {
  if (options.profiles.empty()) return std::unique_ptr<Engine>(new Engine(build_plan(graph, options), nullptr));
  auto dynamic = std::make_unique<DynamicShapes>();
  std::shared_ptr<EnginePlan> primary = build_dynamic(graph, options, *dynamic);
  return std::unique_ptr<Engine>(new Engine(std::move(primary), std::move(dynamic)));
}

std::unique_ptr<Engine> Engine::load(const std::string& path, const BuildOptions& options) {
  LoadedEngine e = read_engine_file(path, options);
  return std::unique_ptr<Engine>(new Engine(std::move(e.plan), std::move(e.dynamic)));
}

void Engine::save(const std::string& path) const {
  write_engine_file(*plan_, dynamic_.get(), device_description(), path);
}

const std::vector<TensorInfo>& Engine::inputs() const {
  return inputs_;
}
const std::vector<TensorInfo>& Engine::outputs() const {
  return plan_->outputs;
}
const std::vector<LayerInfo>& Engine::layers() const {
  return plan_->layer_infos;
}
size_t Engine::planned_activation_bytes() const {
  return dynamic_ ? dynamic_->max_arena_bytes : plan_->arena_bytes;
}
size_t Engine::total_activation_bytes() const {
  return dynamic_ ? dynamic_->max_total_bytes : plan_->total_activation_bytes;
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
  r.activations = planned_activation_bytes();
  return r;
}

const std::vector<OptimizationProfile>& Engine::profiles() const {
  static const std::vector<OptimizationProfile> none;
  return dynamic_ ? dynamic_->profiles : none;
}

size_t Engine::specialized_plans() const {
  if (!dynamic_) return 1;
  std::lock_guard<std::mutex> lock(dynamic_->mutex);
  return 1 + dynamic_->plans.size();
}

std::shared_ptr<const EnginePlan> Engine::plan_for(const std::map<std::string, std::vector<int64_t>>& dims) const {
  if (!dynamic_) return plan_;
  find_profile(dynamic_->profiles, dims);
  return specialized_plan(*dynamic_, dims);
}

std::string Engine::device_description() const {
  const DeviceBackend* b = find_device_backend(plan_->options.device);
  return b && b->describe ? b->describe() : "";
}

std::unique_ptr<ExecutionContext> Engine::create_context() const {
  return std::unique_ptr<ExecutionContext>(new ExecutionContext(*this));
}

namespace {

std::unique_ptr<Executor> make_executor(const EnginePlan& plan) {
  const DeviceBackend* b = find_device_backend(plan.options.device);
  if (!b) throw Error("device '" + plan.options.device + "' is not registered");  // the builder checked it
  return b->create_executor(plan);
}

}  // namespace

ExecutionContext::ExecutionContext(const Engine& engine) : engine_(engine), plan_(engine.plan_) {
  executor_ = make_executor(*plan_);
  if (!engine.dynamic_) return;
  bound_.resize(plan_->inputs.size());
  bound_stream_.assign(plan_->inputs.size(), nullptr);
  bound_device_.assign(plan_->inputs.size(), false);
  for (const TensorInfo& in : plan_->inputs) shapes_[in.name] = in.dims;  // the opt shape until told otherwise
}

ExecutionContext::~ExecutionContext() = default;

size_t ExecutionContext::input_index(const std::string& name) const {
  const auto& inputs = engine_.inputs_;
  for (size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].name == name) return k;
  std::string names;
  for (const TensorInfo& in : inputs) names += (names.empty() ? "" : ", ") + in.name;
  throw Error("the engine has no input '" + name + "' (inputs: " + names + ")");
}

void ExecutionContext::set_input_shape(const std::string& name, const std::vector<int64_t>& dims) {
  const TensorInfo& in = engine_.inputs_[input_index(name)];
  if (!engine_.dynamic_) {
    if (dims != in.dims)
      throw Error("input '" + name + "' is " + to_string(make_shape(in.dims)) + " in this engine (built for fixed shapes), not " +
                  to_string(make_shape(dims)));
    return;
  }
  if (dims.size() != in.dims.size())
    throw Error("input '" + name + "' has rank " + std::to_string(in.dims.size()) + ", not " +
                std::to_string(dims.size()) + " (" + to_string(make_shape(dims)) + ")");
  std::map<std::string, std::vector<int64_t>> only{{name, dims}};
  std::vector<OptimizationProfile> alone = engine_.dynamic_->profiles;  // this input's ranges only
  for (OptimizationProfile& p : alone)
    for (auto it = p.begin(); it != p.end();) it = it->first == name ? std::next(it) : p.erase(it);
  if (!alone.empty() && !alone[0].empty()) find_profile(alone, only);
  else if (dims != in.dims)
    throw Error("input '" + name + "' has fixed dims " + to_string(make_shape(in.dims)) + ", not " +
                to_string(make_shape(dims)));
  shapes_[name] = dims;
}

void ExecutionContext::check_input(const std::string& name, DType dtype,
                                   const std::vector<int64_t>& dims) const {
  const TensorInfo& in = engine_.inputs_[input_index(name)];
  if (dtype != in.dtype || (!engine_.dynamic_ && dims != in.dims))
    throw Error("input '" + name + "' must be " + dtype_name(in.dtype) + " " +
                to_string(make_shape(in.dims)) + ", got " + dtype_name(dtype) + " " +
                to_string(make_shape(dims)));
}

void ExecutionContext::set_input(const std::string& name, const TensorData& value) {
  check_input(name, value.dtype(), value.dims());
  const size_t k = input_index(name);
  if (!engine_.dynamic_) {
    executor_->set_input(k, value);
    return;
  }
  set_input_shape(name, value.dims());
  bound_[k] = value;
  bound_device_[k] = false;
}

void ExecutionContext::set_input_device(const std::string& name, const void* device_ptr, DType dtype,
                                        const std::vector<int64_t>& dims, void* stream) {
  if (find_device_backend(plan_->options.device)->host)
    throw Error("input '" + name + "': a " + plan_->options.device +
                " engine takes host tensors, not device memory");
  check_input(name, dtype, dims);
  const size_t k = input_index(name);
  const std::optional<uint64_t> bytes = checked_nbytes(dtype, dims);
  if (dtype == DType::String || dtype_is_container(dtype) || !bytes || (!device_ptr && *bytes))
    throw Error("input '" + name + "': " + dtype_name(dtype) + " " + to_string(make_shape(dims)) + " at " +
                (device_ptr ? "a device pointer" : "a null pointer") + " cannot be read from device memory");
  if (!engine_.dynamic_) {
    executor_->set_input_device(k, device_ptr, dims, stream);
    return;
  }
  set_input_shape(name, dims);
  bound_[k] = TensorData::view(dtype, dims, const_cast<void*>(device_ptr));  // run() hands it to the executor
  bound_stream_[k] = stream;
  bound_device_[k] = true;
}

void ExecutionContext::run() {
  if (engine_.dynamic_) {
    std::shared_ptr<const EnginePlan> plan = engine_.plan_for(shapes_);
    if (plan != plan_) {
      executor_ = make_executor(*plan);
      plan_ = std::move(plan);
    }
    for (size_t k = 0; k < bound_.size(); ++k) {
      const std::string& name = engine_.inputs_[k].name;
      if (bound_[k].empty_type()) throw Error("input '" + name + "' was not set");
      if (bound_[k].dims() != shapes_[name])
        throw Error("input '" + name + "' holds " + to_string(make_shape(bound_[k].dims())) +
                    " but set_input_shape gave " + to_string(make_shape(shapes_[name])) + " after it");
      if (bound_device_[k])
        executor_->set_input_device(k, bound_[k].raw(), bound_[k].dims(), bound_stream_[k]);
      else
        executor_->set_input(k, bound_[k]);
    }
  }
  Executor::RunOptions o;
  o.profiling = profiling_;
  o.use_graph = use_graph_;
  o.data_transfers = data_transfers_;
  outputs_.clear();
  ran_ = false;
  executor_->run(o, layer_times_ms_, times_);
  ran_ = true;
  if (!data_transfers_) return;  // output() downloads on demand
  const EnginePlan& plan = *plan_;
  for (size_t k = 0; k < plan.outputs.size(); ++k) outputs_[plan.outputs[k].name] = executor_->output(k);
}

const std::vector<LayerInfo>& ExecutionContext::layers() const {
  return plan_->layer_infos;
}

const TensorData& ExecutionContext::output(const std::string& name) const {
  auto it = outputs_.find(name);
  if (it != outputs_.end()) return it->second;
  const EnginePlan& plan = *plan_;
  for (size_t k = 0; k < plan.outputs.size(); ++k)
    if (plan.outputs[k].name == name && !data_transfers_) return outputs_[name] = executor_->output(k);
  throw Error("no output '" + name + "' (run() first, and check the name)");
}

size_t ExecutionContext::output_index(const std::string& name) const {
  for (size_t k = 0; ran_ && k < plan_->outputs.size(); ++k)
    if (plan_->outputs[k].name == name) return k;
  throw Error("no output '" + name + "' (run() first, and check the name)");
}

TensorInfo ExecutionContext::output_info(const std::string& name) const {
  TensorInfo info = plan_->outputs[output_index(name)];
  if (plan_->data_dependent) info.dims = output(name).dims();
  return info;
}

void ExecutionContext::copy_output_to_device(const std::string& name, void* device_ptr, size_t capacity_bytes,
                                             void* stream) {
  if (find_device_backend(plan_->options.device)->host)
    throw Error("output '" + name + "': a " + plan_->options.device +
                " engine gives host tensors, not device memory");
  const TensorInfo info = output_info(name);
  const std::optional<uint64_t> bytes = checked_nbytes(info.dtype, info.dims);
  if (info.dtype == DType::String || dtype_is_container(info.dtype) || !bytes)
    throw Error("output '" + name + "' (" + dtype_name(info.dtype) + ") cannot be copied to device memory");
  if (*bytes > capacity_bytes || (!device_ptr && *bytes))
    throw Error("output '" + name + "' needs " + std::to_string(*bytes) + " bytes, the buffer has " +
                std::to_string(device_ptr ? capacity_bytes : 0));
  executor_->copy_output_to_device(output_index(name), device_ptr, stream);
}

}  // namespace kiln
