// Resize in cubic mode on CUDA (cuda.resize_cubic): 4-D [N, C, H, W] data, H and W interpolated, fp32 /
// fp16 / bf16.
//
// As cuda.resize does for nearest and linear, the reference's taps (ops/resize.cpp) are computed at create
// time in double — four per output row and column: input index floor(c) + j for j in -1..2 clamped to the
// input, weight Keys' cubic (cubic_coeff_a) at distance j - frac(c), zero for a tap outside the input under
// exclude_outside, the four normalized to sum 1 — and uploaded as two small tables. Every coordinate
// transformation mode the reference knows, tf_crop_and_resize with a constant roi and extrapolation_value
// included. N and C must map each index to itself (scale 1; tf_half_pixel_for_nn never does: at scale 1 its
// coordinate o + 0.5 mixes neighbouring channels in the reference). Antialiasing is left to other kernels.
#include <algorithm>
#include <cmath>

#include "backends/cuda/movement_cuda.cuh"

namespace kiln::cuda::movement {
namespace {

constexpr int kRank = 4;

// The four taps of one output row or column: input offsets (index × the axis' stride) and weights; `outside`:
// tf_crop_and_resize sampled outside the input (the output is extrapolation_value).
struct Tap4 {
  int64_t offset[4];
  float weight[4];
  int outside;
};

struct CubicSetup {
  std::vector<Tap4> rows, cols;
  float extrapolation = 0.f;
};

// Keys' cubic convolution kernel with coefficient a at distance d (support 2), as the ONNX spec defines it.
double cubic_weight(double d, double a) {
  d = std::fabs(d);
  if (d <= 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
  return d < 2 ? ((a * d - 5 * a) * d + 8 * a) * d - 4 * a : 0.0;
}

// Constant float values of input k (nullopt: absent or empty, which Resize-11+ treats as absent); `ok` turns
// false when present but not a float constant.
std::optional<std::vector<double>> const_floats(const LayerDesc& d, size_t k, bool& ok) {
  if (k >= d.inputs.size() || !d.inputs[k].present) return std::nullopt;
  const TensorData* t = d.inputs[k].constant;
  if (!t || !dtype_is_float(t->dtype())) {
    ok = false;
    return std::nullopt;
  }
  if (t->numel() == 0) return std::nullopt;
  std::vector<double> v(static_cast<size_t>(t->numel()));
  for (int64_t i = 0; i < t->numel(); ++i) v[static_cast<size_t>(i)] = t->as_double(i);
  return v;
}

std::optional<CubicSetup> cubic_setup(const LayerDesc& d) {
  if (d.node->op != "Resize" || d.opset < 11 || d.inputs.size() > 4 || !float_data(d, 1)) return std::nullopt;
  const auto& a = d.node->attrs;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  if (x.size() != kRank || y.size() != kRank || a.get_string("mode", "nearest") != "cubic" ||
      a.get_int("antialias", 0) != 0)
    return std::nullopt;
  for (int64_t v : x)
    if (v <= 0) return std::nullopt;
  const std::string coord = a.get_string("coordinate_transformation_mode", "half_pixel");
  const double cubic_a = a.get_float("cubic_coeff_a", -0.75f);
  const bool exclude_outside = a.get_int("exclude_outside", 0) != 0;
  std::vector<int64_t> axes{0, 1, 2, 3};
  if (a.has("axes")) {
    axes = a.get_ints("axes");
    if (!normalize_axes(axes, kRank)) return std::nullopt;
  }

  // Scale per axis as the reference: given scales (as float32), or sizes / in (one shared scale under a
  // keep-aspect policy).
  std::vector<double> scale(kRank, 1.0);
  bool ok = true;
  const std::optional<std::vector<double>> given = const_floats(d, 2, ok);
  if (!ok) return std::nullopt;
  if (given) {
    if (given->size() != axes.size()) return std::nullopt;
    for (size_t j = 0; j < axes.size(); ++j) scale[axes[j]] = static_cast<float>((*given)[j]);
  } else {
    const std::optional<std::vector<int64_t>> sizes = const_ints(d, 3, ok);
    if (!ok || !sizes || sizes->size() != axes.size()) return std::nullopt;
    const std::string policy = a.get_string("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller") return std::nullopt;
    double shared = policy == "not_larger" ? 1e300 : 0;
    for (size_t j = 0; j < axes.size(); ++j) {
      const double s = static_cast<double>((*sizes)[j]) / static_cast<double>(x[axes[j]]);
      scale[axes[j]] = s;
      shared = policy == "not_larger" ? std::min(shared, s) : std::max(shared, s);
    }
    if (policy != "stretch")
      for (int64_t ax : axes) scale[ax] = shared;
  }
  std::vector<double> roi_start(kRank, 0.0), roi_end(kRank, 1.0);
  if (coord == "tf_crop_and_resize") {
    const std::optional<std::vector<double>> roi = const_floats(d, 1, ok);
    if (!ok || !roi || roi->size() != 2 * axes.size()) return std::nullopt;
    for (size_t j = 0; j < axes.size(); ++j) {
      roi_start[axes[j]] = (*roi)[j];
      roi_end[axes[j]] = (*roi)[j + axes.size()];
    }
  }

  // Taps per axis, in index units; N and C must come out as the identity.
  std::vector<std::vector<Tap4>> taps(kRank);
  for (size_t ax = 0; ax < kRank; ++ax) {
    const int64_t in = x[ax], out = y[ax];
    if (out > 0 && !(scale[ax] > 0)) return std::nullopt;
    for (int64_t o = 0; o < out; ++o) {
      const std::optional<double> src = ops::resize_source_coord(coord, static_cast<double>(o), in, out,
                                                                 scale[ax], roi_start[ax], roi_end[ax]);
      if (!src || !std::isfinite(*src)) return std::nullopt;
      const double c = *src, f = std::floor(c), frac = c - f;
      Tap4 t{};
      t.outside = coord == "tf_crop_and_resize" && (c < 0 || c > static_cast<double>(in - 1));
      double w[4], sum = 0;
      for (int j = -1; j <= 2; ++j) {
        const int64_t i = static_cast<int64_t>(f) + j;
        const bool excluded = exclude_outside && (i < 0 || i >= in);
        w[j + 1] = excluded ? 0.0 : cubic_weight(static_cast<double>(j) - frac, cubic_a);
        t.offset[j + 1] = std::clamp<int64_t>(i, 0, in - 1);
        sum += w[j + 1];
      }
      for (int j = 0; j < 4; ++j) t.weight[j] = static_cast<float>(sum != 0 ? w[j] / sum : w[j]);
      taps[ax].push_back(t);
    }
  }
  for (size_t ax = 0; ax < 2; ++ax) {
    if (x[ax] != y[ax]) return std::nullopt;
    for (int64_t o = 0; o < y[ax]; ++o) {
      const Tap4& t = taps[ax][static_cast<size_t>(o)];
      if (t.outside) return std::nullopt;
      for (int j = 0; j < 4; ++j)
        if (t.weight[j] != (j == 1 ? 1.f : 0.f) || (j == 1 && t.offset[j] != o)) return std::nullopt;
    }
  }
  CubicSetup s;
  s.rows = taps[2];
  for (Tap4& t : s.rows)
    for (int64_t& off : t.offset) off *= x[3];
  s.cols = taps[3];
  s.extrapolation = a.get_float("extrapolation_value", 0.f);
  return s;
}

struct CubicParams {
  int64_t oh, ow, in_plane;  // output rows and columns; input elements per [H, W] plane
  float extrapolation;
};

// One thread per output element: 4 x 4 taps (a zero weight's tap is skipped, as the reference does).
template <typename T, typename I>
__global__ void resize_cubic_kernel(const T* src, T* dst, I n, const Tap4* th, const Tap4* tw,
                                    CubicParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  const I ow = static_cast<I>(p.ow), oh = static_cast<I>(p.oh);
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const I t = i / ow, w = i - t * ow;
    const I plane = t / oh, h = t - plane * oh;
    const Tap4 &a = th[h], &b = tw[w];
    if (a.outside || b.outside) {
      dst[i] = from_float<T>(p.extrapolation);
      continue;
    }
    const T* s = src + static_cast<int64_t>(plane) * p.in_plane;
    float v = 0.f;
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      if (a.weight[r] == 0.f) continue;
      float acc = 0.f;
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (b.weight[c] != 0.f) acc += b.weight[c] * to_float(s[a.offset[r] + b.offset[c]]);
      v += a.weight[r] * acc;
    }
    dst[i] = from_float<T>(v);
  }
}

class ResizeCubicKernel final : public CudaKernel {
 public:
  ResizeCubicKernel(const CubicSetup& s, const std::vector<int64_t>& x, const std::vector<int64_t>& y,
                    DType dtype)
      : dtype_(dtype), n_(ops::numel(y)), rows_(static_cast<int64_t>(s.rows.size())) {
    std::vector<Tap4> taps = s.rows;
    taps.insert(taps.end(), s.cols.begin(), s.cols.end());
    if (!taps.empty()) table_ = DeviceBuffer(taps.data(), taps.size() * sizeof(Tap4));
    p_ = {y[2], y[3], x[2] * x[3], s.extrapolation};
  }

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    const unsigned int grid = blocks_for(n_, kThreads);
    dispatch_float_type(dtype_, [&](auto tag) {
      using T = decltype(tag);
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      const Tap4* th = table_.as<Tap4>();
      const Tap4* tw = th + rows_;
      if (fits32(n_))
        resize_cubic_kernel<T, uint32_t>
            <<<grid, kThreads, 0, rc.stream>>>(x, y, static_cast<uint32_t>(n_), th, tw, p_);
      else
        resize_cubic_kernel<T, int64_t><<<grid, kThreads, 0, rc.stream>>>(x, y, n_, th, tw, p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  bool owns_constant_input(size_t k) const override { return k >= 1; }  // roi, scales, sizes

 private:
  DType dtype_;
  int64_t n_, rows_;
  DeviceBuffer table_;
  CubicParams p_{};
};

KILN_REGISTER_KERNEL(factory(
    "cuda.resize_cubic", "Resize", [](const LayerDesc& d) { return cubic_setup(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<ResizeCubicKernel>(*cubic_setup(d), d.inputs[0].dims, d.outputs[0].dims,
                                                 d.outputs[0].dtype);
    }));

}  // namespace
}  // namespace kiln::cuda::movement
