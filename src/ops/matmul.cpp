// MatMul (numpy semantics: 1-D operands promoted, batch dims broadcast) and Gemm: shape inference and
// reference kernels (floats accumulate in double, integers in 64 bits with wraparound).
#include <type_traits>

#include "ops/util.h"

namespace kiln::ops {
namespace {

void check_inner(InferContext& ctx, const Dim& k1, const Dim& k2) {
  if (k1.is_static() && k2.is_static() && k1.value != k2.value)
    ctx.fail("inner dimensions differ: " + std::to_string(k1.value) + " vs " + std::to_string(k2.value));
}

void infer_matmul(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto a = in_shape(ctx, 0), b = in_shape(ctx, 1);
  if (!a || !b) return set_out(ctx, 0, dt, std::nullopt);
  if (a->empty() || b->empty()) ctx.fail("MatMul operands must not be scalars");
  Shape x = *a, y = *b;
  const bool a_vec = x.size() == 1, b_vec = y.size() == 1;
  if (a_vec) x.insert(x.begin(), Dim(1));
  if (b_vec) y.push_back(Dim(1));
  check_inner(ctx, x.back(), y[y.size() - 2]);
  auto batch = broadcast_shapes(ctx, {Shape(x.begin(), x.end() - 2), Shape(y.begin(), y.end() - 2)});
  Shape out = *batch;
  if (!a_vec) out.push_back(x[x.size() - 2]);
  if (!b_vec) out.push_back(y.back());
  set_out(ctx, 0, dt, out);
}

void infer_gemm(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto a = in_shape(ctx, 0), b = in_shape(ctx, 1);
  if (!a || !b) return set_out(ctx, 0, dt, std::nullopt);
  if (a->size() != 2 || b->size() != 2) ctx.fail("A and B must be 2-D, got " + to_string(*a) + " and " + to_string(*b));
  const bool ta = ctx.node.attrs.get_int("transA", 0), tb = ctx.node.attrs.get_int("transB", 0);
  const Dim m = (*a)[ta ? 1 : 0], k1 = (*a)[ta ? 0 : 1], k2 = (*b)[tb ? 1 : 0], n = (*b)[tb ? 0 : 1];
  check_inner(ctx, k1, k2);
  Shape out{m, n};
  if (auto c = in_shape(ctx, 2)) {  // C must broadcast to [M, N] (unidirectionally)
    auto bc = broadcast_shapes(ctx, {out, c});
    if (bc && bc->size() != 2) ctx.fail("C " + to_string(*c) + " does not broadcast to [M, N]");
  }
  set_out(ctx, 0, dt, out);
}

// Accumulator of an element type: double for floats, 64-bit (wrapping) integers otherwise.
template <class T>
using Acc = std::conditional_t<T::is_float, double, std::conditional_t<T::is_signed, int64_t, uint64_t>>;

void check_same_dtype(const KernelContext& ctx, const TensorData& a, const TensorData& b) {
  if (a.dtype() != b.dtype())
    ctx.fail(std::string("operand dtypes differ: ") + dtype_name(a.dtype()) + " vs " + dtype_name(b.dtype()));
}

// Y[batch, i, j] = sum_k A[batch_a, i, k] * B[batch_b, k, j], batch dims broadcast; a 1-D A is [1, K] and a
// 1-D B is [K, 1], the added dim dropped from the result.
void matmul_kernel(KernelContext& ctx) {
  const TensorData &a = ctx.input(0), &b = ctx.input(1);
  check_same_dtype(ctx, a, b);
  if (a.rank() == 0 || b.rank() == 0) ctx.fail("MatMul operands must not be scalars");
  std::vector<int64_t> ad = a.dims(), bd = b.dims();
  if (a.rank() == 1) ad.insert(ad.begin(), 1);
  if (b.rank() == 1) bd.push_back(1);
  const int64_t m = ad[ad.size() - 2], k = ad.back(), n = bd.back();
  if (bd[bd.size() - 2] != k) ctx.fail("inner dimensions differ: " + std::to_string(k) + " vs " + std::to_string(bd[bd.size() - 2]));
  const std::vector<int64_t> a_batch(ad.begin(), ad.end() - 2), b_batch(bd.begin(), bd.end() - 2);
  const auto batch = broadcast_dims(ctx, {a_batch, b_batch});
  // Offsets of each batch's matrix: broadcast strides over the batch dims, in whole matrices.
  const auto as = broadcast_strides(a_batch, batch), bs = broadcast_strides(b_batch, batch);
  const auto y_dims = inferred_dims(ctx);
  TensorData out(a.dtype(), y_dims);
  dispatch(ctx, a.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (T::is_bool) {
      unsupported(ctx, a.dtype());
    } else {
      const S *pa = a.data<S>(), *pb = b.data<S>();
      S* y = out.data<S>();
      for_each_index(batch, [&](const std::vector<int64_t>& idx) {
        const S* ma = pa + dot(idx, as) * m * k;
        const S* mb = pb + dot(idx, bs) * k * n;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            Acc<T> acc = 0;
            for (int64_t p = 0; p < k; ++p)
              acc += static_cast<Acc<T>>(T::load(ma[i * k + p])) * static_cast<Acc<T>>(T::load(mb[p * n + j]));
            *y++ = T::store(static_cast<typename T::compute>(acc));
          }
      });
    }
  });
  ctx.out[0] = out;
}

