// RoiAlign: Y[r, c] is an output_height x output_width pooling of X[batch_indices[r], c] over the box
// rois[r] = (x1, y1, x2, y2) scaled by spatial_scale. Each output bin averages (mode avg) or maxes (mode max)
// sampling_ratio^2 bilinear samples on a regular grid (sampling_ratio 0: ceil(box size / output size) per
// axis). coordinate_transformation_mode half_pixel (opset 16's default) shifts the box by -0.5 pixel;
// output_half_pixel (opset 10's only behaviour) does not, and stretches boxes smaller than one pixel to one.
// Samples more than one pixel outside X contribute 0; others clamp to the border. Mode max takes, like ONNX
// Runtime (the reference backends' behaviour), the largest weighted corner of each sample, not the largest
// interpolated value. Computed in double.
#include <algorithm>
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

struct RoiAttrs {
  int64_t out_h, out_w, sampling;
  double scale;
  bool half_pixel, max;
};

template <class Ctx>
RoiAttrs read_attrs(const Ctx& ctx) {
  const Attributes& a = ctx.node.attrs;
  RoiAttrs r{a.get_int("output_height", 1),
             a.get_int("output_width", 1),
             a.get_int("sampling_ratio", 0),
             a.get_float("spatial_scale", 1.0f),
             false,
             false};
  const std::string ctm =
      a.get_string("coordinate_transformation_mode", ctx.opset >= 16 ? "half_pixel" : "output_half_pixel");
  if (ctm != "half_pixel" && ctm != "output_half_pixel")
    ctx.fail("coordinate_transformation_mode '" + ctm + "' is not half_pixel or output_half_pixel");
  r.half_pixel = ctm == "half_pixel";
  const std::string mode = a.get_string("mode", "avg");
  if (mode != "avg" && mode != "max") ctx.fail("mode '" + mode + "' is not avg or max");
  r.max = mode == "max";
  if (r.out_h < 1 || r.out_w < 1) ctx.fail("output_height and output_width must be >= 1");
  if (r.sampling < 0) ctx.fail("sampling_ratio must be >= 0");
  return r;
}

void infer_roi_align(InferContext& ctx) {
  const RoiAttrs a = read_attrs(ctx);
  auto x = in_shape(ctx, 0), rois = in_shape(ctx, 1), idx = in_shape(ctx, 2);
  if (x && x->size() != 4) ctx.fail("X must be 4-D [N, C, H, W], got " + to_string(*x));
  if (rois && (rois->size() != 2 || ((*rois)[1].is_static() && (*rois)[1].value != 4)))
    ctx.fail("rois must be [num_rois, 4], got " + to_string(*rois));
  if (idx && idx->size() != 1) ctx.fail("batch_indices must be 1-D, got " + to_string(*idx));
  if (ctx.input(2).dtype != DType::Undefined && ctx.input(2).dtype != DType::Int64)
    ctx.fail("batch_indices must be int64");
  Dim n = rois ? (*rois)[0] : Dim();
  if (!n.is_static() && idx) n = (*idx)[0];
  set_out(ctx, 0, ctx.input(0).dtype, Shape{n, x ? (*x)[1] : Dim(), Dim(a.out_h), Dim(a.out_w)});
}

