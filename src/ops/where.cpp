// Where(cond, x, y) with three-way broadcasting.
#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_where(InferContext& ctx) {
  if (ctx.input(0).dtype != DType::Bool && ctx.input(0).dtype != DType::Undefined)
    ctx.fail(std::string("condition must be bool, got ") + dtype_name(ctx.input(0).dtype));
  const DType dt = ctx.input(1).dtype;
  if (dt != DType::Undefined && ctx.input(2).dtype != DType::Undefined && ctx.input(2).dtype != dt)
    ctx.fail(std::string("x and y dtypes differ: ") + dtype_name(dt) + " vs " + dtype_name(ctx.input(2).dtype));
  set_out(ctx, 0, dt, broadcast_shapes(ctx, {in_shape(ctx, 0), in_shape(ctx, 1), in_shape(ctx, 2)}));
}

void where_kernel(KernelContext& ctx) {
  const TensorData &c = ctx.input(0), &x = ctx.input(1), &y = ctx.input(2);
  if (c.dtype() != DType::Bool) unsupported(ctx, c.dtype());
  if (x.dtype() != y.dtype()) ctx.fail("x and y dtypes differ");
  const auto dims = broadcast_dims(ctx, {c.dims(), x.dims(), y.dims()});
  const auto sc = broadcast_strides(c.dims(), dims), sx = broadcast_strides(x.dims(), dims),
             sy = broadcast_strides(y.dims(), dims);
  TensorData out(x.dtype(), dims);
  const size_t es = element_size(ctx, x);
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    const bool pick_x = c.data<uint8_t>()[dot(idx, sc)] != 0;
    const void* src = pick_x ? static_cast<const unsigned char*>(x.raw()) + dot(idx, sx) * es
                             : static_cast<const unsigned char*>(y.raw()) + dot(idx, sy) * es;
    std::memcpy(dst, src, es);
    dst += es;
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Where", .min_inputs = 3, .max_inputs = 3, .infer = infer_where, .reference = where_kernel});

}  // namespace
}  // namespace kiln::ops
