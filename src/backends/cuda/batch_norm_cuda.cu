// kiln — cuda.batch_norm: BatchNormalization in inference mode (training_mode = 0) over [N, C, ...] of any
// rank >= 2, fp32 / fp16 / bf16, as the per-channel affine map
//   y = a[c] · x + b[c],   a = scale / sqrt(var + eps),   b = B − a · mean   (ops/norm.cpp's formula).
// With scale, B, mean and var all build-time constants (the usual case when no Conv precedes the
// BatchNormalization to fold it into, e.g. DenseNet's pre-activation blocks) a and b are formed in double at
// create time and uploaded once. Otherwise every thread forms a and b of its channel from the four parameter
// tensors (one float dtype among them), in float.
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

// The channel of flat index i of [N, C, inner].
template <typename I>
__device__ __forceinline__ I channel_of(I i, I channels, I inner) {
  return (i / inner) % channels;
}

// ab: a[0..C) then b[0..C), precomputed.
template <typename T, typename I>
__global__ void batch_norm_const_kernel(const T* __restrict__ x, T* __restrict__ y,
                                        const float* __restrict__ ab, I n, I channels, I inner) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const I c = channel_of(i, channels, inner);
    y[i] = from_float<T>(fmaf(ab[c], to_float(x[i]), ab[channels + c]));
  }
}

// scale, bias, mean, var: device tensors of one dtype P.
template <typename T, typename P, typename I>
__global__ void batch_norm_var_kernel(const T* __restrict__ x, T* __restrict__ y, const P* __restrict__ scale,
                                      const P* __restrict__ bias, const P* __restrict__ mean,
                                      const P* __restrict__ var, float eps, I n, I channels, I inner) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const I c = channel_of(i, channels, inner);
    const float a = to_float(scale[c]) / sqrtf(to_float(var[c]) + eps);
    y[i] = from_float<T>(a * (to_float(x[i]) - to_float(mean[c])) + to_float(bias[c]));
  }
}

class BatchNormKernel final : public CudaKernel {
 public:
  BatchNormKernel(const LayerDesc& d) : dtype_(d.inputs[0].dtype), param_dtype_(d.inputs[1].dtype) {
    const auto& x = d.inputs[0].dims;
    n_ = 1;
    for (int64_t v : x) n_ *= v;
    channels_ = x[1];
    for (size_t k = 2; k < x.size(); ++k) inner_ *= x[k];
    const double eps = d.node->attrs.get_float("epsilon", 1e-5f);
    eps_ = static_cast<float>(eps);
    constant_ = true;
    for (size_t k = 1; k < 5; ++k) constant_ = constant_ && d.inputs[k].constant;
    if (!constant_) return;
    std::vector<float> ab(static_cast<size_t>(2 * channels_));
    for (int64_t c = 0; c < channels_; ++c) {
      const double a =
          d.inputs[1].constant->as_double(c) / std::sqrt(d.inputs[4].constant->as_double(c) + eps);
      ab[static_cast<size_t>(c)] = static_cast<float>(a);
      ab[static_cast<size_t>(channels_ + c)] =
          static_cast<float>(d.inputs[2].constant->as_double(c) - a * d.inputs[3].constant->as_double(c));
    }
    ab_ = DeviceBuffer(ab.data(), ab.size() * sizeof(float));
  }

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    if (n_ <= int64_t{1} << 30)  // 32-bit index math: i + grid stride stays below 2^32
      launch<uint32_t>(in, out, rc.stream);
    else
      launch<int64_t>(in, out, rc.stream);
  }
  bool owns_constant_input(size_t k) const override { return constant_ && k >= 1 && k <= 4; }
  std::string describe() const override {
    return constant_ ? "constant a, b" : "parameters read per element";
  }

 private:
  template <typename I>
  void launch(const std::vector<TensorView>& in, const std::vector<TensorView>& out, cudaStream_t s) const {
    const unsigned int blocks = blocks_for(n_, kThreads);
    const I n = static_cast<I>(n_), channels = static_cast<I>(channels_), inner = static_cast<I>(inner_);
    dispatch_float_type(dtype_, [&](auto xt) {
      using T = decltype(xt);
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      if (constant_) {
        batch_norm_const_kernel<T, I><<<blocks, kThreads, 0, s>>>(x, y, ab_.as<float>(), n, channels, inner);
        KILN_CUDA_CHECK_LAUNCH();
        return;
      }
      dispatch_float_type(param_dtype_, [&](auto pt) {
        using P = decltype(pt);
        batch_norm_var_kernel<T, P, I><<<blocks, kThreads, 0, s>>>(
            x, y, static_cast<const P*>(in[1].data), static_cast<const P*>(in[2].data),
            static_cast<const P*>(in[3].data), static_cast<const P*>(in[4].data), eps_, n, channels, inner);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }

  DType dtype_, param_dtype_;
  int64_t n_ = 0, channels_ = 0, inner_ = 1;
  float eps_ = 1e-5f;
  bool constant_ = false;
  DeviceBuffer ab_;  // constant parameters: a then b, C floats each
};

// Inference mode with only Y wanted; X [N, C, ...] rank >= 2 and Y of one CUDA float dtype; the parameters
// [C] of CUDA float dtypes — all constants (any mix of dtypes), or otherwise all of one dtype.
bool supported(const LayerDesc& d) {
  if (d.inputs.size() != 5 || d.outputs.empty() || !d.outputs[0].present) return false;
  for (size_t k = 1; k < d.outputs.size(); ++k)
    if (d.outputs[k].present) return false;  // training statistics: the reference says why not
  try {
    const Attributes& a = d.node->attrs;
    if (a.get_int("training_mode", 0) != 0 || (d.opset < 9 && a.get_int("spatial", 1) == 0)) return false;
    a.get_float("epsilon", 1e-5f);
  } catch (const Error&) {
    return false;
  }
  const auto& x = d.inputs[0].dims;
  const DType t = d.inputs[0].dtype;
  if (!d.inputs[0].present || !is_cuda_float(t) || d.outputs[0].dtype != t || x.size() < 2 ||
      d.outputs[0].dims != x)
    return false;
  for (int64_t v : x)
    if (v < 0) return false;
  bool all_constant = true;
  for (size_t k = 1; k < 5; ++k) {
    const auto& o = d.inputs[k];
    if (!o.present || !is_cuda_float(o.dtype) || o.dims != std::vector<int64_t>{x[1]}) return false;
    if (o.constant && o.constant->numel() != x[1]) return false;
    all_constant = all_constant && o.constant;
  }
  if (all_constant) return true;
  for (size_t k = 2; k < 5; ++k)
    if (d.inputs[k].dtype != d.inputs[1].dtype) return false;
  return true;
}

KILN_REGISTER_KERNEL(KernelFactory{.name = "cuda.batch_norm",
                                   .device = "cuda",
                                   .op = "BatchNormalization",
                                   .domain = "",
                                   .priority = 10,
                                   .supports = supported,
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
                                     return std::make_unique<BatchNormKernel>(d);
                                   }});

}  // namespace
}  // namespace kiln::cuda
