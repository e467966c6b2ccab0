// cpu.gemm and cpu.matmul: fp32 Gemm and MatMul on a oneDNN matmul primitive built for the layer's static
// shapes. The reference accumulates every dot product in double one element at a time (VGG-19's FC layers
// spent 112 ms there, the PP-OCR recognizer 41% of its time in MatMul).
//
// - A constant B (a weight) is reordered once, at create time, into the layout the primitive prefers.
// - Gemm's transA/transB are strides on the operand's memory descriptor, not copies.
// - MatMul with a 2-D B folds A's batch dims into M: one large GEMM instead of a batch of small ones.
//   Otherwise batch dims broadcast as oneDNN's matmul broadcasts them (size 1 against the output's size).
// - Gemm's C: a constant row vector ([N] or [1, N]) with alpha == 1 is the primitive's bias (beta folded in);
//   any other C is broadcast into Y first and added by a sum post-op with scale beta; alpha is the output
//   scale. oneDNN accumulates in fp32 (the sweep's fp32 bound of 1e-5 holds: docs/backend_sweep.md).
#if defined(KILN_HAVE_DNNL)
#include <dnnl.hpp>
#include <optional>
#include <unordered_map>

#include "backends/cpu/omp_threads.h"
#include "backends/cpu/onednn_engine.h"
#include "device/kernel.h"

