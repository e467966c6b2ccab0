// kiln — the executable plan inside an Engine: layers with their kernels, and where every tensor lives. The
// builder writes it (builder/planner.h), executors read it; it is plain data.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "device/device_backend.h"
#include "device/kernel.h"
#include "kiln/build_options.h"
#include "kiln/graph.h"

namespace kiln {

// Where a tensor's bytes are during a run.
struct ValueSlot {
  enum class Kind { Activation, Constant, Input } kind = Kind::Activation;
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  size_t offset = 0;                   // Activation/Input: byte offset in the context's arena
  const Constant* constant = nullptr;  // Constant
  // A value whose bytes live inside another value's buffer: the output of a zero-copy view layer (Reshape,
  // Squeeze, ...: alias_of = its input, offset 0) or an input of an in-place Concat (alias_of = the concat's
  // output, at its slice's byte offset). -1 for a value with its own buffer. Chains resolve to one root.
  int alias_of = -1;
  size_t alias_offset = 0;
  size_t nbytes() const;
};

struct PlannedLayer {
  const Node* node = nullptr;
  LayerInfo info;
  std::vector<int> inputs, outputs;  // indices into EnginePlan::values, -1 for an omitted optional operand
  std::unique_ptr<backend::Kernel> kernel;  // null for an alias layer
  // A view whose output shares its input's bytes (kernel name kAliasKernel): plan_memory gives the output
  // the input's offset and the layer does nothing at run time. It stays in the layer list so profiles and
  // engine files keep one entry per node.
  bool is_alias = false;
};

inline constexpr const char* kAliasKernel = "alias";
// The kernel name layers of a data-dependent plan report: chosen per run by the executor.
inline constexpr const char* kPerRunKernel = "per-run";
// The kernel name of a layer a device without a kernel for it runs on the host (BuildOptions::allow_host_fallback):
// its inputs copied to host memory, the op's reference kernel, its outputs copied back.
inline constexpr const char* kHostFallbackKernel = "host_fallback";
// The kernel name of a layer whose kernel the device chooses per run from the values of some of its operands
// that are engine inputs (DeviceBackend::by_input_values): a Resize's scales, a ReduceSum's axes, a Conv's
// weights given as inputs rather than initializers.
inline constexpr const char* kByInputValuesKernel = "by_input_values";

struct EnginePlan {
  std::unique_ptr<Graph> graph;  // optimized; owns the nodes and constants the layers point at
  BuildOptions options;
  // Some tensor's shape depends on values computed while running (NonZero, Range or Reshape over computed
  // values, Loop, ...): nothing is planned ahead; the device's executor infers, picks a kernel for and
  // allocates each layer as it runs (DeviceBackend::data_dependent_shapes). Layers keep no kernel.
  bool data_dependent = false;
  std::vector<ValueSlot> values;
  std::vector<PlannedLayer> layers;
  std::vector<TensorInfo> inputs, outputs;
  std::vector<int> input_values, output_values;  // value index of each engine input / output
  std::vector<LayerInfo> layer_infos;
  size_t arena_bytes = 0;
  size_t total_activation_bytes = 0;
  // Set by the device backend's prepare(): weights on the device, memory report (null when it keeps none).
  std::shared_ptr<DeviceState> device_state;
  TimingCache* timing_cache = nullptr;  // during build only (LayerDesc::timing_cache)
};

// A view of value `v` (an engine input, activation or constant) for a kernel: activations and inputs at their
// offset in `arena`; constants at `constant_data[v]` when given (a device copy), else their host bytes. An
// empty view for v < 0 (an omitted optional operand). Every executor builds its kernels' operands with this.
backend::TensorView value_view(const EnginePlan& plan, int v, unsigned char* arena,
                               void* const* constant_data = nullptr);

}  // namespace kiln
