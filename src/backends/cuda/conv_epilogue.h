// Kernels around convolutions: the bias + activation epilogue, and the NCHW <-> NHWC conversions of the
// layers that run cuDNN in NHWC (fp16/bf16 tensor cores), the way back fused with the epilogue.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "kiln/tensor_data.h"
#include "ops/activation.h"

namespace kiln::cuda {

// y[n, c, s] = post(y[n, c, s] + bias[c]) in place (NCHW, spatial flattened); bias may be null. post: any
// activation of ops/activation.h (exp as __expf).
void launch_bias_activation(DType dtype, void* y, const float* bias, int64_t n, int64_t c, int64_t spatial,
                            const ops::ActivationParams& post, cudaStream_t stream);
// [n, c, s] -> [n, s, c_pad], channels c..c_pad-1 zero (tensor cores want channel counts in multiples of 8).
void launch_nchw_to_nhwc(DType dtype, const void* x, void* y, int64_t n, int64_t c, int64_t spatial,
                         int64_t c_pad, cudaStream_t stream);
// [n, s, c_pad] -> [n, c, s] (the first c channels), then bias and activation as above.
void launch_nhwc_to_nchw_bias_activation(DType dtype, const void* x, void* y, const float* bias, int64_t n,
                                         int64_t c, int64_t spatial, int64_t c_pad,
                                         const ops::ActivationParams& post, cudaStream_t stream);

// Zero-pads the spatial dims of planes [planes][in...] into [planes][out...]: element o of a plane reads
// in[o - begin] where that lies inside, else 0 (1 to 3 spatial dims). For pads cuDNN cannot express.
void launch_pad_spatial(DType dtype, const void* x, void* y, int64_t planes, const std::vector<int64_t>& in,
                        const std::vector<int64_t>& out, const std::vector<int64_t>& begin,
                        cudaStream_t stream);

}  // namespace kiln::cuda

namespace kiln::cuda {
// Columns [s0, s1) of image n's im2col matrix, row-major [C*kh*kw][s1 - s0] (zero where the window reads
// padding), for a 2-D convolution: x [C, H, W] of one image, output [OH, OW], s = oh * OW + ow.
struct Im2colShape {
  int64_t c, h, w, oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};
void launch_im2col(DType dtype, const void* x_image, void* col, const Im2colShape& s, int64_t s0, int64_t s1,
                   cudaStream_t stream);
}  // namespace kiln::cuda
