// Cast / CastLike between every numeric dtype and bool. Floats convert to integers by truncation
// toward zero (ONNX/C semantics); anything non-zero becomes true; half types round to nearest even.
// Numbers cast to string print as the shortest decimal that reads back as the same value ("NaN", "INF",
// "-INF" for the non-finite, as ONNX's test data has them); strings cast to numbers parse as C's strtod and
// strtoll do.
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "ops/util.h"

namespace kiln::ops {
namespace {

std::string to_text(const KernelContext& ctx, const TensorData& x, int64_t i) {
  if (dtype_is_integer(x.dtype()))
    return x.dtype() == DType::UInt64 ? std::to_string(x.data<uint64_t>()[i]) : std::to_string(x.as_int64(i));
  if (!dtype_is_float(x.dtype())) unsupported(ctx, x.dtype());
  const double v = x.as_double(i);
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "INF" : "-INF";
  char buf[64];
  // float32 (and the half types, exact in float32) print their own shortest form, not float64's.
  const auto r = x.dtype() == DType::Double ? std::to_chars(buf, buf + sizeof buf, v)
                                            : std::to_chars(buf, buf + sizeof buf, static_cast<float>(v));
  return std::string(buf, r.ptr);
}

void string_cast(KernelContext& ctx, const TensorData& x, DType to) {
  TensorData out(to, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (to == DType::String) {
      out.strings()[static_cast<size_t>(i)] =
          x.dtype() == DType::String ? x.strings()[static_cast<size_t>(i)] : to_text(ctx, x, i);
      continue;
    }
    const std::string& s = x.strings()[static_cast<size_t>(i)];
    char* end = nullptr;
    const bool integer = dtype_is_integer(to);
    const double d = integer ? 0 : std::strtod(s.c_str(), &end);
    const long long n = integer ? std::strtoll(s.c_str(), &end, 10) : 0;
    if (s.empty() || end != s.c_str() + s.size())
      ctx.fail("cannot read string \"" + s + "\" (element " + std::to_string(i) + ") as " + dtype_name(to));
    dispatch(ctx, to, [&](auto ty) {
      using T = decltype(ty);
      out.data<typename T::storage>()[i] =
          T::store(integer ? static_cast<typename T::compute>(n) : static_cast<typename T::compute>(d));
    });
  }
  ctx.out[0] = out;
}

DType target(const InferContext& ctx) {
  if (ctx.node.op == "CastLike") return ctx.input(1).dtype;
  const int64_t to = ctx.node.attrs.get_int("to", 0);
  if (to <= 0 || to > static_cast<int64_t>(DType::BFloat16))
    ctx.fail("'to' is not a valid dtype: " + std::to_string(to));
  return static_cast<DType>(to);
}

void infer_cast(InferContext& ctx) {
  set_out(ctx, 0, target(ctx), in_shape(ctx, 0));
}

void cast_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const DType to =
      ctx.node.op == "CastLike" ? ctx.input(1).dtype() : static_cast<DType>(ctx.node.attrs.get_int("to", 0));
  if (x.dtype() == DType::String || to == DType::String) return string_cast(ctx, x, to);
  TensorData out(to, x.dims());
  dispatch(ctx, x.dtype(), [&](auto from_ty) {
    using F = decltype(from_ty);
    dispatch(ctx, to, [&](auto to_ty) {
      using T = decltype(to_ty);
      const auto* src = x.data<typename F::storage>();
      auto* dst = out.data<typename T::storage>();
      for (int64_t i = 0; i < x.numel(); ++i)
        dst[i] = T::store(static_cast<typename T::compute>(F::load(src[i])));
    });
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Cast", .infer = infer_cast, .reference = cast_kernel});
KILN_REGISTER_OP(
    {.op = "CastLike", .min_inputs = 2, .max_inputs = 2, .infer = infer_cast, .reference = cast_kernel});

}  // namespace
}  // namespace kiln::ops
