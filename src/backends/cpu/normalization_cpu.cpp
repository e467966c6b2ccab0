// CPU normalization kernels, fp32, constant per-channel scale/bias:
//   cpu.instancenorm  InstanceNormalization (statistics per (n, c) plane)
//   cpu.groupnorm     kiln.GroupNorm (statistics per (n, group) — C/G channels × spatial — plus an optional
//                     activation (ops/activation.h) applied in the same pass)
// Both are "normalize contiguous planes, then apply a per-channel affine": the plane is C/G channels long
// for GroupNorm and one channel for InstanceNorm.
//
// Per plane: one pass accumulating the sum and sum of squares of (x - K) in double, K = the plane's first
// value (shifted data: no catastrophic cancellation when |mean| >> std), then one pass
// y = act((x - mean) * (scale[c] * invstd) + bias[c]). Both loops are branch-free and compiled for
// AVX-512/AVX2.
//
// Large tensors (> 1M elements) are split over LayerDesc.threads as a flat range over all planes, so the
// few-large-planes case (PackNet: 16 groups) splits each plane's reduction too: every thread keeps partial
// sums per plane it touches, combined afterwards in a fixed order (the same result on every run).
#include "backends/cpu/normalization_cpu.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"

namespace kiln::backend {
namespace {

// Calls f(part, begin, end) for `t` contiguous parts of [0, n).
template <class F>
void run_parts(int64_t n, int t, const F& f) {
  if (t <= 1) return f(0, int64_t{0}, n);
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(t - 1));
  for (int k = 1; k < t; ++k) pool.emplace_back([&, k] { f(k, n * k / t, n * (k + 1) / t); });
  f(0, int64_t{0}, n / t);
  for (auto& th : pool) th.join();
}

struct Sums {
  double s = 0, q = 0;  // sum of (x - K), sum of (x - K)^2
};

// Independent lanes (no reassociation needed): the compiler vectorizes the lane loop.
constexpr int kLanes = 16;

KILN_SIMD_CLONES Sums shifted_sums(const float* x, int64_t n, double k) {
  double s[kLanes] = {}, q[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double d = static_cast<double>(x[i + j]) - k;
      s[j] += d;
      q[j] += d * d;
    }
  Sums r;
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - k;
    r.s += d;
    r.q += d * d;
  }
  for (int j = 0; j < kLanes; ++j) {
    r.s += s[j];
    r.q += q[j];
  }
  return r;
}

// y = act((x - mean) * a + b); one specialized loop per activation, so each vectorizes.
KILN_SIMD_CLONES void normalize(const float* x, float* y, int64_t n, float mean, float a, float b,
                                ops::ActivationParams act) {
  const float alpha = act.alpha, beta = act.beta;
  ops::with_activation(act.act, [&](auto tag) KILN_INLINE_LAMBDA {
    for (int64_t i = 0; i < n; ++i)
      y[i] = ops::activate<decltype(tag)::value, CpuMath>((x[i] - mean) * a + b, alpha, beta);
  });
}

}  // namespace

void plane_norm(const float* x, float* y, const std::vector<int64_t>& dims, int64_t channels_per_plane,
                const float* scale, const float* bias, double eps, const ops::ActivationParams& act,
                int threads) {
  const int64_t c = dims[1];
  int64_t spatial = 1;
  for (size_t k = 2; k < dims.size(); ++k) spatial *= dims[k];
  const int64_t inner = channels_per_plane * spatial;  // elements per plane
  const int64_t planes = dims[0] * (c / channels_per_plane), total = planes * inner;
  if (total == 0) return;
  const int t =
      total > kParallelMin ? static_cast<int>(std::clamp<int64_t>(threads, 1, total / 4096 + 1)) : 1;

  // Phase 1: partial shifted sums, per part and plane.
  std::vector<Sums> part(static_cast<size_t>(t) * static_cast<size_t>(planes));
  run_parts(total, t, [&](int k, int64_t p, int64_t end) {
    Sums* acc = part.data() + static_cast<size_t>(k) * static_cast<size_t>(planes);
    while (p < end) {
      const int64_t plane = p / inner, len = std::min(end, (plane + 1) * inner) - p;
      const Sums r = shifted_sums(x + p, len, static_cast<double>(x[plane * inner]));
      acc[plane].s += r.s;
      acc[plane].q += r.q;
      p += len;
    }
  });

  // Combine: per plane mean and invstd, in double then rounded once.
  std::vector<float> mean(static_cast<size_t>(planes)), inv_std(static_cast<size_t>(planes));
  for (int64_t pl = 0; pl < planes; ++pl) {
    double s = 0, q = 0;
    for (int k = 0; k < t; ++k) {
      const Sums& r = part[static_cast<size_t>(k) * static_cast<size_t>(planes) + static_cast<size_t>(pl)];
      s += r.s;
      q += r.q;
    }
    const double n = static_cast<double>(inner), ds = s / n;
    const double var = std::max(q / n - ds * ds, 0.0);
    mean[static_cast<size_t>(pl)] = static_cast<float>(static_cast<double>(x[pl * inner]) + ds);
    inv_std[static_cast<size_t>(pl)] = static_cast<float>(1.0 / std::sqrt(var + eps));
  }

  // Phase 2: normalize, one channel's run (spatial elements) at a time.
  run_parts(total, t, [&](int, int64_t p, int64_t end) {
    while (p < end) {
      const int64_t run = p / spatial, len = std::min(end, (run + 1) * spatial) - p;
      const size_t pl = static_cast<size_t>(run / channels_per_plane), ch = static_cast<size_t>(run % c);
      const float a = scale[ch] * inv_std[pl], b = bias[ch];
      normalize(x + p, y + p, len, mean[pl], a, b, act);
      p += len;
    }
  });
}

