// MatMul (numpy semantics: 1-D operands promoted, batch dims broadcast) and Gemm: shape inference only.
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

KILN_REGISTER_OP({.op = "MatMul", .min_inputs = 2, .max_inputs = 2, .infer = infer_matmul});
KILN_REGISTER_OP({.op = "Gemm", .min_inputs = 2, .max_inputs = 3, .infer = infer_gemm});

}  // namespace
}  // namespace kiln::ops