namespace kiln::backend {
namespace {

using conv_onednn::cpu_engine;
using dnnl::memory;

constexpr size_t kMaxRank = 12;  // oneDNN's DNNL_MAX_NDIMS

// Row-major strides of `dims`.
memory::dims plain_strides(const memory::dims& dims) {
  memory::dims s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

// The layer as one oneDNN matmul: src [.., M, K] · weights [.., K, N] (+ bias [1.., N]) = dst [.., M, N].
struct MatmulSetup {
  memory::desc src, weights, dst, bias;
  float alpha = 1.f, beta = 0.f;
  bool bias_from_c = false;        // C is the primitive's bias (scaled by beta at create time)
  bool sum_c = false;              // C is broadcast into Y before the primitive, which adds it (sum post-op)
  int64_t m = 0, n = 0;            // Gemm: Y's dims, for broadcasting C
  int64_t c_rows = 1, c_cols = 1;  // C's dims padded to 2-D
};

bool all_float(const LayerDesc& d) {
  for (const auto& o : d.inputs)
    if (o.present && o.dtype != DType::Float) return false;
  return !d.outputs.empty() && d.outputs[0].dtype == DType::Float;
}

std::optional<MatmulSetup> gemm_setup(const LayerDesc& d) {
  if (d.inputs.size() < 2 || !all_float(d)) return std::nullopt;
  const auto &a = d.inputs[0].dims, &b = d.inputs[1].dims;
  if (a.size() != 2 || b.size() != 2) return std::nullopt;
  const Attributes& at = d.node->attrs;
  const bool ta = at.get_int("transA", 0), tb = at.get_int("transB", 0);
  const int64_t m = a[ta ? 1 : 0], k = a[ta ? 0 : 1], n = b[tb ? 0 : 1];
  if (b[tb ? 1 : 0] != k || m <= 0 || n <= 0 || k <= 0) return std::nullopt;
  MatmulSetup s;
  s.m = m, s.n = n;
  s.src = memory::desc({m, k}, memory::data_type::f32, ta ? memory::dims{1, m} : memory::dims{k, 1});
  s.weights = memory::desc({k, n}, memory::data_type::f32, tb ? memory::dims{1, k} : memory::dims{n, 1});
  s.dst = memory::desc({m, n}, memory::data_type::f32, memory::dims{n, 1});
  s.alpha = at.get_float("alpha", 1.f);
  const float beta = at.get_float("beta", 1.f);
  if (d.inputs.size() > 2 && d.inputs[2].present && beta != 0.f) {
    auto c = d.inputs[2].dims;
    if (c.size() > 2) return std::nullopt;
    while (c.size() < 2) c.insert(c.begin(), 1);
    if ((c[0] != 1 && c[0] != m) || (c[1] != 1 && c[1] != n)) return std::nullopt;
    s.c_rows = c[0], s.c_cols = c[1], s.beta = beta;
    if (d.inputs[2].constant && c[0] == 1 && c[1] == n && s.alpha == 1.f) {
      s.bias_from_c = true;
      s.bias = memory::desc({1, n}, memory::data_type::f32, memory::dims{n, 1});
    } else {
      s.sum_c = true;
    }
  }
  return s;
}

std::optional<MatmulSetup> matmul_setup(const LayerDesc& d) {
  if (d.inputs.size() != 2 || !all_float(d)) return std::nullopt;
  memory::dims a(d.inputs[0].dims.begin(), d.inputs[0].dims.end());
  memory::dims b(d.inputs[1].dims.begin(), d.inputs[1].dims.end());
  if (a.empty() || b.empty()) return std::nullopt;
  const bool b_matrix = b.size() <= 2;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  if (b_matrix && a.size() > 2) {  // [batch.., M, K] · [K, N]: one [batch·M, K] · [K, N]
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < a.size(); ++i) rows *= a[i];
    a = {rows, a.back()};
  }
  const size_t rank = std::max(a.size(), b.size());
  if (rank > kMaxRank) return std::nullopt;
  a.insert(a.begin(), rank - a.size(), 1);
  b.insert(b.begin(), rank - b.size(), 1);
  memory::dims y(rank);
  for (size_t i = 0; i + 2 < rank; ++i) {
    if (a[i] != b[i] && a[i] != 1 && b[i] != 1) return std::nullopt;
    y[i] = std::max(a[i], b[i]);
  }
  y[rank - 2] = a[rank - 2], y[rank - 1] = b[rank - 1];
  if (a[rank - 1] != b[rank - 2]) return std::nullopt;
  for (int64_t v : y)
    if (v <= 0) return std::nullopt;
  MatmulSetup s;
  s.src = memory::desc(a, memory::data_type::f32, plain_strides(a));
  s.weights = memory::desc(b, memory::data_type::f32, plain_strides(b));
  s.dst = memory::desc(y, memory::data_type::f32, plain_strides(y));
  return s;
}

dnnl::matmul::primitive_desc make_pd(const MatmulSetup& s, bool weights_any) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per run: concurrent contexts never share it
  if (s.alpha != 1.f) attr.set_output_scales(0, {s.alpha});
  if (s.sum_c) {
    dnnl::post_ops po;
    po.append_sum(s.beta);
    attr.set_post_ops(po);
  }
  const memory::desc w = weights_any
                             ? memory::desc(s.weights.dims(), memory::data_type::f32, memory::format_tag::any)
                             : s.weights;
  const dnnl::matmul::desc desc =
      s.bias_from_c ? dnnl::matmul::desc(s.src, w, s.bias, s.dst) : dnnl::matmul::desc(s.src, w, s.dst);
  return dnnl::matmul::primitive_desc(desc, attr, cpu_engine());
}

class OneDnnMatmul final : public Kernel {
 public:
  OneDnnMatmul(const LayerDesc& d, const MatmulSetup& s) : s_(s), threads_(d.threads) {
    OmpThreads omp(threads_);
    const TensorData* w = d.inputs[1].constant;
    pd_ = make_pd(s_, w != nullptr);
    prim_ = dnnl::matmul(pd_);
    if (w) {  // prepack the weight once
      weights_ = memory(pd_.weights_desc(), cpu_engine());
      memory user(s_.weights, cpu_engine(), const_cast<void*>(w->raw()));
      dnnl::stream st(cpu_engine());
      dnnl::reorder(user, weights_).execute(st, user, weights_);
      st.wait();
    }
    if (s_.bias_from_c) {
      bias_ = memory(s_.bias, cpu_engine());
      const float* c = d.inputs[2].constant->data<float>();
      float* b = static_cast<float*>(bias_.get_data_handle());
      for (int64_t j = 0; j < s_.n; ++j) b[j] = s_.beta * c[j];
    }
    scratch_md_ = pd_.scratchpad_desc();
  }

  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    OmpThreads omp(threads_);
    const dnnl::engine& eng = cpu_engine();
    float* y = out[0].as<float>();
    if (s_.sum_c) broadcast_c(in[2].as<float>(), y);
    memory src(s_.src, eng, in[0].data), dst(s_.dst, eng, y);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    args.emplace(DNNL_ARG_WEIGHTS, weights_ ? weights_ : memory(s_.weights, eng, in[1].data));
    if (bias_) args.emplace(DNNL_ARG_BIAS, bias_);
    if (scratch_md_.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratch_md_, eng));
    dnnl::stream st(eng);
    prim_.execute(st, args);
    st.wait();
  }
  std::string describe() const override {
    return std::string(pd_.impl_info_str()) + (weights_ ? ", weights prepacked" : "");
  }

 private:
  // Y[i, j] = C[i or 0, j or 0]: what the sum post-op then scales by beta and adds to.
  void broadcast_c(const float* c, float* y) const {
    const int64_t row_step = s_.c_rows == 1 ? 0 : s_.c_cols;
    for (int64_t i = 0; i < s_.m; ++i) {
      const float* row = c + i * row_step;
      float* yr = y + i * s_.n;
      if (s_.c_cols == 1)
        std::fill(yr, yr + s_.n, row[0]);
      else
        std::copy(row, row + s_.n, yr);
    }
  }

  MatmulSetup s_;
  int threads_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
  memory weights_, bias_;
  memory::desc scratch_md_;
};

// Whether oneDNN builds the primitive (its own checks on shapes, broadcast and attributes).
bool builds(const std::optional<MatmulSetup>& s, const LayerDesc& d) {
  if (!s) return false;
  try {
    make_pd(*s, d.inputs[1].constant != nullptr);
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.gemm",
                                   .device = "cpu",
                                   .op = "Gemm",
                                   .domain = "",
                                   .priority = 50,
                                   .supports = [](const LayerDesc& d) { return builds(gemm_setup(d), d); },
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<OneDnnMatmul>(d, *gemm_setup(d));
                                   }});
KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.matmul",
                                   .device = "cpu",
                                   .op = "MatMul",
                                   .domain = "",
                                   .priority = 50,
                                   .supports = [](const LayerDesc& d) { return builds(matmul_setup(d), d); },
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<OneDnnMatmul>(d, *matmul_setup(d));
                                   }});

}  // namespace
}  // namespace kiln::backend
#endif  // KILN_HAVE_DNNL
