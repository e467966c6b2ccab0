// kiln — CUDA MatMul and Gemm on cuBLASLt, fp32 (TF32 when BuildOptions::tf32) / fp16 / bf16:
//   cuda.matmul  MatMul, numpy semantics: 1-D operands promoted, batch dims broadcast. The batch dims are
//                split into an inner run one strided-batched GEMM covers (every operand's matrices a fixed
//                stride apart, 0 where broadcast) and outer dims looped over at enqueue, one GEMM call each
//                (only for irregular broadcasts, [3, 1] x [1, 4]). A batched A against one B (the Linear
//                layer) is one GEMM with the batch folded into M.
//   cuda.gemm    Gemm: alpha, beta, transA, transB; C [M, N] read in place, a row vector [N] / [1, N] with
//                beta 1 through cuBLASLt's bias epilogue, any other broadcast C (scalar, [M, 1], [N] with
//                beta
//                != 1) first copied into Y, which the GEMM then accumulates onto with beta.
// Constant operands are read where the executor uploaded them. Algorithms are chosen at create time
// (matmul_lt_cuda.cpp); enqueue only enqueues. Gemm with beta == 0 skips C, as BLAS does (the reference
// would propagate a NaN or Inf of C through 0 * C).
#include "backends/cuda/matmul_cuda.h"

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "device/kernel.h"
#include "kiln/build_options.h"

namespace kiln::cuda::matmul {
namespace {

constexpr int64_t kMaxExtent = std::numeric_limits<int32_t>::max();  // m, n, k, batch count of one call

bool same_float_dtype(const backend::LayerDesc::Operand& o, DType t) {
  if (!o.present || o.dtype != t) return false;
  if (o.constant && o.constant->dtype() != t) return false;
  for (int64_t d : o.dims)
    if (d < 0) return false;
  return true;
}

bool tf32_allowed(const backend::LayerDesc& d) {
  return d.options ? d.options->tf32 : true;
}

const void* at(const void* base, int64_t elements, size_t elem) {
  return static_cast<const unsigned char*>(base) + static_cast<size_t>(elements) * elem;
}
void* at(void* base, int64_t elements, size_t elem) {
  return static_cast<unsigned char*>(base) + static_cast<size_t>(elements) * elem;
}

// ------------------------------------------------------------------------------------------------ MatMul
// One GEMM call of a MatMul: element offsets of its first matrices.
struct Call {
  int64_t a = 0, b = 0, y = 0;
};

struct MatMulPlan {
  LtProblem p;
  std::vector<Call> calls;
  int64_t y_elements = 0;  // 0: nothing to do
  bool zero_k = false;     // K == 0: Y is all zeros
};

// Reads the layer; false for anything cuda.matmul cannot run.
bool plan_matmul(const backend::LayerDesc& d, MatMulPlan& plan) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1) return false;
  const auto &A = d.inputs[0], &B = d.inputs[1], &Y = d.outputs[0];
  const DType t = A.dtype;
  if (!is_cuda_float(t) || !same_float_dtype(A, t) || !same_float_dtype(B, t) || !same_float_dtype(Y, t))
    return false;
  if (A.dims.empty() || B.dims.empty()) return false;
  std::vector<int64_t> ad = A.dims, bd = B.dims;
  if (ad.size() == 1) ad.insert(ad.begin(), 1);
  if (bd.size() == 1) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  if (bd[bd.size() - 2] != k) return false;

  // Batch dims right-aligned and broadcast; matrix strides (in whole matrices, 0 where broadcast).
  const size_t r = std::max(ad.size(), bd.size()) - 2;
  std::vector<int64_t> da(r, 1), db(r, 1), batch(r);
  std::copy(ad.begin(), ad.end() - 2, da.begin() + static_cast<std::ptrdiff_t>(r - (ad.size() - 2)));
  std::copy(bd.begin(), bd.end() - 2, db.begin() + static_cast<std::ptrdiff_t>(r - (bd.size() - 2)));
  for (size_t i = 0; i < r; ++i) {
    if (da[i] != db[i] && da[i] != 1 && db[i] != 1) return false;
    batch[i] = da[i] == 1 ? db[i] : da[i];
  }
  std::vector<int64_t> want(batch);
  if (A.dims.size() > 1) want.push_back(m);
  if (B.dims.size() > 1) want.push_back(n);
  if (Y.dims != want) return false;

