// cpu.elementwise: fp32 activations (every one of ops/activation.h's table), Erf, and Add/Mul/Div for the shapes CNNs produce — same shape, a scalar,
// or a per-channel (generally: one contiguous block of axes) operand such as GroupNorm's γ/β [C,1,1].
// cpu.elementwise_chain: kiln.ElementwiseChain (fused chains of any activation and arithmetic) in one pass
// over memory. Activations are ops/activation.h's formulas, one loop per activation.
//
// The loops are plain and branch-free so the compiler vectorizes them; the hot ones are compiled for
// AVX-512 and AVX2 as well (target_clones: the build itself targets baseline x86-64). exp() is a local
// polynomial because libm calls stop vectorization. Large tensors are split over LayerDesc.threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <thread>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"
#include "ops/activation.h"
#include "ops/util.h"

namespace kiln::backend {
namespace {

using ops::Activation;
using ops::ActivationParams;

// y = act(x); one specialized loop per activation, so each vectorizes.
KILN_SIMD_CLONES void activation_loop(ActivationParams act, const float* x, float* y, int64_t n) {
  const float alpha = act.alpha, beta = act.beta;
  ops::with_activation(act.act, [&](auto a) KILN_INLINE_LAMBDA {
    for (int64_t i = 0; i < n; ++i) y[i] = ops::activate<decltype(a)::value, CpuMath>(x[i], alpha, beta);
  });
}
// y = act(y), for chain steps: one pointer, so no aliasing check stands between the loop and vectorizing.
KILN_SIMD_CLONES void activation_in_place(ActivationParams act, float* y, int64_t n) {
  const float alpha = act.alpha, beta = act.beta;
  ops::with_activation(act.act, [&](auto a) KILN_INLINE_LAMBDA {
    for (int64_t i = 0; i < n; ++i) y[i] = ops::activate<decltype(a)::value, CpuMath>(y[i], alpha, beta);
  });
}

class UnaryKernel final : public Kernel {
 public:
  UnaryKernel(ActivationParams act, int threads) : act_(act), threads_(threads) {}
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const int64_t n = out[0].numel();
    parallel_for(n, n, threads_, [&](int64_t b, int64_t e) { activation_loop(act_, x + b, y + b, e - b); });
  }

 private:
  ActivationParams act_;
  int threads_;
};

// ------------------------------------------------------------------------------------------- binary
enum class Binary { Add, Mul, Div };

// The output viewed as [outer, mid, inner] where operand `small` varies only along `mid` (a contiguous
// run of axes); a full-size operand is mid = everything, a scalar mid = 1.
struct Blocked {
  int64_t outer = 1, mid = 1, inner = 1;
};

bool block_of(const std::vector<int64_t>& in, const std::vector<int64_t>& out, Blocked& b) {
  if (in.size() > out.size()) return false;
  std::vector<int64_t> d(out.size() - in.size(), 1);
  d.insert(d.end(), in.begin(), in.end());
  int first = -1, last = -1;
  for (size_t k = 0; k < d.size(); ++k)
    if (d[k] != 1) {
      if (first < 0) first = static_cast<int>(k);
      last = static_cast<int>(k);
    }
  b = {};
  if (first < 0) {  // a scalar (every axis 1): one value for the whole output
    for (int64_t v : out) b.inner *= v;
    return true;
  }
  for (size_t k = 0; k < d.size(); ++k) {
    const int kk = static_cast<int>(k);
    if (kk >= first && kk <= last) {
      if (d[k] != out[k]) return false;  // a broadcast axis inside the block: not one contiguous run
      b.mid *= out[k];
    } else if (kk > last) {
      b.inner *= out[k];
    } else {
      b.outer *= out[k];
    }
  }
  return true;
}

KILN_SIMD_CLONES void binary_same(Binary op, const float* a, const float* b, float* y, int64_t n) {
  switch (op) {
    case Binary::Add: for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i]; break;
    case Binary::Mul: for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i]; break;
    case Binary::Div: for (int64_t i = 0; i < n; ++i) y[i] = a[i] / b[i]; break;
  }
}
// `swap`: the scalar is the left operand (matters for Div only).
KILN_SIMD_CLONES void binary_scalar(Binary op, bool swap, const float* a, float s, float* y, int64_t n) {
  switch (op) {
    case Binary::Add: for (int64_t i = 0; i < n; ++i) y[i] = a[i] + s; break;
    case Binary::Mul: for (int64_t i = 0; i < n; ++i) y[i] = a[i] * s; break;
    case Binary::Div:
      // Division, not multiplication by 1/s: the reference divides and the result must match it exactly.
      if (swap) for (int64_t i = 0; i < n; ++i) y[i] = s / a[i];
      else for (int64_t i = 0; i < n; ++i) y[i] = a[i] / s;
      break;
  }
}

