// Hardmax: 1 at the first maximum along an axis, 0 elsewhere. Opset 13 works along `axis` (default -1); older
// opsets flatten the input to 2-D at `axis` (default 1) and work along the second dim.
#include "ops/indexing.h"

namespace kiln::ops {
namespace {

int64_t hardmax_axis(const auto& ctx, int64_t rank) {
  return normalize_axis(ctx, ctx.node.attrs.get_int("axis", ctx.opset >= 13 ? -1 : 1), rank);
}

void infer_hardmax(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  if (dt != DType::Undefined && !dtype_is_float(dt))
    ctx.fail(std::string("input must be a float tensor, got ") + dtype_name(dt));
  auto x = in_shape(ctx, 0);
  if (x && x->empty()) ctx.fail("input must have rank >= 1");
  if (x) hardmax_axis(ctx, static_cast<int64_t>(x->size()));
  set_out(ctx, 0, dt, x);
}

void hardmax_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const auto& d = x.dims();
  if (x.rank() == 0) ctx.fail("input must have rank >= 1");
  const int64_t axis = hardmax_axis(ctx, x.rank());
  const int64_t n = ctx.opset >= 13 ? d[axis] : numel({d.begin() + axis, d.end()});
  const int64_t inner = ctx.opset >= 13 ? numel({d.begin() + axis + 1, d.end()}) : 1;
  const int64_t outer = outer_count(x.numel(), n, inner);
  const std::vector<double> v = load_real(ctx, x);
  std::vector<double> y(v.size(), 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      for (int64_t s = 1; s < n; ++s)
        if (v[(o * n + s) * inner + i] > v[(o * n + best) * inner + i]) best = s;
      if (n) y[(o * n + best) * inner + i] = 1.0;
    }
  ctx.out[0] = store_real(ctx, x.dtype(), d, y);
}

KILN_REGISTER_OP({.op = "Hardmax", .infer = infer_hardmax, .reference = hardmax_kernel});

}  // namespace
}  // namespace kiln::ops
