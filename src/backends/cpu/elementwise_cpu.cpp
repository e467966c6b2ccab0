// cpu.elementwise: fp32 Relu/Elu/Sigmoid and Add/Mul/Div for the shapes CNNs produce — same shape, a scalar,
// or a per-channel (generally: one contiguous block of axes) operand such as GroupNorm's γ/β [C,1,1].
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
#include "backends/kernel.h"

namespace kiln::backend {
namespace {

enum class Unary { Relu, Elu, Sigmoid };

KILN_SIMD_CLONES void unary_loop(Unary op, float alpha, const float* x, float* y, int64_t n) {
  switch (op) {
    case Unary::Relu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
      break;
    case Unary::Elu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] >= 0.f ? x[i] : alpha * (exp_approx(x[i]) - 1.f);
      break;
    case Unary::Sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + exp_approx(-x[i]));
      break;
  }
}

class UnaryKernel final : public Kernel {
 public:
  UnaryKernel(Unary op, float alpha, int threads) : op_(op), alpha_(alpha), threads_(threads) {}
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const float* x = in[0].as<float>();
    float* y = out[0].as<float>();
    const int64_t n = out[0].numel();
    parallel_for(n, n, threads_, [&](int64_t b, int64_t e) { unary_loop(op_, alpha_, x + b, y + b, e - b); });
  }

 private:
  Unary op_;
  float alpha_;
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

int64_t numel_of(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t v : dims) n *= v;
  return n;
}

// Which operand has the output's full size, and the other's block structure; -1 if unsupported.
int binary_plan(const LayerDesc& d, Blocked& blk) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !all_float(d) || d.opset < 7) return -1;
  const auto& out = d.outputs[0].dims;
  for (int big = 0; big < 2; ++big) {
    const auto& bd = d.inputs[static_cast<size_t>(big)].dims;
    if (bd.size() > out.size() || numel_of(bd) != numel_of(out)) continue;
    if (block_of(d.inputs[static_cast<size_t>(1 - big)].dims, out, blk)) return big;
  }
  return -1;
}

std::optional<Unary> unary_of(const std::string& op) {
  if (op == "Relu") return Unary::Relu;
  if (op == "Elu") return Unary::Elu;
  if (op == "Sigmoid") return Unary::Sigmoid;
  return std::nullopt;
}

KernelFactory unary_factory(const std::string& op) {
  return {.name = "cpu.elementwise", .device = "cpu", .op = op, .domain = "", .priority = 50,
          .supports = [](const LayerDesc& d) {
            return d.inputs.size() == 1 && d.outputs.size() == 1 && all_float(d) &&
                   d.inputs[0].dims == d.outputs[0].dims;
          },
          .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            return std::make_unique<UnaryKernel>(*unary_of(d.node->op), d.node->attrs.get_float("alpha", 1.0f),
                                                 d.threads);
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

KILN_REGISTER_KERNEL(unary_factory("Relu"));
KILN_REGISTER_KERNEL(unary_factory("Elu"));
KILN_REGISTER_KERNEL(unary_factory("Sigmoid"));
KILN_REGISTER_KERNEL(binary_factory("Add", Binary::Add));
KILN_REGISTER_KERNEL(binary_factory("Mul", Binary::Mul));
KILN_REGISTER_KERNEL(binary_factory("Div", Binary::Div));

}  // namespace
}  // namespace kiln::backend
