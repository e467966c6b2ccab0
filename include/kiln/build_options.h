// kiln — what an engine is built with and reports about itself: plain data, shared by the builder, the
// devices that run engines and the runtime (kiln/engine.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kiln/passes.h"
#include "kiln/tensor_data.h"

namespace kiln {

// The most CPU worker threads an engine accepts (BuildOptions::threads, --threads, engine files).
constexpr int kMaxThreads = 1024;

// One optimization profile (trtexec's --minShapes/--optShapes/--maxShapes): for each input with dynamic dims,
// the smallest, typical and largest shape one engine runs without a rebuild. Kernels (tactics) are chosen at
// `opt`; memory is reported for `max`. Dims that are static in the model must be equal in all three.
struct ShapeRange {
  std::vector<int64_t> min, opt, max;
};
using OptimizationProfile = std::map<std::string, ShapeRange>;  // by input name

struct BuildOptions {
  std::string device = "cpu";  // "cpu" or "cuda"
  int threads = 0;             // CPU worker threads; 0 = every core
  // Precision of float activations and weights: Float (fp32), Float16 or BFloat16. Lower precisions convert
  // the graph (weights, activations) and keep the engine's inputs and outputs fp32, as TensorRT does.
  DType precision = DType::Float;
  // fp32 convolutions and GEMMs may use TF32 tensor cores (TensorRT's default); false = strict fp32.
  bool tf32 = true;
  // Timed kernel choices (cuDNN algorithms, layouts) are read from and written to this file; "" = none.
  std::string timing_cache_file;
  // Every CPU layer runs its reference kernel (the oracle the tests compare optimized backends against).
  bool reference_kernels = false;
  // A layer the device has no kernel for runs on the host (copies in and out around the op's reference kernel,
  // reported in the build log and the layer list) instead of failing the build: trtexec has no such switch,
  // ONNX Runtime does it silently; kiln does it when asked (--allowHostFallback).
  bool allow_host_fallback = false;
  // Input shapes to fix before building (for inputs with symbolic or unknown dims), by input name.
  std::map<std::string, std::vector<int64_t>> input_shapes;
  // Shape ranges for inputs left dynamic: the engine runs any shape inside one of them
  // (ExecutionContext::set_input_shape). Empty: every input shape is fixed at build time.
  std::vector<OptimizationProfile> profiles;
  PropagateOptions fold;
  // Rewrites the builder must not apply, by name (rewrite_names() in kiln/engine.h lists them: "groupnorm",
  // "pad_into_conv", "batchnorm_into_conv", ..., "concat_in_place"); for comparisons and for isolating a
  // suspected rewrite: every rewrite is exact, so outputs agree either way within rounding.
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
  std::string name;                // the node's name (or a generated one)
  std::string op;                  // the op it runs ("Conv", "GroupNorm+Elu", ...)
  std::string kernel;              // the kernel chosen ("cpu.conv_onednn", "reference", ...)
  std::string tactic;              // what the kernel chose inside (algorithm, layout); may be empty
  std::vector<std::string> fused;  // names of the original nodes folded into this layer
};

// Where an engine's device memory goes (bytes).
struct MemoryReport {
  size_t activations = 0;  // the planned arena (buffers reused by liveness)
  size_t weights = 0;      // constants resident on the device (0 on the CPU: they stay in the graph)
  size_t workspace = 0;    // the largest scratch any layer asks for
};

// Times of the last ExecutionContext::run(), in milliseconds (trtexec's H2D / GPU Compute / D2H).
struct RunTimes {
  double h2d_ms = 0, compute_ms = 0, d2h_ms = 0;
};

}  // namespace kiln
