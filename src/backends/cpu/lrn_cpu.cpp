// cpu.lrn: fp32 LRN across channels for the exponents real models use (beta 0.75 — AlexNet, GoogLeNet,
// ZFNet — 0.5 and 1), where t^-beta is reciprocal square roots (Newton steps) and products, which vectorize;
// other exponents stay with the reference (a general pow per element is what made it slow: LRN was 32% of
// Inception v1), and so does a bias <= 0, whose denominator may reach zero or below.
//   y = x · (bias + alpha / size · Σ_{c' in window(c)} x[c']²)^-beta, window as ops/lrn.cpp.
// Each (n, c) plane sums its window's squares per position in float (size terms; the reference does it
// in double), planes split over threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"

namespace kiln::backend {
namespace {

enum class Power { ThreeQuarters, Half, One };

// d^-1/2 for finite d > 0 by Newton's method from the bit-level first guess; three steps reach float
// precision. Plain arithmetic, so the loop vectorizes (std::sqrt keeps errno semantics and does not).
inline float rsqrt_newton(float d) {
  uint32_t bits;  // unsigned: no overflow for any bit pattern (NaN included)
  std::memcpy(&bits, &d, 4);
  bits = 0x5f375a86u - (bits >> 1);
  float y;
  std::memcpy(&y, &bits, 4);
  for (int k = 0; k < 3; ++k) y = y * (1.5f - 0.5f * d * y * y);
  return y;
}

template <Power P>
KILN_SIMD_CLONES void lrn_plane(const float* x, float* y, float* sum, int64_t inner, int64_t first,
                                int64_t last, int64_t ch, float bias, float scale) {
  std::fill(sum, sum + inner, 0.f);
  for (int64_t k = first; k <= last; ++k) {
    const float* xk = x + (k - ch) * inner;
    for (int64_t i = 0; i < inner; ++i) sum[i] += xk[i] * xk[i];
  }
  for (int64_t i = 0; i < inner; ++i) {
    const float d = bias + scale * sum[i];  // >= bias > 0 (supports()), or +inf, or NaN
    float inv;
    if constexpr (P == Power::ThreeQuarters) {
      const float q = rsqrt_newton(d);  // d^-1/2
      inv = q * q * rsqrt_newton(q);    // d^-1 · d^1/4
    } else if constexpr (P == Power::Half) {
      inv = rsqrt_newton(d);
    } else {
      inv = 1.f / d;
    }
    // An overflowed sum divides by infinity, as the reference does (x/inf = 0, NaN for x = inf).
    y[i] = x[i] * (d == std::numeric_limits<float>::infinity() ? 0.f : inv);
  }
}

class LrnKernel final : public Kernel {
 public:
  LrnKernel(const LayerDesc& d, Power p) : power_(p), threads_(d.threads) {
    const auto& x = d.inputs[0].dims;
    batch_ = x[0], channels_ = x[1];
    for (size_t i = 2; i < x.size(); ++i) inner_ *= x[i];
    const Attributes& a = d.node->attrs;
    size_ = a.get_int("size", 1);
    bias_ = a.get_float("bias", 1.f);
    scale_ =
        static_cast<float>(static_cast<double>(a.get_float("alpha", 1e-4f)) / static_cast<double>(size_));
  }
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const int64_t planes = batch_ * channels_, before = (size_ - 1) / 2, after = size_ - 1 - before;
    parallel_for(planes, planes * inner_ * size_, threads_, [&](int64_t begin, int64_t end) {
      std::vector<float> sum(static_cast<size_t>(inner_));  // the window's squares per position
      for (int64_t p = begin; p < end; ++p) {
        const int64_t ch = p % channels_;
        const int64_t first = std::max<int64_t>(0, ch - before), last = std::min(channels_ - 1, ch + after);
        const float* xp = x + p * inner_;
        float* yp = y + p * inner_;
        switch (power_) {
          case Power::ThreeQuarters:
            lrn_plane<Power::ThreeQuarters>(xp, yp, sum.data(), inner_, first, last, ch, bias_, scale_);
            break;
          case Power::Half:
            lrn_plane<Power::Half>(xp, yp, sum.data(), inner_, first, last, ch, bias_, scale_);
            break;
          case Power::One:
            lrn_plane<Power::One>(xp, yp, sum.data(), inner_, first, last, ch, bias_, scale_);
            break;
        }
      }
    });
  }

 private:
  Power power_;
  int threads_;
  int64_t batch_ = 0, channels_ = 0, inner_ = 1, size_ = 1;
  float bias_ = 1.f, scale_ = 0.f;
};

std::optional<Power> power_of(const LayerDesc& d) {
  if (d.inputs.size() != 1 || d.inputs[0].dtype != DType::Float || d.outputs[0].dtype != DType::Float ||
      d.inputs[0].dims.size() < 3 || d.node->attrs.get_int("size", 0) < 1)
    return std::nullopt;
  if (!(d.node->attrs.get_float("bias", 1.f) > 0.f))
    return std::nullopt;  // the denominator's base stays positive
  const float beta = d.node->attrs.get_float("beta", 0.75f);
  if (beta == 0.75f) return Power::ThreeQuarters;
  if (beta == 0.5f) return Power::Half;
  if (beta == 1.f) return Power::One;
  return std::nullopt;
}

KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.lrn",
                                   .device = "cpu",
                                   .op = "LRN",
                                   .domain = "",
                                   .priority = 50,
                                   .supports = [](const LayerDesc& d) { return power_of(d).has_value(); },
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<LrnKernel>(d, *power_of(d));
                                   }});

}  // namespace
}  // namespace kiln::backend
