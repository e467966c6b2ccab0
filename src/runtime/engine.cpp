// Engine accessors and ExecutionContext: bind inputs, run the layers through the device's executor, read
// outputs. The CPU executor is here; other devices register theirs (runtime/executor.h).
#include <chrono>
#include <cstring>
#include <mutex>
#include <new>

#include "kiln/engine.h"
#include "runtime/executor.h"
#include "runtime/plan.h"

namespace kiln {

namespace {

std::mutex& backends_mutex() {
  static std::mutex m;
  return m;
}
std::vector<DeviceBackend>& backends() {
  static std::vector<DeviceBackend> list;
  return list;
}

// Runs every layer on the host over one 64-byte aligned arena.
class CpuExecutor final : public Executor {
 public:
  explicit CpuExecutor(const EnginePlan& plan) : plan_(plan), inputs_(plan.inputs.size()) {
    constexpr std::align_val_t kAlign{64};
    const size_t n = std::max<size_t>(plan.arena_bytes, 1);
    auto* p = static_cast<unsigned char*>(::operator new(n, kAlign));
    arena_ = std::shared_ptr<unsigned char>(p, [kAlign](unsigned char* q) { ::operator delete(q, kAlign); });
  }

  void set_input(size_t index, const TensorData& value) override { inputs_[index] = value; }

  void run(const RunOptions& options, std::vector<double>& layer_ms, RunTimes& times) override {
    const auto start = std::chrono::steady_clock::now();
    unsigned char* arena = arena_.get();
    for (size_t k = 0; k < plan_.inputs.size(); ++k) {
      if (inputs_[k].empty_type()) throw Error("input '" + plan_.inputs[k].name + "' was not set");
      const ValueSlot& slot = plan_.values[static_cast<size_t>(plan_.input_values[k])];
      std::memcpy(arena + slot.offset, inputs_[k].raw(), slot.nbytes());
    }
    layer_ms.assign(options.profiling ? plan_.layers.size() : 0, 0.0);
    std::vector<backend::TensorView> ins, outs;
    for (size_t k = 0; k < plan_.layers.size(); ++k) {
      const PlannedLayer& layer = plan_.layers[k];
      if (layer.is_alias) continue;  // its output already is its input's bytes (plan_memory); time stays 0
      ins.clear();
      outs.clear();
      for (int v : layer.inputs) ins.push_back(view(v));
      for (int v : layer.outputs) outs.push_back(view(v));
      const auto t0 = std::chrono::steady_clock::now();
      layer.kernel->run(ins, outs);
      if (options.profiling)
        layer_ms[k] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    times = {};
    times.compute_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }

  TensorData output(size_t index) override {
    backend::TensorView v = view(plan_.output_values[index]);
    TensorData out(v.dtype, v.dims);
    std::memcpy(out.raw(), v.data, v.nbytes());
    return out;
  }

 private:
  backend::TensorView view(int v) const {
    backend::TensorView t;
    if (v < 0) return t;
    const ValueSlot& slot = plan_.values[static_cast<size_t>(v)];
    t.dtype = slot.dtype;
    t.dims = slot.dims;
    t.data = slot.kind == ValueSlot::Kind::Constant ? const_cast<void*>(slot.constant->values().raw())
                                                    : static_cast<void*>(arena_.get() + slot.offset);
    return t;
  }

  const EnginePlan& plan_;
  std::shared_ptr<unsigned char> arena_;
  std::vector<TensorData> inputs_;
};

}  // namespace

bool register_device_backend(DeviceBackend backend) {
  std::lock_guard<std::mutex> lock(backends_mutex());
  backends().push_back(std::move(backend));
  return true;
}

const DeviceBackend* find_device_backend(const std::string& name) {
  std::lock_guard<std::mutex> lock(backends_mutex());
  for (const DeviceBackend& b : backends())
    if (b.name == name) return &b;
  return nullptr;
}

std::vector<std::string> device_names() {
  std::lock_guard<std::mutex> lock(backends_mutex());
  std::vector<std::string> names{"cpu"};
  for (const DeviceBackend& b : backends()) names.push_back(b.name);
  return names;
}

Engine::Engine(std::unique_ptr<EnginePlan> plan) : plan_(std::move(plan)) {}
Engine::~Engine() = default;

const std::vector<TensorInfo>& Engine::inputs() const { return plan_->inputs; }
const std::vector<TensorInfo>& Engine::outputs() const { return plan_->outputs; }
const std::vector<LayerInfo>& Engine::layers() const { return plan_->layer_infos; }
size_t Engine::planned_activation_bytes() const { return plan_->arena_bytes; }
size_t Engine::total_activation_bytes() const { return plan_->total_activation_bytes; }
const Graph& Engine::graph() const { return *plan_->graph; }
const BuildOptions& Engine::options() const { return plan_->options; }

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
  if (const DeviceBackend* b = find_device_backend(plan.options.device))
    executor_ = b->create_executor(plan);
  else
    executor_ = std::make_unique<CpuExecutor>(plan);
}

ExecutionContext::~ExecutionContext() = default;

void ExecutionContext::set_input(const std::string& name, const TensorData& value) {
  const auto& inputs = engine_.plan_->inputs;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const TensorInfo& in = inputs[k];
    if (in.name != name) continue;
    if (value.dtype() != in.dtype || value.dims() != in.dims)
      throw Error("input '" + name + "' must be " + dtype_name(in.dtype) + " " + to_string(make_shape(in.dims)) +
                  ", got " + dtype_name(value.dtype()) + " " + to_string(make_shape(value.dims())));
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
