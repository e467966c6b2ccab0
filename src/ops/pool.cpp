// MaxPool / AveragePool / LpPool and the global pools: shape inference only.
#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_pool(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0);
  set_out(ctx, 1, DType::Int64, std::nullopt);  // MaxPool's optional Indices
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  if (x->size() < 3) ctx.fail("input must be at least 3-D [N, C, spatial...], got " + to_string(*x));
  const size_t n = x->size() - 2;
  if (!ctx.node.attrs.has("kernel_shape")) ctx.fail("kernel_shape is required");
  Window w = read_window(ctx, n, {});
  Shape out{(*x)[0], (*x)[1]};
  for (size_t i = 0; i < n; ++i) out.push_back(window_out(ctx, w, i, (*x)[i + 2]));
  set_out(ctx, 0, dt, out);
  set_out(ctx, 1, DType::Int64, out);
}

void infer_global_pool(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  if (x && x->size() < 3) ctx.fail("input must be at least 3-D [N, C, spatial...], got " + to_string(*x));
  if (x) std::fill(x->begin() + 2, x->end(), Dim(1));
  set_out(ctx, 0, ctx.input(0).dtype, x);
}

KILN_REGISTER_OP({.op = "MaxPool", .max_outputs = 2, .infer = infer_pool});
KILN_REGISTER_OP({.op = "AveragePool", .infer = infer_pool});
KILN_REGISTER_OP({.op = "LpPool", .infer = infer_pool});
KILN_REGISTER_OP({.op = "GlobalAveragePool", .infer = infer_global_pool});
KILN_REGISTER_OP({.op = "GlobalMaxPool", .infer = infer_global_pool});

}  // namespace
}  // namespace kiln::ops
