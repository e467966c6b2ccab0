#include "backends/cuda/conv_transpose_crop.h"
#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

// One thread per output element (grid-stride), indices in int64.
template <typename T>
__global__ void crop_bias_kernel(const T* src, T* dst, const float* bias, CropShape s, int64_t total) {
  const int64_t dst_plane = s.dst[0] * s.dst[1] * s.dst[2], src_plane = s.src[0] * s.src[1] * s.src[2];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i / dst_plane, r = i % dst_plane;
    const int64_t d = r / (s.dst[1] * s.dst[2]) + s.offset[0];
    const int64_t h = r / s.dst[2] % s.dst[1] + s.offset[1];
    const int64_t w = r % s.dst[2] + s.offset[2];
    float v = 0.f;
    if (d < s.src[0] && h < s.src[1] && w < s.src[2])  // offsets are >= 0
      v = to_float(src[p * src_plane + (d * s.src[1] + h) * s.src[2] + w]);
    if (bias) v += bias[p % s.c];
    dst[i] = from_float<T>(v);
  }
}

}  // namespace

void launch_crop_bias(DType dtype, const void* src, void* dst, const float* bias, const CropShape& s,
                      cudaStream_t stream) {
  const int64_t total = s.planes * s.dst[0] * s.dst[1] * s.dst[2];
  if (total == 0) return;
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    crop_bias_kernel<T><<<std::min<unsigned>(blocks_for(total, 256), 132 * 16), 256, 0, stream>>>(
        static_cast<const T*>(src), static_cast<T*>(dst), bias, s, total);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda
