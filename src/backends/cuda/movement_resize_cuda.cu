// Resize and Upsample on CUDA (cuda.resize): nearest and (bi)linear.
//
// Resize computes the reference's taps (input index and weight per output coordinate and axis, in double,
// with its coordinate and rounding rules) at create time and uploads them as small tables, so the device
// never re-derives a rounding decision.
#include <algorithm>
#include <cmath>

#include "backends/cuda/movement_cuda.cuh"

namespace kiln::cuda::movement {
namespace {

// Reference taps of one output coordinate along one axis: nearest uses (i0, w0 = 1); linear adds (i1, w1).
struct AxisTaps {
  std::vector<int64_t> i0, i1;
  std::vector<double> w0, w1;
};

struct ResizeSetup {
  bool linear = false;
  std::vector<AxisTaps> taps;  // per axis
};

bool known_coord_mode(const std::string& m) {
  return m == "half_pixel" || m == "half_pixel_symmetric" || m == "pytorch_half_pixel" ||
         m == "align_corners" || m == "asymmetric" || m == "tf_half_pixel_for_nn";
}

std::optional<ResizeSetup> resize_setup(const LayerDesc& d) {
  if (!float_data(d, 1)) return std::nullopt;
  const auto& a = d.node->attrs;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  const size_t r = x.size();
  if (r == 0 || r > kMaxRank || y.size() != r) return std::nullopt;
  const bool upsample = d.node->op == "Upsample";
  const bool legacy = upsample || d.opset < 11;
  if (d.inputs.size() > (legacy ? 2u : 4u)) return std::nullopt;
  std::string mode = a.get_string("mode", "nearest");
  if (mode == "bilinear" || mode == "trilinear") mode = "linear";
  if ((mode != "nearest" && mode != "linear") || a.get_int("antialias", 0) != 0 || a.has("axes") ||
      a.get_int("exclude_outside", 0) != 0)
    return std::nullopt;
  const std::string coord =
      legacy ? "asymmetric" : a.get_string("coordinate_transformation_mode", "half_pixel");
  const std::string nmode = legacy ? "simple" : a.get_string("nearest_mode", "round_prefer_floor");
  if (!known_coord_mode(coord)) return std::nullopt;
  if (nmode != "simple" && nmode != "round_prefer_floor" && nmode != "round_prefer_ceil" &&
      nmode != "floor" && nmode != "ceil")
    return std::nullopt;

  // A present input must be a constant to be read; an empty one counts as absent (roi/scales of Resize-11+).
  auto constant = [&](size_t k, bool& ok) -> const TensorData* {
    if (k >= d.inputs.size() || !d.inputs[k].present) return nullptr;
    if (!d.inputs[k].constant) {
      ok = false;
      return nullptr;
    }
    return d.inputs[k].constant->numel() > 0 ? d.inputs[k].constant : nullptr;
  };
  // Scale per axis, as the reference: given scales as float32, or sizes / in (one shared scale for the
  // keep-aspect policies).
  std::vector<double> scale(r, 1.0);
  bool ok = true;
  std::vector<double> given;
  if (upsample && d.opset < 9) {
    for (float f : a.get_floats("scales")) given.push_back(f);
  } else if (const TensorData* s = constant(legacy ? 1 : 2, ok)) {
    if (!dtype_is_float(s->dtype())) return std::nullopt;
    for (int64_t i = 0; i < s->numel(); ++i) given.push_back(s->as_double(i));
  }
  if (!ok) return std::nullopt;
  if (!given.empty()) {
    if (given.size() != r) return std::nullopt;
    for (size_t k = 0; k < r; ++k) scale[k] = static_cast<float>(given[k]);
  } else {
    const TensorData* sz = legacy ? nullptr : constant(3, ok);
    if (!ok || !sz || !dtype_is_integer(sz->dtype())) return std::nullopt;
    const auto sizes = sz->to_int64_vector();
    if (sizes.size() != r) return std::nullopt;
    const std::string policy = a.get_string("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller") return std::nullopt;
    double shared = policy == "not_larger" ? 1e300 : 0;
    for (size_t k = 0; k < r; ++k) {
      if (x[k] <= 0) return std::nullopt;
      scale[k] = static_cast<double>(sizes[k]) / static_cast<double>(x[k]);
      shared = policy == "not_larger" ? std::min(shared, scale[k]) : std::max(shared, scale[k]);
    }
    if (policy != "stretch") std::fill(scale.begin(), scale.end(), shared);
  }

  ResizeSetup setup;
  setup.linear = mode == "linear";
  setup.taps.resize(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t in = x[k], out = y[k];
    if (out > 0 && (in <= 0 || !(scale[k] > 0))) return std::nullopt;
    AxisTaps& t = setup.taps[k];
    auto clamp = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
    for (int64_t o = 0; o < out; ++o) {
      const double c = *ops::resize_source_coord(coord, static_cast<double>(o), in, out, scale[k]);
      if (!setup.linear) {
        t.i0.push_back(clamp(*ops::resize_nearest_index(nmode, c, scale[k] < 1)));
        t.w0.push_back(1.0);
        t.i1.push_back(0);
        t.w1.push_back(0.0);
      } else {
        const double f = std::floor(c);
        t.i0.push_back(clamp(static_cast<int64_t>(f)));
        t.w0.push_back(1 - (c - f));
        t.i1.push_back(clamp(static_cast<int64_t>(f) + 1));
        t.w1.push_back(c - f);
      }
    }
  }
  if (setup.linear) {
    // Linear is interpolated along the last two axes only; every other axis must map each output index to
    // the same input index with weight 1 (the usual N, C).
    for (size_t k = 0; k + 2 < r; ++k) {
      const AxisTaps& t = setup.taps[k];
      if (x[k] != y[k]) return std::nullopt;
      for (int64_t o = 0; o < y[k]; ++o)
        if (t.i0[static_cast<size_t>(o)] != o || t.w0[static_cast<size_t>(o)] != 1.0 ||
            t.w1[static_cast<size_t>(o)] != 0.0)
          return std::nullopt;
    }
  }
  return setup;
}

struct NearestParams {
  int rank;
  int64_t dims[kMaxRank], table_at[kMaxRank];
};

// table[table_at[k] + idx_k]: the input offset (index × input stride) of output index idx_k along axis k.
template <typename U, typename I>
__global__ void resize_nearest_kernel(const U* src, U* dst, I n, const int64_t* table, NearestParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    I t = i;
    int64_t off = 0;
#pragma unroll
    for (int k = kMaxRank - 1; k >= 0; --k) {
      if (k >= p.rank) continue;
      const I d = static_cast<I>(p.dims[k]);
      const I q = t / d;
      off += table[p.table_at[k] + static_cast<int64_t>(t - q * d)];
      t = q;
    }
    dst[i] = src[off];
  }
}

// Two taps along one axis: input offsets and weights (a zero weight's tap is skipped, as the reference does).
struct Tap2 {
  int64_t o0, o1;
  float w0, w1;
};

struct LinearParams {
  int64_t oh, ow, in_plane;  // output rows and columns; input elements per [H, W] plane
};

template <typename T, typename I>
__global__ void resize_linear_kernel(const T* src, T* dst, I n, const Tap2* th, const Tap2* tw,
                                     LinearParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  const I ow = static_cast<I>(p.ow), oh = static_cast<I>(p.oh);
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const I t = i / ow, w = i - t * ow;
    const I plane = t / oh, h = t - plane * oh;
    const T* s = src + static_cast<int64_t>(plane) * p.in_plane;
    const Tap2 a = th[h], b = tw[w];
    auto row = [&](int64_t ro) {
      float acc = 0.f;
      if (b.w0 != 0.f) acc += b.w0 * to_float(s[ro + b.o0]);
      if (b.w1 != 0.f) acc += b.w1 * to_float(s[ro + b.o1]);
      return acc;
    };
    float v = 0.f;
    if (a.w0 != 0.f) v += a.w0 * row(a.o0);
    if (a.w1 != 0.f) v += a.w1 * row(a.o1);
    dst[i] = from_float<T>(v);
  }
}

