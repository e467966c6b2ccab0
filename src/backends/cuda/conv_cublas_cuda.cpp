// Convolution tactics on cuBLAS: cublas (a 1x1 stride-1 convolution is one strided-batched GEMM, an image per
// batch entry) and gemm.im2col (columns of the im2col matrix in chunks of `algo` output positions, each chunk
// one GEMM).
#include <algorithm>

#include "backends/cuda/conv_cuda.h"

namespace kiln::cuda::conv {
namespace {

cudaDataType_t cuda_type(DType t) {
  return t == DType::Float ? CUDA_R_32F : t == DType::Float16 ? CUDA_R_16F : CUDA_R_16BF;
}

}  // namespace

void ConvKernel::im2col_gemm(const void* x, void* y, void* col, cudaStream_t stream) const {
  const Im2colShape g{s_.c,         s_.in[0],     s_.in[1],  s_.out[0], s_.out[1], s_.k[0],  s_.k[1],
                      s_.stride[0], s_.stride[1], s_.pad[0], s_.pad[1], s_.dil[0], s_.dil[1]};
  const int64_t sp = s_.out_spatial(), k = s_.c * s_.k[0] * s_.k[1], chunk = tactic_.algo;
  const size_t elem = dtype_size(s_.dtype);
  const cudaDataType_t t = cuda_type(s_.dtype);
  const float one = 1.f, zero = 0.f;
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mutex);
  KILN_CUBLAS_CHECK(cublasSetStream(h.cublas, stream));
  for (int64_t n = 0; n < s_.n; ++n) {
    const auto* xn =
        static_cast<const unsigned char*>(x) + static_cast<size_t>(n * s_.c * s_.in_spatial()) * elem;
    auto* yn = static_cast<unsigned char*>(y) + static_cast<size_t>(n * s_.m * sp) * elem;
    for (int64_t s0 = 0; s0 < sp; s0 += chunk) {
      const int64_t cols = std::min(chunk, sp - s0);
      launch_im2col(s_.dtype, xn, col, g, s0, s0 + cols, stream);
      // Column-major: Y^T[s0:s0+cols, :] (ld S) = col^T (cols x K, ld cols) * W^T (K x M, ld K).
      KILN_CUBLAS_CHECK(cublasGemmEx(h.cublas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(cols),
                                     static_cast<int>(s_.m), static_cast<int>(k), &one, col, t,
                                     static_cast<int>(cols), w_.weights->ptr, t, static_cast<int>(k), &zero,
                                     yn + static_cast<size_t>(s0) * elem, t, static_cast<int>(sp),
                                     compute_type(), CUBLAS_GEMM_DEFAULT));
    }
  }
}

cublasComputeType_t ConvKernel::compute_type() const {
  return s_.dtype == DType::Float && !s_.tf32 ? CUBLAS_COMPUTE_32F_PEDANTIC
         : s_.dtype == DType::Float           ? CUBLAS_COMPUTE_32F_FAST_TF32
                                              : CUBLAS_COMPUTE_32F;
}

void ConvKernel::gemm_1x1(const void* x, void* y, cudaStream_t stream) const {
  // Row-major Y[M, S] = W[M, C] X[C, S] per image is, column-major, Y^T (S x M) = X^T (S x C) W^T (C x M).
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mutex);
  KILN_CUBLAS_CHECK(cublasSetStream(h.cublas, stream));
  const float one = 1.f, zero = 0.f;
  const int64_t sp = s_.out_spatial();
  const cublasComputeType_t compute = compute_type();
  const cudaDataType_t t = cuda_type(s_.dtype);
  KILN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h.cublas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(sp), static_cast<int>(s_.m),
      static_cast<int>(s_.c), &one, x, t, static_cast<int>(sp), s_.c * sp, w_.weights->ptr, t,
      static_cast<int>(s_.c), 0, &zero, y, t, static_cast<int>(sp), s_.m * sp, static_cast<int>(s_.n),
      compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace kiln::cuda::conv
