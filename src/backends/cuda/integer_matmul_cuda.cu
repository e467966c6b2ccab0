// cuda.integer_matmul: MatMulInteger (int32 results) and QLinearMatMul (requantized uint8/int8 results) on
// uint8/int8 operands (the two may differ), with numpy-style batch broadcasting and 1-D operands promoted as
// MatMul does. One thread per output element sums (a - a_zero_point) * (b - b_zero_point) over K exactly in
// int64, then finishes as src/ops/qlinear.cpp does (integer_quant_cuda.cuh).
// Parameters, constants or graph inputs alike, are read on the device: zero points per tensor, a's per row
// and b's per column (1-D, or of the operand's rank, batch axes included); QLinearMatMul's scales and output
// zero point in the layouts the reference expands over the output (per tensor, per row, per column, or
// broadcasting of the output's rank). supports() refuses zero points that vary along K (the reference takes
// them; no model has them), outputs of more than 8 axes, and what the reference itself fails.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/integer_quant_cuda.cuh"

namespace kiln::cuda::integer {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

// The output space (batch axes, M, N right-aligned in kMaxRank slots) and where each output element's row of
// a and column of b start: a row is contiguous (step 1), a column steps by b_k_step.
struct MatMulShape {
  int64_t dims[kMaxRank] = {};
  int64_t a_stride[kMaxRank] = {}, b_stride[kMaxRank] = {};
  int64_t k = 0, b_k_step = 0;
};

template <typename A, typename B, typename Y>
__global__ void integer_matmul_kernel(const A* a, const B* b, Y* y, int64_t n, MatMulShape s, Param a_zp,
                                      Param b_zp, Requant rq) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t c[kMaxRank];
    coords_of(i, s.dims, c);
    const A* row = a + dot(c, s.a_stride);
    const B* col = b + dot(c, s.b_stride);
    const int32_t za = static_cast<int32_t>(load_param(a_zp, c));
    const int32_t zb = static_cast<int32_t>(load_param(b_zp, c));
    int64_t acc = 0;
    for (int64_t k = 0; k < s.k; ++k)
      acc += static_cast<int64_t>((static_cast<int32_t>(row[k]) - za) *
                                  (static_cast<int32_t>(col[k * s.b_k_step]) - zb));
    y[i] = finish<Y>(acc, rq, c);
  }
}

// Input positions: MatMulInteger (a, b, a_zero_point, b_zero_point); QLinearMatMul (a, a_scale,
// a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point).
struct Slots {
  size_t a = 0, b = 1, a_zp = 2, b_zp = 3, a_scale = 0, b_scale = 0, y_scale = 0, y_zp = 0;
};

struct MatMulPlan {
  bool qlinear = false;
  Slots slot;
  DType a = DType::Undefined, b = DType::Undefined, y = DType::Undefined;
  MatMulShape shape;
  int64_t numel = 0;
  Param a_zp, b_zp;
  Requant rq;
};

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (size_t k = d.size(); k-- > 1;) s[k - 1] = s[k] * d[k];
  return s;
}

// Strides over an operand's batch axes (its dims but the last two) placed on the output's batch slots, which
// end at slot kMaxRank - 3; axes of size 1 (broadcast) get 0.
void place_batch(const std::vector<int64_t>& op_dims, const std::vector<int64_t>& op_strides,
                 int64_t* slots) {
  const size_t nb = op_dims.size() - 2;
  for (size_t j = 0; j < nb; ++j) slots[kMaxRank - 2 - nb + j] = op_dims[j] == 1 ? 0 : op_strides[j];
}

