// kiln — the executable plan inside an Engine: layers with their kernels, and where every tensor lives.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backends/kernel.h"
#include "kiln/engine.h"
#include "kiln/graph.h"
#include "runtime/executor.h"

namespace kiln {

// Where a tensor's bytes are during a run.
struct ValueSlot {
  enum class Kind { Activation, Constant, Input } kind = Kind::Activation;
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  size_t offset = 0;                  // Activation/Input: byte offset in the context's arena
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

struct EnginePlan {
  std::unique_ptr<Graph> graph;  // optimized; owns the nodes and constants the layers point at
  BuildOptions options;
  std::vector<ValueSlot> values;
  std::vector<PlannedLayer> layers;
  std::vector<TensorInfo> inputs, outputs;
  std::vector<int> input_values, output_values;  // value index of each engine input / output
  std::vector<LayerInfo> layer_infos;
  size_t arena_bytes = 0;
  size_t total_activation_bytes = 0;
  // Set by the device backend's prepare() (null on the CPU): weights on the device, memory report.
  std::shared_ptr<DeviceState> device_state;
  TimingCache* timing_cache = nullptr;  // during build only (LayerDesc::timing_cache)
};

// Builder steps shared by build() and load(): index the graph's tensors as values, describe a layer,
// instantiate a kernel by name, plan memory.
void index_values(EnginePlan& plan);
backend::LayerDesc describe_layer(const EnginePlan& plan, const PlannedLayer& layer);
// Whether a layer can be an alias: a Concat whose inputs the producers can write straight into their slices
// of the output (see can_concat_in_place), or a pure view op (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
// inference Dropout without mask) of an arena value, with an output of the same byte size.
bool can_alias(const EnginePlan& plan, const PlannedLayer& layer);
// A Concat is done in place when every input is an activation written by an earlier layer that is not a view
// (`own_buffer`, kept by the caller while walking the layers in order), used by no other in-place Concat
// (`claimed`), and each input is one contiguous block of the output (all dims before the axis are 1). Marks
// its inputs in `claimed`.
bool can_concat_in_place(const EnginePlan& plan, const PlannedLayer& layer, const std::vector<bool>& own_buffer,
                         std::vector<bool>& claimed);
void plan_memory(EnginePlan& plan);
// The device backend for o.device (nullptr for "cpu"); throws naming the model when it is unknown or unusable.
const DeviceBackend* check_device(const Graph& source, const BuildOptions& o);

}  // namespace kiln