class BinaryKernel final : public Kernel {
 public:
  // big: the operand with the output's size; small: the blocked one (index 1 - big).
  BinaryKernel(Binary op, int big, Blocked blk, int threads) : op_(op), big_(big), blk_(blk), threads_(threads) {}
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* a = in[static_cast<size_t>(big_)].as<float>();
    const float* s = in[static_cast<size_t>(1 - big_)].as<float>();
    float* y = out[0].as<float>();
    const bool swap = big_ == 1;
    const int64_t total = out[0].numel();
    const Blocked b = blk_;
    // Split the flat output range over threads; each part walks it in runs over which the small operand is
    // either a matching contiguous run (inner == 1) or one repeated value (inner > 1).
    parallel_for(total, total, threads_, [&](int64_t p, int64_t end) {
      while (p < end) {
        if (b.inner == 1) {
          const int64_t m = p % b.mid, len = std::min(end - p, b.mid - m);
          if (swap) binary_same(op_, s + m, a + p, y + p, len);
          else binary_same(op_, a + p, s + m, y + p, len);
          p += len;
        } else {
          const int64_t len = std::min(end - p, b.inner - p % b.inner);
          binary_scalar(op_, swap, a + p, s[(p / b.inner) % b.mid], y + p, len);
          p += len;
        }
      }
    });
  }

 private:
  Binary op_;
  int big_;
  Blocked blk_;
  int threads_;
};

bool all_float(const LayerDesc& d) {
  for (const auto& o : d.inputs)
    if (!o.present || o.dtype != DType::Float) return false;
  for (const auto& o : d.outputs)
    if (!o.present || o.dtype != DType::Float) return false;
  return !d.outputs.empty();
}

// Which operand has the output's full size, and the other's block structure; -1 if unsupported.
int binary_plan(const LayerDesc& d, Blocked& blk) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !all_float(d) || d.opset < 7) return -1;
  const auto& out = d.outputs[0].dims;
  for (int big = 0; big < 2; ++big) {
    const auto& bd = d.inputs[static_cast<size_t>(big)].dims;
    if (bd.size() > out.size() || ops::numel(bd) != ops::numel(out)) continue;
    if (block_of(d.inputs[static_cast<size_t>(1 - big)].dims, out, blk)) return big;
  }
  return -1;
}

KernelFactory unary_factory(Activation act) {
  return {.name = "cpu.elementwise", .device = "cpu", .op = ops::activation_name(act), .domain = "",
          .priority = 50,
          .supports = [](const LayerDesc& d) {
            return d.inputs.size() == 1 && d.outputs.size() == 1 && all_float(d) &&
                   d.inputs[0].dims == d.outputs[0].dims;
          },
          .create = [act](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            return std::make_unique<UnaryKernel>(ops::activation_params(act, d.node->attrs), d.threads);
          }};
}

KernelFactory binary_factory(const std::string& op, Binary kind) {
  return {.name = "cpu.elementwise", .device = "cpu", .op = op, .domain = "", .priority = 50,
          .supports = [](const LayerDesc& d) {
            Blocked b;
            return binary_plan(d, b) >= 0;
          },
          .create = [kind](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            Blocked b;
            const int big = binary_plan(d, b);
            return std::make_unique<BinaryKernel>(kind, big, b, d.threads);
          }};
}

