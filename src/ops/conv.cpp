// Conv and ConvTranspose, 1-D/2-D/3-D, shape inference only (reference kernels come later).
#include "ops/util.h"

namespace kiln::ops {
namespace {

// Checks shared by both: X is [N, C, spatial...], W has X's rank. Returns the spatial rank.
size_t check_ranks(InferContext& ctx, const Shape& x, const Shape& w) {
  if (x.size() < 3) ctx.fail("input must be at least 3-D [N, C, spatial...], got " + to_string(x));
  if (w.size() != x.size())
    ctx.fail("weight " + to_string(w) + " must have the input's rank " + std::to_string(x.size()));
  return x.size() - 2;
}

std::vector<int64_t> spatial_kernel(const Shape& w) {
  std::vector<int64_t> k;
  for (size_t i = 2; i < w.size(); ++i) k.push_back(w[i].is_static() ? w[i].value : -1);
  return k;
}

void check_bias(InferContext& ctx, const Dim& channels) {
  auto b = in_shape(ctx, 2);
  if (!b) return;
  if (b->size() != 1) ctx.fail("bias must be 1-D, got " + to_string(*b));
  if ((*b)[0].is_static() && channels.is_static() && (*b)[0].value != channels.value)
    ctx.fail("bias has " + std::to_string((*b)[0].value) + " entries for " + std::to_string(channels.value) + " output channels");
}

void infer_conv(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0), w = in_shape(ctx, 1);
  if (!x || !w) return set_out(ctx, 0, dt, std::nullopt);
  const size_t n = check_ranks(ctx, *x, *w);
  const int64_t group = ctx.node.attrs.get_int("group", 1);
  if (group < 1) ctx.fail("group must be >= 1");
  const Dim c = (*x)[1], m = (*w)[0], cg = (*w)[1];
  if (c.is_static() && cg.is_static() && c.value != cg.value * group)
    ctx.fail("input has " + std::to_string(c.value) + " channels but weight " + to_string(*w) + " with group " +
             std::to_string(group) + " expects " + std::to_string(cg.value * group));
  if (m.is_static() && m.value % group != 0)
    ctx.fail("output channels " + std::to_string(m.value) + " are not divisible by group " + std::to_string(group));
  check_bias(ctx, m);
  Window win = read_window(ctx, n, spatial_kernel(*w));
  for (size_t i = 0; i < n; ++i)
    if (win.kernel[i] >= 0 && (*w)[i + 2].is_static() && win.kernel[i] != (*w)[i + 2].value)
      ctx.fail("kernel_shape does not match weight " + to_string(*w));
  Shape out{(*x)[0], m};
  for (size_t i = 0; i < n; ++i) out.push_back(window_out(ctx, win, i, (*x)[i + 2]));
  set_out(ctx, 0, dt, out);
}

void infer_conv_transpose(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0), w = in_shape(ctx, 1);
  if (!x || !w) return set_out(ctx, 0, dt, std::nullopt);
  const size_t n = check_ranks(ctx, *x, *w);
  const int64_t group = ctx.node.attrs.get_int("group", 1);
  if (group < 1) ctx.fail("group must be >= 1");
  const Dim c = (*x)[1];
  // ConvTranspose weights are [C_in, C_out/group, k...].
  if (c.is_static() && (*w)[0].is_static() && c.value != (*w)[0].value)
    ctx.fail("input has " + std::to_string(c.value) + " channels but weight " + to_string(*w) + " expects " +
             std::to_string((*w)[0].value));
  const Dim m = (*w)[1].is_static() ? Dim((*w)[1].value * group) : Dim();
  check_bias(ctx, m);
  Window win = read_window(ctx, n, spatial_kernel(*w));
  const auto out_pad = ctx.node.attrs.get_ints("output_padding", std::vector<int64_t>(n, 0));
  if (out_pad.size() != n) ctx.fail("output_padding must have " + std::to_string(n) + " entries");
  auto out_shape = ctx.node.attrs.get_ints("output_shape");
  if (!out_shape.empty() && out_shape.size() == n + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (!out_shape.empty() && out_shape.size() != n) ctx.fail("output_shape must have " + std::to_string(n) + " entries");
  Shape out{(*x)[0], m};
  for (size_t i = 0; i < n; ++i) {
    const Dim& in = (*x)[i + 2];
    if (!out_shape.empty()) {
      out.push_back(Dim(out_shape[i]));
    } else if (!in.is_static() || win.kernel[i] < 0) {
      out.push_back(Dim());
    } else if (win.auto_pad == "SAME_UPPER" || win.auto_pad == "SAME_LOWER") {
      out.push_back(Dim(in.value * win.strides[i]));
    } else {
      const int64_t pads = win.auto_pad == "VALID" ? 0 : win.pads[i] + win.pads[i + n];
      const int64_t o = win.strides[i] * (in.value - 1) + out_pad[i] + (win.kernel[i] - 1) * win.dilations[i] + 1 - pads;
      if (o <= 0) ctx.fail("output size along spatial axis " + std::to_string(i) + " would be " + std::to_string(o));
      out.push_back(Dim(o));
    }
  }
  set_out(ctx, 0, dt, out);
}

KILN_REGISTER_OP({.op = "Conv", .min_inputs = 2, .max_inputs = 3, .infer = infer_conv});
KILN_REGISTER_OP({.op = "ConvTranspose", .min_inputs = 2, .max_inputs = 3, .infer = infer_conv_transpose});

}  // namespace
}  // namespace kiln::ops
