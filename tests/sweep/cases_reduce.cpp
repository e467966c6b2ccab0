// kiln_backend_sweep cases: reductions — ReduceSum / Mean / Max / Min / Prod / L1 / L2 / LogSum / LogSumExp /
// SumSquare and ArgMax / ArgMin. Every layout the CUDA kernels plan differently: the innermost axis reduced
// (short rows, a warp each; long rows past 4096, a block each), the outermost or a middle axis (columns, with
// and without splitting each column), several separated axes (general index decomposition, kept or reduced
// innermost), all axes (none given, or an empty axes input), size-1 dims among the axes, and
// noop_with_empty_axes. Axes are negative where they can be, and come from the attribute (older opsets) or
// the constant input (ReduceSum 13+, all 18+). ArgMax / ArgMin also get data full of ties, with and without
// select_last_index.
#include <cstdint>
#include <optional>

#include "cases_util.h"

namespace kiln::sweep {
namespace {

struct RedSpec {
  std::vector<int64_t> x;
  std::optional<std::vector<int64_t>> axes;  // nullopt: no axes at all
  int64_t keepdims = 1;
  bool as_input = true;  // axes as the constant input (else the attribute)
  int64_t noop = 0;
};

std::vector<RedSpec> reduce_specs() {
  return {
      {{2, 7, 33}, std::vector<int64_t>{-1}, 1, true},          // short contiguous rows
      {{3, 5000}, std::vector<int64_t>{-1}, 0, false},          // long rows: a block each
      {{8, 1031}, std::vector<int64_t>{1}, 1, true},            // just past the block threshold, odd
      {{6000, 3}, std::vector<int64_t>{-2}, 0, true},           // outer reduction, long split columns
      {{3, 5, 7}, std::vector<int64_t>{-2}, 1, false},          // middle axis, short columns
      {{4, 37, 9}, std::vector<int64_t>{1}, 0, true},           // middle axis, split columns
      {{2, 3, 4, 5}, std::nullopt, 1, false},                   // no axes: all
      {{2, 3, 4, 5}, std::vector<int64_t>{}, 0, true},          // empty axes input: all
      {{2, 3, 4, 5}, std::vector<int64_t>{0, -2}, 1, true},     // separated axes, innermost kept
      {{2, 3, 4, 5}, std::vector<int64_t>{-3, -1}, 0, false},   // separated axes, innermost reduced
      {{2, 1, 6, 1, 5}, std::vector<int64_t>{-4, 2}, 0, true},  // size-1 dims among and between axes
      {{40, 30, 50}, std::vector<int64_t>{0, -1}, 1, true},     // long separated reduction
      {{33, 4, 9, 8}, std::vector<int64_t>{-4, 2}, 0, false},   // separated axes, split columns
      {{5, 4}, std::vector<int64_t>{}, 1, true, 1},             // noop_with_empty_axes: f(x) per element
  };
}

std::string axes_str(const std::optional<std::vector<int64_t>>& axes) {
  return axes ? dims_str(*axes) : std::string("none");
}

Fill fill_for(const std::string& op) {
  if (op == "ReduceProd") return {0.95, 1.05};        // products of thousands stay finite
  if (op == "ReduceLogSum") return {0.1, 2.0, true};  // a positive sum
  return {};
}

std::vector<Case> reduce_cases(const std::string& op, DType dt) {
  std::vector<Case> out;
  for (const RedSpec& s : reduce_specs()) {
    if (s.noop && !s.as_input) continue;
    std::vector<Operand> ins{input(dt, s.x, fill_for(op))};
    Attributes a = attrs({{"keepdims", s.keepdims}});
    if (s.noop) a.set("noop_with_empty_axes", s.noop);
    int64_t opset = 18;
    if (s.as_input) {
      if (s.axes) ins.push_back(ints(*s.axes));
    } else {
      opset = op == "ReduceSum" ? 11 : 13;
      if (s.axes) a.set("axes", *s.axes);
    }
    const std::string label = dims_str(s.x) + " axes " + axes_str(s.axes) + " keepdims " +
                              std::to_string(s.keepdims) + (s.as_input ? " (input)" : " (attr)") +
                              (s.noop ? " noop" : "");
    out.push_back(make_case(label, std::move(ins), std::move(a), opset));
  }
  return out;
}

// The float dtypes plus float64 (ONNX's ReduceLogSumExp tests use it).
const std::vector<DType>& reduce_dtypes() {
  static const std::vector<DType> v{DType::Float, DType::Float16, DType::BFloat16, DType::Double};
  return v;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                          "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"},
                  .dtypes = reduce_dtypes(),
                  .cases = reduce_cases});

// Values from {-2, -1, 0, 1, 2} in a pattern: many ties for the maximum and the minimum.
Operand tied(DType dt, const std::vector<int64_t>& dims) {
  TensorData t(dt, dims);
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    const float v = static_cast<float>((i * 7 + i / 3) % 5 - 2);
    if (dt == DType::Float)
      t.data<float>()[i] = v;
    else if (dt == DType::Double)
      t.data<double>()[i] = v;
    else if (dt == DType::Float16)
      t.data<uint16_t>()[i] = float_to_half(v);
    else
      t.data<uint16_t>()[i] = float_to_bfloat16(v);
  }
  return fixed(std::move(t));
}

std::vector<Case> arg_cases(const std::string&, DType dt) {
  struct Spec {
    std::vector<int64_t> x;
    int64_t axis, keepdims, last;
    bool ties;
  };
  const std::vector<Spec> specs{
      {{2, 7, 33}, -1, 1, 0, false}, {{3, 5000}, -1, 0, 1, false}, {{6000, 3}, 0, 1, 0, false},
      {{3, 5, 7}, -2, 0, 0, false},  {{4, 37, 9}, 1, 1, 1, false}, {{2, 1, 6}, -2, 1, 0, false},
      {{4, 33}, -1, 1, 0, true},     {{4, 33}, -1, 0, 1, true},    {{3, 2000}, 1, 1, 1, true},
      {{40, 6}, 0, 1, 0, true},      {{40, 6}, -2, 0, 1, true},
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    Operand x = s.ties ? tied(dt, s.x) : input(dt, s.x);
    out.push_back(make_case(
        dims_str(s.x) + " axis " + std::to_string(s.axis) + " keepdims " + std::to_string(s.keepdims) +
            " last " + std::to_string(s.last) + (s.ties ? " ties" : ""),
        {std::move(x)}, attrs({{"axis", s.axis}, {"keepdims", s.keepdims}, {"select_last_index", s.last}}),
        13));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"ArgMax", "ArgMin"}, .dtypes = reduce_dtypes(), .cases = arg_cases});

}  // namespace
}  // namespace kiln::sweep
