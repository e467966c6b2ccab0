// cpu.layernorm: fp32 LayerNormalization over X's trailing axes (axis .. rank-1), scale and bias broadcast to
// the normalized dims, for ONNX's op and kiln.LayerNormalization (the same contract). Each row is two passes
// (mean, then squared deviations about it) summed in 16 float lanes folded in double, then one pass writing
// y = (x - mean) · invstd · scale + bias; rows are split over threads. Only output Y (the optional Mean /
// InvStdDev outputs stay with the reference).
#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"
#include "ops/internal_ops.h"

namespace kiln::backend {
namespace {

constexpr int kLanes = 16;

// Σ f(x[i]) over a row, in kLanes independent float sums (which vectorize) folded in double.
template <typename F>
inline double lane_sum(const float* x, int64_t n, F f) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += f(x[i + l]);
  double s = 0;
  for (; i < n; ++i) s += f(x[i]);
  for (float a : acc) s += a;
  return s;
}

KILN_SIMD_CLONES void norm_rows(const float* x, float* y, const float* scale, const float* bias,
                                int64_t inner, int64_t begin, int64_t end, double eps) {
  for (int64_t r = begin; r < end; ++r) {
    const float* xr = x + r * inner;
    float* yr = y + r * inner;
    const float mean = static_cast<float>(lane_sum(xr, inner, [](float v) { return v; }) / inner);
    const double var = lane_sum(xr, inner, [mean](float v) { return (v - mean) * (v - mean); }) / inner;
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    if (bias)
      for (int64_t i = 0; i < inner; ++i) yr[i] = (xr[i] - mean) * inv * scale[i] + bias[i];
    else
      for (int64_t i = 0; i < inner; ++i) yr[i] = (xr[i] - mean) * inv * scale[i];
  }
}

class LayerNormKernel final : public Kernel {
 public:
  LayerNormKernel(const LayerDesc& d, int64_t axis) : threads_(d.threads) {
    const auto& x = d.inputs[0].dims;
    for (size_t i = 0; i < x.size(); ++i) (static_cast<int64_t>(i) < axis ? outer_ : inner_) *= x[i];
    eps_ = d.node->attrs.get_float("epsilon", 1e-5f);
  }
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* bias = in.size() > 2 && in[2].data ? in[2].as<float>() : nullptr;
    const float *x = in[0].as<float>(), *scale = in[1].as<float>();
    float* y = out[0].as<float>();
    parallel_for(outer_, outer_ * inner_, threads_,
                 [&](int64_t begin, int64_t end) { norm_rows(x, y, scale, bias, inner_, begin, end, eps_); });
  }

 private:
  int threads_;
  int64_t outer_ = 1, inner_ = 1;
  double eps_;
};

// The normalized axis when the layer fits: fp32 X of known shape, scale (and bias) exactly the normalized
// dims (rank-trimmed leading 1s allowed, no broadcasting inside), only output Y. Otherwise -1.
int64_t axis_of(const LayerDesc& d) {
  if (d.inputs.size() < 2 || d.outputs.empty() || d.inputs[0].dtype != DType::Float) return -1;
  for (size_t k = 1; k < d.outputs.size(); ++k)
    if (d.outputs[k].present) return -1;
  const auto& xd = d.inputs[0].dims;
  const int64_t r = static_cast<int64_t>(xd.size());
  int64_t axis = d.node->attrs.get_int("axis", -1);
  if (axis < -r || axis >= r) return -1;
  if (axis < 0) axis += r;
  for (int64_t v : xd)
    if (v < 0) return -1;
  int64_t inner = 1;
  for (int64_t i = axis; i < r; ++i) inner *= xd[i];
  for (size_t k = 1; k < d.inputs.size(); ++k) {
    const auto& o = d.inputs[k];
    if (k == 2 && !o.present) continue;
    int64_t n = 1;
    for (int64_t v : o.dims) n *= v;
    if (!o.present || o.dtype != DType::Float || n != inner || static_cast<int64_t>(o.dims.size()) > r - axis)
      return -1;
    // Same element count and rank <= the normalized rank: equal to the trailing dims up to leading 1s.
    for (size_t i = 0; i < o.dims.size(); ++i)
      if (o.dims[o.dims.size() - 1 - i] != xd[xd.size() - 1 - i]) return -1;
  }
  return axis;
}

KernelFactory factory(const char* domain, const char* name) {
  return {.name = name,
          .device = "cpu",
          .op = "LayerNormalization",
          .domain = domain,
          .priority = 50,
          .supports = [](const LayerDesc& d) { return axis_of(d) >= 0; },
          .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            return std::make_unique<LayerNormKernel>(d, axis_of(d));
          }};
}

KILN_REGISTER_KERNEL(factory("", "cpu.layernorm"));
KILN_REGISTER_KERNEL(factory(internal_ops::kDomain, "cpu.layernorm_kiln"));

}  // namespace
}  // namespace kiln::backend
