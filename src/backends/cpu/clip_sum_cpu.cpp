// cpu.clip and cpu.sum: fp32 Clip (bounds from attributes before opset 11, from scalar inputs after, read
// at run time so they may be variables) and variadic Sum of same-shape inputs. Both are memory-bound loops
// the reference runs element by element through its generic dtype dispatch (Clip took 23-31% of the PP-OCR
// models, Sum 24% of ResNet-50). Same formulas and the same float rounding as the reference (ops/
// elementwise_unary.cpp, elementwise_binary.cpp: Sum adds left to right), so both are bit-exact.
#include <limits>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"
#include "ops/util.h"

namespace kiln::backend {
namespace {

bool float_operands(const LayerDesc& d) {
  for (const auto& o : d.inputs)
    if (o.present && o.dtype != DType::Float) return false;
  return d.outputs.size() == 1 && d.outputs[0].dtype == DType::Float;
}

KILN_SIMD_CLONES void clip_loop(const float* x, float* y, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}

class ClipKernel final : public Kernel {
 public:
  ClipKernel(const LayerDesc& d) : threads_(d.threads) {
    if (d.opset < 11) {
      lo_ = d.node->attrs.get_float("min", lo_);
      hi_ = d.node->attrs.get_float("max", hi_);
    }
  }
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    float lo = lo_, hi = hi_;
    if (in.size() > 1 && in[1].data) lo = *in[1].as<float>();
    if (in.size() > 2 && in[2].data) hi = *in[2].as<float>();
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const int64_t n = out[0].numel();
    parallel_for(n, n, threads_, [&](int64_t b, int64_t e) { clip_loop(x + b, y + b, e - b, lo, hi); });
  }

 private:
  int threads_;
  float lo_ = std::numeric_limits<float>::lowest(), hi_ = std::numeric_limits<float>::max();
};

bool clip_supported(const LayerDesc& d) {
  if (!float_operands(d) || d.inputs.empty() || d.inputs[0].dims != d.outputs[0].dims) return false;
  for (size_t k = 1; k < d.inputs.size(); ++k)
    if (d.inputs[k].present && ops::numel(d.inputs[k].dims) != 1) return false;
  return true;
}

KILN_SIMD_CLONES void add_into(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

class SumKernel final : public Kernel {
 public:
  explicit SumKernel(int threads) : threads_(threads) {}
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    float* y = out[0].as<float>();
    const int64_t n = out[0].numel();
    parallel_for(n, n * static_cast<int64_t>(in.size()), threads_, [&](int64_t b, int64_t e) {
      if (in.size() == 1) {
        std::copy(in[0].as<float>() + b, in[0].as<float>() + e, y + b);
        return;
      }
      // Left to right, as the reference: y = (x0 + x1) + x2 + ...; y may be written before x2 is read
      // only because every step reads and writes the same index.
      add_into(in[0].as<float>() + b, in[1].as<float>() + b, y + b, e - b);
      for (size_t k = 2; k < in.size(); ++k) add_into(y + b, in[k].as<float>() + b, y + b, e - b);
    });
  }

 private:
  int threads_;
};

bool sum_supported(const LayerDesc& d) {
  if (!float_operands(d) || d.inputs.empty()) return false;
  for (const auto& o : d.inputs)
    if (!o.present || o.dims != d.outputs[0].dims) return false;
  return true;
}

KILN_REGISTER_KERNEL(KernelFactory{
    .name = "cpu.clip",
    .device = "cpu",
    .op = "Clip",
    .domain = "",
    .priority = 50,
    .supports = clip_supported,
    .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> { return std::make_unique<ClipKernel>(d); }});
KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.sum",
                                   .device = "cpu",
                                   .op = "Sum",
                                   .domain = "",
                                   .priority = 50,
                                   .supports = sum_supported,
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<SumKernel>(d.threads);
                                   }});

}  // namespace
}  // namespace kiln::backend
