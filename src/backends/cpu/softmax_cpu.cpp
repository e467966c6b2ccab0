// cpu.softmax: fp32 Softmax over contiguous rows — before opset 13 always (the input coerced to 2-D at
// `axis`), from 13 when `axis` is the last dim (what transformers and classifier heads use). Per row: the
// maximum, e^(x - max) with cpu_util.h's vectorizable exp into the output, their sum in eight float partials
// (so it vectorizes without reassociation flags) totalled in double, then one scale. Softmax over an inner
// axis (strided rows) stays with the reference.
#include <limits>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"
#include "ops/util.h"

namespace kiln::backend {
namespace {

KILN_SIMD_CLONES void softmax_row(const float* x, float* y, int64_t n) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t k = 0; k < n; ++k) mx = std::max(mx, x[k]);
  for (int64_t k = 0; k < n; ++k) y[k] = exp_approx(x[k] - mx);
  float part[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) part[j] += y[k + j];
  double sum = 0;
  for (; k < n; ++k) sum += y[k];
  for (float v : part) sum += v;
  const float scale = static_cast<float>(1.0 / sum);
  for (k = 0; k < n; ++k) y[k] *= scale;
}

class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(int64_t rows, int64_t n, int threads) : rows_(rows), n_(n), threads_(threads) {}
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    parallel_for(rows_, rows_ * n_, threads_, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) softmax_row(x + r * n_, y + r * n_, n_);
    });
  }

 private:
  int64_t rows_, n_;
  int threads_;
};

// Rows and row length, or nullopt when the layer's rows are not contiguous (or not fp32).
std::optional<std::pair<int64_t, int64_t>> rows_of(const LayerDesc& d) {
  if (d.inputs.size() != 1 || d.inputs[0].dtype != DType::Float || d.outputs[0].dtype != DType::Float)
    return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const int64_t r = static_cast<int64_t>(x.size());
  int64_t axis = d.node->attrs.get_int("axis", d.opset < 13 ? 1 : -1);
  if (axis < 0) axis += r;
  if (r == 0 || axis < 0 || axis >= r || (d.opset >= 13 && axis != r - 1)) return std::nullopt;
  const int64_t n = ops::numel({x.begin() + axis, x.end()});
  if (n <= 0) return std::nullopt;
  return std::make_pair(ops::numel(x) / n, n);
}

KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.softmax",
                                   .device = "cpu",
                                   .op = "Softmax",
                                   .domain = "",
                                   .priority = 50,
                                   .supports = [](const LayerDesc& d) { return rows_of(d).has_value(); },
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     const auto [rows, n] = *rows_of(d);
                                     return std::make_unique<SoftmaxKernel>(rows, n, d.threads);
                                   }});

}  // namespace
}  // namespace kiln::backend
