// LRN (local response normalization across channels, AlexNet/GoogLeNet/ZFNet): shape inference and reference.
//   y[n, c, ...] = x[n, c, ...] / (bias + alpha / size * sum_{c' in window(c)} x[n, c', ...]^2) ^ beta
// with window(c) = [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)] clipped to [0, C). Computed in double.
#include <algorithm>
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

int64_t window_size(const auto& ctx) {
  if (!ctx.node.attrs.has("size")) ctx.fail("attribute 'size' is required");
  const int64_t size = ctx.node.attrs.get_int("size", 0);
  if (size < 1) ctx.fail("size must be >= 1, got " + std::to_string(size));
  return size;
}

void infer_lrn(InferContext& ctx) {
  window_size(ctx);
  const DType dt = ctx.input(0).dtype;
  if (dt != DType::Undefined && !dtype_is_float(dt)) ctx.fail(std::string("X must be a float tensor, not ") + dtype_name(dt));
  auto x = in_shape(ctx, 0);
  if (x && x->size() < 3) ctx.fail("X must be [N, C, D1, ...] (rank >= 3), got " + to_string(*x));
  set_out(ctx, 0, dt, x);
}

void lrn_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() < 3) ctx.fail("X must be [N, C, D1, ...] (rank >= 3)");
  const int64_t size = window_size(ctx);
  const double alpha = ctx.node.attrs.get_float("alpha", 1e-4f), beta = ctx.node.attrs.get_float("beta", 0.75f),
               bias = ctx.node.attrs.get_float("bias", 1.0f);
  const int64_t n = x.dims()[0], c = x.dims()[1], inner = numel({x.dims().begin() + 2, x.dims().end()});
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  const std::vector<double> v = load_real(ctx, x);
  std::vector<double> y(v.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < inner; ++i) {
        double sum = 0;
        for (int64_t k = std::max<int64_t>(0, ch - before); k <= std::min(c - 1, ch + after); ++k) {
          const double t = v[static_cast<size_t>((b * c + k) * inner + i)];
          sum += t * t;
        }
        const size_t at = static_cast<size_t>((b * c + ch) * inner + i);
        y[at] = v[at] / std::pow(bias + alpha / static_cast<double>(size) * sum, beta);
      }
  ctx.out[0] = store_real(ctx, x.dtype(), x.dims(), y);
}

KILN_REGISTER_OP({.op = "LRN", .min_inputs = 1, .max_inputs = 1, .infer = infer_lrn, .reference = lrn_kernel});

}  // namespace
}  // namespace kiln::ops