// A zero point over its (promoted) operand, as a Param over the output space: its batch axes, and the row
// (a: operand axis rank-2 → slot M) or column (b: axis rank-1 → slot N). False where it varies along K.
bool operand_zp(const LayerDesc::Operand& zp, const std::vector<int64_t>& op_dims, bool is_a, Param& out) {
  const size_t r = op_dims.size();
  const size_t keep = is_a ? r - 2 : r - 1, k_axis = is_a ? r - 1 : r - 2;
  std::vector<int64_t> st;
  if (!param_strides(zp.dims, op_dims, static_cast<int64_t>(keep), st) || st[k_axis] != 0) return false;
  out = make_param(zp.dtype, std::vector<int64_t>(kMaxRank, 0));
  place_batch(op_dims, st, out.stride);
  out.stride[is_a ? kMaxRank - 2 : kMaxRank - 1] = st[keep];
  return true;
}

// An output parameter expanded over the output space `od` along `axis` (-1: none), as the reference does.
bool output_param(const LayerDesc::Operand& p, const std::vector<int64_t>& od, int64_t axis, Param& out) {
  std::vector<int64_t> st;
  if (!param_strides(p.dims, od, axis, st)) return false;
  out = make_param(p.dtype, right_aligned(st, 0));
  return true;
}

bool is_scale_type(DType t) {
  return t == DType::Float || t == DType::Float16 || t == DType::BFloat16;
}

// The plan, or false when this kernel cannot run the layer (or the reference would fail it).
bool plan_matmul(const LayerDesc& d, MatMulPlan& p) {
  p.qlinear = d.node->op == "QLinearMatMul";
  if (p.qlinear)
    p.slot = {.a = 0, .b = 3, .a_zp = 2, .b_zp = 5, .a_scale = 1, .b_scale = 4, .y_scale = 6, .y_zp = 7};
  const Slots& s = p.slot;
  const size_t n_in = d.inputs.size();
  if (p.qlinear ? n_in != 8 : (n_in < 2 || n_in > 4)) return false;
  if (d.outputs.size() != 1 || !d.outputs[0].present) return false;
  auto present = [&](size_t k) { return k < n_in && d.inputs[k].present; };
  const auto &A = d.inputs[s.a], &B = d.inputs[s.b];
  if (!present(s.a) || !present(s.b) || !is_8bit(A.dtype) || !is_8bit(B.dtype)) return false;
  if ((present(s.a_zp) && d.inputs[s.a_zp].dtype != A.dtype) ||
      (present(s.b_zp) && d.inputs[s.b_zp].dtype != B.dtype))
    return false;
  p.a = A.dtype;
  p.b = B.dtype;
  p.y = d.outputs[0].dtype;
  if (p.qlinear) {
    for (size_t k : {s.a_scale, s.b_scale, s.y_scale})
      if (!present(k) || !is_scale_type(d.inputs[k].dtype)) return false;
    if (!present(s.y_zp) || !is_8bit(d.inputs[s.y_zp].dtype) || p.y != d.inputs[s.y_zp].dtype) return false;
  } else if (p.y != DType::Int32) {
    return false;
  }

  // Operands promoted as the reference does: a 1-D a is a row [1, K], a 1-D b a column [K, 1].
  std::vector<int64_t> ad = A.dims, bd = B.dims;
  if (ad.empty() || bd.empty()) return false;
  const bool a_vec = ad.size() == 1, b_vec = bd.size() == 1;
  if (a_vec) ad.insert(ad.begin(), 1);
  if (b_vec) bd.push_back(1);
  const int64_t K = ad.back(), M = ad[ad.size() - 2], N = bd.back();
  if (bd[bd.size() - 2] != K) return false;
  // Batch axes broadcast right-aligned; then M, N: the reference's output space.
  const size_t na = ad.size() - 2, nbb = bd.size() - 2, nb = std::max(na, nbb);
  std::vector<int64_t> od(nb, 1);
  for (size_t j = 0; j < nb; ++j) {
    const int64_t da = j >= nb - na ? ad[j - (nb - na)] : 1, db = j >= nb - nbb ? bd[j - (nb - nbb)] : 1;
    if (da != db && da != 1 && db != 1) return false;
    od[j] = da == 1 ? db : da;
  }
  std::vector<int64_t> declared(od);
  if (!a_vec) declared.push_back(M);
  if (!b_vec) declared.push_back(N);
  if (declared != d.outputs[0].dims) return false;
  od.push_back(M);
  od.push_back(N);
  if (od.size() > static_cast<size_t>(kMaxRank)) return false;

  MatMulShape& sh = p.shape;
  const auto dims = right_aligned(od, 1);
  for (int k = 0; k < kMaxRank; ++k) sh.dims[k] = dims[static_cast<size_t>(k)];
  place_batch(ad, contiguous_strides(ad), sh.a_stride);
  place_batch(bd, contiguous_strides(bd), sh.b_stride);
  sh.a_stride[kMaxRank - 2] = M == 1 ? 0 : K;  // row m of a
  sh.b_stride[kMaxRank - 1] = N == 1 ? 0 : 1;  // column n of b
  sh.k = K;
  sh.b_k_step = N;
  p.numel = volume(od);

  if (present(s.a_zp) && !operand_zp(d.inputs[s.a_zp], ad, true, p.a_zp)) return false;
  if (present(s.b_zp) && !operand_zp(d.inputs[s.b_zp], bd, false, p.b_zp)) return false;
  p.rq.qlinear = p.qlinear;
  if (p.qlinear) {
    const int64_t rows = static_cast<int64_t>(od.size()) - 2, cols = rows + 1;
    if (!output_param(d.inputs[s.a_scale], od, rows, p.rq.a_scale) ||
        !output_param(d.inputs[s.b_scale], od, cols, p.rq.b_scale) ||
        !output_param(d.inputs[s.y_scale], od, rows, p.rq.y_scale) ||
        !output_param(d.inputs[s.y_zp], od, rows, p.rq.y_zp))
      return false;
  }
  return true;
}

