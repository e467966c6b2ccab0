// GridSample (2-D): Y[n, c, i, j] samples X[n, c] at grid[n, i, j] = (x, y) in [-1, 1], x along W.
//   align_corners = 1: -1 and 1 are the centers of the corner pixels; 0: the outer edges of the corner
//   pixels. mode: bilinear, nearest (ties to even), bicubic (Keys kernel, a = -0.75); opset 20 names linear,
//   cubic. padding_mode: zeros (outside pixels read 0), border (clamped to the edge), reflection (mirrored at
//   the border). Computed in double.
#include <algorithm>
#include <array>
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

enum class Mode { Linear, Nearest, Cubic };
enum class Padding { Zeros, Border, Reflection };

template <class Ctx>
Mode read_mode(const Ctx& ctx) {
  const std::string m = ctx.node.attrs.get_string("mode", "bilinear");
  if (m == "bilinear" || m == "linear") return Mode::Linear;
  if (m == "nearest") return Mode::Nearest;
  if (m == "bicubic" || m == "cubic") return Mode::Cubic;
  ctx.fail("mode '" + m + "' is not one of bilinear, nearest, bicubic");
}

template <class Ctx>
Padding read_padding(const Ctx& ctx) {
  const std::string p = ctx.node.attrs.get_string("padding_mode", "zeros");
  if (p == "zeros") return Padding::Zeros;
  if (p == "border") return Padding::Border;
  if (p == "reflection") return Padding::Reflection;
  ctx.fail("padding_mode '" + p + "' is not one of zeros, border, reflection");
}

void infer_grid_sample(InferContext& ctx) {
  read_mode(ctx);
  read_padding(ctx);
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0), g = in_shape(ctx, 1);
  if (x && x->size() != 4)
    ctx.fail("X must be 4-D [N, C, H, W] (only 2-D sampling is supported), got " + to_string(*x));
  if (g && (g->size() != 4 || ((*g)[3].is_static() && (*g)[3].value != 2)))
    ctx.fail("grid must be [N, H_out, W_out, 2], got " + to_string(*g));
  if (!x || !g)
    return set_out(ctx, 0, dt,
                   x ? std::optional<Shape>(Shape{(*x)[0], (*x)[1], Dim(), Dim()}) : std::nullopt);
  if ((*x)[0].is_static() && (*g)[0].is_static() && (*x)[0].value != (*g)[0].value)
    ctx.fail("X and grid have different batch sizes: " + to_string(*x) + " vs " + to_string(*g));
  set_out(ctx, 0, dt, Shape{(*x)[0], (*x)[1], (*g)[1], (*g)[2]});
}

// v mirrored into [lo, hi] (repeatedly, as a ray bouncing between the two borders).
double reflect(double v, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (v >= lo && v <= hi) return v;
  const double d = v < lo ? lo - v : v - hi;
  const double folds = std::floor(d / range), r = d - folds * range;
  const bool even = std::fmod(folds, 2.0) == 0;
  return (v < lo) == even ? lo + r : hi - r;
}

// Keys cubic convolution weights for the 4 taps at offsets -1, 0, 1, 2 from floor(x), t = x - floor(x).
std::array<double, 4> cubic_weights(double t) {
  constexpr double a = -0.75;
  auto near = [](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };       // |d| <= 1
  auto far = [](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };  // 1 < |d| < 2
  return {far(t + 1), near(t), near(1 - t), far(2 - t)};
}

struct Plane {
  const double* data;
  int64_t h, w;
  Padding padding;
  double lo_x, hi_x, lo_y, hi_y;  // the reflection borders

  // Pixel (r, c) with the padding rule for indices outside the image.
  double at(int64_t r, int64_t c) const {
    if (padding == Padding::Zeros) return r < 0 || r >= h || c < 0 || c >= w ? 0.0 : data[r * w + c];
    if (padding == Padding::Reflection) {
      r = static_cast<int64_t>(reflect(static_cast<double>(r), lo_y, hi_y));
      c = static_cast<int64_t>(reflect(static_cast<double>(c), lo_x, hi_x));
    }
    r = std::clamp<int64_t>(r, 0, h - 1);
    c = std::clamp<int64_t>(c, 0, w - 1);
    return data[r * w + c];
  }
};