namespace {

// Normalizes planes of `channels_per_plane` channels; scale/bias are per channel.
class PlaneNormKernel final : public Kernel {
 public:
  PlaneNormKernel(std::vector<float> scale, std::vector<float> bias, float eps, int64_t channels_per_plane,
                  ops::ActivationParams act, int threads)
      : scale_(std::move(scale)),
        bias_(std::move(bias)),
        eps_(eps),
        channels_per_plane_(channels_per_plane),
        act_(act),
        threads_(threads) {}

  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    plane_norm(in[0].as<float>(), out[0].as<float>(), in[0].dims, channels_per_plane_, scale_.data(),
               bias_.data(), eps_, act_, threads_);
  }

 private:
  std::vector<float> scale_, bias_;
  double eps_;
  int64_t channels_per_plane_;
  ops::ActivationParams act_;
  int threads_;
};

bool supported(const LayerDesc& d) {
  if (d.inputs.size() != 3 || d.outputs.size() != 1) return false;
  for (const auto& o : d.inputs)
    if (!o.present || o.dtype != DType::Float) return false;
  const auto& out = d.outputs[0];
  if (!out.present || out.dtype != DType::Float) return false;
  const auto& xd = d.inputs[0].dims;
  if (xd.size() < 3 || out.dims != xd) return false;
  for (int64_t v : xd)
    if (v < 0) return false;
  for (size_t k = 1; k < 3; ++k) {
    const auto& o = d.inputs[k];
    if (!o.constant || o.dims != std::vector<int64_t>{xd[1]}) return false;
    if (o.constant->dtype() != DType::Float || o.constant->numel() != xd[1]) return false;
  }
  return true;
}

std::vector<float> floats_of(const TensorData& t) {
  return {t.data<float>(), t.data<float>() + t.numel()};
}

KernelFactory instancenorm_factory() {
  return {.name = "cpu.instancenorm",
          .device = "cpu",
          .op = "InstanceNormalization",
          .domain = "",
          .priority = 50,
          .supports = supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            return std::make_unique<PlaneNormKernel>(
                floats_of(*d.inputs[1].constant), floats_of(*d.inputs[2].constant),
                d.node->attrs.get_float("epsilon", 1e-5f), 1, ops::ActivationParams{}, d.threads);
          }};
}

KernelFactory groupnorm_factory() {
  return {.name = "cpu.groupnorm",
          .device = "cpu",
          .op = internal_ops::group_norm::kOp,
          .domain = internal_ops::kDomain,
          .priority = 50,
          .supports =
              [](const LayerDesc& d) {
                const int64_t groups = d.node->attrs.get_int("num_groups", 0);
                return supported(d) && groups > 0 && d.inputs[0].dims[1] % groups == 0 &&
                       ops::fused_activation(d.node->attrs, ops::kGroupNormActivation).has_value();
              },
          .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            return std::make_unique<PlaneNormKernel>(
                floats_of(*d.inputs[1].constant), floats_of(*d.inputs[2].constant),
                d.node->attrs.get_float("epsilon", 1e-5f),
                d.inputs[0].dims[1] / d.node->attrs.get_int("num_groups", 1),
                *ops::fused_activation(d.node->attrs, ops::kGroupNormActivation), d.threads);
          }};
}

KILN_REGISTER_KERNEL(instancenorm_factory());
KILN_REGISTER_KERNEL(groupnorm_factory());

}  // namespace
}  // namespace kiln::backend
