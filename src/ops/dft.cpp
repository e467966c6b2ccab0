// DFT and STFT: discrete Fourier transforms by the definition (O(n^2) sums in double). Signals are real
// ([..., 1]) or complex ([..., 2]: real, imaginary); outputs are complex.
//   DFT: along `axis` (attribute up to opset 19, input 2 from opset 20), the signal zero-padded or truncated
//        to dft_length; inverse uses exp(+i...) and divides by n; onesided keeps bins 0..n/2.
//   STFT: frames of frame_length samples every frame_step samples, each multiplied by `window` (default
//        rectangular) and transformed; onesided (the default) keeps bins 0..frame_length/2.
#include <cmath>
#include <numbers>

#include "ops/util.h"

namespace kiln::ops {
namespace {

// The value of optional scalar int input k, nullopt when absent or not known (infer form).
std::optional<int64_t> scalar_input(const InferContext& ctx, size_t k, bool& unknown) {
  if (!ctx.has_input(k)) return std::nullopt;
  const TensorData* v = ctx.value(k);
  if (!v) {
    unknown = true;
    return std::nullopt;
  }
  if (v->numel() != 1) ctx.fail("input " + std::to_string(k) + " must be a scalar");
  return v->as_int64(0);
}
int64_t scalar_input(const KernelContext& ctx, size_t k, int64_t def) {
  if (!ctx.has_input(k)) return def;
  if (ctx.input(k).numel() != 1) ctx.fail("input " + std::to_string(k) + " must be a scalar");
  return ctx.input(k).as_int64(0);
}

void check_signal(const auto& ctx, const Shape& x) {
  if (x.size() < 2 || (x.back().is_static() && x.back().value != 1 && x.back().value != 2))
    ctx.fail("the signal must end in a dimension of 1 (real) or 2 (complex), got " + to_string(x));
}

// out[k] = scale * sum_{j < n} in[j] * exp(sign * 2 pi i j k / n) for k < bins; in has m entries (zero past
// m). in/out are (real, imaginary) pairs `in_stride` / `out_stride` pairs apart.
void dft(const double* in, int64_t m, int64_t in_stride, bool complex_in, double* out, int64_t n,
         int64_t bins, int64_t out_stride, bool inverse) {
  const double sign = inverse ? 1.0 : -1.0, scale = inverse ? 1.0 / static_cast<double>(n) : 1.0;
  const int64_t width = complex_in ? 2 : 1;
  for (int64_t k = 0; k < bins; ++k) {
    double re = 0, im = 0;
    for (int64_t j = 0; j < std::min(m, n); ++j) {
      // (j * k) mod n keeps the angle small, so the twiddle is accurate for large n.
      const double angle =
          sign * 2.0 * std::numbers::pi * static_cast<double>((j * k) % n) / static_cast<double>(n);
      const double c = std::cos(angle), s = std::sin(angle);
      const double xr = in[j * in_stride * width], xi = complex_in ? in[j * in_stride * width + 1] : 0.0;
      re += xr * c - xi * s;
      im += xr * s + xi * c;
    }
    out[k * out_stride * 2] = re * scale;
    out[k * out_stride * 2 + 1] = im * scale;
  }
}

// ------------------------------------------------------------------------------------------------- DFT
template <class Ctx>
int64_t dft_axis(const Ctx& ctx, int64_t rank, int64_t axis) {
  axis = normalize_axis(ctx, axis, rank);
  if (axis == rank - 1) ctx.fail("axis must not be the last (real/imaginary) dimension");
  return axis;
}

void infer_dft(InferContext& ctx) {
  const bool onesided = ctx.node.attrs.get_int("onesided", 0), inverse = ctx.node.attrs.get_int("inverse", 0);
  if (onesided && inverse) ctx.fail("onesided inverse DFT (complex to real) is not supported");
  auto x = in_shape(ctx, 0);
  const DType dt = ctx.input(0).dtype;
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  check_signal(ctx, *x);
  Shape out = *x;
  out.back() = Dim(2);
  bool axis_unknown = false, length_unknown = false;
  int64_t axis = ctx.node.attrs.get_int("axis", 1);
  if (ctx.opset >= 20) axis = scalar_input(ctx, 2, axis_unknown).value_or(-2);
  if (axis_unknown) return set_out(ctx, 0, dt, Shape(out.size(), Dim()));  // any axis but the last may change
  axis = dft_axis(ctx, static_cast<int64_t>(x->size()), axis);
  const auto length = scalar_input(ctx, 1, length_unknown);
  if (length && *length < 1) ctx.fail("dft_length must be >= 1, got " + std::to_string(*length));
  const Dim n = length ? Dim(*length) : length_unknown ? Dim() : (*x)[axis];
  out[axis] = !n.is_static() ? Dim() : Dim(onesided ? n.value / 2 + 1 : n.value);
  set_out(ctx, 0, dt, out);
}

void dft_kernel(KernelContext& ctx) {
  const bool onesided = ctx.node.attrs.get_int("onesided", 0), inverse = ctx.node.attrs.get_int("inverse", 0);
  const TensorData& xt = ctx.input(0);
  const auto& d = xt.dims();
  const int64_t rank = xt.rank();
  const int64_t axis =
      dft_axis(ctx, rank, ctx.opset >= 20 ? scalar_input(ctx, 2, -2) : ctx.node.attrs.get_int("axis", 1));
  const int64_t m = d[axis], n = scalar_input(ctx, 1, m);
  if (n < 1) ctx.fail("dft_length must be >= 1, got " + std::to_string(n));
  const int64_t bins = onesided ? n / 2 + 1 : n;
  const int64_t outer = numel({d.begin(), d.begin() + axis}),
                inner = numel({d.begin() + axis + 1, d.end() - 1});
  const bool complex_in = d.back() == 2;
  std::vector<int64_t> y_dims = d;
  y_dims[axis] = bins;
  y_dims.back() = 2;
  const std::vector<double> X = load_real(ctx, xt);
  std::vector<double> Y(static_cast<size_t>(numel(y_dims)));
  const int64_t width = complex_in ? 2 : 1;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      dft(X.data() + ((o * m) * inner + i) * width, m, inner, complex_in,
          Y.data() + ((o * bins) * inner + i) * 2, n, bins, inner, inverse);
  ctx.out[0] = store_real(ctx, xt.dtype(), y_dims, Y);
}

// ------------------------------------------------------------------------------------------------ STFT
// Inputs: signal [batch, length, 1|2], frame_step (scalar), window [frame_length] (optional), frame_length
// (scalar, optional).
void infer_stft(InferContext& ctx) {
  const bool onesided = ctx.node.attrs.get_int("onesided", 1);
  auto x = in_shape(ctx, 0);
  const DType dt = ctx.input(0).dtype;
  if (x && x->size() != 3) ctx.fail("signal must be [batch, length, 1 or 2], got " + to_string(*x));
  if (x) check_signal(ctx, *x);
  if (x && onesided && x->back().is_static() && x->back().value == 2)
    ctx.fail("onesided STFT needs a real signal");
  bool unknown = false;
  const auto step = scalar_input(ctx, 1, unknown);
  std::optional<int64_t> frame = scalar_input(ctx, 3, unknown);
  if (auto w = in_shape(ctx, 2)) {
    if (w->size() != 1) ctx.fail("window must be 1-D, got " + to_string(*w));
    if (!frame && !ctx.has_input(3) && (*w)[0].is_static()) frame = (*w)[0].value;
  }
  if (!ctx.has_input(2) && !ctx.has_input(3)) ctx.fail("one of window and frame_length is required");
  Shape out{x ? (*x)[0] : Dim(), Dim(), Dim(), Dim(2)};
  if (frame) {
    if (*frame < 1) ctx.fail("frame_length must be >= 1, got " + std::to_string(*frame));
    out[2] = Dim(onesided ? *frame / 2 + 1 : *frame);
  }
  if (step && *step < 1) ctx.fail("frame_step must be >= 1, got " + std::to_string(*step));
  if (x && step && frame && (*x)[1].is_static()) {
    if ((*x)[1].value < *frame) ctx.fail("the signal is shorter than one frame");
    out[1] = Dim(((*x)[1].value - *frame) / *step + 1);
  }
  set_out(ctx, 0, dt, out);
}

void stft_kernel(KernelContext& ctx) {
  const bool onesided = ctx.node.attrs.get_int("onesided", 1);
  const TensorData& xt = ctx.input(0);
  if (xt.rank() != 3 || (xt.dims()[2] != 1 && xt.dims()[2] != 2))
    ctx.fail("signal must be [batch, length, 1 or 2]");
  const bool complex_in = xt.dims()[2] == 2;
  if (onesided && complex_in) ctx.fail("onesided STFT needs a real signal");
  const int64_t batch = xt.dims()[0], length = xt.dims()[1], step = scalar_input(ctx, 1, 0);
  std::vector<double> window;
  if (ctx.has_input(2)) {
    if (ctx.input(2).rank() != 1) ctx.fail("window must be 1-D");
    window = load_real(ctx, ctx.input(2));
  }
  const int64_t frame = scalar_input(ctx, 3, static_cast<int64_t>(window.size()));
  if (ctx.has_input(2) && static_cast<int64_t>(window.size()) != frame)
    ctx.fail("window has " + std::to_string(window.size()) + " entries but frame_length is " +
             std::to_string(frame));
  if (step < 1 || frame < 1 || frame > length)
    ctx.fail("need frame_step >= 1 and 1 <= frame_length <= signal length, got " + std::to_string(step) +
             " and " + std::to_string(frame));
  if (window.empty()) window.assign(static_cast<size_t>(frame), 1.0);
  const int64_t frames = (length - frame) / step + 1, bins = onesided ? frame / 2 + 1 : frame;
  const int64_t width = complex_in ? 2 : 1;
  const std::vector<double> X = load_real(ctx, xt);
  std::vector<double> Y(static_cast<size_t>(batch * frames * bins * 2)),
      windowed(static_cast<size_t>(frame * width));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      const double* src = X.data() + (b * length + f * step) * width;
      for (int64_t j = 0; j < frame * width; ++j) windowed[j] = src[j] * window[j / width];
      dft(windowed.data(), frame, 1, complex_in, Y.data() + (b * frames + f) * bins * 2, frame, bins, 1,
          false);
    }
  ctx.out[0] = store_real(ctx, xt.dtype(), {batch, frames, bins, 2}, Y);
}

KILN_REGISTER_OP(
    {.op = "DFT", .min_inputs = 1, .max_inputs = 3, .infer = infer_dft, .reference = dft_kernel});
KILN_REGISTER_OP(
    {.op = "STFT", .min_inputs = 2, .max_inputs = 4, .infer = infer_stft, .reference = stft_kernel});

}  // namespace
}  // namespace kiln::ops
