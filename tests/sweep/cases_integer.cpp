// kiln_backend_sweep cases: the integer Conv/MatMul family — MatMulInteger, QLinearMatMul, ConvInteger,
// QLinearConv — filed under the first operand's dtype (uint8, int8). Operands span their type's whole range;
// the other operand is of the same dtype or the other 8-bit one. Zero points are absent, per tensor (rank 0
// and [1]), per row / column / output channel, or of the operand's rank; scales are float32, float16 or
// bfloat16, per tensor, per row / column / channel or broadcasting over the output; parameters are graph
// inputs (device data, as in the ONNX node tests) or constants. MatMul: 2-D, batched with broadcasting, 1-D
// operands, K large enough for big sums. Conv: 1-D to 3-D, pads, auto_pad, strides, dilations, groups,
// depthwise, bias, one layer large enough for many blocks. QLinear*: requantization on exact rounding ties
// (power-of-two scales) and saturation at both ends.
#include <optional>

#include "cases_util.h"
#include "cases_values.h"

namespace kiln::sweep {
namespace {

constexpr DType kU8 = DType::UInt8, kI8 = DType::Int8;

DType other(DType t) {
  return t == kU8 ? kI8 : kU8;
}
// Every value of the type, and zero points near its middle.
Fill full(DType t) {
  return t == kU8 ? Fill{0, 255, false, true} : Fill{-128, 127, false, true};
}
Fill zp_fill(DType t) {
  return t == kU8 ? Fill{100, 155, false, true} : Fill{-30, 30, false, true};
}
// Scales whose product / y_scale maps typical sums near the output range (some saturate).
const Fill kScale{0.002, 0.05, true};
const Fill kYScale{0.05, 0.5, true};
const Fill kBias{-3000, 3000, false, true};

// A parameter: graph input (device data) or constant.
Operand param(DType t, std::vector<int64_t> dims, Fill f, bool graph) {
  return graph ? input(t, std::move(dims), f) : weight(t, std::move(dims), f);
}
Operand zp(DType t, std::vector<int64_t> dims, bool graph = true) {
  return param(t, std::move(dims), zp_fill(t), graph);
}

// A rank-0 constant zero point of value v.
Operand zp_of(DType t, double v) {
  return fixed(tensor_of(t, {}, {v}));
}

// ----------------------------------------------------------------------------------------------- MatMul

std::vector<Case> matmul_integer_cases(DType dt) {
  const DType ot = other(dt);
  auto mm = [&](const std::string& what, const std::vector<int64_t>& ad, const std::vector<int64_t>& bd,
                DType bt, std::vector<Operand> zps, bool const_b = false) {
    std::vector<Operand> in{input(dt, ad, full(dt)), param(bt, bd, full(bt), !const_b)};
    for (Operand& z : zps) in.push_back(std::move(z));
    return make_case(what + " a" + dims_str(ad) + " b" + dims_str(bd), std::move(in), {}, 10);
  };
  return {
      mm("per-tensor zp [1] (node test)", {4, 3}, {3, 2}, dt, {zp(dt, {1}), zp(dt, {1})}),
      mm("no zero points", {5, 17}, {17, 9}, dt, {}),
      mm("a zp only, rank 0", {6, 20}, {20, 11}, dt, {zp(dt, {})}),
      mm("b zp only", {6, 20}, {20, 11}, dt, {absent(), zp(dt, {})}),
      mm("per-row a zp, per-column b zp", {7, 33}, {33, 13}, dt, {zp(dt, {7}), zp(dt, {13})}),
      mm("mixed operand dtypes", {9, 24}, {24, 10}, ot, {zp(dt, {}), zp(ot, {})}),
      mm("mixed dtypes, per-column b zp", {3, 8, 24}, {24, 10}, ot, {zp(dt, {8}), zp(ot, {10})}),
      mm("batched, b broadcast", {2, 3, 5, 16}, {3, 16, 7}, dt, {zp(dt, {}), zp(dt, {})}),
      mm("batched, a batch 1", {1, 5, 8}, {4, 8, 6}, dt, {zp(dt, {}), zp(dt, {1})}),
      mm("batched, rank-matched zps", {2, 5, 16}, {2, 16, 7}, dt, {zp(dt, {2, 5, 1}), zp(dt, {2, 1, 7})}),
      mm("batched, 1-D zps", {3, 6, 12}, {12, 9}, dt, {zp(dt, {6}), zp(dt, {9})}),
      mm("batched, zps varying per batch only", {4, 3, 10}, {4, 10, 5}, dt,
         {zp(dt, {4, 1, 1}), zp(dt, {4, 1, 1})}),
      mm("1-D a", {16}, {2, 16, 5}, dt, {zp(dt, {}), zp(dt, {5})}),
      mm("1-D b", {3, 4, 16}, {16}, dt, {zp(dt, {4}), zp(dt, {})}),
      mm("1-D both", {16}, {16}, dt, {zp(dt, {1}), zp(dt, {1})}),
      mm("K 1", {6, 1}, {1, 7}, dt, {zp(dt, {}), zp(dt, {})}),
      mm("constant b and zero points", {5, 19}, {19, 12}, dt, {zp(dt, {5}, false), zp(dt, {12}, false)},
         true),
      mm("large K", {3, 70, 600}, {600, 50}, dt, {zp(dt, {}), zp(dt, {50})}),
      mm("many blocks", {2, 130, 64}, {64, 200}, dt, {zp(dt, {130}), zp(dt, {})}),
  };
}

// Scale / zero-point shapes of a QLinearMatMul (or QLinearConv) case: a/x, b/w, y; {} is rank 0.
struct QParams {
  std::vector<int64_t> a_s, a_z, b_s, b_z, y_s, y_z;
};

std::vector<Case> qlinear_matmul_cases(DType dt) {
  const DType ot = other(dt);
  auto ql = [&](const std::string& what, const std::vector<int64_t>& ad, const std::vector<int64_t>& bd,
                DType bt, DType yt, const QParams& q, DType st = DType::Float, bool graph = true) {
    std::vector<Operand> in{input(dt, ad, full(dt)),
                            param(st, q.a_s, kScale, graph),
                            zp(dt, q.a_z, graph),
                            param(bt, bd, full(bt), graph),
                            param(st, q.b_s, kScale, graph),
                            zp(bt, q.b_z, graph),
                            param(st, q.y_s, kYScale, graph),
                            zp(yt, q.y_z, graph)};
    return make_case(what + " a" + dims_str(ad) + " b" + dims_str(bd) + " -> " + dtype_name(yt),
                     std::move(in), {}, 21);
  };
  const QParams one{{1}, {1}, {1}, {1}, {1}, {1}}, scalars{};
  std::vector<Case> out{
      ql("per-tensor (node test 2D)", {2, 4}, {4, 3}, dt, kU8, one),
      ql("per-tensor (node test 3D)", {2, 2, 4}, {2, 4, 3}, dt, kU8, one),
      ql("int8 output, rank-0 params", {5, 21}, {21, 9}, dt, kI8, scalars),
      ql("mixed operand dtypes", {6, 18}, {18, 7}, ot, kU8, scalars),
      ql("per-row a, per-column b", {7, 30}, {30, 11}, dt, kU8, {{7}, {7}, {11}, {11}, {}, {}}),
      ql("per-row y", {7, 30}, {30, 11}, ot, kI8, {{}, {}, {}, {}, {7}, {7}}),
      ql("rank-matched params", {2, 5, 16}, {2, 16, 7}, dt, kU8,
         {{2, 5, 1}, {2, 5, 1}, {2, 1, 7}, {2, 1, 7}, {1, 5, 1}, {2, 1, 1}}),
      ql("batched, b broadcast", {2, 3, 5, 16}, {3, 16, 7}, dt, kI8, scalars),
      ql("1-D a", {16}, {16, 5}, dt, kU8, {{}, {}, {5}, {5}, {}, {}}),
      ql("1-D b", {4, 16}, {16}, dt, kU8, {{4}, {4}, {}, {}, {}, {}}),
      ql("float16 scales", {6, 20}, {20, 9}, dt, kU8, {{6}, {}, {9}, {}, {}, {}}, DType::Float16),
      ql("bfloat16 scales", {6, 20}, {20, 9}, dt, kI8, scalars, DType::BFloat16),
      ql("constant parameters", {5, 19}, {19, 12}, dt, kU8, {{5}, {5}, {12}, {12}, {}, {}}, DType::Float,
         false),
      ql("many blocks", {4, 64, 96}, {96, 80}, dt, kU8, {{}, {}, {80}, {80}, {}, {}}),
  };
  // Exact ties: operands within 8 of their zero point, scales 0.5 * 0.5 / 2 = 1/8, so an eighth of the sums
  // land on .5 and round to even; then a tiny y_scale that saturates nearly everything, both ways.
  const double mid = dt == kU8 ? 128 : 0;
  const Fill near{mid - 8, mid + 8, false, true};
  for (const auto& [what, ys] : {std::pair{"ties", 2.0}, std::pair{"saturating", 0.001}}) {
    for (DType yt : {kU8, kI8}) {
      std::vector<Operand> in{input(dt, {9, 7}, near),  scalar(DType::Float, 0.5),     zp_of(dt, mid),
                              input(dt, {7, 13}, near), scalar(DType::Float, 0.5),     zp_of(dt, mid),
                              scalar(DType::Float, ys), zp_of(yt, yt == kU8 ? 128 : 0)};
      out.push_back(make_case(std::string(what) + " -> " + dtype_name(yt), std::move(in), {}, 21));
    }
  }
  return out;
}

std::vector<Case> matmul_cases(const std::string& op, DType dt) {
  return op == "MatMulInteger" ? matmul_integer_cases(dt) : qlinear_matmul_cases(dt);
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"MatMulInteger", "QLinearMatMul"}, .dtypes = {kU8, kI8}, .cases = matmul_cases});