// Every activation of the table (those built on tanh/log1p call libm per element, but skip the
// reference's per-element dispatch).
#define KILN_CPU_ACTIVATION_KERNEL(name, ...) KILN_REGISTER_KERNEL(unary_factory(Activation::name));
KILN_ACTIVATIONS(KILN_CPU_ACTIVATION_KERNEL)
#undef KILN_CPU_ACTIVATION_KERNEL
KILN_REGISTER_KERNEL(binary_factory("Add", Binary::Add));
KILN_REGISTER_KERNEL(binary_factory("Mul", Binary::Mul));
KILN_REGISTER_KERNEL(binary_factory("Div", Binary::Div));


// ---------------------------------------------------------------------------------------------- erf
// erf for float, branch-free so the loop vectorizes (GELU's erf is a quarter of a ConvNeXt's time).
// |x| < 0.9: x·P(x²); above: 1 − e^{−x²}·Q(|x| − 2.41), Q ≈ erfc(x)·e^{x²} (smooth, ~1/(x√π)); |x| is
// clamped at 3.92, where erf rounds to 1 in float. P (degree 6) and Q (degree 9) are least-squares fits on
// Chebyshev nodes of the double erf/erfc; evaluated in float the error is below 2.5e-7 relative.
inline float erf_approx(float x) {
  const float ax = std::min(std::fabs(x), 3.92f);
  const float x2 = ax * ax;
  float p = 8.534122025594115e-05f;
  p = p * x2 - 8.180781151168048e-04f;
  p = p * x2 + 5.20433159545064e-03f;
  p = p * x2 - 2.6860708370804787e-02f;
  p = p * x2 + 1.1283718794584274e-01f;
  p = p * x2 - 3.7612634897232056e-01f;
  p = p * x2 + 1.128379225730896f;
  const float t = ax - 2.41f;
  float q = -8.236464054789394e-06f;
  q = q * t + 3.0085981052252464e-05f;
  q = q * t - 6.448697240557522e-05f;
  q = q * t + 2.297918836120516e-04f;
  q = q * t - 8.657280122861266e-04f;
  q = q * t + 2.8431874234229326e-03f;
  q = q * t - 8.949218317866325e-03f;
  q = q * t + 2.721838839352131e-02f;
  q = q * t - 7.903842628002167e-02f;
  q = q * t + 2.177058756351471e-01f;
  const float tail = std::copysign(1.f - exp_approx(-x2) * q, x);
  return ax < 0.9f ? x * p : tail;
}

KILN_SIMD_CLONES void erf_loop(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = erf_approx(x[i]);
}

class ErfKernel final : public Kernel {
 public:
  explicit ErfKernel(int threads) : threads_(threads) {}
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const int64_t n = out[0].numel();
    parallel_for(n, n, threads_, [&](int64_t b, int64_t e) { erf_loop(x + b, y + b, e - b); });
  }

 private:
  int threads_;
};

KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.elementwise",
                                   .device = "cpu",
                                   .op = "Erf",
                                   .domain = "",
                                   .priority = 50,
                                   .supports =
                                       [](const LayerDesc& d) {
                                         return d.inputs.size() == 1 && d.outputs.size() == 1 &&
                                                all_float(d) && d.inputs[0].dims == d.outputs[0].dims;
                                       },
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<ErfKernel>(d.threads);
                                   }});

// ------------------------------------------------------------------------------ kiln.ElementwiseChain
// One pass over memory: each thread walks its part of the output in blocks of kChainBlock elements; a block
// is copied from x into y (where it stays in L1) and every step is applied to it in place.
// A step is an activation (ops/activation.h, applied by activation_in_place) or one of the chain's
// arithmetic ops.
enum class ChainMath { Neg, Abs, Sqrt, Exp, Add, Sub, Mul, Div };
enum class OperandKind { None, Scalar, Channel, Full };

std::optional<ChainMath> chain_math_of(const std::string& s) {
  static const std::pair<const char*, ChainMath> table[] = {
      {"Neg", ChainMath::Neg}, {"Abs", ChainMath::Abs}, {"Sqrt", ChainMath::Sqrt}, {"Exp", ChainMath::Exp},
      {"Add", ChainMath::Add}, {"Sub", ChainMath::Sub}, {"Mul", ChainMath::Mul},   {"Div", ChainMath::Div}};
  for (const auto& [name, op] : table)
    if (s == name) return op;
  return std::nullopt;
}
bool chain_binary(ChainMath op) { return op >= ChainMath::Add; }

