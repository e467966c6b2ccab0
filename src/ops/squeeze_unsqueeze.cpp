// Squeeze / Unsqueeze: axes are an attribute before opset 13 and an input since. Views of the input.
#include <algorithm>

#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_squeeze(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto s = in_shape(ctx, 0);
  auto axes = ints_arg(ctx, 1, "axes");
  if (!s || !axes) return set_out(ctx, 0, dt, std::nullopt);
  const int64_t r = static_cast<int64_t>(s->size());
  Shape out;
  if (axes->empty()) {  // drop every size-1 dim: needs to know which dims are 1
    for (const Dim& d : *s) {
      if (!d.is_static()) return set_out(ctx, 0, dt, std::nullopt);
      if (d.value != 1) out.push_back(d);
    }
    return set_out(ctx, 0, dt, out);
  }
  auto ax = normalize_axes(ctx, *axes, r);
  for (int64_t k = 0; k < r; ++k) {
    if (std::find(ax.begin(), ax.end(), k) == ax.end()) {
      out.push_back((*s)[k]);
    } else if ((*s)[k].is_static() && (*s)[k].value != 1) {
      ctx.fail("cannot squeeze axis " + std::to_string(k) + " of size " + std::to_string((*s)[k].value));
    }
  }
  set_out(ctx, 0, dt, out);
}

void infer_unsqueeze(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto s = in_shape(ctx, 0);
  auto axes = ints_arg(ctx, 1, "axes");
  if (!s || !axes) return set_out(ctx, 0, dt, std::nullopt);
  if (axes->empty()) ctx.fail("axes must not be empty");
  const int64_t r = static_cast<int64_t>(s->size() + axes->size());
  auto ax = normalize_axes(ctx, *axes, r);
  Shape out;
  auto it = s->begin();
  for (int64_t k = 0; k < r; ++k)
    out.push_back(std::find(ax.begin(), ax.end(), k) != ax.end() ? Dim(1) : *it++);
  set_out(ctx, 0, dt, out);
}

KILN_REGISTER_OP({.op = "Squeeze", .min_inputs = 1, .max_inputs = 2, .infer = infer_squeeze, .reference = copy_input_kernel});
KILN_REGISTER_OP({.op = "Unsqueeze", .min_inputs = 1, .max_inputs = 2, .infer = infer_unsqueeze, .reference = copy_input_kernel});

}  // namespace
}  // namespace kiln::ops