// ------------------------------------------------------------------------------------------------- Conv

struct ConvSpec {
  std::string what;
  std::vector<int64_t> x, w;  // X [N, C, ...], W [M, C/group, k...]
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pads;  // empty = the default
  std::string auto_pad;
};

const std::vector<ConvSpec>& specs() {
  static const std::vector<ConvSpec> s{
      {"node test p0", {1, 1, 3, 3}, {1, 1, 2, 2}, 1, {}, {}, {}, ""},
      {"node test p1", {1, 1, 3, 3}, {1, 1, 2, 2}, 1, {}, {}, {1, 1, 1, 1}, ""},
      {"1-D s2 d2 asym pads", {2, 3, 20}, {4, 3, 3}, 1, {2}, {2}, {1, 2}, ""},
      {"g2 s(1,2) asym pads", {1, 4, 9, 10}, {6, 2, 3, 2}, 2, {1, 2}, {}, {0, 1, 2, 1}, ""},
      {"depthwise s2 p1", {1, 8, 12, 11}, {8, 1, 3, 3}, 8, {2, 2}, {}, {1, 1, 1, 1}, ""},
      {"SAME_UPPER s2", {1, 3, 9, 10}, {5, 3, 3, 3}, 1, {2, 2}, {}, {}, "SAME_UPPER"},
      {"SAME_LOWER s2 k4x3", {1, 3, 9, 10}, {5, 3, 4, 3}, 1, {2, 2}, {}, {}, "SAME_LOWER"},
      {"VALID", {1, 3, 8, 9}, {4, 3, 3, 3}, 1, {}, {}, {}, "VALID"},
      {"3-D g2 d(1,2,1)", {1, 4, 5, 6, 7}, {6, 2, 2, 3, 2}, 2, {}, {1, 2, 1}, {1, 0, 1, 0, 1, 1}, ""},
      {"many blocks 3x3 p1", {2, 16, 33, 35}, {32, 16, 3, 3}, 1, {}, {}, {1, 1, 1, 1}, ""},
  };
  return s;
}

