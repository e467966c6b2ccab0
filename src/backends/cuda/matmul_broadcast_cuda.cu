// Gemm's C broadcast to Y's [M, N] (scalar, row, column), written into Y before the GEMM accumulates onto it
// with beta; scaled by beta itself when K == 0 and no GEMM runs. One thread per element, grid-stride; c may
// be y (a full C the planner placed in Y, K == 0): each element is read and written by the same thread.
#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/matmul_cuda.h"

namespace kiln::cuda::matmul {
namespace {

template <typename T>
__global__ void broadcast_matrix_kernel(const T* c, T* y, int64_t m, int64_t n, int64_t stride_i,
                                        int64_t stride_j, float scale) {
  const int64_t total = m * n;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const int64_t i = e / n, j = e - i * n;
    const float v = to_float(c[i * stride_i + j * stride_j]);
    y[e] = from_float<T>(scale == 1.f ? v : scale * v);
  }
}

}  // namespace

void launch_broadcast_matrix(DType dtype, const void* c, void* y, int64_t m, int64_t n, int64_t stride_i,
                             int64_t stride_j, float scale, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  constexpr int kThreads = 256;
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    broadcast_matrix_kernel<T><<<blocks_for(m * n, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(c), static_cast<T*>(y), m, n, stride_i, stride_j, scale);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda::matmul
