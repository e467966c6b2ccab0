// Conv and ConvTranspose, 1-D/2-D/3-D: shape inference and reference kernels (direct loops in double).
#include <algorithm>

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

// ------------------------------------------------------------------------------------ reference kernels
// Computed in double (load_real) and rounded once into the output dtype (store_real), see util.h.

// Window attributes as a kernel sees them, every spatial list padded to 3 entries (1-D and 2-D are 3-D
// with leading spatial dims of size 1). Infer has already validated them.
struct Conv3 {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1}, pad[3] = {0, 0, 0};  // pad: begin side
};

std::vector<int64_t> attr_or(const KernelContext& ctx, const char* name, size_t n, int64_t def) {
  return ctx.node.attrs.get_ints(name, std::vector<int64_t>(n, def));
}

// Spatial sizes of X, W and Y; strides/dilations; begin pads resolved from pads or auto_pad.
// `transpose`: ConvTranspose, whose pads come from the output size when output_shape or SAME is used.
Conv3 conv_geometry(const KernelContext& ctx, const TensorData& x, const TensorData& w,
                    const std::vector<int64_t>& y_dims, bool transpose) {
  const size_t n = static_cast<size_t>(x.rank()) - 2;
  if (n < 1 || n > 3) ctx.fail(std::to_string(n) + "-D spatial input is not supported (1-D to 3-D only)");
  const auto strides = attr_or(ctx, "strides", n, 1), dil = attr_or(ctx, "dilations", n, 1);
  const auto pads = attr_or(ctx, "pads", 2 * n, 0), out_pad = attr_or(ctx, "output_padding", n, 0);
  const std::string auto_pad = ctx.node.attrs.get_string("auto_pad", "NOTSET");
  const bool has_out_shape = ctx.node.attrs.has("output_shape");
  Conv3 g;
  const size_t o = 3 - n;  // first used slot
  for (size_t i = 0; i < n; ++i) {
    g.in[o + i] = x.dims()[i + 2];
    g.out[o + i] = y_dims[i + 2];
    g.k[o + i] = w.dims()[i + 2];
    g.stride[o + i] = strides[i];
    g.dil[o + i] = dil[i];
    const int64_t span = (g.k[o + i] - 1) * dil[i] + 1;
    if (!transpose) {
      if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        const int64_t total = std::max<int64_t>(0, (g.out[o + i] - 1) * strides[i] + span - g.in[o + i]);
        g.pad[o + i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      } else if (auto_pad != "VALID") {
        g.pad[o + i] = pads[i];
      }
    } else {
      // Full output of the transposed conv, before cropping by pads.
      const int64_t full = strides[i] * (g.in[o + i] - 1) + out_pad[i] + span;
      if (has_out_shape || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        const int64_t total = std::max<int64_t>(0, full - g.out[o + i]);
        g.pad[o + i] = auto_pad == "SAME_LOWER" ? total - total / 2 : total / 2;
      } else if (auto_pad != "VALID") {
        g.pad[o + i] = pads[i];
      }
    }
  }
  return g;
}

void check_group(const KernelContext& ctx, int64_t group, int64_t c, int64_t m) {
  if (group < 1 || c % group != 0 || m % group != 0)
    ctx.fail("group " + std::to_string(group) + " does not divide channels " + std::to_string(c) + " and " + std::to_string(m));
}

// Y[n, m, o] = B[m] + sum over c in m's group and the kernel window of X[n, c, o*s - pad + k*d] * W[m, c, k].
void conv_kernel(KernelContext& ctx) {
  const TensorData &x = ctx.input(0), &w = ctx.input(1);
  const auto y_dims = inferred_dims(ctx);
  const Conv3 g = conv_geometry(ctx, x, w, y_dims, false);
  const int64_t batch = x.dims()[0], c_in = x.dims()[1], m_out = w.dims()[0], cg = w.dims()[1];
  const int64_t group = ctx.node.attrs.get_int("group", 1);
  check_group(ctx, group, c_in, m_out);
  const int64_t mg = m_out / group;
  const std::vector<double> X = load_real(ctx, x), W = load_real(ctx, w);
  const std::vector<double> B = ctx.has_input(2) ? load_real(ctx, ctx.input(2)) : std::vector<double>(m_out, 0.0);
  const int64_t in_sz = g.in[0] * g.in[1] * g.in[2], k_sz = g.k[0] * g.k[1] * g.k[2];
  const int64_t out_sz = g.out[0] * g.out[1] * g.out[2];
  std::vector<double> Y(static_cast<size_t>(batch * m_out * out_sz));
  double* y = Y.data();
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t m = 0; m < m_out; ++m) {
      const int64_t c0 = (m / mg) * cg;  // first input channel of m's group
      for (int64_t od = 0; od < g.out[0]; ++od)
        for (int64_t oh = 0; oh < g.out[1]; ++oh)
          for (int64_t ow = 0; ow < g.out[2]; ++ow) {
            const int64_t d0 = od * g.stride[0] - g.pad[0], h0 = oh * g.stride[1] - g.pad[1], w0 = ow * g.stride[2] - g.pad[2];
            double acc = B[m];
            for (int64_t c = 0; c < cg; ++c) {
              const double* xc = X.data() + (n * c_in + c0 + c) * in_sz;
              const double* wc = W.data() + (m * cg + c) * k_sz;
              for (int64_t kd = 0; kd < g.k[0]; ++kd) {
                const int64_t id = d0 + kd * g.dil[0];
                if (id < 0 || id >= g.in[0]) continue;
                for (int64_t kh = 0; kh < g.k[1]; ++kh) {
                  const int64_t ih = h0 + kh * g.dil[1];
                  if (ih < 0 || ih >= g.in[1]) continue;
                  const double* xrow = xc + (id * g.in[1] + ih) * g.in[2];
                  const double* wrow = wc + (kd * g.k[1] + kh) * g.k[2];
                  for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                    const int64_t iw = w0 + kw * g.dil[2];
                    if (iw >= 0 && iw < g.in[2]) acc += xrow[iw] * wrow[kw];
                  }
                }
              }
            }
            *y++ = acc;
          }
    }
  ctx.out[0] = store_real(ctx, x.dtype(), y_dims, Y);
}