Attributes conv_attrs(const ConvSpec& s) {
  Attributes a;
  if (s.group != 1) a.set("group", s.group);
  if (!s.strides.empty()) a.set("strides", s.strides);
  if (!s.dilations.empty()) a.set("dilations", s.dilations);
  if (!s.pads.empty()) a.set("pads", s.pads);
  if (!s.auto_pad.empty()) a.set("auto_pad", s.auto_pad);
  a.set("kernel_shape", std::vector<int64_t>(s.w.begin() + 2, s.w.end()));
  return a;
}

std::string conv_label(const ConvSpec& s, const std::string& what) {
  return s.what + (what.empty() ? "" : ", " + what) + " x" + dims_str(s.x) + " w" + dims_str(s.w);
}

std::vector<Case> conv_integer_cases(DType dt) {
  const DType ot = other(dt);
  auto cv = [&](const ConvSpec& s, const std::string& what, DType wt, std::vector<Operand> zps,
                bool const_w = false) {
    std::vector<Operand> in{input(dt, s.x, full(dt)), param(wt, s.w, full(wt), !const_w)};
    for (Operand& z : zps) in.push_back(std::move(z));
    return make_case(conv_label(s, what), std::move(in), conv_attrs(s), 10);
  };
  std::vector<Case> out;
  for (const ConvSpec& s : specs()) out.push_back(cv(s, "", dt, {zp(dt, {}), zp(dt, {s.w[0]})}));
  const ConvSpec& g = specs()[3];
  const int64_t m = g.w[0], c = g.x[1];
  out.push_back(cv(g, "no zero points", dt, {}));
  out.push_back(cv(g, "x zp only [1]", dt, {zp(dt, {1})}));
  out.push_back(cv(g, "w zp only, per tensor", dt, {absent(), zp(dt, {})}));
  out.push_back(cv(g, "rank-matched zps", dt, {zp(dt, {1, c, 1, 1}), zp(dt, {m, 1, 1, 1})}));
  out.push_back(cv(g, "x zp per pixel, w zp per tap", dt, {zp(dt, {1, 1, 9, 10}), zp(dt, {1, 1, 3, 2})}));
  out.push_back(cv(g, "mixed dtypes", ot, {zp(dt, {}), zp(ot, {m})}));
  out.push_back(cv(g, "constant w and zps", dt, {zp(dt, {}, false), zp(dt, {m}, false)}, true));
  return out;
}