  plan.p.dtype = t;
  plan.p.tf32 = tf32_allowed(d);
  plan.p.m = m;
  plan.p.n = n;
  plan.p.k = k;
  plan.y_elements = 1;
  for (int64_t v : want) plan.y_elements *= v;
  plan.calls.clear();
  if (plan.y_elements == 0) return true;
  if (k == 0) {
    plan.zero_k = true;
    return true;
  }

  struct BatchDim {
    int64_t size, a, b, y;
  };
  std::vector<BatchDim> dims;  // the batch dims of size > 1, outermost first
  {
    std::vector<BatchDim> all(r);
    int64_t ca = 1, cb = 1, cy = 1;
    for (size_t i = r; i-- > 0;) {
      all[i] = {batch[i], da[i] == 1 ? 0 : ca, db[i] == 1 ? 0 : cb, cy};
      ca *= da[i];
      cb *= db[i];
      cy *= batch[i];
    }
    for (const BatchDim& bd0 : all)
      if (bd0.size > 1) dims.push_back(bd0);
  }
  // The inner run: innermost dims over which both operands' offsets are one stride times the flat index (Y
  // is contiguous, so its are).
  int64_t count = 1, sa = 0, sb = 0;
  size_t outer = dims.size();
  if (!dims.empty()) {
    sa = dims.back().a;
    sb = dims.back().b;
    count = dims.back().size;
    outer = dims.size() - 1;
    while (outer > 0 && dims[outer - 1].a == sa * count && dims[outer - 1].b == sb * count) {
      count *= dims[outer - 1].size;
      --outer;
    }
  }
  if (count > 1 && sb == 0 && sa == 1) {  // A's matrices contiguous against one B: fold into M
    plan.p.m = m * count;
  } else if (count > 1) {
    plan.p.batch = count;
    plan.p.stride_a = sa * m * k;
    plan.p.stride_b = sb * k * n;
    plan.p.stride_y = m * n;
  }
  if (plan.p.m > kMaxExtent || n > kMaxExtent || k > kMaxExtent || plan.p.batch > kMaxExtent) return false;

  // Outer dims, odometer order; each an offset into A, B and Y.
  std::vector<int64_t> idx(outer, 0);
  while (true) {
    Call c;
    for (size_t i = 0; i < outer; ++i) {
      c.a += idx[i] * dims[i].a * m * k;
      c.b += idx[i] * dims[i].b * k * n;
      c.y += idx[i] * dims[i].y * m * n;
    }
    plan.calls.push_back(c);
    size_t i = outer;
    while (i > 0 && ++idx[i - 1] == dims[i - 1].size) idx[--i] = 0;
    if (i == 0) break;
  }
  return true;
}

class MatMulKernel final : public CudaKernel {
 public:
  explicit MatMulKernel(MatMulPlan plan) : plan_(std::move(plan)) {
    if (plan_.y_elements == 0 || plan_.zero_k) return;
    gemm_ = LtGemm::create(plan_.p);
    if (!gemm_) throw Error("cuda.matmul: cuBLASLt has no algorithm for " + describe_problem());
  }
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    if (plan_.y_elements == 0) return;
    if (plan_.zero_k) {
      KILN_CUDA_CHECK(cudaMemsetAsync(out[0].data, 0, out[0].nbytes(), rc.stream));
      return;
    }
    const size_t elem = dtype_size(plan_.p.dtype);
    for (const Call& c : plan_.calls)
      gemm_->run(at(in[0].data, c.a, elem), at(in[1].data, c.b, elem), nullptr, at(out[0].data, c.y, elem),
                 nullptr, rc);
  }
  size_t workspace_bytes() const override { return gemm_ ? gemm_->workspace_bytes() : 0; }
  std::string describe() const override {
    if (!gemm_) return plan_.zero_k ? "K = 0: zeros" : "empty";
    std::string s = gemm_->describe();
    if (plan_.calls.size() > 1) s += " x" + std::to_string(plan_.calls.size()) + " calls";
    return s;
  }

 private:
  std::string describe_problem() const {
    return std::string(dtype_name(plan_.p.dtype)) + " m " + std::to_string(plan_.p.m) + " n " +
           std::to_string(plan_.p.n) + " k " + std::to_string(plan_.p.k) + " batch " +
           std::to_string(plan_.p.batch);
  }
  MatMulPlan plan_;
  std::unique_ptr<LtGemm> gemm_;
};

