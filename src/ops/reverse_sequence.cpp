// ReverseSequence: for each batch entry b, reverses the first sequence_lens[b] steps along the time axis and
// copies the rest. time_axis and batch_axis are 0 and 1 in either order.
#include "ops/indexing.h"

namespace kiln::ops {
namespace {

std::pair<int64_t, int64_t> time_batch_axes(const auto& ctx) {
  const int64_t t = ctx.node.attrs.get_int("time_axis", 0), b = ctx.node.attrs.get_int("batch_axis", 1);
  if (!((t == 0 && b == 1) || (t == 1 && b == 0)))
    ctx.fail("time_axis and batch_axis must be 0 and 1 in some order, got " + std::to_string(t) + " and " +
             std::to_string(b));
  return {t, b};
}

void infer_reverse_sequence(InferContext& ctx) {
  time_batch_axes(ctx);
  if (const DType t = ctx.input(1).dtype; t != DType::Undefined && t != DType::Int64)
    ctx.fail(std::string("sequence_lens must be int64, got ") + dtype_name(t));
  auto x = in_shape(ctx, 0);
  if (x && x->size() < 2) ctx.fail("input must have rank >= 2, got " + to_string(*x));
  set_out(ctx, 0, ctx.input(0).dtype, x);
}

void reverse_sequence_kernel(KernelContext& ctx) {
  const TensorData &x = ctx.input(0), &lens = ctx.input(1);
  const auto axes = time_batch_axes(ctx);  // not a structured binding: clang 14's lambdas cannot capture one
  const int64_t time_axis = axes.first, batch_axis = axes.second;
  if (x.rank() < 2) ctx.fail("input must have rank >= 2");
  const auto& d = x.dims();
  const int64_t steps = d[time_axis], batch = d[batch_axis], inner = numel({d.begin() + 2, d.end()});
  if (lens.dtype() != DType::Int64)
    ctx.fail(std::string("sequence_lens must be int64, got ") + dtype_name(lens.dtype()));
  if (lens.rank() != 1 || lens.dims()[0] != batch)
    ctx.fail("sequence_lens must have shape [" + std::to_string(batch) + "] (the batch dim)");
  TensorData out = x.clone();
  const size_t es = element_size(ctx, x), row = static_cast<size_t>(inner) * es;
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  auto offset = [&](int64_t b, int64_t t) {
    return (time_axis == 0 ? t * d[1] + b : b * d[1] + t) * inner * es;
  };
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t len = lens.as_int64(b);
    if (len < 0 || len > steps)
      ctx.fail("sequence_lens element " + std::to_string(b) + " is " + std::to_string(len) +
               ", out of range [0, " + std::to_string(steps) + "]");
    for (int64_t t = 0; t < len; ++t) std::memcpy(dst + offset(b, t), src + offset(b, len - 1 - t), row);
  }
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "ReverseSequence",
                  .min_inputs = 2,
                  .max_inputs = 2,
                  .infer = infer_reverse_sequence,
                  .reference = reverse_sequence_kernel});

}  // namespace
}  // namespace kiln::ops
