#include "backends/cuda/conv_epilogue.h"
#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

__device__ __forceinline__ float apply_post(float v, PostOp post, float alpha) {
  switch (post) {
    case PostOp::Relu: return v > 0.f ? v : 0.f;
    case PostOp::Elu: return v > 0.f ? v : alpha * (__expf(v) - 1.f);
    case PostOp::Sigmoid: return 1.f / (1.f + __expf(-v));
    default: return v;
  }
}

template <typename T>
__global__ void bias_activation_kernel(T* y, const float* bias, int64_t c, int64_t spatial, int64_t total, PostOp post,
                                       float alpha) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    float v = to_float(y[i]);
    if (bias) v += bias[(i / spatial) % c];
    y[i] = from_float<T>(apply_post(v, post, alpha));
  }
}

// 32x32 tiles through shared memory (padded against bank conflicts): reads and writes both coalesced.
constexpr int kTile = 32, kRows = 8;

template <typename T>
__global__ void transpose_kernel(const T* x, T* y, int64_t rows, int64_t cols, const float* bias, PostOp post,
                                 float alpha, bool epilogue) {
  // x: [batch][rows][cols] -> y: [batch][cols][rows]; with the epilogue, y's rows index is the channel.
  __shared__ float tile[kTile][kTile + 1];
  const int64_t b = blockIdx.z;
  const T* xb = x + b * rows * cols;
  T* yb = y + b * rows * cols;
  const int64_t r0 = int64_t(blockIdx.y) * kTile, c0 = int64_t(blockIdx.x) * kTile;
  for (int i = threadIdx.y; i < kTile; i += kRows) {
    const int64_t r = r0 + i, col = c0 + threadIdx.x;
    if (r < rows && col < cols) tile[i][threadIdx.x] = to_float(xb[r * cols + col]);
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += kRows) {
    const int64_t col = c0 + i, r = r0 + threadIdx.x;  // output row = input column
    if (r < rows && col < cols) {
      float v = tile[threadIdx.x][i];
      if (epilogue) v = apply_post(bias ? v + bias[col] : v, post, alpha);
      yb[col * rows + r] = from_float<T>(v);
    }
  }
}

template <typename T>
void transpose(const void* x, void* y, int64_t n, int64_t rows, int64_t cols, const float* bias, PostOp post, float alpha,
               bool epilogue, cudaStream_t stream) {
  dim3 block(kTile, kRows), grid(static_cast<unsigned>((cols + kTile - 1) / kTile),
                                 static_cast<unsigned>((rows + kTile - 1) / kTile), static_cast<unsigned>(n));
  transpose_kernel<T><<<grid, block, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), rows, cols, bias, post,
                                                  alpha, epilogue);
  KILN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void launch_bias_activation(DType dtype, void* y, const float* bias, int64_t n, int64_t c, int64_t spatial, PostOp post,
                            float alpha, cudaStream_t stream) {
  if (!bias && post == PostOp::None) return;
  const int64_t total = n * c * spatial;
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    bias_activation_kernel<T><<<std::min<unsigned>(blocks_for(total, 256), 132 * 16), 256, 0, stream>>>(
        static_cast<T*>(y), bias, c, spatial, total, post, alpha);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void launch_nchw_to_nhwc(DType dtype, const void* x, void* y, int64_t n, int64_t c, int64_t spatial, cudaStream_t stream) {
  dispatch_float_type(dtype, [&](auto tag) {
    transpose<decltype(tag)>(x, y, n, c, spatial, nullptr, PostOp::None, 0.f, false, stream);
  });
}

void launch_nhwc_to_nchw_bias_activation(DType dtype, const void* x, void* y, const float* bias, int64_t n, int64_t c,
                                         int64_t spatial, PostOp post, float alpha, cudaStream_t stream) {
  dispatch_float_type(dtype, [&](auto tag) {
    transpose<decltype(tag)>(x, y, n, spatial, c, bias, post, alpha, true, stream);
  });
}

}  // namespace kiln::cuda
