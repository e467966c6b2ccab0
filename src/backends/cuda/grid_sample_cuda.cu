// GridSample on CUDA (cuda.grid_sample): 2-D sampling, X [N, C, H, W] at grid [N, H_out, W_out, 2], every
// mode (bilinear/linear, nearest, bicubic/cubic), padding mode (zeros, border, reflection) and align_corners,
// X and grid each float32, float16 or bfloat16. One thread per output element, following the reference
// (src/ops/grid_sample.cpp) step by step in double — the same unnormalization, the same clamps, the same tap
// order and the same padding rule per tap — so nearest mode picks the same pixel and the rest differ only by
// the output's rounding. The reference fails on a non-finite grid coordinate; on the device, where a run
// cannot fail, that output element is NaN instead (every other element is computed).
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "backends/cuda/cuda_device.cuh"
#include "ops/util.h"

namespace kiln::cuda::grid_sample {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

enum class Mode { Linear, Nearest, Cubic };
enum class Padding { Zeros, Border, Reflection };

struct SampleParams {
  int64_t chans, h, w, oh, ow, total;  // total: output elements
  Mode mode;
  Padding padding;
  bool align;
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

// v mirrored into [lo, hi], repeatedly (the reference's reflect; rounded as there, without a fused
// multiply-add, since the result is truncated to a pixel index).
__device__ double reflect(double v, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (v >= lo && v <= hi) return v;
  const double d = v < lo ? lo - v : v - hi;
  const double folds = floor(d / range), r = __dsub_rn(d, __dmul_rn(folds, range));
  const bool even = fmod(folds, 2.0) == 0;
  return (v < lo) == even ? lo + r : hi - r;
}

__device__ __forceinline__ int64_t clamp_index(int64_t v, int64_t hi) {
  return v < 0 ? 0 : (v > hi ? hi : v);
}

// One (n, c) plane of X with the padding rule for pixels outside it (the reference's Plane::at).
template <typename T>
struct Plane {
  const T* data;
  int64_t h, w;
  Padding padding;
  double lo_x, hi_x, lo_y, hi_y;

  __device__ double at(int64_t r, int64_t c) const {
    if (padding == Padding::Zeros)
      return r < 0 || r >= h || c < 0 || c >= w ? 0.0 : to_double(data[r * w + c]);
    if (padding == Padding::Reflection) {
      r = static_cast<int64_t>(reflect(static_cast<double>(r), lo_y, hi_y));
      c = static_cast<int64_t>(reflect(static_cast<double>(c), lo_x, hi_x));
    }
    return to_double(data[clamp_index(r, h - 1) * w + clamp_index(c, w - 1)]);
  }
};

// Pixel coordinate of a normalized one over `size` pixels, rounded step by step as the reference's (no
// fused multiply-add), so nearest mode resolves a coordinate at a tie the same way.
__device__ __forceinline__ double unnormalize(double v, double size, bool align) {
  const double v1 = __dadd_rn(v, 1.0);
  return align ? __dmul_rn(__ddiv_rn(v1, 2.0), __dsub_rn(size, 1.0))
               : __ddiv_rn(__dsub_rn(__dmul_rn(v1, size), 1.0), 2.0);
}

// Keys cubic weight (a = -0.75) of a tap at distance d: |d| <= 1 and 1 < |d| < 2.
__device__ __forceinline__ double cubic_near(double d) {
  constexpr double a = -0.75;
  return ((a + 2) * d - (a + 3)) * d * d + 1;
}
__device__ __forceinline__ double cubic_far(double d) {
  constexpr double a = -0.75;
  return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
}

template <typename T, typename G>
__global__ void grid_sample_kernel(const T* __restrict__ x, const G* __restrict__ grid, T* __restrict__ y,
                                   SampleParams p) {
  const double w = static_cast<double>(p.w), h = static_cast<double>(p.h);
  const double lo_x = p.align ? 0.0 : -0.5, hi_x = p.align ? w - 1 : w - 0.5;
  const double lo_y = p.align ? 0.0 : -0.5, hi_y = p.align ? h - 1 : h - 0.5;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < p.total; o += step) {
    const int64_t i = o % (p.oh * p.ow), plane = o / (p.oh * p.ow), n = plane / p.chans;
    const Plane<T> src{x + plane * p.h * p.w, p.h, p.w, p.padding, lo_x, hi_x, lo_y, hi_y};
    const G* g = grid + (n * p.oh * p.ow + i) * 2;
    const double vx = to_double(g[0]), vy = to_double(g[1]);
    double gx = unnormalize(vx, w, p.align), gy = unnormalize(vy, h, p.align);
    if (!isfinite(gx) || !isfinite(gy)) {  // the reference's error
      y[o] = from_float<T>(NAN);
      continue;
    }
    // Bicubic pads each of its taps instead (Plane::at), as the reference does.
    if (p.padding == Padding::Border && p.mode != Mode::Cubic) {
      gx = fmin(fmax(gx, 0.0), w - 1);
      gy = fmin(fmax(gy, 0.0), h - 1);
    } else if (p.padding == Padding::Reflection && p.mode != Mode::Cubic) {
      gx = reflect(gx, lo_x, hi_x);
      gy = reflect(gy, lo_y, hi_y);
    }
    // Far outside the image every tap reads 0 (zeros) or the border: keeps the indices small.
    gx = fmin(fmax(gx, -4.0 - w), 4.0 + 2.0 * w);
    gy = fmin(fmax(gy, -4.0 - h), 4.0 + 2.0 * h);
    const double fx = floor(gx), fy = floor(gy), tx = gx - fx, ty = gy - fy;
    const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
    double v = 0;
    if (p.mode == Mode::Nearest) {
      v = src.at(static_cast<int64_t>(rint(gy)), static_cast<int64_t>(rint(gx)));  // ties to even
    } else if (p.mode == Mode::Linear) {
      v = (1 - ty) * ((1 - tx) * src.at(y0, x0) + tx * src.at(y0, x0 + 1)) +
          ty * ((1 - tx) * src.at(y0 + 1, x0) + tx * src.at(y0 + 1, x0 + 1));
    } else {
      const double wx[4] = {cubic_far(tx + 1), cubic_near(tx), cubic_near(1 - tx), cubic_far(2 - tx)};
      const double wy[4] = {cubic_far(ty + 1), cubic_near(ty), cubic_near(1 - ty), cubic_far(2 - ty)};
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) v += wy[a] * wx[b] * src.at(y0 - 1 + a, x0 - 1 + b);
    }
    y[o] = from_float<T>(static_cast<float>(v));
  }
}

