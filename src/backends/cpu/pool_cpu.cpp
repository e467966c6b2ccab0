// cpu.max_pool: MaxPool over fp32 NCHW (2-D windows; 1-D runs as 2-D with height 1), planes split over
// threads. The reference walks every window element through generic index arithmetic in the compute type;
// here each output row clips its window once and the inner loop is a plain float max (SqueezeNet spent 70% of
// its time in the reference MaxPool). Padding never wins (as in the reference: a window with no input element
// gives the lowest float). The optional Indices output stays with the reference. A NaN input is skipped by
// std::max (the reference keeps one that comes first in its window).
#include <algorithm>
#include <limits>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"

namespace kiln::backend {
namespace {

struct PoolShape {
  int64_t planes = 0, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  int64_t k_h = 1, k_w = 1, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1, pad_h = 0, pad_w = 0;
};

// The layer as this kernel runs it, or nullopt (rank other than 3/4, another dtype, Indices wanted, SAME
// padding).
std::optional<PoolShape> pool_shape(const LayerDesc& d) {
  if (d.inputs.size() != 1 || d.inputs[0].dtype != DType::Float) return std::nullopt;
  if (d.outputs.size() > 1 && d.outputs[1].present) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  if ((x.size() != 3 && x.size() != 4) || y.size() != x.size()) return std::nullopt;
  const Attributes& a = d.node->attrs;
  const std::string auto_pad = a.get_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return std::nullopt;
  if (a.get_int("storage_order", 0) != 0) return std::nullopt;
  const size_t n = x.size() - 2;
  const auto k = a.get_ints("kernel_shape"), s = a.get_ints("strides", std::vector<int64_t>(n, 1)),
             dil = a.get_ints("dilations", std::vector<int64_t>(n, 1)),
             pads = a.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  if (k.size() != n || s.size() != n || dil.size() != n || pads.size() != 2 * n) return std::nullopt;
  PoolShape p;
  p.planes = x[0] * x[1];
  const bool two_d = n == 2;
  p.in_h = two_d ? x[2] : 1, p.in_w = x.back(), p.out_h = two_d ? y[2] : 1, p.out_w = y.back();
  p.k_h = two_d ? k[0] : 1, p.k_w = k.back(), p.stride_h = two_d ? s[0] : 1, p.stride_w = s.back();
  p.dil_h = two_d ? dil[0] : 1, p.dil_w = dil.back();
  p.pad_h = auto_pad == "VALID" || !two_d ? 0 : pads[0];
  p.pad_w = auto_pad == "VALID" ? 0 : pads[n - 1];
  return p;
}

class MaxPoolKernel final : public Kernel {
 public:
  MaxPoolKernel(const PoolShape& p, int threads) : p_(p), threads_(threads) {}

  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const PoolShape& p = p_;
    const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
    parallel_for(p.planes, p.planes * out_plane * p.k_h * p.k_w, threads_, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane)
        pool_plane(x + plane * in_plane, y + plane * out_plane);
    });
  }

 private:
  // The window taps [first, last) along one axis that land inside [0, size).
  static void taps(int64_t start, int64_t k, int64_t dil, int64_t size, int64_t& first, int64_t& last) {
    first = start >= 0 ? 0 : (-start + dil - 1) / dil;
    last = start > size - 1 ? 0 : std::min(k, (size - 1 - start) / dil + 1);
    first = std::min(first, last);
  }

  void pool_plane(const float* x, float* y) const {
    const PoolShape& p = p_;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const int64_t h0 = oh * p.stride_h - p.pad_h;
      int64_t kh0, kh1;
      taps(h0, p.k_h, p.dil_h, p.in_h, kh0, kh1);
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const int64_t w0 = ow * p.stride_w - p.pad_w;
        int64_t kw0, kw1;
        taps(w0, p.k_w, p.dil_w, p.in_w, kw0, kw1);
        float best = std::numeric_limits<float>::lowest();
        for (int64_t kh = kh0; kh < kh1; ++kh) {
          const float* row = x + (h0 + kh * p.dil_h) * p.in_w + w0;
          for (int64_t kw = kw0; kw < kw1; ++kw) best = std::max(best, row[kw * p.dil_w]);
        }
        y[oh * p.out_w + ow] = best;
      }
    }
  }

  PoolShape p_;
  int threads_;
};

KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.max_pool",
                                   .device = "cpu",
                                   .op = "MaxPool",
                                   .priority = 50,
                                   .supports = [](const LayerDesc& d) { return pool_shape(d).has_value(); },
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<MaxPoolKernel>(*pool_shape(d), d.threads);
                                   }});

}  // namespace
}  // namespace kiln::backend
