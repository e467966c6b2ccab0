// Shape and Size: known from the input's shape alone, so inference sets their values whenever the
// relevant dims are static. That is what resolves PyTorch's shape arithmetic at build time.
#include <algorithm>

#include "ops/util.h"

namespace kiln::ops {
namespace {

// The [start, end) range of dims Shape returns (opset 15 start/end attributes, clamped like Slice).
std::pair<int64_t, int64_t> shape_range(const Node& node, int64_t rank) {
  auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  const int64_t start = clamp(node.attrs.get_int("start", 0));
  const int64_t end = clamp(node.attrs.get_int("end", rank));
  return {start, std::max(start, end)};
}

void infer_shape(InferContext& ctx) {
  auto s = in_shape(ctx, 0);
  if (!s) return set_out(ctx, 0, DType::Int64, Shape{Dim()});
  auto [start, end] = shape_range(ctx.node, static_cast<int64_t>(s->size()));
  set_out(ctx, 0, DType::Int64, Shape{end - start});
  Shape part(s->begin() + start, s->begin() + end);
  if (is_static(part)) ctx.out[0].value = TensorData::vector_int64(static_dims(part));
}

void shape_kernel(KernelContext& ctx) {
  const auto& dims = ctx.input(0).dims();
  auto [start, end] = shape_range(ctx.node, static_cast<int64_t>(dims.size()));
  ctx.out[0] = TensorData::vector_int64({dims.begin() + start, dims.begin() + end});
}

void infer_size(InferContext& ctx) {
  set_out(ctx, 0, DType::Int64, Shape{});
  auto s = in_shape(ctx, 0);
  if (s && is_static(*s)) ctx.out[0].value = TensorData::scalar_int64(numel(static_dims(*s)));
}

void size_kernel(KernelContext& ctx) { ctx.out[0] = TensorData::scalar_int64(ctx.input(0).numel()); }

KILN_REGISTER_OP({.op = "Shape", .infer = infer_shape, .reference = shape_kernel});
KILN_REGISTER_OP({.op = "Size", .infer = infer_size, .reference = size_kernel});

}  // namespace
}  // namespace kiln::ops
