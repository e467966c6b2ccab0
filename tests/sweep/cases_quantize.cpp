// kiln_backend_sweep cases: QuantizeLinear and DequantizeLinear with scales and zero points per tensor, per
// axis (first, middle, last) and of x's rank, with and without a zero point, constants or graph inputs, each
// quantized type, float32 / float16 / bfloat16 scales; QuantizeLinear also on exact rounding ties (a
// power-of-two scale), saturation both ways, NaN and infinities.
#include <limits>

#include "cases_util.h"
#include "cases_values.h"

namespace kiln::sweep {
namespace {

// Scales small enough that x / scale saturates uint8 and int8 at both ends for |x| up to 5.
const Fill kScale{0.01, 0.05, true};
const Fill kX{0.01, 5.0};

std::vector<Case> quantize_cases(const std::string&, DType dt) {
  const std::vector<int64_t> x{2, 3, 17, 19}, nchw{2, 16, 9, 11}, big{2, 16, 181, 191};
  const DType u8 = DType::UInt8, i8 = DType::Int8;
  auto q = [&](const std::string& label, const std::vector<int64_t>& dims, std::vector<Operand> params,
               Attributes a = {}) {
    std::vector<Operand> in{input(dt, dims, kX)};
    for (Operand& p : params) in.push_back(std::move(p));
    return make_case(label + " " + dims_str(dims), std::move(in), std::move(a), 19);
  };
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  // Quotients by 0.5 land on .5 ties (even and odd neighbours), saturate, or are NaN / infinite.
  const std::vector<double> ties{0.25,  0.75,   -0.25, -0.75, 1.25, -1.25, 2.5,
                                 63.75, -63.75, 200,   -200,  nan,  inf,   -inf};
  const std::vector<int64_t> tie_dims{4, 35};
  auto tie_x = [&] { return fixed(tensor_of(dt, tie_dims, cycle(ties, product(tie_dims)))); };
  return {
      q("per-tensor uint8", x, {weight(dt, {}, kScale), weight(u8, {})}),
      q("per-tensor int8", x, {weight(dt, {}, kScale), weight(i8, {})}),
      q("no zero point", x, {weight(dt, {}, kScale)}),
      q("float scale, int8", x, {weight(DType::Float, {1}, kScale), weight(i8, {1})}),
      q("axis=1 uint8", nchw, {weight(dt, {16}, kScale), weight(u8, {16})}),
      q("axis=-1 int8", {4, 5, 33}, {weight(dt, {33}, kScale), weight(i8, {33})},
        attrs({{"axis", int64_t{-1}}})),
      q("axis=0 scalar zero point", {3, 10, 7}, {weight(dt, {3}, kScale), weight(i8, {})},
        attrs({{"axis", int64_t{0}}})),
      q("rank-matched [1,16,1,1]", nchw, {weight(dt, {1, 16, 1, 1}, kScale), weight(u8, {1, 16, 1, 1})}),
      q("rank-matched [1,16,9,1]", nchw, {weight(dt, {1, 16, 9, 1}, kScale), weight(i8, {1, 16, 9, 1})}),
      q("axis=1 no zero point", big, {weight(dt, {16}, kScale)}),
      q("axis=1 int8", big, {weight(dt, {16}, kScale), weight(i8, {16})}),
      q("scalar x", {}, {weight(dt, {}, kScale), weight(u8, {})}),
      // Scale and zero point as graph inputs (device data).
      q("input params per-tensor uint8", x, {input(dt, {}, kScale), input(u8, {})}),
      q("input params axis=1 int8", nchw, {input(dt, {16}, kScale), input(i8, {16})}),
      q("input scale, constant zp axis=1", nchw, {input(dt, {16}, kScale), weight(u8, {16})}),
      q("constant scale, input zp", x, {weight(dt, {}, kScale), input(i8, {})}),
      q("input scale, no zero point", x, {input(dt, {}, kScale)}),
      make_case("ties uint8 zp=10 " + dims_str(tie_dims),
                {tie_x(), scalar(dt, 0.5), fixed(tensor_of(u8, {}, {10}))}, {}, 19),
      make_case("ties int8 zp=-3 " + dims_str(tie_dims),
                {tie_x(), scalar(dt, 0.5), fixed(tensor_of(i8, {}, {-3}))}, {}, 19),
  };
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"QuantizeLinear"}, .dtypes = float_dtypes(), .cases = quantize_cases});

// Filed under x's quantized dtype; the scale's float dtype is the output's.
std::vector<Case> dequantize_cases(const std::string&, DType qt) {
  const std::vector<int64_t> x{2, 3, 17, 19}, nchw{2, 16, 9, 11}, big{2, 16, 181, 191};
  const Fill scale{0.001, 0.1, true};
  auto dq = [&](const std::string& label, const std::vector<int64_t>& dims, std::vector<Operand> params,
                Attributes a = {}) {
    std::vector<Operand> in{input(qt, dims)};
    for (Operand& p : params) in.push_back(std::move(p));
    return make_case(label + " " + dims_str(dims), std::move(in), std::move(a), 19);
  };
  std::vector<Case> out;
  for (DType st : float_dtypes()) {
    const std::string s = std::string(dtype_name(st)) + " scale ";
    out.push_back(dq(s + "per-tensor", x, {weight(st, {}, scale), weight(qt, {})}));
    out.push_back(dq(s + "axis=1", nchw, {weight(st, {16}, scale), weight(qt, {16})}));
  }
  const DType f = DType::Float;
  out.push_back(dq("no zero point", x, {weight(f, {}, scale)}));
  out.push_back(
      dq("axis=-1", {4, 5, 33}, {weight(f, {33}, scale), weight(qt, {33})}, attrs({{"axis", int64_t{-1}}})));
  out.push_back(dq("axis=0 scalar zero point", {3, 10, 7}, {weight(f, {3}, scale), weight(qt, {1})},
                   attrs({{"axis", int64_t{0}}})));
  out.push_back(
      dq("rank-matched [1,16,1,1]", nchw, {weight(f, {1, 16, 1, 1}, scale), weight(qt, {1, 16, 1, 1})}));
  out.push_back(dq("axis=1", big, {weight(f, {16}, scale), weight(qt, {16})}));
  out.push_back(dq("float16 scale axis=1", big, {weight(DType::Float16, {16}, scale), weight(qt, {16})}));
  // Scale and zero point as graph inputs (device data).
  out.push_back(dq("input params per-tensor", x, {input(f, {}, scale), input(qt, {})}));
  out.push_back(dq("input params axis=1", nchw, {input(f, {16}, scale), input(qt, {16})}));
  out.push_back(dq("input bfloat16 scale, constant zp axis=-1", {4, 5, 33},
                   {input(DType::BFloat16, {33}, scale), weight(qt, {33})}, attrs({{"axis", int64_t{-1}}})));
  out.push_back(dq("input scale, no zero point", x, {input(f, {}, scale)}));
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"DequantizeLinear"},
                  .dtypes = {DType::UInt8, DType::Int8, DType::Int32},
                  .cases = dequantize_cases});

}  // namespace
}  // namespace kiln::sweep
