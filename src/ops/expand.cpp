// Expand (bidirectional numpy broadcast to a shape) and Tile (repeat along each axis).
#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_expand(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto s = in_shape(ctx, 0);
  if (const TensorData* shape = ctx.value(1))
    return set_out(ctx, 0, dt, broadcast_shapes(ctx, {s, make_shape(shape->to_int64_vector())}));
  auto n = shape_of_known_rank(ctx, 1);
  if (!s || !n) return set_out(ctx, 0, dt, std::nullopt);
  set_out(ctx, 0, dt, Shape(std::max(s->size(), n->size()), Dim()));
}

// Copies x broadcast (or tiled) into dims: out[idx] = x[idx mod x.dims] via strides.
TensorData replicate(const KernelContext& ctx, const TensorData& x, const std::vector<int64_t>& dims) {
  TensorData out(x.dtype(), dims);
  const size_t es = element_size(ctx, x);
  const size_t off = dims.size() - x.dims().size();
  const auto xs = strides_of(x.dims());
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    int64_t o = 0;
    for (size_t k = 0; k < x.dims().size(); ++k) o += (idx[off + k] % x.dims()[k]) * xs[k];
    std::memcpy(dst, src + o * es, es);
    dst += es;
  });
  return out;
}

void expand_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  ctx.out[0] = replicate(ctx, x, broadcast_dims(ctx, {x.dims(), ctx.input(1).to_int64_vector()}));
}

void infer_tile(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto s = in_shape(ctx, 0);
  if (!s) return set_out(ctx, 0, dt, std::nullopt);
  const TensorData* reps = ctx.value(1);
  if (!reps) return set_out(ctx, 0, dt, Shape(s->size(), Dim()));
  auto r = reps->to_int64_vector();
  if (r.size() != s->size()) ctx.fail("repeats has " + std::to_string(r.size()) + " entries for rank " + std::to_string(s->size()));
  Shape out = *s;
  for (size_t k = 0; k < r.size(); ++k) {
    if (r[k] < 0) ctx.fail("repeats must be non-negative");
    if (out[k].is_static()) out[k] = Dim(out[k].value * r[k]);
    else if (r[k] != 1) out[k] = Dim();
  }
  set_out(ctx, 0, dt, out);
}

void tile_kernel(KernelContext& ctx) { ctx.out[0] = replicate(ctx, ctx.input(0), inferred_dims(ctx)); }

KILN_REGISTER_OP({.op = "Expand", .min_inputs = 2, .max_inputs = 2, .infer = infer_expand, .reference = expand_kernel});
KILN_REGISTER_OP({.op = "Tile", .min_inputs = 2, .max_inputs = 2, .infer = infer_tile, .reference = tile_kernel});

}  // namespace
}  // namespace kiln::ops