// Y = alpha * A' B' + beta * C, A' = transA ? A^T : A (likewise B'), C broadcast to [M, N].
void gemm_kernel(KernelContext& ctx) {
  const TensorData &a = ctx.input(0), &b = ctx.input(1);
  check_same_dtype(ctx, a, b);
  if (a.rank() != 2 || b.rank() != 2) ctx.fail("A and B must be 2-D");
  const bool ta = ctx.node.attrs.get_int("transA", 0), tb = ctx.node.attrs.get_int("transB", 0);
  const double alpha = ctx.node.attrs.get_float("alpha", 1.0f), beta = ctx.node.attrs.get_float("beta", 1.0f);
  const int64_t m = a.dims()[ta ? 1 : 0], k = a.dims()[ta ? 0 : 1], n = b.dims()[tb ? 0 : 1];
  if (b.dims()[tb ? 1 : 0] != k) ctx.fail("inner dimensions differ");
  // Element strides of A'[i, p] and B'[p, j].
  const int64_t a_i = ta ? 1 : k, a_p = ta ? m : 1, b_p = tb ? 1 : n, b_j = tb ? k : 1;
  const TensorData* c = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (c) {
    check_same_dtype(ctx, a, *c);
    if (broadcast_dims(ctx, {{m, n}, c->dims()}) != std::vector<int64_t>{m, n})
      ctx.fail("C " + to_string(make_shape(c->dims())) + " does not broadcast to [M, N]");
  }
  const auto cs = c ? broadcast_strides(c->dims(), {m, n}) : std::vector<int64_t>{0, 0};
  TensorData out(a.dtype(), {m, n});
  dispatch(ctx, a.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (T::is_bool) {
      unsupported(ctx, a.dtype());
    } else {
      const S *pa = a.data<S>(), *pb = b.data<S>(), *pc = c ? c->data<S>() : nullptr;
      S* y = out.data<S>();
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          Acc<T> acc = 0;
          for (int64_t p = 0; p < k; ++p)
            acc += static_cast<Acc<T>>(T::load(pa[i * a_i + p * a_p])) * static_cast<Acc<T>>(T::load(pb[p * b_p + j * b_j]));
          // alpha and beta are floats: integer Gemm applies them in double (exact below 2^53).
          double v = alpha * static_cast<double>(acc);
          if (pc) v += beta * static_cast<double>(T::load(pc[i * cs[0] + j * cs[1]]));
          y[i * n + j] = T::store(static_cast<typename T::compute>(v));
        }
    }
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "MatMul", .min_inputs = 2, .max_inputs = 2, .infer = infer_matmul, .reference = matmul_kernel});
KILN_REGISTER_OP({.op = "Gemm", .min_inputs = 2, .max_inputs = 3, .infer = infer_gemm, .reference = gemm_kernel});

}  // namespace
}  // namespace kiln::ops
