// cpu.max_pool / cpu.average_pool: MaxPool and AveragePool over fp32 NCHW (2-D windows; 1-D runs as 2-D
// with height 1), planes split over threads; cpu.global_average_pool: the mean of each plane. The reference
// walks every window element through generic index arithmetic in the compute type; here each output row clips
// its window once and the inner loop is a plain float max (SqueezeNet spent 70% of its time in the reference
// MaxPool). Padding never wins (as in the reference: a window with no input element gives the lowest float).
// The optional Indices output stays with the reference. A NaN input is skipped by std::max (the reference
// keeps one that comes first in its window). AveragePool sums in float and divides by the taps inside the
// input, or (count_include_pad) inside the padded extent [-pad, in + pad_end), as the reference counts them
// (Inception v2 spent 35% of its time in the reference AveragePool).
#include <algorithm>
#include <limits>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"

namespace kiln::backend {
namespace {

struct PoolShape {
  int64_t planes = 0, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  int64_t k_h = 1, k_w = 1, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1, pad_h = 0, pad_w = 0;
  int64_t pad_end_h = 0, pad_end_w = 0;
  bool average = false, include_pad = false;
};

// The layer as this kernel runs it, or nullopt (rank other than 3/4, another dtype, Indices wanted, SAME
// padding).
std::optional<PoolShape> pool_shape(const LayerDesc& d, bool average) {
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
  p.pad_end_h = auto_pad == "VALID" || !two_d ? 0 : pads[2];
  p.pad_end_w = auto_pad == "VALID" ? 0 : pads[2 * n - 1];
  p.average = average;
  p.include_pad = average && a.get_int("count_include_pad", 0) != 0;
  return p;
}

class PoolKernel final : public Kernel {
 public:
  PoolKernel(const PoolShape& p, int threads) : p_(p), threads_(threads) {}

  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const PoolShape& p = p_;
    const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
    parallel_for(p.planes, p.planes * out_plane * p.k_h * p.k_w, threads_, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane)
        p.average ? average_plane(x + plane * in_plane, y + plane * out_plane)
                  : pool_plane(x + plane * in_plane, y + plane * out_plane);
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

  void average_plane(const float* x, float* y) const {
    const PoolShape& p = p_;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const int64_t h0 = oh * p.stride_h - p.pad_h;
      int64_t kh0, kh1, ph0, ph1;
      taps(h0, p.k_h, p.dil_h, p.in_h, kh0, kh1);
      taps(h0 + p.pad_h, p.k_h, p.dil_h, p.in_h + p.pad_h + p.pad_end_h, ph0, ph1);
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const int64_t w0 = ow * p.stride_w - p.pad_w;
        int64_t kw0, kw1, pw0, pw1;
        taps(w0, p.k_w, p.dil_w, p.in_w, kw0, kw1);
        taps(w0 + p.pad_w, p.k_w, p.dil_w, p.in_w + p.pad_w + p.pad_end_w, pw0, pw1);
        float sum = 0.f;
        for (int64_t kh = kh0; kh < kh1; ++kh) {
          const float* row = x + (h0 + kh * p.dil_h) * p.in_w + w0;
          for (int64_t kw = kw0; kw < kw1; ++kw) sum += row[kw * p.dil_w];
        }
        const int64_t count = p.include_pad ? (ph1 - ph0) * (pw1 - pw0) : (kh1 - kh0) * (kw1 - kw0);
        // A window with no input element (possible only with large pads) divides 0 by 0, as the reference.
        y[oh * p.out_w + ow] = sum / static_cast<float>(count);
      }
    }
  }

  PoolShape p_;
  int threads_;
};

// The mean of each [N, C] plane over all its spatial positions, accumulated in double as the reference.
class GlobalAverageKernel final : public Kernel {
 public:
  explicit GlobalAverageKernel(int threads) : threads_(threads) {}
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const int64_t planes = out[0].numel(), inner = planes ? in[0].numel() / planes : 0;
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    parallel_for(planes, planes * inner, threads_, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) y[p] = plane_mean(x + p * inner, inner);
    });
  }

 private:
  KILN_SIMD_CLONES static float plane_mean(const float* x, int64_t n) {
    // Eight float partial sums vectorize; each is short enough (n/8 terms) that float is plenty, and the
    // total is formed in double.
    float part[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) part[j] += x[i + j];
    double sum = 0;
    for (; i < n; ++i) sum += x[i];
    for (float v : part) sum += v;
    return static_cast<float>(sum / static_cast<double>(n));
  }
  int threads_;
};

KernelFactory pool_factory(const char* name, const char* op, bool average) {
  return {.name = name,
          .device = "cpu",
          .op = op,
          .domain = "",
          .priority = 50,
          .supports = [average](const LayerDesc& d) { return pool_shape(d, average).has_value(); },
          .create = [average](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            return std::make_unique<PoolKernel>(*pool_shape(d, average), d.threads);
          }};
}

KILN_REGISTER_KERNEL(pool_factory("cpu.max_pool", "MaxPool", false));
KILN_REGISTER_KERNEL(pool_factory("cpu.average_pool", "AveragePool", true));
KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.global_average_pool",
                                   .device = "cpu",
                                   .op = "GlobalAveragePool",
                                   .domain = "",
                                   .priority = 50,
                                   .supports =
                                       [](const LayerDesc& d) {
                                         return d.inputs.size() == 1 && d.inputs[0].dtype == DType::Float &&
                                                d.inputs[0].dims.size() >= 3 &&
                                                d.outputs[0].dtype == DType::Float &&
                                                d.inputs[0].dims[0] * d.inputs[0].dims[1] > 0;
                                       },
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<GlobalAverageKernel>(d.threads);
                                   }});

}  // namespace
}  // namespace kiln::backend