// -------------------------------------------------------------------------------------------------- Gemm
enum class CMode {
  None,       // no C, or beta == 0
  Direct,     // C is a whole [M, N] matrix: cuBLASLt reads it with beta
  Bias,       // C is a row vector [N] and beta == 1: the bias epilogue
  Broadcast,  // C broadcast into Y first, then accumulated onto with beta
};

struct GemmPlan {
  LtProblem p;
  CMode mode = CMode::None;
  int64_t c_stride_i = 0, c_stride_j = 0;  // C's element strides over Y's [i, j] (broadcast: 0)
};

bool plan_gemm(const backend::LayerDesc& d, GemmPlan& plan) {
  if (d.inputs.size() < 2 || d.inputs.size() > 3 || d.outputs.size() != 1) return false;
  const auto &A = d.inputs[0], &B = d.inputs[1], &Y = d.outputs[0];
  const DType t = A.dtype;
  if (!is_cuda_float(t) || !same_float_dtype(A, t) || !same_float_dtype(B, t) || !same_float_dtype(Y, t))
    return false;
  if (A.dims.size() != 2 || B.dims.size() != 2) return false;
  const Attributes& attrs = d.node->attrs;
  const int64_t ta = attrs.get_int("transA", 0), tb = attrs.get_int("transB", 0);
  if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1)) return false;
  LtProblem& p = plan.p;
  p.dtype = t;
  p.tf32 = tf32_allowed(d);
  p.trans_a = ta == 1;
  p.trans_b = tb == 1;
  p.m = A.dims[p.trans_a ? 1 : 0];
  p.k = A.dims[p.trans_a ? 0 : 1];
  p.n = B.dims[p.trans_b ? 0 : 1];
  if (B.dims[p.trans_b ? 1 : 0] != p.k || Y.dims != std::vector<int64_t>{p.m, p.n}) return false;
  if (p.m > kMaxExtent || p.n > kMaxExtent || p.k > kMaxExtent) return false;
  p.alpha = attrs.get_float("alpha", 1.f);
  const float beta = attrs.get_float("beta", 1.f);

  const bool has_c = d.inputs.size() == 3 && d.inputs[2].present;
  if (!has_c || beta == 0.f) {
    plan.mode = CMode::None;
    return true;
  }
  const auto& C = d.inputs[2];
  if (!same_float_dtype(C, t) || C.dims.size() > 2) return false;
  const int64_t c0 = C.dims.size() == 2 ? C.dims[0] : 1, c1 = C.dims.empty() ? 1 : C.dims.back();
  if ((c0 != 1 && c0 != p.m) || (c1 != 1 && c1 != p.n)) return false;  // C broadcasts to [M, N] one way
  p.beta = beta;
  plan.c_stride_i = c0 == 1 ? 0 : c1;
  plan.c_stride_j = c1 == 1 ? 0 : 1;
  if (c0 * c1 == p.m * p.n) {
    plan.mode = CMode::Direct;
    plan.c_stride_i = p.n;
    plan.c_stride_j = 1;
  } else if (plan.c_stride_i == 0 && plan.c_stride_j == 1 && beta == 1.f) {
    plan.mode = CMode::Bias;
  } else {
    plan.mode = CMode::Broadcast;
  }
  return true;
}

