// The "cuda" device: weights uploaded once per engine, and per context one device arena (the builder's memory
// plan), one workspace, pinned staging buffers, one stream, and the layers replayed as a captured CUDA graph.
// Times are device events: H2D, GPU compute and D2H separately, as trtexec reports them.
#include <cublas_v2.h>
#include <cudnn.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "backends/cuda/by_input_values_cuda.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_per_run_executor.h"
#include "backends/cuda/host_fallback_cuda.h"
#include "device/device_backend.h"
#include "device/plan.h"

namespace kiln::cuda {
namespace {

constexpr size_t kAlign = 256;
size_t aligned(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

struct CudaEngineState final : DeviceState {
  DeviceBuffer weights;             // every constant a layer reads, except those its kernel uploaded itself
  std::vector<void*> constant_ptr;  // per plan value; nullptr where not uploaded
};

std::string layer_label(const PlannedLayer& l) {
  return "layer '" + l.info.name + "' (" + l.info.op + ")";
}

const CudaKernel& cuda_kernel(const PlannedLayer& l) {
  const auto* k = dynamic_cast<const CudaKernel*>(l.kernel.get());
  if (!k) throw Error(layer_label(l) + ": kernel '" + l.info.kernel + "' is not a CUDA kernel");
  return *k;
}

std::shared_ptr<DeviceState> prepare(const EnginePlan& plan) {
  KILN_CUDA_CHECK(cudaSetDevice(0));
  auto state = std::make_shared<CudaEngineState>();
  state->constant_ptr.assign(plan.values.size(), nullptr);
  std::vector<size_t> offset(plan.values.size(), SIZE_MAX);
  size_t total = 0, owned = 0, workspace = 0;
  for (const PlannedLayer& layer : plan.layers) {
    if (layer.is_alias) continue;
    const CudaKernel& k = cuda_kernel(layer);
    workspace = std::max(workspace, k.workspace_bytes());
    for (size_t i = 0; i < layer.inputs.size(); ++i) {
      const int v = layer.inputs[i];
      if (v < 0 || plan.values[static_cast<size_t>(v)].kind != ValueSlot::Kind::Constant) continue;
      const size_t bytes = plan.values[static_cast<size_t>(v)].nbytes();
      if (k.owns_constant_input(i)) {
        owned += bytes;
      } else if (offset[static_cast<size_t>(v)] == SIZE_MAX) {
        offset[static_cast<size_t>(v)] = total;
        total += aligned(bytes);
      }
    }
  }
  for (int v : plan.output_values)  // a graph output that is a constant is read from the device too
    if (plan.values[static_cast<size_t>(v)].kind == ValueSlot::Kind::Constant &&
        offset[static_cast<size_t>(v)] == SIZE_MAX) {
      offset[static_cast<size_t>(v)] = total;
      total += aligned(plan.values[static_cast<size_t>(v)].nbytes());
    }
  state->weights = DeviceBuffer(total);
  for (size_t v = 0; v < plan.values.size(); ++v) {
    if (offset[v] == SIZE_MAX) continue;
    void* dst = static_cast<unsigned char*>(state->weights.ptr) + offset[v];
    KILN_CUDA_CHECK(cudaMemcpy(dst, plan.values[v].constant->values().raw(), plan.values[v].nbytes(),
                               cudaMemcpyHostToDevice));
    state->constant_ptr[v] = dst;
  }
  state->memory.weights = total + owned;
  state->memory.workspace = workspace;
  return state;
}

class CudaExecutor final : public Executor {
 public:
  explicit CudaExecutor(const EnginePlan& plan)
      : plan_(plan), state_(static_cast<const CudaEngineState&>(*plan.device_state)) {
    KILN_CUDA_CHECK(cudaSetDevice(0));
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    arena_ = DeviceBuffer(std::max<size_t>(plan.arena_bytes, 1));
    // Poison: all-ones bytes are NaN in fp32, fp16 and bf16, so an element no kernel wrote is visible.
    KILN_CUDA_CHECK(cudaMemset(arena_.ptr, 0xFF, arena_.bytes));
    workspace_ = DeviceBuffer(state_.memory.workspace);
    for (cudaEvent_t& e : events_) KILN_CUDA_CHECK(cudaEventCreate(&e));
    for (size_t k = 0; k < plan.inputs.size(); ++k)
      input_staging_.push_back(pinned(value_bytes(plan.input_values[k])));
    for (size_t k = 0; k < plan.outputs.size(); ++k)
      output_staging_.push_back(pinned(value_bytes(plan.output_values[k])));
    input_set_.assign(plan.inputs.size(), false);
    input_dirty_.assign(plan.inputs.size(), false);
    input_on_device_.assign(plan.inputs.size(), false);
    host_reads_input_.assign(plan.inputs.size(), false);
    KILN_CUDA_CHECK(cudaEventCreateWithFlags(&io_event_, cudaEventDisableTiming));
    for (const PlannedLayer& layer : plan.layers) {
      std::vector<backend::TensorView> ins, outs;
      for (int v : layer.inputs) ins.push_back(view(v));
      for (int v : layer.outputs) outs.push_back(view(v));
      inputs_.push_back(std::move(ins));
      outputs_.push_back(std::move(outs));
    }
    rc_.stream = stream_;
    rc_.workspace = workspace_.ptr;
    rc_.workspace_bytes = workspace_.bytes;
    layer_rc_.assign(plan.layers.size(), rc_);
    active_.assign(plan.layers.size(), nullptr);
    staging_bytes_.assign(plan.layers.size(), 0);
    for (size_t k = 0; k < plan.layers.size(); ++k) {
      if (plan.layers[k].is_alias) continue;
      if (const auto* b = dynamic_cast<const ByInputValuesKernel*>(plan.layers[k].kernel.get())) {
        ByValues entry{k, b, {}};
        for (size_t i : b->operands()) {
          const auto at = std::find(plan.input_values.begin(), plan.input_values.end(), plan.layers[k].inputs[i]);
          if (at == plan.input_values.end()) throw Error(layer_label(plan.layers[k]) + ": operand is not an input");
          entry.inputs.push_back(static_cast<size_t>(at - plan.input_values.begin()));
          host_reads_input_[entry.inputs.back()] = true;
        }
        by_values_.push_back(std::move(entry));
        continue;  // its kernel is known once the inputs are
      }
      active_[k] = &cuda_kernel(plan.layers[k]);
      give_host_staging(k, active_[k]->host_staging_bytes());
    }
  }

  ~CudaExecutor() override {
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
    if (graph_) cudaGraphDestroy(graph_);
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    for (cudaEvent_t e : layer_events_) cudaEventDestroy(e);
    if (io_event_) cudaEventDestroy(io_event_);
    for (void* p : input_staging_) cudaFreeHost(p);
    for (void* p : output_staging_) cudaFreeHost(p);
    for (void* p : host_staging_) cudaFreeHost(p);
    if (stream_) cudaStreamDestroy(stream_);
  }

  void set_input(size_t index, const TensorData& value) override {
    std::memcpy(input_staging_[index], value.raw(), value.nbytes());
    input_set_[index] = input_dirty_[index] = true;
    input_on_device_[index] = false;
  }

  // Enqueued on the caller's stream, so the copy follows the work that wrote `src` and precedes the caller's
  // later reuse of it; stream_ waits for it. Runs are synchronous, so the arena is idle here.
  void set_input_device(size_t index, const void* src, const std::vector<int64_t>&, void* stream) override {
    const auto caller = static_cast<cudaStream_t>(stream);
    const int v = plan_.input_values[index];
    if (const size_t bytes = value_bytes(v)) {
      KILN_CUDA_CHECK(cudaMemcpyAsync(device_ptr(v), src, bytes, cudaMemcpyDeviceToDevice, caller));
      if (host_reads_input_[index]) {  // a by-input-values layer picks its kernel from the value on the host
        KILN_CUDA_CHECK(cudaMemcpyAsync(input_staging_[index], src, bytes, cudaMemcpyDeviceToHost, caller));
        KILN_CUDA_CHECK(cudaStreamSynchronize(caller));
      }
    }
    after_caller(caller);
    input_set_[index] = input_on_device_[index] = true;
    input_dirty_[index] = false;
  }

  // From the arena, on the caller's stream; the next run (on stream_) waits for it before overwriting.
  void copy_output_to_device(size_t index, void* dst, void* stream) override {
    const auto caller = static_cast<cudaStream_t>(stream);
    const int v = plan_.output_values[index];
    if (const size_t bytes = value_bytes(v))
      KILN_CUDA_CHECK(cudaMemcpyAsync(dst, device_ptr(v), bytes, cudaMemcpyDeviceToDevice, caller));
    after_caller(caller);
  }

  void run(const RunOptions& options, std::vector<double>& layer_ms, RunTimes& times) override {
    for (size_t k = 0; k < plan_.inputs.size(); ++k)
      if (!input_set_[k]) throw Error("input '" + plan_.inputs[k].name + "' was not set");
    select_kernels_by_input_values();
    KILN_CUDA_CHECK(cudaEventRecord(events_[0], stream_));
    for (size_t k = 0; k < plan_.inputs.size(); ++k) {
      if (input_on_device_[k] || (!options.data_transfers && !input_dirty_[k])) continue;
      const int v = plan_.input_values[k];
      KILN_CUDA_CHECK(
          cudaMemcpyAsync(device_ptr(v), input_staging_[k], value_bytes(v), cudaMemcpyHostToDevice, stream_));
      input_dirty_[k] = false;
    }
    KILN_CUDA_CHECK(cudaEventRecord(events_[1], stream_));
    layer_ms.assign(options.profiling ? plan_.layers.size() : 0, 0.0);
    if (options.profiling) {
      enqueue_layers(true);
    } else if (options.use_graph) {
      if (!graph_exec_) capture();
      KILN_CUDA_CHECK(cudaGraphLaunch(graph_exec_, stream_));
    } else {
      enqueue_layers(false);
    }
    KILN_CUDA_CHECK(cudaEventRecord(events_[2], stream_));
    downloaded_ = options.data_transfers;
    if (options.data_transfers)
      for (size_t k = 0; k < plan_.outputs.size(); ++k) {
        const int v = plan_.output_values[k];
        KILN_CUDA_CHECK(cudaMemcpyAsync(output_staging_[k], device_ptr(v), value_bytes(v),
                                        cudaMemcpyDeviceToHost, stream_));
      }
    KILN_CUDA_CHECK(cudaEventRecord(events_[3], stream_));
    KILN_CUDA_CHECK(cudaEventSynchronize(events_[3]));
    KILN_CUDA_CHECK(cudaGetLastError());
    for (size_t k : host_work_layers_) {
      try {
        active_[k]->check_host_work(layer_rc_[k]);
      } catch (const std::exception& e) {
        throw Error(layer_label(plan_.layers[k]) + ": " + e.what());
      }
    }
    times.h2d_ms = elapsed(events_[0], events_[1]);
    times.compute_ms = elapsed(events_[1], events_[2]);
    times.d2h_ms = elapsed(events_[2], events_[3]);
    if (options.profiling)
      for (size_t k = 0; k < plan_.layers.size(); ++k)
        if (!plan_.layers[k].is_alias) layer_ms[k] = elapsed(layer_events_[2 * k], layer_events_[2 * k + 1]);
  }

  TensorData output(size_t index) override {
    const int v = plan_.output_values[index];
    const ValueSlot& slot = plan_.values[static_cast<size_t>(v)];
    TensorData out(slot.dtype, slot.dims);
    if (downloaded_)
      std::memcpy(out.raw(), output_staging_[index], slot.nbytes());
    else
      KILN_CUDA_CHECK(cudaMemcpy(out.raw(), device_ptr(v), slot.nbytes(), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  static void* pinned(size_t bytes) {
    void* p = nullptr;
    KILN_CUDA_CHECK(cudaMallocHost(&p, std::max<size_t>(bytes, 1)));
    return p;
  }
  // stream_'s later work waits for what the caller's stream holds now.
  void after_caller(cudaStream_t caller) {
    KILN_CUDA_CHECK(cudaEventRecord(io_event_, caller));
    KILN_CUDA_CHECK(cudaStreamWaitEvent(stream_, io_event_, 0));
  }
  size_t value_bytes(int v) const { return plan_.values[static_cast<size_t>(v)].nbytes(); }
  void* device_ptr(int v) const {
    const ValueSlot& slot = plan_.values[static_cast<size_t>(v)];
    if (slot.kind == ValueSlot::Kind::Constant) return state_.constant_ptr[static_cast<size_t>(v)];
    return static_cast<unsigned char*>(arena_.ptr) + slot.offset;
  }
  backend::TensorView view(int v) const {  // a constant its kernel owns has data == nullptr
    return value_view(plan_, v, static_cast<unsigned char*>(arena_.ptr), state_.constant_ptr.data());
  }
  static double elapsed(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    return ms;
  }

  void enqueue_layers(bool with_events) {
    if (with_events && layer_events_.empty()) {
      layer_events_.resize(2 * plan_.layers.size());
      for (cudaEvent_t& e : layer_events_) KILN_CUDA_CHECK(cudaEventCreate(&e));
    }
    for (size_t k = 0; k < plan_.layers.size(); ++k) {
      const PlannedLayer& layer = plan_.layers[k];
      if (layer.is_alias) continue;
      if (with_events) KILN_CUDA_CHECK(cudaEventRecord(layer_events_[2 * k], stream_));
      try {
        active_[k]->enqueue(inputs_[k], outputs_[k], layer_rc_[k]);
      } catch (const std::exception& e) {
        throw Error(layer_label(layer) + ": " + e.what());
      }
      if (with_events) KILN_CUDA_CHECK(cudaEventRecord(layer_events_[2 * k + 1], stream_));
    }
  }

  // Layers whose kernel depends on the values of engine inputs: the kernel for this run's values (the inputs'
  // host copies are current). A different kernel than last run's means the captured graph is stale; one
  // needing more workspace or host staging than this context has gets it.
  void select_kernels_by_input_values() {
    for (const ByValues& e : by_values_) {
      std::vector<const void*> values;
      for (size_t input : e.inputs) values.push_back(input_staging_[input]);
      const CudaKernel* kernel = nullptr;
      try {
        kernel = &e.kernel->select(values);
      } catch (const std::exception& ex) {
        throw Error(layer_label(plan_.layers[e.layer]) + ": " + ex.what());
      }
      if (kernel == active_[e.layer]) continue;
      active_[e.layer] = kernel;
      drop_graph();
      if (kernel->workspace_bytes() > workspace_.bytes) {
        workspace_ = DeviceBuffer(kernel->workspace_bytes());
        rc_.workspace = workspace_.ptr;
        rc_.workspace_bytes = workspace_.bytes;
        for (RunContext& rc : layer_rc_) rc.workspace = workspace_.ptr, rc.workspace_bytes = workspace_.bytes;
      }
      give_host_staging(e.layer, kernel->host_staging_bytes());
    }
  }

  // Pinned host memory of at least `bytes` for layer k's host work (kept when it already has enough).
  void give_host_staging(size_t k, size_t bytes) {
    if (bytes == 0 || bytes <= staging_bytes_[k]) return;
    host_staging_.push_back(pinned(bytes));
    layer_rc_[k].host_staging = host_staging_.back();
    if (staging_bytes_[k] == 0) host_work_layers_.push_back(k);
    staging_bytes_[k] = bytes;
  }

  void drop_graph() {
    if (graph_exec_) KILN_CUDA_CHECK(cudaGraphExecDestroy(graph_exec_));
    if (graph_) KILN_CUDA_CHECK(cudaGraphDestroy(graph_));
    graph_exec_ = nullptr;
    graph_ = nullptr;
  }

  void capture() {
    KILN_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue_layers(false);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream_, &broken);
      if (broken) cudaGraphDestroy(broken);
      cudaGetLastError();
      throw;
    }
    KILN_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph_));
    KILN_CUDA_CHECK(cudaGraphInstantiate(&graph_exec_, graph_, 0));
  }

  const EnginePlan& plan_;
  const CudaEngineState& state_;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer arena_, workspace_;
  RunContext rc_;
  std::vector<RunContext> layer_rc_;         // rc_ plus the layer's host staging, per layer
  std::vector<void*> host_staging_;          // pinned, one region per layer that does host work
  std::vector<size_t> host_work_layers_;     // those layers
  std::vector<size_t> staging_bytes_;        // per layer: the size of its region (0: none)
  std::vector<const CudaKernel*> active_;    // per layer: the kernel that runs it (null for aliases)
  struct ByValues {
    size_t layer;
    const ByInputValuesKernel* kernel;
    std::vector<size_t> inputs;  // the engine input feeding each of kernel->operands()
  };
  std::vector<ByValues> by_values_;
  cudaEvent_t events_[4] = {};
  std::vector<cudaEvent_t> layer_events_;
  std::vector<void*> input_staging_, output_staging_;
  std::vector<bool> input_set_, input_dirty_;
  std::vector<bool> input_on_device_;   // set by set_input_device: already in the arena, no upload
  std::vector<bool> host_reads_input_;  // an operand of a by-input-values layer
  cudaEvent_t io_event_ = nullptr;      // orders stream_ after the caller's stream
  std::vector<std::vector<backend::TensorView>> inputs_, outputs_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t graph_exec_ = nullptr;
  bool downloaded_ = false;
};

nlohmann::json describe_json() {
  KILN_CUDA_CHECK(cudaSetDevice(0));
  cudaDeviceProp p{};
  KILN_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  int runtime = 0, driver = 0, cublas = 0;
  KILN_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  KILN_CUDA_CHECK(cudaDriverGetVersion(&driver));
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) == CUBLAS_STATUS_SUCCESS) {
    cublasGetVersion(h, &cublas);
    cublasDestroy(h);
  }
  return {{"gpu", p.name},
          {"compute_capability", std::to_string(p.major) + "." + std::to_string(p.minor)},
          {"cuda_runtime", runtime},
          {"cuda_driver", driver},
          {"cudnn", static_cast<int64_t>(cudnnGetVersion())},
          {"cublas", cublas}};
}

