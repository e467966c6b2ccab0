// kiln — plugins on CUDA: the kernel a "cuda" plugin layer runs. Plugin::enqueue gets device pointers, a
// PluginContext{device "cuda", stream, workspace} and must only enqueue work on that stream.
#pragma once
#include <memory>

#include "backends/cuda/cuda_common.h"
#include "kiln/plugin.h"

namespace kiln::cuda {

class PluginCudaKernel final : public CudaKernel {
 public:
  PluginCudaKernel(std::unique_ptr<Plugin> plugin, size_t workspace)
      : plugin_(std::move(plugin)), workspace_(workspace) {}
  void enqueue(const std::vector<backend::TensorView>& inputs,
               const std::vector<backend::TensorView>& outputs, const RunContext& rc) const override;
  size_t workspace_bytes() const override { return workspace_; }
  std::string serialize() const override { return plugin_->serialize(); }

 private:
  std::unique_ptr<Plugin> plugin_;
  size_t workspace_;
};

// The kernel of a plugin layer on "cuda" (workspace = plugin->workspace_size(...) for the layer).
std::unique_ptr<backend::Kernel> make_plugin_cuda_kernel(std::unique_ptr<Plugin> plugin, size_t workspace);

}  // namespace kiln::cuda
