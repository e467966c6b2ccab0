// The integer Conv/MatMul family: ConvInteger, MatMulInteger (int32 results) and QLinearConv, QLinearMatMul
// (requantized results). Geometry is not repeated here: inference is Conv's/MatMul's own, and the reference
// kernels run Conv's/MatMul's own reference on the operands shifted by their zero points (q - zero_point,
// whole numbers held in double, whose sums stay exact below 2^53). QLinear* then requantize in double:
//   y = saturate(round_half_even((acc + bias) * a_scale * b_scale / y_scale) + y_zero_point).
// Zero points and scales: x/a per tensor (a also per row: 1-D [M] or [..., M, 1]); w per tensor or per output
// channel [M]; b per tensor or per column ([N] or [..., 1, N]); y per tensor (QLinearMatMul: also per row).
#include <cmath>

#include "ops/quantize.h"

namespace kiln::ops {
namespace {

bool is_conv(const Node& node) {
  return node.op == "ConvInteger" || node.op == "QLinearConv";
}
bool is_qlinear(const Node& node) {
  return node.op == "QLinearConv" || node.op == "QLinearMatMul";
}

// Input positions: ConvInteger/MatMulInteger (a, b, a_zero_point, b_zero_point); QLinear* (a, a_scale,
// a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point[, bias]).
struct Slots {
  size_t a = 0, a_zp = 2, b = 1, b_zp = 3, a_scale = 0, b_scale = 0, y_scale = 0, y_zp = 0, bias = 0;
};
Slots slots(const Node& node) {
  if (!is_qlinear(node)) return {};
  return {
      .a = 0, .a_zp = 2, .b = 3, .b_zp = 5, .a_scale = 1, .b_scale = 4, .y_scale = 6, .y_zp = 7, .bias = 8};
}

const OpSchema& float_schema(const Node& node) {
  const OpSchema* s = find_op("", is_conv(node) ? "Conv" : "MatMul");
  if (!s) throw Error(node.op + ": the Conv/MatMul schema is not registered");
  return *s;
}

bool is_8bit(DType t) {
  return t == DType::UInt8 || t == DType::Int8;
}

void infer_integer(InferContext& ctx) {
  const Slots s = slots(ctx.node);
  for (size_t k : {s.a, s.b}) {
    const DType t = ctx.input(k).dtype;
    if (t != DType::Undefined && !is_8bit(t))
      ctx.fail(std::string("operands must be uint8 or int8, not ") + dtype_name(t));
  }
  DType out = DType::Int32;
  if (is_qlinear(ctx.node)) {
    out = ctx.input(s.y_zp).dtype;
    if (out != DType::Undefined && !is_8bit(out))
      ctx.fail(std::string("y_zero_point must be uint8 or int8, not ") + dtype_name(out));
  }
  // Conv's/MatMul's inference on the two operands alone (the other inputs are not Conv's bias).
  InferContext inner(ctx.node, ctx.opset);
  inner.in = {ctx.in[s.a], ctx.in[s.b]};
  inner.out.resize(1);
  float_schema(ctx.node).infer(inner);
  set_out(ctx, 0, out, inner.out[0].shape);
}

// Operand k minus its zero point (input zp, optional), as a Double tensor of `dims` (its dims, maybe with a
// MatMul vector promoted to a matrix).
TensorData shifted(const KernelContext& ctx, size_t k, size_t zp, const std::vector<int64_t>& dims,
                   int64_t axis, const char* zp_name) {
  const TensorData& q = ctx.input(k);
  if (!is_8bit(q.dtype()))
    ctx.fail(std::string("operands must be uint8 or int8, not ") + dtype_name(q.dtype()));
  std::vector<double> v = load_numbers(ctx, q);
  if (ctx.has_input(zp)) {
    if (ctx.input(zp).dtype() != q.dtype()) ctx.fail(std::string(zp_name) + " must have its operand's dtype");
    const std::vector<double> z = expand_param(ctx, ctx.input(zp), dims, axis, zp_name);
    for (size_t i = 0; i < v.size(); ++i) v[i] -= z[i];
  }
  return TensorData::from_vector(DType::Double, dims, v);
}

void integer_kernel(KernelContext& ctx) {
  const Slots s = slots(ctx.node);
  const bool conv = is_conv(ctx.node);
  std::vector<int64_t> ad = ctx.input(s.a).dims(), bd = ctx.input(s.b).dims();
  if (!conv && (ad.empty() || bd.empty())) ctx.fail("MatMul operands must not be scalars");
  if (!conv && ad.size() == 1)
    ad.insert(ad.begin(), 1);  // so that per-row / per-column parameters have an axis
  if (!conv && bd.size() == 1) bd.push_back(1);
  const int64_t a_axis = conv ? -1 : static_cast<int64_t>(ad.size()) - 2;  // x: per tensor; a: per row
  const int64_t b_axis =
      conv ? 0 : static_cast<int64_t>(bd.size()) - 1;  // w: per output channel; b: per column
  const TensorData a = shifted(ctx, s.a, s.a_zp, ad, a_axis, "a/x zero point");
  const TensorData b = shifted(ctx, s.b, s.b_zp, bd, b_axis, "b/w zero point");

  // Conv/MatMul on a one-node scratch graph carrying this node's (Conv) attributes.
  Graph scratch;
  Node* node = scratch.add_node(is_conv(ctx.node) ? "Conv" : "MatMul",
                                {scratch.add_variable("a"), scratch.add_variable("b")},
                                {scratch.add_variable("y")}, ctx.node.name);
  node->attrs = ctx.node.attrs;
  KernelContext inner(*node, ctx.opset);
  inner.in = {&a, &b};
  inner.out.resize(1);
  run_reference(float_schema(ctx.node), inner);
  const std::vector<int64_t> od = inner.out[0].dims(), y_dims = inferred_dims(ctx);
  std::vector<double> acc = load_real(ctx, inner.out[0]);

  if (!is_qlinear(ctx.node)) {
    for (double v : acc)
      if (std::fabs(v) > 2147483647.0) ctx.fail("a sum of products exceeds the int32 range of the output");
    ctx.out[0] = store_saturated(ctx, DType::Int32, y_dims, acc);
    return;
  }
  // Output parameters along the output's axes: rows / columns for MatMul, channel 1 for Conv.
  const int64_t rows = conv ? -1 : static_cast<int64_t>(od.size()) - 2,
                cols = static_cast<int64_t>(od.size()) - 1;
  const int64_t b_out_axis = conv ? 1 : cols;
  const auto a_scale = expand_param(ctx, ctx.input(s.a_scale), od, rows, "a/x scale");
  const auto b_scale = expand_param(ctx, ctx.input(s.b_scale), od, b_out_axis, "b/w scale");
  const auto y_scale = expand_param(ctx, ctx.input(s.y_scale), od, rows, "y_scale");
  const auto y_zp = expand_param(ctx, ctx.input(s.y_zp), od, rows, "y_zero_point");
  if (ctx.has_input(s.bias)) {
    if (ctx.input(s.bias).dtype() != DType::Int32) ctx.fail("bias must be int32");
    const auto bias = expand_param(ctx, ctx.input(s.bias), od, 1, "bias");
    for (size_t i = 0; i < acc.size(); ++i) acc[i] += bias[i];
  }
  for (size_t i = 0; i < acc.size(); ++i)
    acc[i] = round_half_even(acc[i] * a_scale[i] * b_scale[i] / y_scale[i]) + y_zp[i];
  ctx.out[0] = store_saturated(ctx, ctx.input(s.y_zp).dtype(), y_dims, acc);
}

KILN_REGISTER_OP({.op = "ConvInteger",
                  .min_inputs = 2,
                  .max_inputs = 4,
                  .infer = infer_integer,
                  .reference = integer_kernel});
KILN_REGISTER_OP({.op = "MatMulInteger",
                  .min_inputs = 2,
                  .max_inputs = 4,
                  .infer = infer_integer,
                  .reference = integer_kernel});
KILN_REGISTER_OP({.op = "QLinearConv",
                  .min_inputs = 8,
                  .max_inputs = 9,
                  .infer = infer_integer,
                  .reference = integer_kernel});
KILN_REGISTER_OP({.op = "QLinearMatMul",
                  .min_inputs = 8,
                  .max_inputs = 8,
                  .infer = infer_integer,
                  .reference = integer_kernel});

}  // namespace
}  // namespace kiln::ops
