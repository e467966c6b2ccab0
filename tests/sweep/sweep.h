// kiln_backend_sweep — every registered kernel factory against the reference kernel (ggml's test-backend-ops
// idea). Shared types: a test case (one node and its operands, written by a per-op-family generator), the
// case materialized for a run (graph, LayerDesc, inputs, the reference's outputs), and what a run reports.
//
// Generators (cases_*.cpp) register themselves per (domain, op) with KILN_SWEEP_CASES; the sweep looks one up
// for each registered factory's op. A factory whose op has no generator fails the sweep (plugins excepted:
// they need an oracle op, see Case::oracle), as does a factory whose supports() refuses every generated case.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "device/kernel.h"
#include "kiln/engine.h"
#include "kiln/graph.h"
#include "kiln/tensor_data.h"

namespace kiln::sweep {

// How random values are drawn: magnitude uniform in [lo, hi], sign random unless `positive`; never zero.
// Integers: magnitude in [1, 2^20] (8- and 16-bit types: [1, 100]), sign random unless `positive`.
// `whole`: every dtype (bool excepted) gets whole numbers uniform in [lo, hi], zero and both signs included
// (index operands within an axis, [-n, n-1]; equal values for comparisons).
struct Fill {
  double lo = 0.1, hi = 2.0;
  bool positive = false;
  bool whole = false;
};

struct Operand {
  enum class Kind { Input, Weight, Fixed, Absent };
  Kind kind =
      Kind::Input;  // Input: random graph input; Weight: random constant; Fixed: `value` as a constant
  DType dtype = DType::Float;
  std::vector<int64_t> dims;
  Fill fill;
  std::optional<TensorData> value;  // Fixed
};

// Operand builders for the generators.
Operand input(DType dtype, std::vector<int64_t> dims, Fill fill = {});
Operand weight(DType dtype, std::vector<int64_t> dims, Fill fill = {});
Operand fixed(TensorData value);
Operand ints(const std::vector<int64_t>& values);              // a 1-D int64 constant (shapes, axes, pads)
Operand scalar(DType dtype, double value, bool rank0 = true);  // a one-element constant ([] or [1])
Operand absent();                                              // an omitted optional input

// The reference computed by another op on the same operands (a plugin has no reference kernel of its own:
// GroupNormalizationPlugin's oracle is kiln.GroupNorm).
struct Oracle {
  std::string op, domain;
  Attributes attrs;
};

struct Case {
  int64_t opset = 17;  // of the node's domain ("" → ai.onnx; kiln ops are opset 1)
  Attributes attrs;
  std::vector<Operand> inputs;
  size_t outputs = 1;
  std::string label;   // shapes and variant, printed
  bool exact = false;  // data movement: outputs must equal the reference bit for bit
  bool tf32 = false;   // fp32 math may run on TF32 tensor cores on CUDA (convolutions)
  double flops = 0;    // for --perf (GFLOP/s); 0 = not a compute-bound op
  std::optional<Oracle> oracle;
  // Outputs whose size depends on the values (NonZero, Unique, NonMaxSuppression) take the size the
  // reference gives on the case's own inputs, as in a model that declares the output shape.
  bool dims_from_values = false;
};

// Cases of one op family. `cases(op, dtype)` returns the cases filed under that dtype (the dtype of the
// node's data; a Cast case converts from it).
struct Generator {
  std::string domain;  // "" = ai.onnx
  std::vector<std::string> ops;
  std::vector<DType> dtypes;
  std::function<std::vector<Case>(const std::string& op, DType dtype)> cases;
};
bool register_generator(Generator g);
const Generator* find_generator(const std::string& domain, const std::string& op);
// Every generator of op, in registration order: one op may have several (one per dtype family).
std::vector<const Generator*> find_generators(const std::string& domain, const std::string& op);

// Other ways one factory can build a layer besides create(): cpu.conv_onednn's tactics, forced one by one.
struct Variant {
  std::string label;
  std::function<std::unique_ptr<backend::Kernel>(const backend::LayerDesc&)> create;
};
using VariantSource = std::function<std::vector<Variant>(const backend::LayerDesc&)>;
bool register_variants(const std::string& device, const std::string& factory_name, VariantSource source);
std::vector<Variant> variants_for(const backend::KernelFactory& f, const backend::LayerDesc& desc);

#define KILN_SWEEP_CONCAT_INNER(a, b) a##b
#define KILN_SWEEP_CONCAT(a, b) KILN_SWEEP_CONCAT_INNER(a, b)
#define KILN_SWEEP_CASES(...)                                               \
  static const bool KILN_SWEEP_CONCAT(kiln_sweep_generator_, __COUNTER__) = \
      ::kiln::sweep::register_generator(__VA_ARGS__)

// ------------------------------------------------------------------------------------------- a run
// A case made concrete: its one-node graph, the layer as a backend sees it, the host inputs (random values
// from `seed`) and the reference's outputs.
struct Built {
  std::unique_ptr<Graph> graph;
  const Node* node = nullptr;
  backend::LayerDesc desc;
  std::vector<TensorData> inputs;    // per node input; empty_type() for an absent one; constants share data
  std::vector<TensorData> expected;  // per node output, from the reference kernel
  int64_t bytes = 0;                 // inputs + outputs, for GB/s
};
// Throws kiln::Error when the case itself is bad (inference or the reference refuses it: a generator bug).
// `reference` false: inputs zero and `expected` unset — enough for supports().
Built build_case(const std::string& op, const std::string& domain, const Case& c, uint64_t seed, int threads,
                 const BuildOptions* options, bool reference = true);

struct Settings {
  bool perf = false;
  int threads = 2;
  BuildOptions options;  // the LayerDesc's: tf32, precision
};

struct Outcome {
  bool ok = false;
  double err = 0;        // worst relative L2 over the outputs
  std::string message;   // why not ok
  std::string describe;  // Kernel::describe() (what the kernel chose)
  double us = 0;         // --perf: mean time per run
  bool fatal = false;    // the device is unusable from here on (a sticky CUDA error): stop the sweep
};

// Tolerance on relative L2: per dtype and device (docs/backend_sweep.md).
double tolerance(DType dtype, const std::string& device, const Case& c, const BuildOptions& options);
// Empty when `got` matches `want` (NaN where the reference has none fails; `exact`: bytes equal); `err` gets
// the relative L2 over the finite elements.
std::string compare(const TensorData& got, const TensorData& want, bool exact, double tol, double& err);

// Runs one kernel built by `create` on the host, outputs NaN-poisoned; compares with b.expected.
Outcome run_on_cpu(const Built& b, const Variant& v, const Case& c, const Settings& s);
// The same on the GPU (inputs uploaded, outputs poisoned with 0xFF bytes, the kernel's workspace, one
// stream).
Outcome run_on_cuda(const Built& b, const Variant& v, const Case& c, const Settings& s);
// "" when --device=cuda can run; otherwise one line saying why not (no CUDA backend built, no GPU).
std::string cuda_unavailable_reason();

std::string dims_str(const std::vector<int64_t>& dims);

}  // namespace kiln::sweep
