// Resize and Upsample: shape inference and reference kernel. Output size is floor(in * scale), or 'sizes'.
// Forms: Upsample-7/8 (scales attribute), Upsample-9 and Resize-10 (X, scales), Resize-11+ (X, roi,
// scales, sizes; scales or sizes, an empty tensor meaning absent), Resize-18 (axes, keep_aspect_ratio_policy,
// antialias).
#include <algorithm>
#include <cmath>
#include <functional>

#include "ops/util.h"

namespace kiln::ops {
namespace {

// A present input with a known non-zero length (roi/scales may be given as empty tensors).
bool given(const InferContext& ctx, size_t k) {
  if (!ctx.has_input(k)) return false;
  auto n = known_length(ctx, k);
  return !n || *n > 0;
}

void set_scaled(InferContext& ctx, const Shape& x, const std::vector<int64_t>& axes, const std::vector<double>& scales) {
  if (scales.size() != axes.size())
    ctx.fail("scales has " + std::to_string(scales.size()) + " entries for " + std::to_string(axes.size()) + " axes");
  Shape out = x;
  for (size_t j = 0; j < axes.size(); ++j) {
    if (scales[j] <= 0) ctx.fail("scales must be positive");
    Dim& d = out[axes[j]];
    // float32 arithmetic, as ONNX Runtime does: scales are float32 and the rounding must agree.
    if (d.is_static()) d = Dim(static_cast<int64_t>(std::floor(static_cast<float>(d.value) * static_cast<float>(scales[j]))));
    else if (scales[j] != 1.0) d = Dim();
  }
  set_out(ctx, 0, ctx.input(0).dtype, out);
}

std::vector<double> doubles(const TensorData& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.as_double(i));
  return v;
}

void infer_resize(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0);
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  const int64_t r = static_cast<int64_t>(x->size());
  std::vector<int64_t> axes;
  if (ctx.node.attrs.has("axes")) axes = normalize_axes(ctx, ctx.node.attrs.get_ints("axes"), r);
  else for (int64_t k = 0; k < r; ++k) axes.push_back(k);
  auto unknown = [&] { set_out(ctx, 0, dt, Shape(x->size(), Dim())); };

  // Where scales live for this form.
  const bool upsample_attr = ctx.node.op == "Upsample" && ctx.opset < 9;
  const size_t scales_at = (ctx.node.op == "Upsample" || ctx.opset < 11) ? 1 : 2;
  if (upsample_attr) {
    auto f = ctx.node.attrs.get_floats("scales");
    return set_scaled(ctx, *x, axes, std::vector<double>(f.begin(), f.end()));
  }
  if (given(ctx, scales_at)) {
    if (!ctx.value(scales_at)) return unknown();
    return set_scaled(ctx, *x, axes, doubles(*ctx.value(scales_at)));
  }
  if (scales_at == 2 && given(ctx, 3)) {
    if (!ctx.value(3)) return unknown();
    auto sizes = ctx.value(3)->to_int64_vector();
    if (sizes.size() != axes.size())
      ctx.fail("sizes has " + std::to_string(sizes.size()) + " entries for " + std::to_string(axes.size()) + " axes");
    const std::string policy = ctx.node.attrs.get_string("keep_aspect_ratio_policy", "stretch");
    Shape out = *x;
    if (policy == "stretch") {
      for (size_t j = 0; j < axes.size(); ++j) out[axes[j]] = Dim(sizes[j]);
    } else if (policy == "not_larger" || policy == "not_smaller") {
      // One scale for every axis: the smallest (largest) of sizes/in, then round(in * scale).
      double scale = policy == "not_larger" ? 1e300 : 0;
      for (size_t j = 0; j < axes.size(); ++j) {
        const Dim& d = (*x)[axes[j]];
        if (!d.is_static()) return unknown();
        const double s = static_cast<double>(sizes[j]) / d.value;
        scale = policy == "not_larger" ? std::min(scale, s) : std::max(scale, s);
      }
      for (int64_t a : axes) out[a] = Dim(static_cast<int64_t>(std::round((*x)[a].value * scale)));
    } else {
      ctx.fail("unknown keep_aspect_ratio_policy '" + policy + "'");
    }
    return set_out(ctx, 0, dt, out);
  }
  ctx.fail("needs either scales or sizes");
}

// ------------------------------------------------------------------------------------ reference kernel
// Every output element is a weighted sum over a small neighbourhood of input elements, separable per axis:
// for each axis and output coordinate we precompute its taps (input index, weight) — one for nearest, two
// for linear, four for cubic, more when antialiasing a downscale — then each output sums the product of its
// axes' taps.
struct Tap {
  int64_t index;
  double weight;
};

bool given_k(const KernelContext& ctx, size_t k) { return ctx.has_input(k) && ctx.input(k).numel() > 0; }

