// cpu.instancenorm: fp32 InstanceNormalization with constant scale and B ([C]), input rank >= 3.
//
// Per (n, c) plane: one pass accumulating the sum and sum of squares of (x - K) in double, K = the plane's
// first value (shifted data: no catastrophic cancellation when |mean| >> std), then one pass
// y = (x - mean) * (scale[c] * invstd) + B[c]. Both loops are branch-free and compiled for AVX-512/AVX2.
//
// Large tensors (> 1M elements) are split over LayerDesc.threads as a flat range over all planes, so the
// few-large-planes case (PackNet's GroupNorm export: [1, 16, H*W*C/16]) splits each plane's reduction
// too: every thread keeps partial sums per plane it touches, combined afterwards (in a fixed order, so the
// result is the same on every run).
#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "backends/cpu/cpu_util.h"
#include "backends/kernel.h"


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

KILN_SIMD_CLONES void normalize(const float* x, float* y, int64_t n, float mean, float a, float b) {
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * a + b;
}

class InstanceNormKernel final : public Kernel {
 public:
  InstanceNormKernel(std::vector<float> scale, std::vector<float> bias, float eps, int threads)
      : scale_(std::move(scale)), bias_(std::move(bias)), eps_(eps), threads_(threads) {}

  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const auto& dims = in[0].dims;
    const int64_t c = dims[1];
    int64_t inner = 1;
    for (size_t k = 2; k < dims.size(); ++k) inner *= dims[k];
    const int64_t planes = dims[0] * c, total = planes * inner;
    if (total == 0) return;
    const int t = total > kParallelMin ? static_cast<int>(std::clamp<int64_t>(threads_, 1, total / 4096 + 1)) : 1;

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

    // Combine: per plane mean, a = scale * invstd, in double then rounded once.
    std::vector<float> mean(static_cast<size_t>(planes)), mul(static_cast<size_t>(planes)),
        add(static_cast<size_t>(planes));
    for (int64_t pl = 0; pl < planes; ++pl) {
      double s = 0, q = 0;
      for (int k = 0; k < t; ++k) {
        const Sums& r = part[static_cast<size_t>(k) * static_cast<size_t>(planes) + static_cast<size_t>(pl)];
        s += r.s;
        q += r.q;
      }
      const double n = static_cast<double>(inner), ds = s / n;
      const double var = std::max(q / n - ds * ds, 0.0);
      const int64_t ch = pl % c;
      mean[static_cast<size_t>(pl)] = static_cast<float>(static_cast<double>(x[pl * inner]) + ds);
      mul[static_cast<size_t>(pl)] = static_cast<float>(scale_[static_cast<size_t>(ch)] / std::sqrt(var + eps_));
      add[static_cast<size_t>(pl)] = bias_[static_cast<size_t>(ch)];
    }

    // Phase 2: normalize.
    run_parts(total, t, [&](int, int64_t p, int64_t end) {
      while (p < end) {
        const int64_t plane = p / inner, len = std::min(end, (plane + 1) * inner) - p;
        const size_t pl = static_cast<size_t>(plane);
        normalize(x + p, y + p, len, mean[pl], mul[pl], add[pl]);
        p += len;
      }
    });
  }

 private:
  std::vector<float> scale_, bias_;
  double eps_;
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

KernelFactory instancenorm_factory() {
  return {.name = "cpu.instancenorm", .device = "cpu", .op = "InstanceNormalization", .domain = "",
          .priority = 50, .supports = supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            const TensorData& s = *d.inputs[1].constant;
            const TensorData& b = *d.inputs[2].constant;
            std::vector<float> scale(s.data<float>(), s.data<float>() + s.numel());
            std::vector<float> bias(b.data<float>(), b.data<float>() + b.numel());
            return std::make_unique<InstanceNormKernel>(std::move(scale), std::move(bias),
                                                        d.node->attrs.get_float("epsilon", 1e-5f), d.threads);
          }};
}

KILN_REGISTER_KERNEL(instancenorm_factory());

}  // namespace
}  // namespace kiln::backend
