// cuda.dropout: inference Dropout that also outputs its mask (output = input, mask = all true). Without the
// mask output Dropout is a view (an alias, or cuda.copy in movement_copy_cuda.cu). The ratio (constant or
// graph input) does not matter at inference; training_mode must be absent or a constant false, or true with a
// constant ratio of 0: training with a non-zero ratio draws a random mask no oracle can agree with.
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {
namespace {

using backend::LayerDesc;
using backend::TensorView;

}  // namespace

bool dropout_is_identity(const LayerDesc& d) {
  if (d.inputs.size() <= 2 || !d.inputs[2].present) return true;  // inference
  const TensorData* mode = d.inputs[2].constant;
  if (!mode || mode->numel() != 1) return false;  // unknown mode
  if (mode->as_int64(0) == 0) return true;
  // Training drops nothing at a ratio of 0 (the default is 0.5).
  const TensorData* ratio = d.inputs[1].present ? d.inputs[1].constant : nullptr;
  return ratio && ratio->numel() == 1 && ratio->as_double(0) == 0.0;
}

namespace {

class DropoutMaskKernel final : public CudaKernel {
 public:
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (out[0].nbytes() == 0) return;
    if (in[0].data != out[0].data)
      KILN_CUDA_CHECK(
          cudaMemcpyAsync(out[0].data, in[0].data, out[0].nbytes(), cudaMemcpyDeviceToDevice, rc.stream));
    KILN_CUDA_CHECK(cudaMemsetAsync(out[1].data, 1, out[1].nbytes(), rc.stream));  // bool true is byte 1
  }
  bool owns_constant_input(size_t k) const override { return k >= 1; }  // ratio and training_mode: unused
};

bool dropout_mask_supported(const LayerDesc& d) {
  if (d.inputs.empty() || d.inputs.size() > 3 || d.outputs.size() != 2) return false;
  const auto& x = d.inputs[0];
  if (!x.present || x.dtype == DType::Undefined || x.dtype == DType::String) return false;
  if (!d.outputs[0].present || d.outputs[0].dtype != x.dtype || d.outputs[0].dims != x.dims) return false;
  if (!d.outputs[1].present || d.outputs[1].dtype != DType::Bool || d.outputs[1].dims != x.dims) return false;
  return dropout_is_identity(d);
}

std::unique_ptr<backend::Kernel> create_dropout_mask(const LayerDesc& d) {
  if (!dropout_mask_supported(d)) throw Error("cuda.dropout: layer '" + d.node->name + "' is not supported");
  return std::make_unique<DropoutMaskKernel>();
}

KILN_REGISTER_KERNEL({.name = "cuda.dropout",
                      .device = "cuda",
                      .op = "Dropout",
                      .domain = "",
                      .priority = 10,
                      .supports = dropout_mask_supported,
                      .create = create_dropout_mask});

}  // namespace
}  // namespace kiln::cuda
