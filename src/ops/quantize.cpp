// QuantizeLinear, DequantizeLinear (per tensor or per axis) and DynamicQuantizeLinear: shape inference and
// reference kernels, plus the quantization helpers of quantize.h.
//   QuantizeLinear:   y = saturate(round_half_even(x / y_scale) + y_zero_point), y typed like y_zero_point
//                     (uint8 when it is absent)
//   DequantizeLinear: y = (x - x_zero_point) * x_scale, y typed like x_scale
//   DynamicQuantizeLinear: uint8 y with y_scale = (max(x, 0) - min(x, 0)) / 255 and the zero point that maps
//                     min(x, 0) to 0, then QuantizeLinear.
#include "ops/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::ops {

double round_half_even(double x) {
  const double r = std::round(x);  // ties away from zero
  return std::fabs(x - std::trunc(x)) == 0.5 ? 2.0 * std::round(x / 2.0) : r;
}

std::vector<double> load_numbers(const KernelContext& ctx, const TensorData& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch(ctx, t.dtype(), [&](auto ty) {
    using T = decltype(ty);
    const auto* src = t.data<typename T::storage>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(T::load(src[i]));
  });
  return v;
}

std::vector<double> expand_param(const KernelContext& ctx, const TensorData& p,
                                 const std::vector<int64_t>& dims, int64_t axis, const std::string& what) {
  const std::vector<double> pv = load_numbers(ctx, p);
  const size_t n = static_cast<size_t>(numel(dims)), rank = dims.size();
  if (pv.size() == 1) return std::vector<double>(n, pv[0]);
  std::vector<double> out(n);
  if (p.rank() == 1 && axis >= 0 && static_cast<size_t>(axis) < rank && p.dims()[0] == dims[axis]) {
    const int64_t inner = numel(std::vector<int64_t>(dims.begin() + axis + 1, dims.end()));
    for (size_t i = 0; i < n; ++i)
      out[i] = pv[static_cast<size_t>((static_cast<int64_t>(i) / inner) % dims[axis])];
    return out;
  }
  bool broadcasts = static_cast<size_t>(p.rank()) == rank;
  for (size_t k = 0; broadcasts && k < rank; ++k) broadcasts = p.dims()[k] == 1 || p.dims()[k] == dims[k];
  if (!broadcasts)
    ctx.fail(what + " of shape " + to_string(make_shape(p.dims())) + " is neither per-tensor nor " +
             (axis >= 0 ? "per-axis (axis " + std::to_string(axis) + ") " : std::string()) +
             "for a tensor of shape " + to_string(make_shape(dims)));
  const auto strides = broadcast_strides(p.dims(), dims);
  size_t i = 0;
  for_each_index(
      dims, [&](const std::vector<int64_t>& idx) { out[i++] = pv[static_cast<size_t>(dot(idx, strides))]; });
  return out;
}

TensorData store_saturated(const KernelContext& ctx, DType dt, const std::vector<int64_t>& dims,
                           const std::vector<double>& v) {
  TensorData out(dt, dims);
  dispatch(ctx, dt, [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (T::is_float || T::is_bool || sizeof(S) > 4) {
      ctx.fail(std::string("quantized output must be an integer type of at most 32 bits, not ") +
               dtype_name(dt));
    } else {
      const double lo = std::numeric_limits<S>::min(), hi = std::numeric_limits<S>::max();
      S* dst = out.data<S>();
      for (size_t i = 0; i < v.size(); ++i)
        dst[i] = std::isnan(v[i]) ? S(0) : static_cast<S>(std::clamp(v[i], lo, hi));
    }
  });
  return out;
}

