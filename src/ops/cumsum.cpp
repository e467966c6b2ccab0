// CumSum: running sums along one axis (a scalar input). exclusive=1 leaves the element itself out of its sum,
// reverse=1 sums from the end. Floats accumulate in double; integers wrap (two's complement) instead of
// overflowing.
#include "ops/indexing.h"

namespace kiln::ops {
namespace {

void infer_cumsum(InferContext& ctx) {
  require_index_dtype(ctx, ctx.input(1).dtype, "axis");
  const DType dt = ctx.input(0).dtype;
  if (dt == DType::Bool || dt == DType::String)
    ctx.fail(std::string("x must be numeric, got ") + dtype_name(dt));
  auto x = in_shape(ctx, 0), axis = in_shape(ctx, 1);
  if (axis && axis->size() > 1) ctx.fail("axis must be a scalar, got shape " + to_string(*axis));
  if (const TensorData* a = ctx.value(1); a && x && a->numel() == 1)
    normalize_axis(ctx, a->as_int64(0), std::max<int64_t>(1, static_cast<int64_t>(x->size())));
  set_out(ctx, 0, dt, x);
}

void cumsum_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const auto& d = x.dims();
  // A scalar x is cumulated as a one-element vector.
  const int64_t axis = normalize_axis(ctx, scalar_operand(ctx, 1, "axis"), std::max<int64_t>(1, x.rank()));
  const int64_t n = x.rank() ? d[axis] : 1, inner = x.rank() ? numel({d.begin() + axis + 1, d.end()}) : 1;
  const int64_t outer = outer_count(x.numel(), n, inner);
  const bool exclusive = ctx.node.attrs.get_int("exclusive", 0) != 0,
             reverse = ctx.node.attrs.get_int("reverse", 0) != 0;
  TensorData out(x.dtype(), d);
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    if constexpr (T::is_bool) {
      unsupported(ctx, x.dtype());
    } else {
      using Acc = std::conditional_t<T::is_float, double, uint64_t>;
      const auto* src = x.data<typename T::storage>();
      auto* dst = out.data<typename T::storage>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          Acc acc = 0;
          for (int64_t s = 0; s < n; ++s) {
            const int64_t at = (o * n + (reverse ? n - 1 - s : s)) * inner + i;
            const Acc v = static_cast<Acc>(T::load(src[at]));
            if (!exclusive) acc += v;
            dst[at] = T::store(static_cast<typename T::compute>(acc));
            if (exclusive) acc += v;
          }
        }
    }
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP(
    {.op = "CumSum", .min_inputs = 2, .max_inputs = 2, .infer = infer_cumsum, .reference = cumsum_kernel});

}  // namespace
}  // namespace kiln::ops
