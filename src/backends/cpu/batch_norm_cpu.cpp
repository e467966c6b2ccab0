// cpu.batch_norm: inference BatchNormalization over fp32 [N, C, ...] with constant scale, B, mean and var —
// the per-channel affine map y = a[c]·x + b[c], a = scale / sqrt(var + eps), b = B − a·mean, both formed in
// double at create time. The reference works in double over a copy of the tensor (DenseNet-121 spent 24% of
// its time in standalone BatchNormalization, which no Conv precedes to fold it into).
#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"

namespace kiln::backend {
namespace {

KILN_SIMD_CLONES void affine(const float* x, float* y, int64_t n, float a, float b) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i] + b;
}

class BatchNormKernel final : public Kernel {
 public:
  explicit BatchNormKernel(const LayerDesc& d) : threads_(d.threads) {
    const auto& x = d.inputs[0].dims;
    batch_ = x[0], channels_ = x[1], inner_ = 1;
    for (size_t i = 2; i < x.size(); ++i) inner_ *= x[i];
    const double eps = d.node->attrs.get_float("epsilon", 1e-5f);
    const float *scale = d.inputs[1].constant->data<float>(), *bias = d.inputs[2].constant->data<float>(),
                *mean = d.inputs[3].constant->data<float>(), *var = d.inputs[4].constant->data<float>();
    for (int64_t c = 0; c < channels_; ++c) {
      const double a = scale[c] / std::sqrt(static_cast<double>(var[c]) + eps);
      a_.push_back(static_cast<float>(a));
      b_.push_back(static_cast<float>(bias[c] - a * mean[c]));
    }
  }
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const int64_t planes = batch_ * channels_;
    parallel_for(planes, planes * inner_, threads_, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const size_t c = static_cast<size_t>(p % channels_);
        affine(x + p * inner_, y + p * inner_, inner_, a_[c], b_[c]);
      }
    });
  }

 private:
  int threads_;
  int64_t batch_ = 0, channels_ = 0, inner_ = 1;
  std::vector<float> a_, b_;
};

bool supported(const LayerDesc& d) {
  if (d.inputs.size() != 5 || d.outputs.empty() || d.outputs[0].dtype != DType::Float) return false;
  if (d.outputs.size() > 1) {
    for (size_t k = 1; k < d.outputs.size(); ++k)
      if (d.outputs[k].present) return false;  // training outputs: the reference says why not
  }
  const Attributes& a = d.node->attrs;
  if (a.get_int("training_mode", 0) != 0 || (d.opset < 9 && a.get_int("spatial", 1) == 0)) return false;
  const auto& x = d.inputs[0].dims;
  if (d.inputs[0].dtype != DType::Float || x.size() < 2 || d.outputs[0].dims != x) return false;
  for (size_t k = 1; k < 5; ++k) {
    const auto& o = d.inputs[k];
    if (!o.constant || o.dtype != DType::Float || o.dims != std::vector<int64_t>{x[1]}) return false;
  }
  return true;
}

KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.batch_norm",
                                   .device = "cpu",
                                   .op = "BatchNormalization",
                                   .domain = "",
                                   .priority = 50,
                                   .supports = supported,
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<BatchNormKernel>(d);
                                   }});

}  // namespace
}  // namespace kiln::backend
