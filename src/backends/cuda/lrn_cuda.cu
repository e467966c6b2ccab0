// kiln — cuda.lrn: LRN (local response normalization across channels) over [N, C, spatial...] of any rank
// >= 3, fp32 / fp16 / bf16, as ops/lrn.cpp defines it:
//   y = x / (bias + alpha / size · Σ_{c' in window(c)} x[c']²)^beta,
//   window(c) = [c − floor((size − 1) / 2), c + ceil((size − 1) / 2)] clipped to [0, C).
// One thread per output element sums its window's squares in float (the reference: double; size terms) and
// takes one powf. Any beta and bias: a base <= 0 gives what pow gives (NaN or inf), as in the reference.
#include <cmath>
#include <cstdint>
#include <memory>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

struct LrnParams {
  float bias, scale, beta;  // scale = alpha / size
  int64_t before, after;    // the window around c
};

template <typename T, typename I>
__global__ void lrn_kernel(const T* __restrict__ x, T* __restrict__ y, I n, I channels, I inner,
                           LrnParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const I c = (i / inner) % channels;
    const T* x0 = x + (i - c * inner);  // channel 0 of this (n, position)
    const I first = c >= static_cast<I>(p.before) ? c - static_cast<I>(p.before) : 0;
    const I last = c + static_cast<I>(p.after) < channels ? c + static_cast<I>(p.after) : channels - 1;
    float sum = 0.f;
    for (I k = first; k <= last; ++k) {
      const float v = to_float(x0[k * inner]);
      sum += v * v;
    }
    y[i] = from_float<T>(to_float(x[i]) / powf(p.bias + p.scale * sum, p.beta));
  }
}

class LrnKernel final : public CudaKernel {
 public:
  explicit LrnKernel(const LayerDesc& d) : dtype_(d.inputs[0].dtype) {
    const auto& x = d.inputs[0].dims;
    n_ = 1;
    for (int64_t v : x) n_ *= v;
    channels_ = x[1];
    for (size_t k = 2; k < x.size(); ++k) inner_ *= x[k];
    const Attributes& a = d.node->attrs;
    const int64_t size = a.get_int("size", 1);
    p_.bias = a.get_float("bias", 1.f);
    p_.beta = a.get_float("beta", 0.75f);
    p_.scale =
        static_cast<float>(static_cast<double>(a.get_float("alpha", 1e-4f)) / static_cast<double>(size));
    p_.before = (size - 1) / 2;
    p_.after = size - 1 - p_.before;
  }
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    if (n_ <= int64_t{1} << 30)  // 32-bit index math: i + grid stride stays below 2^32
      launch<uint32_t>(in[0].data, out[0].data, rc.stream);
    else
      launch<int64_t>(in[0].data, out[0].data, rc.stream);
  }

 private:
  template <typename I>
  void launch(const void* x, void* y, cudaStream_t s) const {
    dispatch_float_type(dtype_, [&](auto tag) {
      using T = decltype(tag);
      lrn_kernel<T, I><<<blocks_for(n_, kThreads), kThreads, 0, s>>>(
          static_cast<const T*>(x), static_cast<T*>(y), static_cast<I>(n_), static_cast<I>(channels_),
          static_cast<I>(inner_), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

  DType dtype_;
  int64_t n_ = 0, channels_ = 0, inner_ = 1;
  LrnParams p_{};
};

// X [N, C, D1, ...] and Y of one CUDA float dtype, size >= 1 (the window's half-widths fit the index type
// because they are clipped to C), float attributes readable.
bool supported(const LayerDesc& d) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return false;
  const auto& x = d.inputs[0].dims;
  const DType t = d.inputs[0].dtype;
  if (!is_cuda_float(t) || d.outputs[0].dtype != t || x.size() < 3 || d.outputs[0].dims != x) return false;
  for (int64_t v : x)
    if (v < 0) return false;
  try {
    const Attributes& a = d.node->attrs;
    const int64_t size = a.get_int("size", 0);
    if (size < 1 || size > (int64_t{1} << 30)) return false;
    a.get_float("alpha", 1e-4f);
    a.get_float("beta", 0.75f);
    a.get_float("bias", 1.f);
  } catch (const Error&) {
    return false;
  }
  return true;
}

KILN_REGISTER_KERNEL(KernelFactory{.name = "cuda.lrn",
                                   .device = "cuda",
                                   .op = "LRN",
                                   .domain = "",
                                   .priority = 10,
                                   .supports = supported,
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
                                     return std::make_unique<LrnKernel>(d);
                                   }});

}  // namespace
}  // namespace kiln::cuda
