// Kernels around convolutions: the bias + activation epilogue, and the NCHW <-> NHWC conversions of the layers
// that run cuDNN in NHWC (fp16/bf16 tensor cores), the way back fused with the epilogue.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kiln/tensor_data.h"

namespace kiln::cuda {

enum class PostOp : int { None = 0, Relu = 1, Elu = 2, Sigmoid = 3 };

// y[n, c, s] = post(y[n, c, s] + bias[c]) in place (NCHW, spatial flattened); bias may be null.
void launch_bias_activation(DType dtype, void* y, const float* bias, int64_t n, int64_t c, int64_t spatial, PostOp post,
                            float alpha, cudaStream_t stream);
// [n, c, s] -> [n, s, c]
void launch_nchw_to_nhwc(DType dtype, const void* x, void* y, int64_t n, int64_t c, int64_t spatial, cudaStream_t stream);
// [n, s, c] -> [n, c, s], then bias and activation as above.
void launch_nhwc_to_nchw_bias_activation(DType dtype, const void* x, void* y, const float* bias, int64_t n, int64_t c,
                                         int64_t spatial, PostOp post, float alpha, cudaStream_t stream);

}  // namespace kiln::cuda