class GridSampleKernel final : public CudaKernel {
 public:
  GridSampleKernel(DType x_type, DType grid_type, const SampleParams& p)
      : x_type_(x_type), grid_type_(grid_type), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.total == 0) return;
    dispatch_float_type(x_type_, [&](auto xt) {
      using T = decltype(xt);
      dispatch_float_type(grid_type_, [&](auto gt) {
        using G = decltype(gt);
        grid_sample_kernel<T, G><<<blocks_for(p_.total, kThreads), kThreads, 0, rc.stream>>>(
            static_cast<const T*>(in[0].data), static_cast<const G*>(in[1].data),
            static_cast<T*>(out[0].data), p_);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }
  std::string describe() const override {
    static const char* modes[] = {"linear", "nearest", "cubic"};
    static const char* pads[] = {"zeros", "border", "reflection"};
    return std::string(modes[static_cast<int>(p_.mode)]) + ", " + pads[static_cast<int>(p_.padding)] +
           " padding";
  }

 private:
  DType x_type_, grid_type_;
  SampleParams p_;
};

// The layer as grid_sample_kernel runs it, or nullopt: X [N, C, H, W] and Y of one CUDA float dtype, grid
// [N, H_out, W_out, 2] of a CUDA float dtype, known mode and padding_mode (attributes of the wrong type
// refuse), and a non-empty plane unless Y is empty (the reference fails there).
std::optional<SampleParams> sample_params(const LayerDesc& d) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !d.inputs[0].present || !d.inputs[1].present ||
      !d.outputs[0].present)
    return std::nullopt;
  const auto &xd = d.inputs[0].dims, &gd = d.inputs[1].dims, &yd = d.outputs[0].dims;
  const DType t = d.inputs[0].dtype;
  if (!is_cuda_float(t) || d.outputs[0].dtype != t || !is_cuda_float(d.inputs[1].dtype)) return std::nullopt;
  if (xd.size() != 4 || gd.size() != 4 || gd[3] != 2 || gd[0] != xd[0] ||
      yd != std::vector<int64_t>{xd[0], xd[1], gd[1], gd[2]})
    return std::nullopt;
  for (int64_t v : xd)
    if (v < 0) return std::nullopt;
  SampleParams p{};
  try {
    const Attributes& a = d.node->attrs;
    const std::string mode = a.get_string("mode", "bilinear"), pad = a.get_string("padding_mode", "zeros");
    if (mode == "bilinear" || mode == "linear")
      p.mode = Mode::Linear;
    else if (mode == "nearest")
      p.mode = Mode::Nearest;
    else if (mode == "bicubic" || mode == "cubic")
      p.mode = Mode::Cubic;
    else
      return std::nullopt;
    if (pad == "zeros")
      p.padding = Padding::Zeros;
    else if (pad == "border")
      p.padding = Padding::Border;
    else if (pad == "reflection")
      p.padding = Padding::Reflection;
    else
      return std::nullopt;
    p.align = a.get_int("align_corners", 0) != 0;
  } catch (const Error&) {
    return std::nullopt;
  }
  p.chans = xd[1], p.h = xd[2], p.w = xd[3], p.oh = gd[1], p.ow = gd[2];
  p.total = ops::numel(yd);
  if ((p.h == 0 || p.w == 0) && p.total > 0) return std::nullopt;
  return p;
}

KernelFactory grid_sample_factory() {
  return {.name = "cuda.grid_sample",
          .device = "cuda",
          .op = "GridSample",
          .domain = "",
          .priority = 10,
          .supports = [](const LayerDesc& d) { return sample_params(d).has_value(); },
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<GridSampleKernel>(d.inputs[0].dtype, d.inputs[1].dtype,
                                                      *sample_params(d));
          }};
}

KILN_REGISTER_KERNEL(grid_sample_factory());

}  // namespace
}  // namespace kiln::cuda::grid_sample