KILN_SIMD_CLONES void chain_unary(ChainMath op, float* y, int64_t n) {
  switch (op) {
    case ChainMath::Neg: for (int64_t i = 0; i < n; ++i) y[i] = -y[i]; break;
    case ChainMath::Abs: for (int64_t i = 0; i < n; ++i) y[i] = std::fabs(y[i]); break;
    case ChainMath::Sqrt: for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(y[i]); break;
    case ChainMath::Exp:
      // exp_approx clamps its input; above the float range the true result is +inf.
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 88.72283f ? INFINITY : exp_approx(y[i]);
      break;
    default: break;
  }
}

// y = y op s (data_first) or s op y.
KILN_SIMD_CLONES void chain_scalar(ChainMath op, bool data_first, float s, float* y, int64_t n) {
  switch (op) {
    case ChainMath::Add: for (int64_t i = 0; i < n; ++i) y[i] = y[i] + s; break;
    case ChainMath::Mul: for (int64_t i = 0; i < n; ++i) y[i] = y[i] * s; break;
    case ChainMath::Sub:
      if (data_first) for (int64_t i = 0; i < n; ++i) y[i] = y[i] - s;
      else for (int64_t i = 0; i < n; ++i) y[i] = s - y[i];
      break;
    case ChainMath::Div:  // true division, as the reference does
      if (data_first) for (int64_t i = 0; i < n; ++i) y[i] = y[i] / s;
      else for (int64_t i = 0; i < n; ++i) y[i] = s / y[i];
      break;
    default: break;
  }
}

KILN_SIMD_CLONES void chain_full(ChainMath op, bool data_first, const float* b, float* y, int64_t n) {
  switch (op) {
    case ChainMath::Add: for (int64_t i = 0; i < n; ++i) y[i] = y[i] + b[i]; break;
    case ChainMath::Mul: for (int64_t i = 0; i < n; ++i) y[i] = y[i] * b[i]; break;
    case ChainMath::Sub:
      if (data_first) for (int64_t i = 0; i < n; ++i) y[i] = y[i] - b[i];
      else for (int64_t i = 0; i < n; ++i) y[i] = b[i] - y[i];
      break;
    case ChainMath::Div:
      if (data_first) for (int64_t i = 0; i < n; ++i) y[i] = y[i] / b[i];
      else for (int64_t i = 0; i < n; ++i) y[i] = b[i] / y[i];
      break;
    default: break;
  }
}

struct ChainStep {
  ActivationParams act;  // act.act != None: an activation step (math unused)
  ChainMath math = ChainMath::Neg;
  OperandKind kind = OperandKind::None;
  int operand = -1;
  bool data_first = true;
};

