// kiln — CUDA backend: a layer whose kernel is chosen at run time from the values of some of its operands
// that are engine inputs (DeviceBackend::by_input_values, kernel name kByInputValuesKernel). ONNX lets a
// Resize's scales, a ReduceSum's axes, a Slice's starts, a TopK's K, a Pad's pads or a Conv's weights be
// graph inputs; CUDA kernels want them on the host when they are made. The values of engine inputs are on the
// host before a run starts (ExecutionContext::set_input), so the executor hands them to select() first.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "kiln/build_options.h"

namespace kiln::cuda {

class ByInputValuesKernel final : public CudaKernel {
 public:
  ByInputValuesKernel(const backend::LayerDesc& desc, std::vector<size_t> operands);

  // The layer's operands whose values choose the kernel (indices into its inputs).
  const std::vector<size_t>& operands() const { return operands_; }
  // The kernel for these values (host bytes of each operand, in operands() order): made on first use of the
  // values and kept for the engine's life, so every context may hold it. Thread-safe.
  const CudaKernel& select(const std::vector<const void*>& values) const;

  void enqueue(const std::vector<backend::TensorView>&, const std::vector<backend::TensorView>&,
               const RunContext&) const override;
  std::string describe() const override;

  // A layer whose values change more often than this is better built with them as initializers.
  static constexpr size_t kMaxVariants = 64;

 private:
  struct Variant {
    std::vector<TensorData> values;  // the operands' values the kernel was made for (its constants)
    std::unique_ptr<backend::Kernel> kernel;
  };

  BuildOptions options_;  // a copy: the desc's points here
  backend::LayerDesc desc_;
  std::vector<size_t> operands_;
  mutable std::mutex mutex_;
  // By a hash of the operands' bytes (a run reads them twice, to hash and to compare, and copies nothing:
  // operands may be weights given as inputs). Equal hashes are told apart by comparing the values kept.
  mutable std::multimap<uint64_t, std::unique_ptr<Variant>> variants_;
};

std::unique_ptr<backend::Kernel> make_by_input_values_kernel(const backend::LayerDesc& desc,
                                                             const std::vector<size_t>& operands);

}  // namespace kiln::cuda
