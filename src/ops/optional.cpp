// Optional, OptionalHasElement, OptionalGetElement. An optional is a rank-0 TensorData of dtype Optional
// holding one value (a tensor or a sequence) or none (TensorData::optional). From opset 18 the two queries
// also take a plain tensor or sequence (which always has an element) and, for OptionalHasElement, no input at
// all.
#include "ops/sequence_util.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

// Optional(input?): wraps the input; without one, an empty optional of the `type` attribute (kept opaque: the
// element type of an empty optional is left unknown).
void infer_optional(InferContext& ctx) {
  if (!ctx.has_input(0)) {
    if (!ctx.node.attrs.has("type")) ctx.fail("needs an input or a 'type' attribute");
    set_container_out(ctx, 0, DType::Optional, nullptr);
    return;
  }
  const InputInfo& in = ctx.input(0);
  if (in.dtype == DType::Optional) ctx.fail("cannot wrap an optional in an optional");
  auto e = std::make_shared<ElementType>();
  e->dtype = in.dtype;
  e->shape = in_shape(ctx, 0);
  e->element = in.element;
  set_container_out(ctx, 0, DType::Optional, std::move(e));
}
void optional_kernel(KernelContext& ctx) {
  if (!ctx.has_input(0)) {
    ctx.out[0] = TensorData::optional(DType::Undefined, std::nullopt);
    return;
  }
  const TensorData& x = ctx.input(0);
  if (x.dtype() == DType::Optional) ctx.fail("cannot wrap an optional in an optional");
  ctx.out[0] = TensorData::optional(x.dtype(), x);
}
KILN_REGISTER_OP({.op = "Optional",
                  .since_opset = 15,
                  .min_inputs = 0,
                  .max_inputs = 1,
                  .infer = infer_optional,
                  .reference = optional_kernel});

void infer_has(InferContext& ctx) {
  set_out(ctx, 0, DType::Bool, Shape{});
}
void has_kernel(KernelContext& ctx) {
  bool has = false;
  if (ctx.has_input(0)) has = ctx.input(0).dtype() != DType::Optional || !ctx.input(0).elements().empty();
  TensorData out(DType::Bool, {});
  out.data<uint8_t>()[0] = has ? 1 : 0;
  ctx.out[0] = out;
}
KILN_REGISTER_OP({.op = "OptionalHasElement",
                  .since_opset = 15,
                  .min_inputs = 0,
                  .max_inputs = 1,
                  .infer = infer_has,
                  .reference = has_kernel});

void infer_get(InferContext& ctx) {
  const InputInfo& in = ctx.input(0);
  if (in.dtype != DType::Optional) {  // a tensor or sequence is its own element
    set_out(ctx, 0, in.dtype, in_shape(ctx, 0));
    ctx.out[0].element = in.element;
    return;
  }
  if (in.value && !in.value->elements().empty()) {
    const TensorData& v = in.value->elements()[0];
    set_out(ctx, 0, v.dtype(), make_shape(v.dims()));
    return;
  }
  if (!in.element) return;  // unknown until run
  set_out(ctx, 0, in.element->dtype, in.element->shape);
  ctx.out[0].element = in.element->element;
}
void get_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.dtype() != DType::Optional) {
    ctx.out[0] = x;
    return;
  }
  if (x.elements().empty()) ctx.fail("the optional input is empty");
  ctx.out[0] = x.elements()[0];
}
KILN_REGISTER_OP(
    {.op = "OptionalGetElement", .since_opset = 15, .infer = infer_get, .reference = get_kernel});

}  // namespace
}  // namespace kiln::ops