// The steps of a kiln.ElementwiseChain layer, or nullopt if this kernel can't run it.
std::optional<std::vector<ChainStep>> chain_plan(const LayerDesc& d) {
  if (d.inputs.empty() || d.outputs.size() != 1 || !all_float(d)) return std::nullopt;
  const std::vector<int64_t>& dims = d.inputs[0].dims;
  if (d.outputs[0].dims != dims) return std::nullopt;
  const Attributes& a = d.node->attrs;
  const Attribute* st = a.find("steps");
  const auto* names = st ? std::get_if<std::vector<std::string>>(&st->value) : nullptr;
  if (!names || names->empty()) return std::nullopt;
  const size_t n = names->size();
  std::vector<int64_t> operand, data_first;
  std::vector<float> alpha, beta;
  try {
    operand = a.get_ints("operand");
    data_first = a.get_ints("data_first");
    alpha = a.get_floats("alpha");
    if (a.has("beta")) {
      beta = a.get_floats("beta");
    } else {  // the ONNX defaults
      for (const std::string& name : *names) {
        const auto act = ops::activation_of(name);
        beta.push_back(act ? ops::activation_info(*act).beta : 0.f);
      }
    }
  } catch (const Error&) {
    return std::nullopt;
  }
  if (operand.size() != n || data_first.size() != n || alpha.size() != n || beta.size() != n)
    return std::nullopt;
  std::vector<ChainStep> steps;
  for (size_t k = 0; k < n; ++k) {
    ChainStep s;
    if (const auto act = ops::activation_of((*names)[k])) {
      s.act = {*act, alpha[k], beta[k]};
    } else if (const auto math = chain_math_of((*names)[k])) {
      s.math = *math;
    } else {
      return std::nullopt;
    }
    s.data_first = data_first[k] != 0;
    if (s.act.act != Activation::None || !chain_binary(s.math)) {
      if (operand[k] != -1) return std::nullopt;
      steps.push_back(s);
      continue;
    }
    if (operand[k] < 0 || operand[k] >= static_cast<int64_t>(d.inputs.size())) return std::nullopt;
    s.operand = static_cast<int>(operand[k]);
    const std::vector<int64_t>& od = d.inputs[static_cast<size_t>(s.operand)].dims;
    if (od.size() > dims.size()) return std::nullopt;
    std::vector<int64_t> p(dims.size() - od.size(), 1);
    p.insert(p.end(), od.begin(), od.end());
    if (p == dims) {
      s.kind = OperandKind::Full;
    } else if (ops::numel(od) == 1) {
      s.kind = OperandKind::Scalar;
    } else {
      bool channel = dims.size() >= 2;
      for (size_t i = 0; channel && i < p.size(); ++i) channel = p[i] == (i == 1 ? dims[1] : 1);
      if (!channel) return std::nullopt;
      s.kind = OperandKind::Channel;
    }
    steps.push_back(s);
  }
  return steps;
}

class ChainKernel final : public Kernel {
 public:
  ChainKernel(std::vector<ChainStep> steps, const std::vector<int64_t>& dims, int threads)
      : steps_(std::move(steps)), threads_(threads) {
    channels_ = dims.size() >= 2 ? dims[1] : 1;
    inner_ = 1;
    for (size_t k = 2; k < dims.size(); ++k) inner_ *= dims[k];
  }
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    constexpr int64_t kChainBlock = 4096;
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const int64_t total = out[0].numel();
    const int64_t work = total * static_cast<int64_t>(steps_.size());
    parallel_for(total, work, threads_, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; p += kChainBlock) {
        const int64_t len = std::min(kChainBlock, end - p);
        float* yb = y + p;
        if (yb != x + p) std::memcpy(yb, x + p, static_cast<size_t>(len) * sizeof(float));
        for (const ChainStep& s : steps_) {
          switch (s.kind) {
            case OperandKind::None:
              if (s.act.act != Activation::None) activation_in_place(s.act, yb, len);
              else chain_unary(s.math, yb, len);
              break;
            case OperandKind::Scalar:
              chain_scalar(s.math, s.data_first, in[static_cast<size_t>(s.operand)].as<float>()[0], yb, len);
              break;
            case OperandKind::Full:
              chain_full(s.math, s.data_first, in[static_cast<size_t>(s.operand)].as<float>() + p, yb, len);
              break;
            case OperandKind::Channel: {
              const float* c = in[static_cast<size_t>(s.operand)].as<float>();
              for (int64_t q = 0; q < len;) {  // runs of one channel
                const int64_t at = p + q, run = std::min(len - q, inner_ - at % inner_);
                chain_scalar(s.math, s.data_first, c[(at / inner_) % channels_], yb + q, run);
                q += run;
              }
              break;
            }
          }
        }
      }
    });
  }

 private:
  std::vector<ChainStep> steps_;
  int64_t channels_ = 1, inner_ = 1;
  int threads_;
};

KILN_REGISTER_KERNEL(KernelFactory{
    .name = "cpu.elementwise_chain", .device = "cpu", .op = internal_ops::elementwise_chain::kOp, .domain = internal_ops::kDomain, .priority = 50,
    .supports = [](const LayerDesc& d) { return chain_plan(d).has_value(); },
    .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
      return std::make_unique<ChainKernel>(*chain_plan(d), d.inputs[0].dims, d.threads);
    }});

}  // namespace
}  // namespace kiln::backend
