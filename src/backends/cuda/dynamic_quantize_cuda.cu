// cuda.dynamic_quantize: DynamicQuantizeLinear, float32 x → uint8 y, float32 y_scale, uint8 y_zero_point
// (scalars), with the reference's float32 arithmetic (src/ops/quantize.cpp):
//   lo = min(x, 0), hi = max(x, 0)            (the range always includes 0)
//   y_scale = hi == lo ? 1 : (hi - lo) / 255
//   y_zero_point = round_half_even(clamp(0 - lo / y_scale, 0, 255))
//   y = saturate(round_half_even(x / y_scale) + y_zero_point)
// One block finds the range (min/max are exact, so any order gives the same result) and writes y_scale and
// y_zero_point; then one thread per element quantizes, reading them from the device.
// The reference fails on a NaN in x; a kernel cannot, so here NaNs are left out of the range (fminf/fmaxf
// ignore them) and quantize to 0 (the saturation of the other quantize kernels).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;
constexpr int kRangeThreads = 1024;

__global__ void dynamic_range_kernel(const float* x, int64_t n, float* y_scale, uint8_t* y_zero_point) {
  __shared__ float s_lo[kRangeThreads], s_hi[kRangeThreads];
  float lo = 0, hi = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    lo = fminf(lo, x[i]);
    hi = fmaxf(hi, x[i]);
  }
  s_lo[threadIdx.x] = lo;
  s_hi[threadIdx.x] = hi;
  __syncthreads();
  for (int width = blockDim.x / 2; width > 0; width /= 2) {
    if (static_cast<int>(threadIdx.x) < width) {
      s_lo[threadIdx.x] = fminf(s_lo[threadIdx.x], s_lo[threadIdx.x + width]);
      s_hi[threadIdx.x] = fmaxf(s_hi[threadIdx.x], s_hi[threadIdx.x + width]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    lo = s_lo[0];
    hi = s_hi[0];
    // IEEE division and subtraction (no fast math): bit for bit the reference's float32 values.
    const float scale = hi == lo ? 1.0f : __fdiv_rn(__fsub_rn(hi, lo), 255.0f);
    const float zp = rintf(fminf(fmaxf(__fsub_rn(0.0f, __fdiv_rn(lo, scale)), 0.0f), 255.0f));
    y_scale[0] = scale;
    y_zero_point[0] = static_cast<uint8_t>(zp);
  }
}

__global__ void dynamic_quantize_kernel(const float* x, int64_t n, const float* y_scale,
                                        const uint8_t* y_zero_point, uint8_t* y) {
  const float scale = y_scale[0];
  const float zp = static_cast<float>(y_zero_point[0]);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    // rintf rounds half to even; |quotient| <= 255 when finite, so the float sum with zp is exact.
    const float v = rintf(__fdiv_rn(x[i], scale)) + zp;
    y[i] = isnan(v) ? uint8_t(0) : static_cast<uint8_t>(fminf(fmaxf(v, 0.0f), 255.0f));
  }
}

class DynamicQuantizeKernel final : public CudaKernel {
 public:
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = in[0].numel();
    const float* x = static_cast<const float*>(in[0].data);
    float* scale = static_cast<float*>(out[1].data);
    uint8_t* zp = static_cast<uint8_t*>(out[2].data);
    dynamic_range_kernel<<<1, kRangeThreads, 0, rc.stream>>>(x, n, scale, zp);
    KILN_CUDA_CHECK_LAUNCH();
    if (n == 0) return;
    dynamic_quantize_kernel<<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(
        x, n, scale, zp, static_cast<uint8_t*>(out[0].data));
    KILN_CUDA_CHECK_LAUNCH();
  }
};

bool dynamic_quantize_supported(const LayerDesc& d) {
  if (d.inputs.size() != 1 || !d.inputs[0].present || d.inputs[0].dtype != DType::Float) return false;
  if (d.outputs.size() != 3) return false;
  for (const auto& o : d.outputs)
    if (!o.present) return false;  // the kernel writes y_scale and y_zero_point where y reads them
  return d.outputs[0].dtype == DType::UInt8 && d.outputs[0].dims == d.inputs[0].dims &&
         d.outputs[1].dtype == DType::Float && d.outputs[1].dims.empty() &&
         d.outputs[2].dtype == DType::UInt8 && d.outputs[2].dims.empty();
}

std::unique_ptr<backend::Kernel> create_dynamic_quantize(const LayerDesc& d) {
  if (!dynamic_quantize_supported(d))
    throw Error("cuda.dynamic_quantize: layer '" + d.node->name + "' is not supported");
  return std::make_unique<DynamicQuantizeKernel>();
}

KILN_REGISTER_KERNEL({.name = "cuda.dynamic_quantize",
                      .device = "cuda",
                      .op = "DynamicQuantizeLinear",
                      .domain = "",
                      .priority = 10,
                      .supports = dynamic_quantize_supported,
                      .create = create_dynamic_quantize});

}  // namespace
}  // namespace kiln::cuda
