// kiln — how a device runs an engine's plan. Every device (backends/cpu, backends/cuda) registers a
// DeviceBackend; the builder and runtime know devices only through it and never include a backend header.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/build_options.h"
#include "kiln/tensor_data.h"

namespace kiln {

struct EnginePlan;
namespace backend {
class Kernel;
struct LayerDesc;
}  // namespace backend

// Per-engine state a device keeps (weights uploaded once, shared by every context).
struct DeviceState {
  virtual ~DeviceState() = default;
  MemoryReport memory;
};

// Per-context execution: its own activation arena, workspace and staging buffers.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void set_input(size_t index, const TensorData& value) = 0;  // the engine's input `index`; checked
  struct RunOptions {
    bool profiling = false, use_graph = true, data_transfers = true;
  };
  // Runs every layer. Fills layer_ms (when profiling) and times; outputs are read with output().
  virtual void run(const RunOptions& options, std::vector<double>& layer_ms, RunTimes& times) = 0;
  // The engine's output `index` of the last run (downloaded now if transfers were off).
  virtual TensorData output(size_t index) = 0;
  // Caller-owned device memory (ExecutionContext::set_input_device, copy_output_to_device; `stream`: the
  // caller's cudaStream_t). Only devices with their own memory override these; the context checks names,
  // dtypes, sizes.
  virtual void set_input_device(size_t index, const void* src, const std::vector<int64_t>& dims,
                                void* stream);
  virtual void copy_output_to_device(size_t index, void* dst, void* stream);
};

struct DeviceBackend {
  std::string name;  // BuildOptions::device
  // Runs on this process's memory: every op's reference kernel is one of its kernels, its activation arena
  // counts against the host memory limit, and inputs are copied in on every run (so their buffers can be
  // reused). A device with its own memory keeps inputs for the whole run (trtexec's --noDataTransfers).
  bool host = false;
  // Its executor runs plans whose shapes depend on values (EnginePlan::data_dependent).
  bool data_dependent_shapes = false;
  // "" when the device can be used in this process; otherwise why not (one line).
  std::function<std::string()> unavailable_reason;
  // A device with its own memory may run a layer it has no kernel for on the host: this makes the kernel that
  // copies the layer's inputs out, runs the op's reference kernel and copies the outputs back (null: it can't).
  std::function<std::unique_ptr<backend::Kernel>(const backend::LayerDesc&)> host_fallback;
  // A layer no kernel takes as built, some of whose operands after the first are engine inputs the device's
  // kernels want as constants (axes, scales, pads, K, weights): this makes the kernel that, at each run, takes
  // those inputs' values (known on the host before anything runs) and runs the kernel chosen for them (null:
  // the device can't). `operands`: the indices of those operands.
  std::function<std::unique_ptr<backend::Kernel>(const backend::LayerDesc&, const std::vector<size_t>& operands)>
      by_input_values;
  // After kernels are chosen (build or load): upload weights, size workspaces.
  std::function<std::shared_ptr<DeviceState>(const EnginePlan&)> prepare;
  std::function<std::unique_ptr<Executor>(const EnginePlan&)> create_executor;
  // JSON object describing the device and library versions (stored in engine files) ...
  std::function<std::string()> describe;
  // ... and the check on load: throws kiln::Error naming `file` when `recorded` does not match this machine.
  std::function<void(const std::string& recorded, const std::string& file)> check_compatible;
};

bool register_device_backend(DeviceBackend backend);                // aborts when the name is taken
const DeviceBackend* find_device_backend(const std::string& name);  // nullptr for unknown devices
std::vector<std::string> device_names();                            // in registration order

}  // namespace kiln
