// Trilu and EyeLike: masks of the last two dims by diagonal offset j - i.
//   Trilu (upper=1): keep x[..., i, j] where j - i >= k, else 0; (upper=0): keep where j - i <= k.
//   EyeLike: a 2-D tensor of x's shape that is 1 where j - i == k and 0 elsewhere, in dtype (default: x's).
#include "ops/indexing.h"

namespace kiln::ops {
namespace {

void infer_trilu(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  if (x && x->size() < 2) ctx.fail("input must have rank >= 2, got " + to_string(*x));
  if (auto k = in_shape(ctx, 1); k && !k->empty() && !(k->size() == 1 && (*k)[0] == Dim(1)))
    ctx.fail("k must be a scalar, got shape " + to_string(*k));
  set_out(ctx, 0, ctx.input(0).dtype, x);
}

void trilu_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() < 2) ctx.fail("input must have rank >= 2");
  const int64_t k = ctx.has_input(1) ? scalar_operand(ctx, 1, "k") : 0;
  const bool upper = ctx.node.attrs.get_int("upper", 1) != 0;
  const int64_t rows = x.dims()[x.rank() - 2], cols = x.dims()[x.rank() - 1];
  TensorData out = x.clone();
  const size_t es = element_size(ctx, x);
  auto* p = static_cast<unsigned char*>(out.raw());
  // All-zero bytes are zero in every numeric dtype and false for bool.
  for (int64_t m = 0; m < outer_count(x.numel(), rows, cols); ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        if (upper ? j - i < k : j - i > k) std::memset(p + ((m * rows + i) * cols + j) * es, 0, es);
  ctx.out[0] = out;
}

DType eye_dtype(const auto& ctx, DType in) {
  if (!ctx.node.attrs.has("dtype")) return in;
  const int64_t dt = ctx.node.attrs.get_int("dtype", 0);
  if (dt <= 0 || dt > static_cast<int64_t>(DType::BFloat16) || dt == static_cast<int64_t>(DType::String))
    ctx.fail("dtype " + std::to_string(dt) + " is not a supported tensor type");
  return static_cast<DType>(dt);
}

void infer_eyelike(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  if (x && x->size() != 2) ctx.fail("input must be 2-D, got " + to_string(*x));
  const DType in = ctx.input(0).dtype;
  set_out(ctx, 0, in == DType::Undefined && !ctx.node.attrs.has("dtype") ? in : eye_dtype(ctx, in), x);
}

void eyelike_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() != 2) ctx.fail("input must be 2-D");
  const int64_t k = ctx.node.attrs.get_int("k", 0), rows = x.dims()[0], cols = x.dims()[1];
  TensorData out(eye_dtype(ctx, x.dtype()), x.dims());
  dispatch(ctx, out.dtype(), [&](auto ty) {
    using T = decltype(ty);
    auto* o = out.data<typename T::storage>();
    // Row i's 1 sits at column i + k; k is an attribute and may be far outside [-rows, cols] (no -k
    // overflow).
    const int64_t first = k >= 0 ? 0 : (k < -rows ? rows : -k);
    for (int64_t i = first; i < rows && k < cols && i + k < cols; ++i)
      o[i * cols + i + k] = T::store(typename T::compute(1));
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP(
    {.op = "Trilu", .min_inputs = 1, .max_inputs = 2, .infer = infer_trilu, .reference = trilu_kernel});
KILN_REGISTER_OP({.op = "EyeLike", .infer = infer_eyelike, .reference = eyelike_kernel});

}  // namespace
}  // namespace kiln::ops
