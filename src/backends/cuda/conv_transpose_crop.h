// The window of a transposed convolution's output that ONNX keeps, when cuDNN (symmetric pads only) had to
// compute a larger one: asymmetric pads, SAME, output_shape, output_padding beyond the stride.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kiln/tensor_data.h"

namespace kiln::cuda {

// Spatial sizes padded to 3 (leading 1s). dst[p, o] = src[p, o + offset] + bias[p % c] where o + offset lies
// inside src's spatial extent, else bias[p % c] alone (positions no input reaches); p runs over n*c planes.
// bias may be null.
struct CropShape {
  int64_t planes = 0, c = 1;
  int64_t src[3] = {1, 1, 1}, dst[3] = {1, 1, 1}, offset[3] = {0, 0, 0};
};
void launch_crop_bias(DType dtype, const void* src, void* dst, const float* bias, const CropShape& s,
                      cudaStream_t stream);

}  // namespace kiln::cuda
