// A plain byte copy on CUDA (cuda.copy) for view ops the runtime did not alias: Reshape, Flatten, Squeeze,
// Unsqueeze, Identity, Dropout.
#include "backends/cuda/movement_cuda.cuh"

namespace kiln::cuda::movement {
namespace {

// A view op the runtime did not alias (its input is a constant, or its output is a graph output): copy the
// bytes of input 0. Any dtype: nothing is interpreted.
class CopyKernel final : public CudaKernel {
 public:
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (in[0].data != out[0].data && out[0].nbytes() > 0)
      KILN_CUDA_CHECK(
          cudaMemcpyAsync(out[0].data, in[0].data, out[0].nbytes(), cudaMemcpyDeviceToDevice, rc.stream));
  }
  bool owns_constant_input(size_t k) const override { return k >= 1; }  // shapes, axes, Dropout's ratio/mode
};

bool copy_supported(const LayerDesc& d) {
  if (d.inputs.empty() || d.outputs.empty() || !d.inputs[0].present || !d.outputs[0].present) return false;
  const DType t = d.inputs[0].dtype;
  if (t == DType::Undefined || t == DType::String || d.outputs[0].dtype != t) return false;
  if (ops::numel(d.inputs[0].dims) != ops::numel(d.outputs[0].dims)) return false;
  for (size_t k = 1; k < d.outputs.size(); ++k)
    if (d.outputs[k].present) return false;  // Dropout's mask
  return d.node->op != "Dropout" || dropout_is_identity(d);  // training with a non-zero ratio is random
}

std::unique_ptr<backend::Kernel> create_copy(const LayerDesc&) {
  return std::make_unique<CopyKernel>();
}
KILN_REGISTER_KERNEL(factory("cuda.copy", "Reshape", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Flatten", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Squeeze", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Unsqueeze", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Identity", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Dropout", copy_supported, create_copy));

}  // namespace
}  // namespace kiln::cuda::movement
