#include "backends/cuda/plugin_cuda.h"

namespace kiln::cuda {

void PluginCudaKernel::enqueue(const std::vector<backend::TensorView>& inputs,
                               const std::vector<backend::TensorView>& outputs, const RunContext& rc) const {
  std::vector<PluginTensor> ins, outs;
  ins.reserve(inputs.size());
  outs.reserve(outputs.size());
  for (const auto& v : inputs) ins.push_back({v.dtype, v.dims, v.data});
  for (const auto& v : outputs) outs.push_back({v.dtype, v.dims, v.data});
  PluginContext ctx;
  ctx.device = "cuda";
  ctx.stream = static_cast<void*>(rc.stream);
  ctx.threads = 1;
  ctx.workspace = rc.workspace;
  plugin_->enqueue(ctx, ins, outs);
}

std::unique_ptr<backend::Kernel> make_plugin_cuda_kernel(std::unique_ptr<Plugin> plugin, size_t workspace) {
  return std::make_unique<PluginCudaKernel>(std::move(plugin), workspace);
}

}  // namespace kiln::cuda