void roi_align_kernel(KernelContext& ctx) {
  const RoiAttrs a = read_attrs(ctx);
  const TensorData &xt = ctx.input(0), &rt = ctx.input(1), &it = ctx.input(2);
  if (xt.rank() != 4 || rt.rank() != 2 || rt.dims()[1] != 4 || it.rank() != 1 || it.dims()[0] != rt.dims()[0])
    ctx.fail("expected X [N, C, H, W], rois [R, 4] and batch_indices [R]");
  const int64_t batch = xt.dims()[0], chans = xt.dims()[1], h = xt.dims()[2], w = xt.dims()[3],
                nroi = rt.dims()[0];
  const std::vector<double> X = load_real(ctx, xt), R = load_real(ctx, rt);
  const std::vector<int64_t> B = it.to_int64_vector();
  std::vector<double> Y(static_cast<size_t>(nroi * chans * a.out_h * a.out_w));
  const double offset = a.half_pixel ? 0.5 : 0.0;
  double* y = Y.data();
  for (int64_t r = 0; r < nroi; ++r) {
    if (B[r] < 0 || B[r] >= batch)
      ctx.fail("batch_indices[" + std::to_string(r) + "] = " + std::to_string(B[r]) + " is outside [0, " +
               std::to_string(batch) + ")");
    const double* box = R.data() + r * 4;
    for (int64_t k = 0; k < 4; ++k)
      if (!std::isfinite(box[k])) ctx.fail("rois[" + std::to_string(r) + "] holds a non-finite coordinate");
    const double x0 = box[0] * a.scale - offset, y0 = box[1] * a.scale - offset;
    double rw = box[2] * a.scale - offset - x0, rh = box[3] * a.scale - offset - y0;
    if (!a.half_pixel) rw = std::max(rw, 1.0), rh = std::max(rh, 1.0);
    const double bin_h = rh / static_cast<double>(a.out_h), bin_w = rw / static_cast<double>(a.out_w);
    // Samples per bin along each axis (none for an inverted box, whose bins are then 0).
    auto samples = [&](double bin) -> int64_t {
      if (a.sampling > 0) return a.sampling;
      if (bin > 1 << 20)
        ctx.fail("rois[" + std::to_string(r) + "] is too large: over 2^20 samples per bin and axis");
      return std::max<int64_t>(0, static_cast<int64_t>(std::ceil(bin)));
    };
    const int64_t gh = samples(bin_h), gw = samples(bin_w);
    const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
    for (int64_t c = 0; c < chans; ++c) {
      const double* plane = X.data() + (B[r] * chans + c) * h * w;
      auto px = [&](int64_t i, int64_t j) { return plane[i * w + j]; };
      for (int64_t ph = 0; ph < a.out_h; ++ph)
        for (int64_t pw = 0; pw < a.out_w; ++pw) {
          double acc = 0;
          bool first = true;
          for (int64_t iy = 0; iy < gh; ++iy)
            for (int64_t ix = 0; ix < gw; ++ix) {
              double sy = y0 + ph * bin_h + (iy + 0.5) * bin_h / static_cast<double>(gh);
              double sx = x0 + pw * bin_w + (ix + 0.5) * bin_w / static_cast<double>(gw);
              double corners[4] = {0, 0, 0, 0};  // weighted top-left, top-right, bottom-left, bottom-right
              if (sy >= -1.0 && sy <= static_cast<double>(h) && sx >= -1.0 && sx <= static_cast<double>(w) &&
                  h > 0 && w > 0) {
                sy = std::max(sy, 0.0), sx = std::max(sx, 0.0);
                int64_t ylo = static_cast<int64_t>(sy), xlo = static_cast<int64_t>(sx), yhi = ylo + 1,
                        xhi = xlo + 1;
                if (ylo >= h - 1) yhi = ylo = h - 1, sy = static_cast<double>(ylo);
                if (xlo >= w - 1) xhi = xlo = w - 1, sx = static_cast<double>(xlo);
                const double ly = sy - static_cast<double>(ylo), lx = sx - static_cast<double>(xlo);
                corners[0] = (1 - ly) * (1 - lx) * px(ylo, xlo);
                corners[1] = (1 - ly) * lx * px(ylo, xhi);
                corners[2] = ly * (1 - lx) * px(yhi, xlo);
                corners[3] = ly * lx * px(yhi, xhi);
              }
              if (a.max) {
                const double v = *std::max_element(corners, corners + 4);
                acc = first ? v : std::max(acc, v);
                first = false;
              } else {
                acc += corners[0] + corners[1] + corners[2] + corners[3];
              }
            }
          *y++ = a.max ? acc : acc / count;
        }
    }
  }
  ctx.out[0] = store_real(ctx, xt.dtype(), {nroi, chans, a.out_h, a.out_w}, Y);
}

KILN_REGISTER_OP({.op = "RoiAlign",
                  .min_inputs = 3,
                  .max_inputs = 3,
                  .infer = infer_roi_align,
                  .reference = roi_align_kernel});

}  // namespace
}  // namespace kiln::ops