class ResizeKernel final : public CudaKernel {
 public:
  ResizeKernel(const ResizeSetup& s, const std::vector<int64_t>& x, const std::vector<int64_t>& y,
               DType dtype)
      : linear_(s.linear), dtype_(dtype), n_(ops::numel(y)) {
    const size_t r = x.size();
    if (!linear_) {
      const auto xs = strides_of(x);
      std::vector<int64_t> table;
      np_.rank = static_cast<int>(r);
      for (size_t k = 0; k < r; ++k) {
        np_.dims[k] = y[k];
        np_.table_at[k] = static_cast<int64_t>(table.size());
        for (int64_t i : s.taps[k].i0) table.push_back(i * xs[k]);
      }
      table_ = DeviceBuffer(table.data(), table.size() * sizeof(int64_t));
      return;
    }
    // Linear: rows (axis r-2, or a single row for 1-D) and columns (axis r-1).
    const int64_t iw = x[r - 1];
    std::vector<Tap2> taps;
    if (r >= 2) {
      const AxisTaps& t = s.taps[r - 2];
      for (size_t o = 0; o < t.i0.size(); ++o)
        taps.push_back(
            {t.i0[o] * iw, t.i1[o] * iw, static_cast<float>(t.w0[o]), static_cast<float>(t.w1[o])});
      lp_.oh = y[r - 2];
      lp_.in_plane = x[r - 2] * iw;
    } else {
      taps.push_back({0, 0, 1.f, 0.f});
      lp_.oh = 1;
      lp_.in_plane = iw;
    }
    rows_ = static_cast<int64_t>(taps.size());
    const AxisTaps& t = s.taps[r - 1];
    for (size_t o = 0; o < t.i0.size(); ++o)
      taps.push_back({t.i0[o], t.i1[o], static_cast<float>(t.w0[o]), static_cast<float>(t.w1[o])});
    lp_.ow = y[r - 1];
    table_ = DeviceBuffer(taps.data(), taps.size() * sizeof(Tap2));
  }

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    const unsigned int grid = blocks_for(n_, kThreads);
    if (!linear_) {
      dispatch_bits(dtype_size(dtype_), [&](auto u) {
        using U = decltype(u);
        const U* x = static_cast<const U*>(in[0].data);
        U* y = static_cast<U*>(out[0].data);
        const int64_t* table = table_.as<int64_t>();
        if (fits32(n_))
          resize_nearest_kernel<U, uint32_t>
              <<<grid, kThreads, 0, rc.stream>>>(x, y, static_cast<uint32_t>(n_), table, np_);
        else
          resize_nearest_kernel<U, int64_t><<<grid, kThreads, 0, rc.stream>>>(x, y, n_, table, np_);
        KILN_CUDA_CHECK_LAUNCH();
      });
      return;
    }
    dispatch_float_type(dtype_, [&](auto t) {
      using T = decltype(t);
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      const Tap2* th = table_.as<Tap2>();
      const Tap2* tw = th + rows_;
      if (fits32(n_))
        resize_linear_kernel<T, uint32_t>
            <<<grid, kThreads, 0, rc.stream>>>(x, y, static_cast<uint32_t>(n_), th, tw, lp_);
      else
        resize_linear_kernel<T, int64_t><<<grid, kThreads, 0, rc.stream>>>(x, y, n_, th, tw, lp_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  bool owns_constant_input(size_t k) const override { return k >= 1; }  // roi, scales, sizes

 private:
  bool linear_;
  DType dtype_;
  int64_t n_;
  DeviceBuffer table_;
  NearestParams np_{};
  LinearParams lp_{};
  int64_t rows_ = 0;
};

std::unique_ptr<backend::Kernel> create_resize(const LayerDesc& d) {
  return std::make_unique<ResizeKernel>(*resize_setup(d), d.inputs[0].dims, d.outputs[0].dims,
                                        d.outputs[0].dtype);
}
KILN_REGISTER_KERNEL(factory(
    "cuda.resize", "Resize", [](const LayerDesc& d) { return resize_setup(d).has_value(); }, create_resize));
KILN_REGISTER_KERNEL(factory(
    "cuda.resize", "Upsample", [](const LayerDesc& d) { return resize_setup(d).has_value(); },
    create_resize));

}  // namespace
}  // namespace kiln::cuda::movement