// The adjoint of Conv: every X[n, c, i] scatters X * W[c, m, k] into Y[n, m, i*s - pad + k*d].
// W is [C_in, C_out/group, k...]; output positions that no input reaches hold only the bias.
void conv_transpose_kernel(KernelContext& ctx) {
  const TensorData &x = ctx.input(0), &w = ctx.input(1);
  const auto y_dims = inferred_dims(ctx);
  const Conv3 g = conv_geometry(ctx, x, w, y_dims, true);
  const int64_t batch = x.dims()[0], c_in = x.dims()[1], mg = w.dims()[1];
  const int64_t group = ctx.node.attrs.get_int("group", 1);
  const int64_t m_out = mg * group;
  check_group(ctx, group, c_in, m_out);
  const int64_t cg = c_in / group;
  const std::vector<double> X = load_real(ctx, x), W = load_real(ctx, w);
  const std::vector<double> B = ctx.has_input(2) ? load_real(ctx, ctx.input(2)) : std::vector<double>(m_out, 0.0);
  const int64_t in_sz = g.in[0] * g.in[1] * g.in[2], k_sz = g.k[0] * g.k[1] * g.k[2];
  const int64_t out_sz = g.out[0] * g.out[1] * g.out[2];
  std::vector<double> Y(static_cast<size_t>(batch * m_out * out_sz));
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t m = 0; m < m_out; ++m) {
      double* yc = Y.data() + (n * m_out + m) * out_sz;
      std::fill(yc, yc + out_sz, B[m]);
      const int64_t grp = m / mg;
      for (int64_t c = grp * cg; c < (grp + 1) * cg; ++c) {
        const double* xc = X.data() + (n * c_in + c) * in_sz;
        const double* wc = W.data() + (c * mg + m % mg) * k_sz;
        for (int64_t id = 0; id < g.in[0]; ++id)
          for (int64_t ih = 0; ih < g.in[1]; ++ih)
            for (int64_t iw = 0; iw < g.in[2]; ++iw) {
              const double v = xc[(id * g.in[1] + ih) * g.in[2] + iw];
              for (int64_t kd = 0; kd < g.k[0]; ++kd) {
                const int64_t od = id * g.stride[0] - g.pad[0] + kd * g.dil[0];
                if (od < 0 || od >= g.out[0]) continue;
                for (int64_t kh = 0; kh < g.k[1]; ++kh) {
                  const int64_t oh = ih * g.stride[1] - g.pad[1] + kh * g.dil[1];
                  if (oh < 0 || oh >= g.out[1]) continue;
                  double* yrow = yc + (od * g.out[1] + oh) * g.out[2];
                  const double* wrow = wc + (kd * g.k[1] + kh) * g.k[2];
                  for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                    const int64_t ow = iw * g.stride[2] - g.pad[2] + kw * g.dil[2];
                    if (ow >= 0 && ow < g.out[2]) yrow[ow] += v * wrow[kw];
                  }
                }
              }
            }
      }
    }
  ctx.out[0] = store_real(ctx, x.dtype(), y_dims, Y);
}

KILN_REGISTER_OP({.op = "Conv", .min_inputs = 2, .max_inputs = 3, .infer = infer_conv, .reference = conv_kernel});
KILN_REGISTER_OP({.op = "ConvTranspose", .min_inputs = 2, .max_inputs = 3, .infer = infer_conv_transpose,
                  .reference = conv_transpose_kernel});

}  // namespace
}  // namespace kiln::ops
