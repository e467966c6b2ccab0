// kiln — building an engine from a graph and running it (the TensorRT-style runtime API).
//
//   auto graph = kiln::import_onnx("model.onnx");
//   auto engine = kiln::Engine::build(*graph, kiln::BuildOptions{});
//   engine->save("model.kiln");                       // later: kiln::Engine::load("model.kiln")
//   auto ctx = engine->create_context();
//   ctx->set_input("input", input_tensor);
//   ctx->run();
//   const kiln::TensorData& y = ctx->output("disp");
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/build_options.h"
#include "kiln/graph.h"
#include "kiln/tensor_data.h"

namespace kiln {

class ExecutionContext;
struct EnginePlan;
struct DynamicShapes;
class Executor;

// Names BuildOptions::skip_rewrites accepts (the builder's rewrite pipeline, in order, then concat_in_place).
std::vector<std::string> rewrite_names();

class Engine {
 public:
  ~Engine();
  // Optimizes a copy of `graph` (folding, fusions), picks a kernel per layer and plans activation memory.
  static std::unique_ptr<Engine> build(const Graph& graph, const BuildOptions& options = {});
  // Reads an engine file written by save(); no ONNX model is needed. Throws on a corrupt or
  // incompatible file.
  static std::unique_ptr<Engine> load(const std::string& path, const BuildOptions& options = {});
  void save(const std::string& path) const;  // atomic

  // For a dynamic engine (built with BuildOptions::profiles) an input's dims are -1 where they vary, outputs'
  // dims are those at the first profile's opt shape, and layers(), graph() and memory() describe that shape's
  // plan (planned_ and total_activation_bytes() are the largest over every profile's max shape).
  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  const std::vector<LayerInfo>& layers() const;
  size_t planned_activation_bytes() const;  // arena size after reusing buffers by liveness
  size_t total_activation_bytes() const;    // what one buffer per tensor would take
  const Graph& graph() const;               // the optimized graph the layers run
  const BuildOptions& options() const;      // what it was built with (device, precision)
  MemoryReport memory() const;
  // What an engine file records about the device and its libraries ("" on the CPU).
  std::string device_description() const;
  // The optimization profiles a dynamic engine runs (empty for an engine with fixed shapes).
  const std::vector<OptimizationProfile>& profiles() const;
  // How many shape-specialized plans the engine holds now (1 for fixed shapes; a dynamic engine plans each
  // new combination of input shapes once, from its kept graph, with the opt shape's kernels, and keeps the
  // most recent ones).
  size_t specialized_plans() const;

  std::unique_ptr<ExecutionContext> create_context() const;

 private:
  friend class ExecutionContext;
  Engine(std::shared_ptr<EnginePlan> plan, std::unique_ptr<DynamicShapes> dynamic);
  // The plan for these input shapes (a dynamic engine's cache; specializes on a miss). Thread-safe.
  std::shared_ptr<const EnginePlan> plan_for(const std::map<std::string, std::vector<int64_t>>& dims) const;
  std::shared_ptr<EnginePlan> plan_;  // fixed shapes, or a dynamic engine's plan at the first opt shape
  std::unique_ptr<DynamicShapes> dynamic_;
  std::vector<TensorInfo> inputs_;  // with -1 for dims that vary
};

// Per-inference state: the activation arena and bound inputs/outputs. One context per thread.
class ExecutionContext {
 public:
  ~ExecutionContext();
  // Copies `value` in; its dtype must match the engine's input, and its dims too, except that a dynamic
  // engine takes any dims inside one of its profiles (they become the input's shape for the next run()).
  void set_input(const std::string& name, const TensorData& value);
  // A dynamic engine's input shape for the next run(); throws naming input, dim and range when no profile
  // holds it. (set_input sets it too; this checks a shape before any data is at hand, as TensorRT's
  // setInputShape does.)
  void set_input_shape(const std::string& name, const std::vector<int64_t>& dims);
  void run();
  const TensorData& output(const std::string& name) const;
  // The output's name, dtype and dims after run(), without downloading it (a data-dependent plan's dims come
  // from its host copy).
  TensorInfo output_info(const std::string& name) const;

  // Caller-owned device memory on an engine whose device has its own (cuda), as TensorRT's setTensorAddress;
  // a host engine (cpu) throws. `stream` is the caller's cudaStream_t (nullptr: the legacy default stream).
  // set_input_device: the input (dtype and dims checked as set_input's) is copied device-to-device from
  // `device_ptr` into the engine's buffer, enqueued on `stream` after the work that produced it, and run()
  // waits for that copy; the caller may reuse the memory in later work on `stream`. A dynamic engine copies
  // at each run(): keep the memory valid until the input is set again. An input a layer reads on the host (a
  // by-input-values operand) and a data-dependent plan's inputs also go to the host (`stream` is
  // synchronized).
  void set_input_device(const std::string& name, const void* device_ptr, DType dtype,
                        const std::vector<int64_t>& dims, void* stream = nullptr);
  // After run(): the output copied into `device_ptr` (at least `capacity_bytes`), enqueued on `stream` (its
  // later work sees the values); the next run() waits for the copy.
  void copy_output_to_device(const std::string& name, void* device_ptr, size_t capacity_bytes,
                             void* stream = nullptr);

  // Per-layer times (on CUDA: device events around each layer, no CUDA graph while profiling).
  void set_profiling(bool on) { profiling_ = on; }
  // Milliseconds per layer of the last run() (empty unless profiling was on).
  const std::vector<double>& layer_times_ms() const { return layer_times_ms_; }
  // CUDA: replay the layers as one captured CUDA graph (default on).
  void set_use_graph(bool on) { use_graph_ = on; }
  // false: run() neither uploads unchanged inputs nor downloads outputs; output() downloads on demand
  // (trtexec's --noDataTransfers).
  void set_data_transfers(bool on) { data_transfers_ = on; }
  const RunTimes& last_run_times() const { return times_; }
  // The layers of the plan the last run() used (a dynamic engine plans per input shape; before any run, the
  // engine's own).
  const std::vector<LayerInfo>& layers() const;

 private:
  friend class Engine;
  explicit ExecutionContext(const Engine& engine);
  size_t input_index(const std::string& name) const;   // throws listing the inputs
  size_t output_index(const std::string& name) const;  // of the last run's plan; throws unless run() ran
  void check_input(const std::string& name, DType dtype, const std::vector<int64_t>& dims) const;
  const Engine& engine_;
  std::shared_ptr<const EnginePlan> plan_;  // the plan executor_ runs
  std::unique_ptr<Executor> executor_;
  std::map<std::string, std::vector<int64_t>> shapes_;  // dynamic engines: the next run's input shapes
  std::vector<TensorData> bound_;    // dynamic engines: inputs kept until run() picks a plan
  std::vector<void*> bound_stream_;  // per bound_: the caller's stream when it views device memory, else null
  std::vector<bool> bound_device_;   // per bound_: it views device memory
  mutable std::map<std::string, TensorData> outputs_;  // filled by run(), or on demand without transfers
  bool profiling_ = false, use_graph_ = true, data_transfers_ = true, ran_ = false;
  std::vector<double> layer_times_ms_;
  RunTimes times_;
};

}  // namespace kiln
