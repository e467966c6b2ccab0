// RoiAlign on CUDA (cuda.roi_align): modes avg and max, coordinate_transformation_mode half_pixel and
// output_half_pixel, fixed (sampling_ratio > 0) and adaptive (0) sampling; X and rois float32, float16 or
// bfloat16, batch_indices int64 on the device. One thread per output element (roi, channel, bin), following
// the reference (src/ops/roi_align.cpp) step by step in double: the same box, the same sample grid, the same
// clamps and corner weights, the same order of sums (and mode max's largest weighted corner).
//
// The reference fails a run on a roi it cannot pool: a batch index outside [0, N), a non-finite coordinate,
// or (adaptive sampling) over 2^20 samples per bin and axis. On the device a run cannot fail, so every output
// element of such a roi is NaN instead — nothing is read out of bounds, and the other rois are pooled.
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "backends/cuda/cuda_device.cuh"
#include "ops/util.h"

namespace kiln::cuda::roi_align {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

struct RoiParams {
  int64_t batch, chans, h, w, nroi, out_h, out_w, sampling, total;  // total: output elements
  double scale;
  bool half_pixel, max;
};

__device__ __forceinline__ double to_double(float v) {
  return v;
}
__device__ __forceinline__ double to_double(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ double to_double(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

// Sample k of g in bin b of size `bin` from `start`: start + b * bin + (k + 0.5) * bin / g.
__device__ __forceinline__ double sample_at(double start, int64_t b, double bin, int64_t k, int64_t g) {
  return __dadd_rn(__dadd_rn(start, __dmul_rn(static_cast<double>(b), bin)),
                   __dmul_rn(static_cast<double>(k) + 0.5, bin) / static_cast<double>(g));
}

template <typename T, typename R>
__global__ void roi_align_kernel(const T* __restrict__ x, const R* __restrict__ rois,
                                 const int64_t* __restrict__ batch_indices, T* __restrict__ y, RoiParams p) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < p.total; o += step) {
    const int64_t pw = o % p.out_w, ph = (o / p.out_w) % p.out_h, c = (o / (p.out_w * p.out_h)) % p.chans,
                  r = o / (p.out_w * p.out_h * p.chans);
    const int64_t b = batch_indices[r];
    double box[4];
    bool valid = b >= 0 && b < p.batch;
    for (int k = 0; k < 4; ++k) {
      box[k] = to_double(rois[r * 4 + k]);
      valid = valid && isfinite(box[k]);
    }
    // The box and the sample positions are rounded step by step as the reference's (no fused multiply-add):
    // a sample exactly on X's far border (kept there, dropped past it) must land on the same side.
    const double offset = p.half_pixel ? 0.5 : 0.0;
    const double x0 = __dsub_rn(__dmul_rn(box[0], p.scale), offset),
                 y0 = __dsub_rn(__dmul_rn(box[1], p.scale), offset);
    double rw = __dsub_rn(__dsub_rn(__dmul_rn(box[2], p.scale), offset), x0),
           rh = __dsub_rn(__dsub_rn(__dmul_rn(box[3], p.scale), offset), y0);
    if (!p.half_pixel) rw = fmax(rw, 1.0), rh = fmax(rh, 1.0);
    const double bin_h = rh / static_cast<double>(p.out_h), bin_w = rw / static_cast<double>(p.out_w);
    if (p.sampling == 0 && (bin_h > (1 << 20) || bin_w > (1 << 20))) valid = false;
    if (!valid) {  // the reference's errors
      y[o] = from_float<T>(NAN);
      continue;
    }
    // Samples per bin along each axis (none for an inverted box, whose bins are then 0).
    const int64_t gh = p.sampling > 0 ? p.sampling : max(int64_t{0}, static_cast<int64_t>(ceil(bin_h)));
    const int64_t gw = p.sampling > 0 ? p.sampling : max(int64_t{0}, static_cast<int64_t>(ceil(bin_w)));
    const double count = static_cast<double>(max(gh * gw, int64_t{1}));
    const T* plane = x + (b * p.chans + c) * p.h * p.w;
    auto px = [&](int64_t i, int64_t j) { return to_double(plane[i * p.w + j]); };
    const double h = static_cast<double>(p.h), w = static_cast<double>(p.w);
    double acc = 0;
    bool first = true;
    for (int64_t iy = 0; iy < gh; ++iy)
      for (int64_t ix = 0; ix < gw; ++ix) {
        double sy = sample_at(y0, ph, bin_h, iy, gh), sx = sample_at(x0, pw, bin_w, ix, gw);
        double corners[4] = {0, 0, 0, 0};  // weighted top-left, top-right, bottom-left, bottom-right
        if (sy >= -1.0 && sy <= h && sx >= -1.0 && sx <= w && p.h > 0 && p.w > 0) {
          sy = fmax(sy, 0.0), sx = fmax(sx, 0.0);
          int64_t ylo = static_cast<int64_t>(sy), xlo = static_cast<int64_t>(sx), yhi = ylo + 1,
                  xhi = xlo + 1;
          if (ylo >= p.h - 1) yhi = ylo = p.h - 1, sy = static_cast<double>(ylo);
          if (xlo >= p.w - 1) xhi = xlo = p.w - 1, sx = static_cast<double>(xlo);
          const double ly = sy - static_cast<double>(ylo), lx = sx - static_cast<double>(xlo);
          corners[0] = (1 - ly) * (1 - lx) * px(ylo, xlo);
          corners[1] = (1 - ly) * lx * px(ylo, xhi);
          corners[2] = ly * (1 - lx) * px(yhi, xlo);
          corners[3] = ly * lx * px(yhi, xhi);
        }
        if (p.max) {
          // std::max_element's first largest, then std::max(acc, v): NaN handling as the reference.
          double v = corners[0];
          for (int k = 1; k < 4; ++k)
            if (v < corners[k]) v = corners[k];
          acc = first ? v : (acc < v ? v : acc);
          first = false;
        } else {
          acc += corners[0] + corners[1] + corners[2] + corners[3];
        }
      }
    y[o] = from_float<T>(static_cast<float>(p.max ? acc : acc / count));
  }
}

class RoiAlignKernel final : public CudaKernel {
 public:
  RoiAlignKernel(DType x_type, DType roi_type, const RoiParams& p)
      : x_type_(x_type), roi_type_(roi_type), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.total == 0) return;
    dispatch_float_type(x_type_, [&](auto xt) {
      using T = decltype(xt);
      dispatch_float_type(roi_type_, [&](auto rt) {
        using R = decltype(rt);
        roi_align_kernel<T, R><<<blocks_for(p_.total, kThreads), kThreads, 0, rc.stream>>>(
            static_cast<const T*>(in[0].data), static_cast<const R*>(in[1].data),
            static_cast<const int64_t*>(in[2].data), static_cast<T*>(out[0].data), p_);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }
  std::string describe() const override {
    return std::string(p_.max ? "max" : "avg") + (p_.half_pixel ? ", half_pixel" : ", output_half_pixel") +
           (p_.sampling > 0 ? ", " + std::to_string(p_.sampling) + " samples per bin axis" : ", adaptive");
  }

 private:
  DType x_type_, roi_type_;
  RoiParams p_;
};

// The layer as roi_align_kernel runs it, or nullopt: X [N, C, H, W] and Y [R, C, out_h, out_w] of one CUDA
// float dtype, rois [R, 4] of a CUDA float dtype, batch_indices [R] int64, valid attributes (of the right
// types; coordinate_transformation_mode's default depends on the opset, as in the reference).
std::optional<RoiParams> roi_params(const LayerDesc& d) {
  if (d.inputs.size() != 3 || d.outputs.size() != 1 || !d.outputs[0].present) return std::nullopt;
  for (const auto& in : d.inputs)
    if (!in.present) return std::nullopt;
  const auto &xd = d.inputs[0].dims, &rd = d.inputs[1].dims, &id = d.inputs[2].dims;
  const DType t = d.inputs[0].dtype;
  if (!is_cuda_float(t) || d.outputs[0].dtype != t || !is_cuda_float(d.inputs[1].dtype) ||
      d.inputs[2].dtype != DType::Int64)
    return std::nullopt;
  if (xd.size() != 4 || rd.size() != 2 || rd[1] != 4 || id != std::vector<int64_t>{rd[0]})
    return std::nullopt;
  for (int64_t v : xd)
    if (v < 0) return std::nullopt;
  RoiParams p{};
  try {
    const Attributes& a = d.node->attrs;
    p.out_h = a.get_int("output_height", 1);
    p.out_w = a.get_int("output_width", 1);
    p.sampling = a.get_int("sampling_ratio", 0);
    p.scale = a.get_float("spatial_scale", 1.0f);
    const std::string ctm =
        a.get_string("coordinate_transformation_mode", d.opset >= 16 ? "half_pixel" : "output_half_pixel");
    const std::string mode = a.get_string("mode", "avg");
    if ((ctm != "half_pixel" && ctm != "output_half_pixel") || (mode != "avg" && mode != "max"))
      return std::nullopt;
    p.half_pixel = ctm == "half_pixel";
    p.max = mode == "max";
  } catch (const Error&) {
    return std::nullopt;
  }
  if (p.out_h < 1 || p.out_w < 1 || p.sampling < 0) return std::nullopt;
  p.batch = xd[0], p.chans = xd[1], p.h = xd[2], p.w = xd[3], p.nroi = rd[0];
  if (d.outputs[0].dims != std::vector<int64_t>{p.nroi, p.chans, p.out_h, p.out_w}) return std::nullopt;
  p.total = ops::numel(d.outputs[0].dims);
  return p;
}

KernelFactory roi_align_factory() {
  return {.name = "cuda.roi_align",
          .device = "cuda",
          .op = "RoiAlign",
          .domain = "",
          .priority = 10,
          .supports = [](const LayerDesc& d) { return roi_params(d).has_value(); },
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<RoiAlignKernel>(d.inputs[0].dtype, d.inputs[1].dtype, *roi_params(d));
          }};
}

KILN_REGISTER_KERNEL(roi_align_factory());

}  // namespace
}  // namespace kiln::cuda::roi_align