void check_compatible(const std::string& recorded, const std::string& file) {
  const nlohmann::json want = nlohmann::json::parse(recorded, nullptr, false);
  const nlohmann::json have = describe_json();
  if (want.is_discarded() || !want.is_object() || !want.contains("gpu"))
    throw Error(file + ": the engine does not record which GPU it was built for; rebuild it");
  for (const char* key : {"gpu", "compute_capability", "cudnn", "cublas"}) {
    if (want.value(key, nlohmann::json()) == have[key]) continue;
    throw Error(file + ": engine built for " + key + " " + printable(want.value(key, nlohmann::json()).dump()) +
                ", this machine has " + have[key].dump() + " (" + have["gpu"].get<std::string>() +
                "); rebuild the engine here");
  }
}

const bool registered = register_device_backend({
    .name = "cuda",
    .data_dependent_shapes = true,
    .unavailable_reason = gpu_unavailable_reason,
    .host_fallback = make_host_fallback_kernel,
    .by_input_values = make_by_input_values_kernel,
    .prepare = prepare,
    .create_executor = [](const EnginePlan& plan) -> std::unique_ptr<Executor> {
      if (plan.data_dependent) return make_per_run_executor(plan);
      return std::make_unique<CudaExecutor>(plan);
    },
    .describe = [] { return describe_json().dump(); },
    .check_compatible = check_compatible,
});

}  // namespace
}  // namespace kiln::cuda
