// Cast / CastLike between every numeric dtype and bool. Floats convert to integers by truncation
// toward zero (ONNX/C semantics); anything non-zero becomes true; half types round to nearest even.
#include "ops/util.h"

namespace kiln::ops {
namespace {

DType target(const InferContext& ctx) {
  if (ctx.node.op == "CastLike") return ctx.input(1).dtype;
  const int64_t to = ctx.node.attrs.get_int("to", 0);
  if (to <= 0 || to > static_cast<int64_t>(DType::BFloat16)) ctx.fail("'to' is not a valid dtype: " + std::to_string(to));
  return static_cast<DType>(to);
}

void infer_cast(InferContext& ctx) { set_out(ctx, 0, target(ctx), in_shape(ctx, 0)); }

void cast_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const DType to = ctx.node.op == "CastLike" ? ctx.input(1).dtype() : static_cast<DType>(ctx.node.attrs.get_int("to", 0));
  TensorData out(to, x.dims());
  dispatch(ctx, x.dtype(), [&](auto from_ty) {
    using F = decltype(from_ty);
    dispatch(ctx, to, [&](auto to_ty) {
      using T = decltype(to_ty);
      const auto* src = x.data<typename F::storage>();
      auto* dst = out.data<typename T::storage>();
      for (int64_t i = 0; i < x.numel(); ++i) dst[i] = T::store(static_cast<typename T::compute>(F::load(src[i])));
    });
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Cast", .infer = infer_cast, .reference = cast_kernel});
KILN_REGISTER_OP({.op = "CastLike", .min_inputs = 2, .max_inputs = 2, .infer = infer_cast, .reference = cast_kernel});

}  // namespace
}  // namespace kiln::ops