std::vector<Case> qlinear_conv_cases(DType dt) {
  const DType ot = other(dt);
  auto qc = [&](const ConvSpec& s, const std::string& what, DType wt, DType yt, const QParams& q,
                std::optional<std::vector<int64_t>> bias, DType st = DType::Float, bool graph = true) {
    std::vector<Operand> in{input(dt, s.x, full(dt)),
                            param(st, q.a_s, kScale, graph),
                            zp(dt, q.a_z, graph),
                            param(wt, s.w, full(wt), graph),
                            param(st, q.b_s, kScale, graph),
                            zp(wt, q.b_z, graph),
                            param(st, q.y_s, kYScale, graph),
                            zp(yt, q.y_z, graph)};
    if (bias) in.push_back(param(DType::Int32, *bias, kBias, graph));
    const std::string label = what + (bias ? " +bias" + dims_str(*bias) : "") + " -> " + dtype_name(yt);
    return make_case(conv_label(s, label), std::move(in), conv_attrs(s), 10);
  };
  std::vector<Case> out;
  const ConvSpec node{"node test 1x1", {1, 1, 7, 7}, {1, 1, 1, 1}, 1, {}, {}, {}, ""};
  out.push_back(qc(node, "per-tensor", dt, kU8, {{}, {}, {1}, {1}, {}, {}}, std::nullopt));
  for (const ConvSpec& s : specs()) {
    const int64_t m = s.w[0];
    out.push_back(qc(s, "per-channel w", dt, kU8, {{}, {}, {m}, {m}, {}, {}}, std::vector<int64_t>{m}));
  }
  const ConvSpec& g = specs()[3];
  const int64_t m = g.w[0];
  out.push_back(qc(g, "per tensor", dt, kI8, {}, std::nullopt));
  out.push_back(qc(g, "mixed dtypes", ot, kI8, {{1}, {1}, {m}, {m}, {1}, {1}}, std::vector<int64_t>{1}));
  out.push_back(qc(g, "rank-matched", dt, kU8,
                   {{1, 1, 1, 1}, {1, 1, 1, 1}, {1, m, 1, 1}, {m, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}},
                   std::vector<int64_t>{1, m, 1, 1}));
  out.push_back(
      qc(g, "y params per pixel", dt, kU8, {{}, {}, {}, {}, {1, 1, 9, 6}, {1, m, 9, 6}}, std::nullopt));
  out.push_back(
      qc(g, "float16 scales", dt, kU8, {{}, {}, {m}, {m}, {}, {}}, std::vector<int64_t>{m}, DType::Float16));
  out.push_back(qc(g, "bfloat16 scales", dt, kI8, {}, std::nullopt, DType::BFloat16));
  out.push_back(
      qc(g, "constants", dt, kU8, {{}, {}, {m}, {m}, {}, {}}, std::vector<int64_t>{m}, DType::Float, false));
  // Exact ties (scales 0.5 * 0.5 / 2 with operands near their zero points) and saturation both ways.
  const double mid = dt == kU8 ? 128 : 0;
  const Fill near{mid - 8, mid + 8, false, true};
  const ConvSpec& t = specs()[2];
  for (const auto& [what, ys] : {std::pair{"ties", 2.0}, std::pair{"saturating", 0.001}}) {
    for (DType yt : {kU8, kI8}) {
      std::vector<Operand> in{input(dt, t.x, near),     scalar(DType::Float, 0.5),     zp_of(dt, mid),
                              input(dt, t.w, near),     scalar(DType::Float, 0.5),     zp_of(dt, mid),
                              scalar(DType::Float, ys), zp_of(yt, yt == kU8 ? 128 : 0)};
      out.push_back(make_case(conv_label(t, std::string(what) + " -> " + dtype_name(yt)), std::move(in),
                              conv_attrs(t), 10));
    }
  }
  return out;
}

std::vector<Case> conv_cases(const std::string& op, DType dt) {
  return op == "ConvInteger" ? conv_integer_cases(dt) : qlinear_conv_cases(dt);
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"ConvInteger", "QLinearConv"}, .dtypes = {kU8, kI8}, .cases = conv_cases});

}  // namespace
}  // namespace kiln::sweep
