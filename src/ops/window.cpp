// HannWindow, HammingWindow, BlackmanWindow (opset 17): a 1-D window of `size` (a scalar input) values
//   w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N),  N = size (periodic, the default) or size - 1
// in output_datatype (default float). The output's length is the input's value: known at inference only when
// the size is a constant. A window of one value is [1] (as PyTorch defines it; the formula has N = 0 there
// when symmetric).
#include <cmath>
#include <numbers>

#include "ops/util.h"

namespace kiln::ops {
namespace {

struct Coefficients {
  double a0, a1, a2;
};

template <class Ctx>
int64_t window_size(const Ctx& ctx, const TensorData& size) {
  if (size.numel() != 1) ctx.fail("size must be a scalar");
  if (size.dtype() != DType::Int32 && size.dtype() != DType::Int64) ctx.fail("size must be int32 or int64");
  const int64_t n = size.as_int64(0);
  if (n < 0) ctx.fail("size must be >= 0, got " + std::to_string(n));
  return n;
}

void infer_window(InferContext& ctx) {
  const DType dt = output_datatype(ctx);
  if (const TensorData* size = ctx.value(0)) return set_out(ctx, 0, dt, Shape{Dim(window_size(ctx, *size))});
  set_out(ctx, 0, dt, Shape{Dim()});
}

template <Coefficients c>
void window_kernel(KernelContext& ctx) {
  const int64_t size = window_size(ctx, ctx.input(0));
  const bool periodic = ctx.node.attrs.get_int("periodic", 1) != 0;
  const double n_total = static_cast<double>(periodic ? size : size - 1);
  TensorData out(output_datatype(ctx), {size});
  dispatch(ctx, out.dtype(), [&](auto ty) {
    using T = decltype(ty);
    for (int64_t n = 0; n < size; ++n) {
      const double x = 2 * std::numbers::pi * static_cast<double>(n) / n_total;
      const double w = size == 1 ? 1.0 : c.a0 - c.a1 * std::cos(x) + c.a2 * std::cos(2 * x);
      out.data<typename T::storage>()[n] = T::store(static_cast<typename T::compute>(w));
    }
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "HannWindow",
                  .since_opset = 17,
                  .infer = infer_window,
                  .reference = window_kernel<Coefficients{0.5, 0.5, 0}>});
KILN_REGISTER_OP({.op = "HammingWindow",
                  .since_opset = 17,
                  .infer = infer_window,
                  .reference = window_kernel<Coefficients{25.0 / 46, 21.0 / 46, 0}>});
KILN_REGISTER_OP({.op = "BlackmanWindow",
                  .since_opset = 17,
                  .infer = infer_window,
                  .reference = window_kernel<Coefficients{0.42, 0.5, 0.08}>});

}  // namespace
}  // namespace kiln::ops