class IntegerMatMulKernel final : public CudaKernel {
 public:
  explicit IntegerMatMulKernel(MatMulPlan p) : p_(std::move(p)) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.numel == 0) return;
    const Slots& s = p_.slot;
    auto data = [&](size_t k) -> const void* { return k < in.size() ? in[k].data : nullptr; };
    Param a_zp = p_.a_zp, b_zp = p_.b_zp;
    a_zp.data = data(s.a_zp);
    b_zp.data = data(s.b_zp);
    Requant rq = p_.rq;
    if (rq.qlinear) {
      rq.a_scale.data = data(s.a_scale);
      rq.b_scale.data = data(s.b_scale);
      rq.y_scale.data = data(s.y_scale);
      rq.y_zp.data = data(s.y_zp);
    }
    const unsigned int grid = blocks_for(p_.numel, kThreads);
    dispatch_8bit(p_.a, [&](auto at) {
      dispatch_8bit(p_.b, [&](auto bt) {
        dispatch_output(p_.y, [&](auto yt) {
          using A = decltype(at);
          using B = decltype(bt);
          using Y = decltype(yt);
          integer_matmul_kernel<A, B, Y><<<grid, kThreads, 0, rc.stream>>>(
              static_cast<const A*>(in[s.a].data), static_cast<const B*>(in[s.b].data),
              static_cast<Y*>(out[0].data), p_.numel, p_.shape, a_zp, b_zp, rq);
          KILN_CUDA_CHECK_LAUNCH();
        });
      });
    });
  }

 private:
  MatMulPlan p_;
};

KILN_REGISTER_KERNEL((planned_factory<MatMulPlan, IntegerMatMulKernel>("cuda.integer_matmul", "MatMulInteger",
                                                                       plan_matmul)));
KILN_REGISTER_KERNEL((planned_factory<MatMulPlan, IntegerMatMulKernel>("cuda.integer_matmul", "QLinearMatMul",
                                                                       plan_matmul)));

}  // namespace
}  // namespace kiln::cuda::integer
