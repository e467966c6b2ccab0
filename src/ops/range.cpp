// Range(start, limit, delta): ceil((limit - start) / delta) elements start + i*delta, in start's dtype.
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

// Element count; integers use exact integer arithmetic so large int64 bounds don't round through double.
template <class Ctx, class V>
int64_t range_count(const Ctx& ctx, V start, V limit, V delta) {
  if (delta == 0) ctx.fail("delta cannot be 0");
  if constexpr (std::is_floating_point_v<V>) {
    return std::max<int64_t>(static_cast<int64_t>(std::ceil((limit - start) / delta)), 0);
  } else {
    const int64_t a = start, b = limit, c = delta;
    return std::max<int64_t>(c > 0 ? (b - a + c - 1) / c : (a - b - c - 1) / -c, 0);
  }
}

void infer_range(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  for (size_t k = 0; k < 3; ++k) {
    if (ctx.in[k].dtype != DType::Undefined && dt != DType::Undefined && ctx.in[k].dtype != dt)
      ctx.fail("start, limit and delta must have the same dtype");
    auto s = in_shape(ctx, k);
    if (s && !s->empty() && !(s->size() == 1 && (*s)[0] == Dim(1))) ctx.fail("start, limit and delta must be scalars");
  }
  if (ctx.value(0) && ctx.value(1) && ctx.value(2)) {
    const TensorData &s = *ctx.value(0), &l = *ctx.value(1), &d = *ctx.value(2);
    const int64_t n = dtype_is_integer(dt) ? range_count(ctx, s.as_int64(0), l.as_int64(0), d.as_int64(0))
                                           : range_count(ctx, s.as_double(0), l.as_double(0), d.as_double(0));
    return set_out(ctx, 0, dt, Shape{n});
  }
  set_out(ctx, 0, dt, Shape{Dim()});
}

void range_kernel(KernelContext& ctx) {
  const TensorData &s = ctx.input(0), &l = ctx.input(1), &d = ctx.input(2);
  dispatch(ctx, s.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using C = typename T::compute;
    if constexpr (T::is_bool) {
      unsupported(ctx, s.dtype());
    } else {
      const C a = T::load(s.data<typename T::storage>()[0]), b = T::load(l.data<typename T::storage>()[0]),
              c = T::load(d.data<typename T::storage>()[0]);
      const int64_t n = range_count(ctx, a, b, c);
      TensorData out(s.dtype(), {n});
      for (int64_t i = 0; i < n; ++i)
        out.data<typename T::storage>()[i] = T::store(static_cast<C>(a + static_cast<C>(i) * c));
      ctx.out[0] = out;
    }
  });
}

KILN_REGISTER_OP({.op = "Range", .min_inputs = 3, .max_inputs = 3, .infer = infer_range, .reference = range_kernel});

}  // namespace
}  // namespace kiln::ops