// The interpolation kernel at distance d: linear (support 1) or Keys' cubic with coefficient a (support 2).
double filter_weight(bool cubic, double d, double a) {
  d = std::fabs(d);
  if (!cubic) return std::max(0.0, 1 - d);
  if (d <= 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
  return d < 2 ? ((a * d - 5 * a) * d + 8 * a) * d - 4 * a : 0.0;
}

void resize_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const int64_t r = x.rank();
  const auto& a = ctx.node.attrs;
  const bool legacy = ctx.node.op == "Upsample" || ctx.opset < 11;  // asymmetric coordinates, "simple" nearest
  std::string mode = a.get_string("mode", "nearest");
  if (mode == "bilinear" || mode == "trilinear") mode = "linear";  // Upsample-1's spelling
  if (mode != "nearest" && mode != "linear" && mode != "cubic") ctx.fail("mode '" + mode + "' is not supported");
  if (legacy && mode == "cubic") ctx.fail("cubic mode before opset 11 is not supported");
  const bool antialias =
      a.get_int("antialias", 0) != 0;  // opset 18: downscaling widens the filter by 1 / scale
  const std::string coord = legacy ? "asymmetric" : a.get_string("coordinate_transformation_mode", "half_pixel");
  const std::string nearest_mode = legacy ? "simple" : a.get_string("nearest_mode", "round_prefer_floor");
  const double cubic_a = a.get_float("cubic_coeff_a", -0.75f);
  const bool exclude_outside = a.get_int("exclude_outside", 0) != 0;
  const double extrapolation = a.get_float("extrapolation_value", 0.0f);

  std::vector<int64_t> axes;
  if (a.has("axes")) axes = normalize_axes(ctx, a.get_ints("axes"), r);
  else for (int64_t k = 0; k < r; ++k) axes.push_back(k);
  const auto y_dims = inferred_dims(ctx);

  // Scale per axis: as given (float32), or from sizes (out / in, one shared scale under a keep-aspect policy).
  std::vector<double> scale(static_cast<size_t>(r), 1.0);
  const size_t scales_at = legacy ? 1 : 2;
  std::vector<double> given_scales;
  if (ctx.node.op == "Upsample" && ctx.opset < 9) {
    for (float f : a.get_floats("scales")) given_scales.push_back(f);
  } else if (given_k(ctx, scales_at)) {
    given_scales = doubles(ctx.input(scales_at));
  }
  if (!given_scales.empty()) {
    for (size_t j = 0; j < axes.size(); ++j) scale[axes[j]] = static_cast<float>(given_scales[j]);
  } else {
    const auto sizes = ctx.input(3).to_int64_vector();
    const std::string policy = a.get_string("keep_aspect_ratio_policy", "stretch");
    double shared = policy == "not_larger" ? 1e300 : 0;
    for (size_t j = 0; j < axes.size(); ++j) {
      const double s = static_cast<double>(sizes[j]) / static_cast<double>(x.dims()[axes[j]]);
      scale[axes[j]] = s;
      shared = policy == "not_larger" ? std::min(shared, s) : std::max(shared, s);
    }
    if (policy != "stretch")
      for (int64_t ax : axes) scale[ax] = shared;
  }
  // roi (tf_crop_and_resize only): starts then ends, for every axis or for `axes`.
  std::vector<double> roi_start(static_cast<size_t>(r), 0.0), roi_end(static_cast<size_t>(r), 1.0);
  if (coord == "tf_crop_and_resize") {
    if (!given_k(ctx, 1)) ctx.fail("tf_crop_and_resize needs roi");
    const auto roi = doubles(ctx.input(1));
    if (roi.size() != 2 * axes.size()) ctx.fail("roi must have 2 entries per resized axis");
    for (size_t j = 0; j < axes.size(); ++j) roi_start[axes[j]] = roi[j], roi_end[axes[j]] = roi[j + axes.size()];
  }

  // taps[axis][o]; `outside[axis][o]`: tf_crop_and_resize sampled outside the input → extrapolation_value.
  std::vector<std::vector<std::vector<Tap>>> taps(static_cast<size_t>(r));
  std::vector<std::vector<bool>> outside(static_cast<size_t>(r));
  for (int64_t ax = 0; ax < r; ++ax) {
    const int64_t in = x.dims()[ax], out = y_dims[ax];
    auto clamp = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
    for (int64_t o = 0; o < out; ++o) {
      std::vector<Tap> t;
      const std::optional<double> src =
          resize_source_coord(coord, static_cast<double>(o), in, out, scale[ax], roi_start[ax], roi_end[ax]);
      if (!src) ctx.fail("coordinate_transformation_mode '" + coord + "' is not supported");
      const double c = *src;
      outside[ax].push_back(coord == "tf_crop_and_resize" && (c < 0 || c > static_cast<double>(in - 1)));
      if (mode == "nearest") {
        const std::optional<int64_t> i = resize_nearest_index(nearest_mode, c, scale[ax] < 1);
        if (!i) ctx.fail("nearest_mode '" + nearest_mode + "' is not supported");
        t.push_back({clamp(*i), 1.0});
      } else {
        // Taps floor(c) + j at distance j - frac(c), weights normalized to sum 1. Plain, the support is the
        // filter's (2 taps linear, 4 cubic); antialiased downscaling stretches it by 1 / scale and samples
        // the filter at scale * distance.
        const bool cubic = mode == "cubic";
        const double support = cubic ? 2.0 : 1.0, s = antialias ? std::min(scale[ax], 1.0) : 1.0;
        if (!(s > 0)) ctx.fail("antialias needs positive scales");
        const double f = std::floor(c), frac = c - f;
        const int64_t start = static_cast<int64_t>(std::floor(-support / s)) + 1;
        double sum = 0;
        for (int64_t j = start; j <= 1 - start; ++j) {
          const int64_t i = static_cast<int64_t>(f) + j;
          const bool excluded = exclude_outside && (i < 0 || i >= in);
          const double w =
              excluded ? 0.0 : filter_weight(cubic, s * (static_cast<double>(j) - frac), cubic_a);
          t.push_back({clamp(i), w});
          sum += w;
        }
        if (sum != 0)
          for (Tap& tp : t) tp.weight /= sum;
      }
      taps[ax].push_back(t);
    }
  }

  TensorData out(x.dtype(), y_dims);
  const auto xs = strides_of(x.dims());
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (T::is_bool) {
      unsupported(ctx, x.dtype());
    } else {
      if (!T::is_float && mode != "nearest") ctx.fail(mode + " resize of " + dtype_name(x.dtype()) + " is not supported");
      const S* src = x.data<S>();
      S* dst = out.data<S>();
      // Sum over the product of the axes' taps, axis by axis.
      std::function<double(int64_t, int64_t, const std::vector<int64_t>&)> sum_taps =
          [&](int64_t ax, int64_t off, const std::vector<int64_t>& idx) -> double {
        if (ax == r) return static_cast<double>(T::load(src[off]));
        double acc = 0;
        for (const Tap& tp : taps[ax][idx[ax]])
          if (tp.weight != 0) acc += tp.weight * sum_taps(ax + 1, off + tp.index * xs[ax], idx);
        return acc;
      };
      int64_t i = 0;
      for_each_index(y_dims, [&](const std::vector<int64_t>& idx) {
        bool extrapolate = false;
        for (int64_t ax = 0; ax < r; ++ax) extrapolate = extrapolate || outside[ax][idx[ax]];
        const double v = extrapolate ? extrapolation : sum_taps(0, 0, idx);
        if constexpr (T::is_float) dst[i++] = T::store(static_cast<typename T::compute>(v));
        else dst[i++] = T::store(static_cast<typename T::compute>(std::llround(v)));
      });
    }
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Resize", .min_inputs = 1, .max_inputs = 4, .infer = infer_resize, .reference = resize_kernel});
KILN_REGISTER_OP({.op = "Upsample", .min_inputs = 1, .max_inputs = 2, .infer = infer_resize, .reference = resize_kernel});

}  // namespace