void grid_sample_kernel(KernelContext& ctx) {
  const Mode mode = read_mode(ctx);
  const Padding padding = read_padding(ctx);
  const bool align = ctx.node.attrs.get_int("align_corners", 0) != 0;
  const TensorData &xt = ctx.input(0), &gt = ctx.input(1);
  const auto y_dims = inferred_dims(ctx);
  const int64_t batch = xt.dims()[0], chans = xt.dims()[1], h = xt.dims()[2], w = xt.dims()[3];
  const int64_t oh = y_dims[2], ow = y_dims[3];
  const std::vector<double> X = load_real(ctx, xt), G = load_real(ctx, gt);
  std::vector<double> Y(static_cast<size_t>(numel(y_dims)));
  if (h == 0 || w == 0) {
    if (!Y.empty()) ctx.fail("X has an empty spatial plane: there is nothing to sample");
    ctx.out[0] = store_real(ctx, xt.dtype(), y_dims, Y);
    return;
  }
  // Pixel coordinate of a normalized one over `size` pixels.
  auto unnormalize = [&](double v, int64_t size) {
    return align ? (v + 1) / 2 * static_cast<double>(size - 1)
                 : ((v + 1) * static_cast<double>(size) - 1) / 2;
  };
  const double lo_x = align ? 0.0 : -0.5,
               hi_x = align ? static_cast<double>(w - 1) : static_cast<double>(w) - 0.5;
  const double lo_y = align ? 0.0 : -0.5,
               hi_y = align ? static_cast<double>(h - 1) : static_cast<double>(h) - 0.5;
  double* y = Y.data();
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < chans; ++c) {
      const Plane p{X.data() + (n * chans + c) * h * w, h, w, padding, lo_x, hi_x, lo_y, hi_y};
      for (int64_t i = 0; i < oh * ow; ++i) {
        double gx = unnormalize(G[static_cast<size_t>((n * oh * ow + i) * 2)], w);
        double gy = unnormalize(G[static_cast<size_t>((n * oh * ow + i) * 2 + 1)], h);
        if (!std::isfinite(gx) || !std::isfinite(gy)) ctx.fail("grid holds a non-finite coordinate");
        // Bicubic pads each of its 16 taps instead (Plane::at), as PyTorch and ONNX Runtime do: clamping the
        // coordinate first would change the weights of a sample near the border.
        if (padding == Padding::Border && mode != Mode::Cubic) {
          gx = std::clamp(gx, 0.0, static_cast<double>(w - 1));
          gy = std::clamp(gy, 0.0, static_cast<double>(h - 1));
        } else if (padding == Padding::Reflection && mode != Mode::Cubic) {
          gx = reflect(gx, lo_x, hi_x);
          gy = reflect(gy, lo_y, hi_y);
        }
        // Far outside the image (zeros padding) every tap reads 0: keep the indices in int64 range.
        gx = std::clamp(gx, -4.0 - static_cast<double>(w), 4.0 + 2.0 * static_cast<double>(w));
        gy = std::clamp(gy, -4.0 - static_cast<double>(h), 4.0 + 2.0 * static_cast<double>(h));
        const double fx = std::floor(gx), fy = std::floor(gy), tx = gx - fx, ty = gy - fy;
        const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
        double v = 0;
        if (mode == Mode::Nearest) {
          v = p.at(static_cast<int64_t>(std::nearbyint(gy)), static_cast<int64_t>(std::nearbyint(gx)));
        } else if (mode == Mode::Linear) {
          v = (1 - ty) * ((1 - tx) * p.at(y0, x0) + tx * p.at(y0, x0 + 1)) +
              ty * ((1 - tx) * p.at(y0 + 1, x0) + tx * p.at(y0 + 1, x0 + 1));
        } else {
          const auto wx = cubic_weights(tx), wy = cubic_weights(ty);
          for (int64_t a = 0; a < 4; ++a)
            for (int64_t b = 0; b < 4; ++b) v += wy[a] * wx[b] * p.at(y0 - 1 + a, x0 - 1 + b);
        }
        *y++ = v;
      }
    }
  ctx.out[0] = store_real(ctx, xt.dtype(), y_dims, Y);
}

KILN_REGISTER_OP({.op = "GridSample",
                  .min_inputs = 2,
                  .max_inputs = 2,
                  .infer = infer_grid_sample,
                  .reference = grid_sample_kernel});

}  // namespace
}  // namespace kiln::ops
