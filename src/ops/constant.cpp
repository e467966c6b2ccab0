// Constant (value / value_float(s) / value_int(s) attributes) and ConstantOfShape.
#include "ops/util.h"

namespace kiln::ops {
namespace {

template <class Ctx>
TensorData constant_value(const Ctx& ctx) {
  const Attributes& a = ctx.node.attrs;
  if (const TensorData* t = a.get_tensor("value")) return *t;
  if (a.has("value_float")) return TensorData::scalar_float(a.get_float("value_float", 0));
  if (a.has("value_int")) return TensorData::scalar_int64(a.get_int("value_int", 0));
  if (a.has("value_floats")) {
    auto v = a.get_floats("value_floats");
    return TensorData::from_vector<float>(DType::Float, {static_cast<int64_t>(v.size())}, v);
  }
  if (a.has("value_ints")) return TensorData::vector_int64(a.get_ints("value_ints"));
  ctx.fail("has no supported value attribute (value, value_float(s), value_int(s))");
}

void infer_constant(InferContext& ctx) {
  TensorData v = constant_value(ctx);
  set_out(ctx, 0, v.dtype(), make_shape(v.dims()));
  ctx.out[0].value = v;
}

void constant_kernel(KernelContext& ctx) { ctx.out[0] = constant_value(ctx); }

// The fill value: one-element tensor attribute, float32 0 by default.
template <class Ctx>
TensorData fill_value(const Ctx& ctx) {
  const TensorData* v = ctx.node.attrs.get_tensor("value");
  if (!v) return TensorData::scalar_float(0);
  if (v->numel() != 1) ctx.fail("value must have exactly one element");
  return *v;
}

void infer_constant_of_shape(InferContext& ctx) {
  const DType dt = fill_value(ctx).dtype();
  if (const TensorData* shape = ctx.value(0)) {
    auto dims = shape->to_int64_vector();
    for (int64_t d : dims)
      if (d < 0) ctx.fail("shape has a negative dimension " + std::to_string(d));
    return set_out(ctx, 0, dt, make_shape(dims));
  }
  set_out(ctx, 0, dt, shape_of_known_rank(ctx, 0));
}

void constant_of_shape_kernel(KernelContext& ctx) {
  const TensorData v = fill_value(ctx);
  TensorData out(v.dtype(), ctx.input(0).to_int64_vector());
  const size_t es = element_size(ctx, v);
  for (int64_t i = 0; i < out.numel(); ++i) std::memcpy(static_cast<unsigned char*>(out.raw()) + i * es, v.raw(), es);
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Constant", .min_inputs = 0, .max_inputs = 0, .infer = infer_constant, .reference = constant_kernel});
KILN_REGISTER_OP({.op = "ConstantOfShape", .infer = infer_constant_of_shape, .reference = constant_of_shape_kernel});

}  // namespace
}  // namespace kiln::ops
