// The "cpu" device: every layer runs on the host over one 64-byte aligned arena per execution context; inputs
// are copied in and outputs copied out on every run.
#include <chrono>
#include <cstring>
#include <new>

#include "backends/cpu/cpu_per_run_executor.h"
#include "device/device_backend.h"
#include "device/plan.h"

namespace kiln::cpu {
namespace {

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
      for (int v : layer.inputs) ins.push_back(value_view(plan_, v, arena));
      for (int v : layer.outputs) outs.push_back(value_view(plan_, v, arena));
      const auto t0 = std::chrono::steady_clock::now();
      layer.kernel->run(ins, outs);
      if (options.profiling)
        layer_ms[k] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    times = {};
    times.compute_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }

  TensorData output(size_t index) override {
    backend::TensorView v = value_view(plan_, plan_.output_values[index], arena_.get());
    TensorData out(v.dtype, v.dims);
    std::memcpy(out.raw(), v.data, v.nbytes());
    return out;
  }

 private:
  const EnginePlan& plan_;
  std::shared_ptr<unsigned char> arena_;
  std::vector<TensorData> inputs_;
};

const bool registered = register_device_backend({
    .name = "cpu",
    .host = true,
    .data_dependent_shapes = true,
    .unavailable_reason = [] { return std::string(); },
    .host_fallback = nullptr,    // every op's reference kernel is a cpu kernel already
    .by_input_values = nullptr,  // the CPU's kernels take any operand as an engine input
    .prepare = [](const EnginePlan&) { return std::shared_ptr<DeviceState>(); },
    .create_executor = [](const EnginePlan& plan) -> std::unique_ptr<Executor> {
      if (plan.data_dependent) return make_per_run_executor(plan);
      return std::make_unique<CpuExecutor>(plan);
    },
    .describe = [] { return std::string(); },
    .check_compatible = nullptr,
});

}  // namespace
}  // namespace kiln::cpu
