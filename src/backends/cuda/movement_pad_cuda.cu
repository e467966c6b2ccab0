// Pad on CUDA (cuda.pad): constant, reflect, edge and wrap, by the reference's rules, per output element.
// Elements move as bits, so every dtype of 1, 2, 4 or 8 bytes pads; the constant is read from the device when
// it is an input (a graph input or a constant), else it is the bits of the opset-2 float attribute.
#include <cstring>

#include "backends/cuda/movement_cuda.cuh"

namespace kiln::cuda::movement {
namespace {

enum class PadMode { Constant, Reflect, Edge, Wrap };

struct PadParams {
  int rank;
  PadMode mode;
  uint64_t value_bits;  // the fill when there is no constant_value input
  int64_t out_dims[kMaxRank], in_dims[kMaxRank], in_strides[kMaxRank], begin[kMaxRank];
};

// Each output element finds its source index per axis by the reference's rules (reflect without repeating the
// edge, period 2(n-1); a single element reflects onto itself), or takes the constant.
template <typename T, typename I>
__global__ void pad_kernel(const T* src, const T* value, T* dst, I n, PadParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  const T fill = value ? *value : static_cast<T>(p.value_bits);
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    I t = i;
    int64_t off = 0;
    bool inside = true;
#pragma unroll
    for (int k = kMaxRank - 1; k >= 0; --k) {
      if (k >= p.rank) continue;
      const I od = static_cast<I>(p.out_dims[k]);
      const I q = t / od;
      int64_t j = static_cast<int64_t>(t - q * od) - p.begin[k];
      t = q;
      const int64_t nk = p.in_dims[k];
      if (j < 0 || j >= nk) {
        if (p.mode == PadMode::Constant) {
          inside = false;
        } else if (p.mode == PadMode::Edge) {
          j = j < 0 ? 0 : nk - 1;
        } else if (p.mode == PadMode::Wrap) {
          j = ((j % nk) + nk) % nk;
        } else if (nk == 1) {
          j = 0;
        } else {
          const int64_t period = 2 * (nk - 1);
          j = ((j % period) + period) % period;
          if (j >= nk) j = period - j;
        }
      }
      off += j * p.in_strides[k];
    }
    dst[i] = inside ? src[off] : fill;
  }
}

class PadKernel final : public CudaKernel {
 public:
  PadKernel(PadParams p, size_t size, int64_t n) : p_(p), size_(size), n_(n) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    dispatch_bits(size_, [&](auto t) {
      using T = decltype(t);
      const T* x = static_cast<const T*>(in[0].data);
      const T* v = in.size() > 2 ? static_cast<const T*>(in[2].data) : nullptr;  // null: absent
      T* y = static_cast<T*>(out[0].data);
      if (fits32(n_))
        pad_kernel<T, uint32_t>
            <<<blocks_for(n_, kThreads), kThreads, 0, rc.stream>>>(x, v, y, static_cast<uint32_t>(n_), p_);
      else
        pad_kernel<T, int64_t><<<blocks_for(n_, kThreads), kThreads, 0, rc.stream>>>(x, v, y, n_, p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  // pads and axes are read at create time; constant_value is read on the device.
  bool owns_constant_input(size_t k) const override { return k == 1 || k == 3; }

 private:
  PadParams p_;
  size_t size_;
  int64_t n_;
};

// The bits of the opset-2 float `value` in dtype t, as the reference stores it; nullopt for non-float dtypes
// (Pad-2 pads float tensors only).
std::optional<uint64_t> attribute_bits(DType t, float v) {
  uint64_t bits = 0;
  if (t == DType::Float) {
    std::memcpy(&bits, &v, sizeof v);
  } else if (t == DType::Double) {
    const double w = v;
    std::memcpy(&bits, &w, sizeof w);
  } else if (t == DType::Float16) {
    bits = float_to_half(v);
  } else if (t == DType::BFloat16) {
    bits = float_to_bfloat16(v);
  } else {
    return std::nullopt;
  }
  return bits;
}

std::optional<PadParams> pad_plan(const LayerDesc& d) {
  if (d.outputs.size() != 1 || d.inputs.empty() || d.inputs.size() > 4 || !d.inputs[0].present ||
      d.inputs[0].dtype != d.outputs[0].dtype || d.inputs[0].dtype == DType::String)
    return std::nullopt;
  const DType dt = d.outputs[0].dtype;
  const size_t es = dtype_size(dt);
  if (!(es == 1 || es == 2 || es == 4 || es == 8)) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0 || r > kMaxRank || y.size() != x.size()) return std::nullopt;
  PadParams p{};
  p.rank = static_cast<int>(r);
  const std::string mode = d.node->attrs.get_string("mode", "constant");
  if (mode == "constant")
    p.mode = PadMode::Constant;
  else if (mode == "reflect")
    p.mode = PadMode::Reflect;
  else if (mode == "edge")
    p.mode = PadMode::Edge;
  else if (mode == "wrap")
    p.mode = PadMode::Wrap;
  else
    return std::nullopt;
  std::vector<int64_t> pads;
  p.value_bits = 0;  // zero bits: 0 in every dtype
  if (d.opset < 11) {
    if (d.inputs.size() != 1) return std::nullopt;
    pads = d.node->attrs.get_ints("pads");
    const auto bits = attribute_bits(dt, d.node->attrs.get_float("value", 0.0f));
    if (!bits) return std::nullopt;
    p.value_bits = *bits;
  } else {
    bool ok = true;
    auto given = const_ints(d, 1, ok);
    auto axes = const_ints(d, 3, ok);
    if (!ok || !given) return std::nullopt;
    pads = *given;
    if (d.inputs.size() > 2 && d.inputs[2].present &&
        (d.inputs[2].dtype != dt || ops::numel(d.inputs[2].dims) != 1))
      return std::nullopt;  // the reference's error: constant_value must be one element of x's dtype
    if (axes) {             // opset 18: pads for the listed axes only
      if (!normalize_axes(*axes, r) || pads.size() != 2 * axes->size()) return std::nullopt;
      std::vector<int64_t> full(static_cast<size_t>(2 * r), 0);
      for (size_t j = 0; j < axes->size(); ++j) {
        full[static_cast<size_t>((*axes)[j])] = pads[j];
        full[static_cast<size_t>((*axes)[j] + r)] = pads[j + axes->size()];
      }
      pads = full;
    }
  }
  if (static_cast<int64_t>(pads.size()) != 2 * r) return std::nullopt;
  const auto xs = strides_of(x);
  for (int64_t k = 0; k < r; ++k) {
    const size_t u = static_cast<size_t>(k);
    const int64_t b = pads[u], e = pads[static_cast<size_t>(k + r)];
    if (b < 0 || e < 0 || x[u] + b + e != y[u])
      return std::nullopt;  // negative pads (crops) are left to others
    if (p.mode != PadMode::Constant && x[u] == 0 && y[u] > 0) return std::nullopt;
    p.out_dims[k] = y[u];
    p.in_dims[k] = x[u];
    p.in_strides[k] = xs[u];
    p.begin[k] = b;
  }
  return p;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.pad", "Pad", [](const LayerDesc& d) { return pad_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<PadKernel>(*pad_plan(d), dtype_size(d.outputs[0].dtype),
                                         ops::numel(d.outputs[0].dims));
    }));

}  // namespace
}  // namespace kiln::cuda::movement
