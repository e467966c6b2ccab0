// cpu.resize_linear: Resize (opset 11+) mode "linear" of fp32 NCHW data over H and W — the bilinear
// upsampling of segmentation heads (DeepLabV3 spent 60% of its time in the reference kernel) — for the
// coordinate modes exporters write: half_pixel, pytorch_half_pixel, align_corners, asymmetric.
//
// Per axis, each output coordinate has two taps (indices clamped into the input, weights 1 − frac and frac),
// computed once at build as the reference computes them (ops::resize_source_coord). Each output row is
// wy0·h(y0) + wy1·h(y1), h(i) being input row i interpolated along W; h rows are kept while consecutive
// output rows read the same input rows (upsampling), so most rows cost one vectorized blend.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"
#include "ops/util.h"

namespace kiln::backend {
namespace {

struct AxisTaps {
  std::vector<int64_t> i0, i1;
  std::vector<float> w0, w1;
};

AxisTaps axis_taps(const std::string& coord, int64_t in, int64_t out, double scale) {
  AxisTaps t;
  for (int64_t o = 0; o < out; ++o) {
    const double c = *ops::resize_source_coord(coord, static_cast<double>(o), in, out, scale);
    const double f = std::floor(c), frac = c - f;
    const int64_t base = static_cast<int64_t>(f);
    t.i0.push_back(std::clamp<int64_t>(base, 0, in - 1));
    t.i1.push_back(std::clamp<int64_t>(base + 1, 0, in - 1));
    t.w0.push_back(static_cast<float>(1 - frac));
    t.w1.push_back(static_cast<float>(frac));
  }
  return t;
}

// h[o] = w0[o]·row[i0[o]] + w1[o]·row[i1[o]]
KILN_SIMD_CLONES void interpolate_row(const float* __restrict row, const int64_t* i0, const int64_t* i1,
                                      const float* w0, const float* w1, float* __restrict h, int64_t n) {
  for (int64_t o = 0; o < n; ++o) h[o] = w0[o] * row[i0[o]] + w1[o] * row[i1[o]];
}
KILN_SIMD_CLONES void blend_rows(const float* __restrict a, const float* __restrict b, float wa, float wb,
                                 float* __restrict y, int64_t n) {
  for (int64_t o = 0; o < n; ++o) y[o] = wa * a[o] + wb * b[o];
}

class ResizeLinearKernel final : public Kernel {
 public:
  ResizeLinearKernel(int64_t planes, int64_t in_h, int64_t in_w, AxisTaps ty, AxisTaps tx, int threads)
      : planes_(planes),
        in_h_(in_h),
        in_w_(in_w),
        ty_(std::move(ty)),
        tx_(std::move(tx)),
        threads_(threads) {}
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const int64_t oh = static_cast<int64_t>(ty_.i0.size()), ow = static_cast<int64_t>(tx_.i0.size());
    parallel_for(planes_, planes_ * oh * ow, threads_, [&](int64_t b, int64_t e) {
      std::vector<float> buf(static_cast<size_t>(2 * ow));
      for (int64_t p = b; p < e; ++p) {
        const float* src = x + p * in_h_ * in_w_;
        float* h[2] = {buf.data(), buf.data() + ow};
        int64_t held[2] = {-1, -1};  // the input row each h buffer holds
        for (int64_t o = 0; o < oh; ++o) {
          const int64_t r0 = ty_.i0[static_cast<size_t>(o)], r1 = ty_.i1[static_cast<size_t>(o)];
          if (held[0] != r0) {  // moving down: the old second row is often the new first
            if (held[1] == r0) {
              std::swap(h[0], h[1]);
              std::swap(held[0], held[1]);
            } else {
              interpolate_row(src + r0 * in_w_, tx_.i0.data(), tx_.i1.data(), tx_.w0.data(), tx_.w1.data(),
                              h[0], ow);
              held[0] = r0;
            }
          }
          if (held[1] != r1) {
            interpolate_row(src + r1 * in_w_, tx_.i0.data(), tx_.i1.data(), tx_.w0.data(), tx_.w1.data(),
                            h[1], ow);
            held[1] = r1;
          }
          blend_rows(h[0], h[1], ty_.w0[static_cast<size_t>(o)], ty_.w1[static_cast<size_t>(o)],
                     y + (p * oh + o) * ow, ow);
        }
      }
    });
  }

 private:
  int64_t planes_, in_h_, in_w_;
  AxisTaps ty_, tx_;
  int threads_;
};

// The H and W scales as the reference derives them (given scales as float; else sizes / input dims), or
// nothing if this kernel can't run the layer.
std::optional<std::pair<double, double>> linear_plan(const LayerDesc& d) {
  if (d.node->op != "Resize" || d.opset < 11 || d.inputs.empty() || d.outputs.size() != 1)
    return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  if (!d.inputs[0].present || d.inputs[0].dtype != DType::Float || !d.outputs[0].present ||
      d.outputs[0].dtype != DType::Float || x.size() != 4 || y.size() != 4 || x[0] != y[0] || x[1] != y[1])
    return std::nullopt;
  for (size_t k = 0; k < 4; ++k)
    if (x[k] <= 0 || y[k] <= 0) return std::nullopt;
  const auto& a = d.node->attrs;
  const std::string coord = a.get_string("coordinate_transformation_mode", "half_pixel");
  if (a.get_string("mode", "nearest") != "linear" || a.get_int("antialias", 0) != 0 || a.has("axes") ||
      (coord != "half_pixel" && coord != "pytorch_half_pixel" && coord != "align_corners" &&
       coord != "asymmetric"))
    return std::nullopt;
  auto given = [&](size_t k) -> const TensorData* {  // present and non-empty; constant or unusable
    return k < d.inputs.size() && d.inputs[k].present && d.inputs[k].constant &&
                   d.inputs[k].constant->numel() > 0
               ? d.inputs[k].constant
               : nullptr;
  };
  for (size_t k = 1; k < d.inputs.size() && k < 4; ++k)
    if (d.inputs[k].present && !d.inputs[k].constant) return std::nullopt;
  if (const TensorData* s = given(2)) {
    if (s->numel() != 4) return std::nullopt;
    if (static_cast<float>(s->as_double(0)) != 1.f || static_cast<float>(s->as_double(1)) != 1.f)
      return std::nullopt;
    return std::make_pair(static_cast<double>(static_cast<float>(s->as_double(2))),
                          static_cast<double>(static_cast<float>(s->as_double(3))));
  }
  if (!given(3) || a.get_string("keep_aspect_ratio_policy", "stretch") != "stretch") return std::nullopt;
  return std::make_pair(static_cast<double>(y[2]) / static_cast<double>(x[2]),
                        static_cast<double>(y[3]) / static_cast<double>(x[3]));
}

KILN_REGISTER_KERNEL(KernelFactory{
    .name = "cpu.resize_linear",
    .device = "cpu",
    .op = "Resize",
    .domain = "",
    .priority = 50,
    .supports = [](const LayerDesc& d) { return linear_plan(d).has_value(); },
    .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
      const auto [sh, sw] = *linear_plan(d);
      const auto& x = d.inputs[0].dims;
      const auto& y = d.outputs[0].dims;
      const std::string coord = d.node->attrs.get_string("coordinate_transformation_mode", "half_pixel");
      return std::make_unique<ResizeLinearKernel>(x[0] * x[1], x[2], x[3], axis_taps(coord, x[2], y[2], sh),
                                                  axis_taps(coord, x[3], y[3], sw), d.threads);
    }});

}  // namespace
}  // namespace kiln::backend
