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

#include "kiln/graph.h"
#include "kiln/passes.h"
#include "kiln/tensor_data.h"

namespace kiln {

struct BuildOptions {
  std::string device = "cpu";
  int threads = 0;  // CPU worker threads; 0 = every core
  // Input shapes to fix before building (for inputs with symbolic or unknown dims), by input name.
  std::map<std::string, std::vector<int64_t>> input_shapes;
  PropagateOptions fold;
  // Rewrites the builder must not apply: "groupnorm", "pad_into_conv", "conv_activation", "elementwise" (for
  // comparisons and for isolating a suspected rewrite; every rewrite is exact, so outputs agree either way
  // within rounding).
  std::vector<std::string> skip_rewrites;
  bool verbose = false;
  // Progress and verbose messages ("[build] ..."); default prints nothing.
  std::function<void(const std::string&)> log;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
};

struct LayerInfo {
  std::string name;                 // the node's name (or a generated one)
  std::string op;                   // the op it runs ("Conv", "GroupNorm+Elu", ...)
  std::string kernel;               // the kernel chosen ("cpu.conv_onednn", "reference", ...)
  std::vector<std::string> fused;   // names of the original nodes folded into this layer
};

class ExecutionContext;
struct EnginePlan;

class Engine {
 public:
  ~Engine();
  // Optimizes a copy of `graph` (folding, fusions), picks a kernel per layer and plans activation memory.
  static std::unique_ptr<Engine> build(const Graph& graph, const BuildOptions& options = {});
  // Reads an engine file written by save(); no ONNX model is needed. Throws on a corrupt or
  // incompatible file.
  static std::unique_ptr<Engine> load(const std::string& path, const BuildOptions& options = {});
  void save(const std::string& path) const;  // atomic

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  const std::vector<LayerInfo>& layers() const;
  size_t planned_activation_bytes() const;  // arena size after reusing buffers by liveness
  size_t total_activation_bytes() const;    // what one buffer per tensor would take
  const Graph& graph() const;               // the optimized graph the layers run

  std::unique_ptr<ExecutionContext> create_context() const;

 private:
  friend class ExecutionContext;
  explicit Engine(std::unique_ptr<EnginePlan> plan);
  std::unique_ptr<EnginePlan> plan_;
};

// Per-inference state: the activation arena and bound inputs/outputs. One context per thread.
class ExecutionContext {
 public:
  ~ExecutionContext();
  // Copies `value` in; dtype and dims must match the engine's input exactly (one-line error otherwise).
  void set_input(const std::string& name, const TensorData& value);
  void run();
  const TensorData& output(const std::string& name) const;

  void set_profiling(bool on) { profiling_ = on; }
  // Milliseconds per layer of the last run() (empty unless profiling was on).
  const std::vector<double>& layer_times_ms() const { return layer_times_ms_; }

 private:
  friend class Engine;
  explicit ExecutionContext(const Engine& engine);
  const Engine& engine_;
  std::shared_ptr<unsigned char> arena_;
  std::map<std::string, TensorData> inputs_, outputs_;
  bool profiling_ = false;
  std::vector<double> layer_times_ms_;
};

}  // namespace kiln
