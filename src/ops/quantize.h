// Linear quantization helpers shared by QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear
// (quantize.cpp) and the integer Conv/MatMul family (qlinear.cpp): q = saturate(round(x / scale) +
// zero_point), x = (q - zero_point) * scale.
#pragma once
#include <string>
#include <vector>

#include "ops/util.h"

namespace kiln::ops {

// x rounded to the nearest integer, ties to even: the rounding ONNX quantization specifies.
double round_half_even(double x);

// Every element of a numeric tensor (integer, bool or float) as a double; exact for integers below 2^53.
std::vector<double> load_numbers(const KernelContext& ctx, const TensorData& t);

// The value of a quantization parameter `p` (a scale, zero point or bias) at every element of a tensor of
// `dims`: a one-element p applies everywhere; a 1-D p of length dims[axis] applies along `axis` (axis < 0:
// only per-tensor or same-rank parameters are allowed); a p of the tensor's rank must broadcast to it
// (e.g. a [D1, M, 1] per-row zero point of a [D1, M, K] operand). Anything else fails naming `what`.
std::vector<double> expand_param(const KernelContext& ctx, const TensorData& p,
                                 const std::vector<int64_t>& dims, int64_t axis, const std::string& what);

// An integer tensor of dtype `dt` from values already rounded to integers, saturated to the type's range.
// NaN has no quantized value: it stores 0 (a defined result instead of undefined behaviour).
TensorData store_saturated(const KernelContext& ctx, DType dt, const std::vector<int64_t>& dims,
                           const std::vector<double>& v);

}  // namespace kiln::ops