class GemmKernel final : public CudaKernel {
 public:
  explicit GemmKernel(GemmPlan plan) : plan_(std::move(plan)) {
    LtProblem& p = plan_.p;
    if (p.m == 0 || p.n == 0 || p.k == 0) return;
    if (plan_.mode == CMode::Bias) {
      LtProblem with_bias = p;
      with_bias.bias = true;
      with_bias.beta = 0.f;
      gemm_ = LtGemm::create(with_bias);
      if (!gemm_) plan_.mode = CMode::Broadcast;  // no bias algorithm: C copied into Y, beta 1
    }
    if (!gemm_) gemm_ = LtGemm::create(p);
    if (!gemm_)
      throw Error("cuda.gemm: cuBLASLt has no algorithm for " + std::string(dtype_name(p.dtype)) + " m " +
                  std::to_string(p.m) + " n " + std::to_string(p.n) + " k " + std::to_string(p.k));
  }
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    const LtProblem& p = plan_.p;
    if (p.m == 0 || p.n == 0) return;
    const void* c = in.size() > 2 ? in[2].data : nullptr;
    void* y = out[0].data;
    if (p.k == 0) {  // Y = beta C
      if (plan_.mode == CMode::None)
        KILN_CUDA_CHECK(cudaMemsetAsync(y, 0, out[0].nbytes(), rc.stream));
      else
        launch_broadcast_matrix(p.dtype, c, y, p.m, p.n, plan_.c_stride_i, plan_.c_stride_j, p.beta,
                                rc.stream);
      return;
    }
    switch (plan_.mode) {
      case CMode::None:
        return gemm_->run(in[0].data, in[1].data, nullptr, y, nullptr, rc);
      case CMode::Direct:
        return gemm_->run(in[0].data, in[1].data, c, y, nullptr, rc);
      case CMode::Bias:
        return gemm_->run(in[0].data, in[1].data, nullptr, y, c, rc);
      case CMode::Broadcast:
        launch_broadcast_matrix(p.dtype, c, y, p.m, p.n, plan_.c_stride_i, plan_.c_stride_j, 1.f, rc.stream);
        return gemm_->run(in[0].data, in[1].data, y, y, nullptr, rc);
    }
  }
  size_t workspace_bytes() const override { return gemm_ ? gemm_->workspace_bytes() : 0; }
  std::string describe() const override {
    if (!gemm_) return "empty or K = 0";
    return gemm_->describe() + (plan_.mode == CMode::Broadcast ? " (C broadcast into Y)" : "");
  }

 private:
  GemmPlan plan_;
  std::unique_ptr<LtGemm> gemm_;
};

backend::KernelFactory matmul_factory() {
  return {.name = "cuda.matmul",
          .device = "cuda",
          .op = "MatMul",
          .domain = "",
          .priority = 10,
          .supports =
              [](const backend::LayerDesc& d) {
                MatMulPlan plan;
                return plan_matmul(d, plan);
              },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            MatMulPlan plan;
            if (!plan_matmul(d, plan)) throw Error("cuda.matmul: layer not supported");
            return std::make_unique<MatMulKernel>(std::move(plan));
          }};
}

backend::KernelFactory gemm_factory() {
  return {.name = "cuda.gemm",
          .device = "cuda",
          .op = "Gemm",
          .domain = "",
          .priority = 10,
          .supports =
              [](const backend::LayerDesc& d) {
                GemmPlan plan;
                return plan_gemm(d, plan);
              },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            GemmPlan plan;
            if (!plan_gemm(d, plan)) throw Error("cuda.gemm: layer not supported");
            return std::make_unique<GemmKernel>(std::move(plan));
          }};
}

KILN_REGISTER_KERNEL(matmul_factory());
KILN_REGISTER_KERNEL(gemm_factory());

}  // namespace
}  // namespace kiln::cuda::matmul
