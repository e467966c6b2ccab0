// kiln — backend kernels: what a backend declares it can run, and the object that runs one layer.
//
// A KernelFactory says which (op, dtypes, shapes, attributes) it supports; the builder asks every factory
// registered for a layer's op, highest priority first, and takes the first that supports it (it never tries
// and catches). Every op with a reference kernel also runs through the "reference" factory, so an optimized
// kernel is always an optimization, never the only implementation — and the tests compare the two.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/graph.h"
#include "kiln/tensor_data.h"

namespace kiln {
struct BuildOptions;
class TimingCache;
}  // namespace kiln

namespace kiln::backend {

// Non-owning view of a tensor in an arena, a constant or a user buffer.
struct TensorView {
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  void* data = nullptr;

  // Plans check every value's size once (builder), so views of them cannot overflow.
  int64_t numel() const { return checked_numel(dims).value_or(0); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
};

// Everything known about one layer at build time: shapes are static, constants have values.
struct LayerDesc {
  const Node* node = nullptr;
  int64_t opset = 0;
  struct Operand {
    DType dtype = DType::Undefined;
    std::vector<int64_t> dims;
    const TensorData* constant = nullptr;  // set when the operand is a build-time constant
    bool present = false;                  // false for an omitted optional input/output
  };
  std::vector<Operand> inputs, outputs;
  int threads = 1;
  const BuildOptions* options = nullptr;  // precision, tf32, log; set by the builder and by Engine::load
  TimingCache* timing_cache = nullptr;    // timed choices made before (null: time again, or not at all)
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Inputs and outputs in node order (absent optional ones have data == nullptr). Must be thread-safe:
  // one kernel object serves every execution context of an engine.
  virtual void run(const std::vector<TensorView>& inputs, const std::vector<TensorView>& outputs) const = 0;
  // State that the factory's `deserialize` turns back into this kernel (plugins); empty = none, the kernel is
  // re-created from the layer alone.
  virtual std::string serialize() const { return {}; }
  // What the kernel chose, for profiles and the verbose layer list ("graph.nhwc#3, NHWC via conversions").
  virtual std::string describe() const { return {}; }
};

struct KernelFactory {
  std::string name;    // "reference", "cpu.conv_onednn", ...
  std::string device;  // "cpu", "cuda"
  std::string op;      // ONNX op type (or a kiln-internal fused op)
  std::string domain;  // "" = ai.onnx
  int priority = 0;    // higher is preferred; the reference is -100
  std::function<bool(const LayerDesc&)> supports;
  std::function<std::unique_ptr<Kernel>(const LayerDesc&)> create;
  // Re-creates a kernel from Kernel::serialize()'s state (engine files); optional.
  std::function<std::unique_ptr<Kernel>(const LayerDesc&, const std::string& state)> deserialize = nullptr;
};

bool register_kernel(KernelFactory factory);
// Factories for (device, domain, op), highest priority first; includes the reference fallback.
std::vector<const KernelFactory*> kernels_for(const std::string& device, const std::string& domain,
                                              const std::string& op);
// Every registered factory (not the on-demand reference ones), in registration order: what the backend sweep
// exercises.
std::vector<const KernelFactory*> registered_kernels();
// The highest-priority factory for the layer's op on `device` whose supports() takes it (only the reference
// when `reference_only`); null when none does.
const KernelFactory* first_supporting(const std::string& device, const LayerDesc& desc, bool reference_only);
const KernelFactory* find_kernel(const std::string& device, const std::string& domain, const std::string& op,
                                 const std::string& name);
// The reference kernel as a backend kernel (inputs wrapped as views, outputs copied to their buffers).
std::unique_ptr<Kernel> make_reference_kernel(const LayerDesc& desc);

}  // namespace kiln::backend

#define KILN_KERNEL_CONCAT_INNER(a, b) a##b
#define KILN_KERNEL_CONCAT(a, b) KILN_KERNEL_CONCAT_INNER(a, b)
#define KILN_REGISTER_KERNEL(...)                                              \
  static const bool KILN_KERNEL_CONCAT(kiln_kernel_registered_, __COUNTER__) = \
      ::kiln::backend::register_kernel(__VA_ARGS__)