namespace {

bool is_quantized_type(DType t) {
  return t == DType::UInt8 || t == DType::Int8;
}

// The element type of a QuantizeLinear output: y_zero_point's, uint8 without one.
DType quantized_type(const auto& ctx) {
  if (!ctx.has_input(2)) return DType::UInt8;
  const DType t = ctx.input(2).dtype();
  if (!is_quantized_type(t))
    ctx.fail(std::string("y_zero_point must be uint8 or int8, not ") + dtype_name(t));
  return t;
}

void infer_quantize(InferContext& ctx) {
  const DType t = ctx.has_input(2) ? ctx.input(2).dtype : DType::UInt8;
  if (t != DType::Undefined && !is_quantized_type(t))
    ctx.fail(std::string("y_zero_point must be uint8 or int8, not ") + dtype_name(t));
  set_out(ctx, 0, t, in_shape(ctx, 0));
}

void infer_dequantize(InferContext& ctx) {
  const DType q = ctx.input(0).dtype;
  if (q != DType::Undefined && !is_quantized_type(q) && q != DType::Int32)
    ctx.fail(std::string("x must be uint8, int8 or int32, not ") + dtype_name(q));
  if (ctx.has_input(2) && ctx.input(2).dtype != DType::Undefined && ctx.input(2).dtype != q)
    ctx.fail("x_zero_point must have x's dtype");
  set_out(ctx, 0, ctx.input(1).dtype, in_shape(ctx, 0));
}

// The per-axis axis of a Q/DQ node (attribute axis, default 1), normalized for x's rank. Only a multi-element
// scale uses it, so a scalar x with a per-tensor scale needs no valid axis.
int64_t quant_axis(const KernelContext& ctx, const TensorData& x) {
  if (ctx.input(1).numel() == 1) return -1;
  return normalize_axis(ctx, ctx.node.attrs.get_int("axis", 1), x.rank());
}

void quantize_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const DType qt = quantized_type(ctx);
  const int64_t axis = quant_axis(ctx, x);
  const std::vector<double> v = load_numbers(ctx, x);
  const std::vector<double> scale = expand_param(ctx, ctx.input(1), x.dims(), axis, "y_scale");
  const std::vector<double> zp = ctx.has_input(2)
                                     ? expand_param(ctx, ctx.input(2), x.dims(), axis, "y_zero_point")
                                     : std::vector<double>(v.size(), 0.0);
  std::vector<double> q(v.size());
  // x / y_scale is a float32 division, as ONNX specifies it for float32 operands: dividing in double could
  // turn a float32 tie into a non-tie and round the other way.
  for (size_t i = 0; i < v.size(); ++i)
    q[i] = round_half_even(static_cast<float>(v[i]) / static_cast<float>(scale[i])) + zp[i];
  ctx.out[0] = store_saturated(ctx, qt, x.dims(), q);
}

void dequantize_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (!is_quantized_type(x.dtype()) && x.dtype() != DType::Int32)
    ctx.fail(std::string("x must be uint8, int8 or int32, not ") + dtype_name(x.dtype()));
  if (ctx.has_input(2) && ctx.input(2).dtype() != x.dtype()) ctx.fail("x_zero_point must have x's dtype");
  const int64_t axis = quant_axis(ctx, x);
  std::vector<double> v = load_numbers(ctx, x);
  const std::vector<double> scale = expand_param(ctx, ctx.input(1), x.dims(), axis, "x_scale");
  const std::vector<double> zp = ctx.has_input(2)
                                     ? expand_param(ctx, ctx.input(2), x.dims(), axis, "x_zero_point")
                                     : std::vector<double>(v.size(), 0.0);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (v[i] - zp[i]) * scale[i];
  ctx.out[0] = store_real(ctx, ctx.input(1).dtype(), x.dims(), v);
}

void infer_dynamic_quantize(InferContext& ctx) {
  const DType t = ctx.input(0).dtype;
  if (t != DType::Undefined && t != DType::Float)
    ctx.fail(std::string("x must be float, not ") + dtype_name(t));
  set_out(ctx, 0, DType::UInt8, in_shape(ctx, 0));
  set_out(ctx, 1, DType::Float, Shape{});
  set_out(ctx, 2, DType::UInt8, Shape{});
}

// Arithmetic in float32, as the ONNX definition (and its function body) does it.
void dynamic_quantize_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.dtype() != DType::Float) ctx.fail(std::string("x must be float, not ") + dtype_name(x.dtype()));
  const float* px = x.data<float>();
  const int64_t n = x.numel();
  float lo = 0, hi = 0;  // the range always includes 0, so that 0 quantizes exactly
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(px[i])) ctx.fail("x contains NaN: it has no quantization range");
    lo = std::min(lo, px[i]);
    hi = std::max(hi, px[i]);
  }
  // An all-zero x has an empty range: any scale represents it, 1 avoids dividing by zero.
  const float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
  const double zp = round_half_even(std::clamp(0.0f - lo / scale, 0.0f, 255.0f));
  std::vector<double> q(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) q[i] = round_half_even(px[i] / scale) + zp;
  ctx.out[0] = store_saturated(ctx, DType::UInt8, x.dims(), q);
  ctx.out[1] = TensorData::scalar_float(scale);
  ctx.out[2] = TensorData::from_vector(DType::UInt8, {}, std::vector<uint8_t>{static_cast<uint8_t>(zp)});
}

KILN_REGISTER_OP({.op = "QuantizeLinear",
                  .min_inputs = 2,
                  .max_inputs = 3,
                  .infer = infer_quantize,
                  .reference = quantize_kernel});
KILN_REGISTER_OP({.op = "DequantizeLinear",
                  .min_inputs = 2,
                  .max_inputs = 3,
                  .infer = infer_dequantize,
                  .reference = dequantize_kernel});
KILN_REGISTER_OP({.op = "DynamicQuantizeLinear",
                  .min_inputs = 1,
                  .max_inputs = 1,
                  .min_outputs = 3,
                  .max_outputs = 3,
                  .infer = infer_dynamic_quantize,
                  .reference = dynamic_quantize_kernel});

}  // namespace
}  // namespace kiln::ops