// As in the ONNX reference implementation (which generated the backend tests), align_corners and
// tf_crop_and_resize divide by the fractional output length scale * in, not by the integer `out` (they differ
// when a given scale doesn't land on an integer).
std::optional<double> resize_source_coord(const std::string& mode, double x, int64_t in, int64_t out, double scale,
                                          double roi_start, double roi_end) {
  const double out_f = scale * static_cast<double>(in), in_f = static_cast<double>(in);
  if (mode == "half_pixel") return (x + 0.5) / scale - 0.5;
  if (mode == "half_pixel_symmetric") {
    const double adjustment = static_cast<double>(out) / out_f;
    return in_f / 2 * (1 - adjustment) + (x + 0.5) / scale - 0.5;
  }
  if (mode == "pytorch_half_pixel") return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
  if (mode == "align_corners") return out == 1 ? 0.0 : x * (in_f - 1) / (out_f - 1);
  if (mode == "asymmetric") return x / scale;
  if (mode == "tf_half_pixel_for_nn") return (x + 0.5) / scale;
  if (mode == "tf_crop_and_resize")
    return out > 1 ? roi_start * (in_f - 1) + x * (roi_end - roi_start) * (in_f - 1) / (out_f - 1)
                   : 0.5 * (roi_start + roi_end) * (in_f - 1);
  return std::nullopt;
}

std::optional<int64_t> resize_nearest_index(const std::string& mode, double x, bool down) {
  const bool half = x - std::floor(x) == 0.5;
  if (mode == "round_prefer_floor") return half ? static_cast<int64_t>(std::floor(x)) : static_cast<int64_t>(std::round(x));
  if (mode == "round_prefer_ceil") return half ? static_cast<int64_t>(std::ceil(x)) : static_cast<int64_t>(std::round(x));
  if (mode == "floor") return static_cast<int64_t>(std::floor(x));
  if (mode == "ceil") return static_cast<int64_t>(std::ceil(x));
  if (mode == "simple") return down ? static_cast<int64_t>(std::ceil(x)) : static_cast<int64_t>(x);
  return std::nullopt;
}

}  // namespace kiln::ops
