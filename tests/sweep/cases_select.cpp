// kiln_backend_sweep cases: ops whose output count depends on the values — NonZero, Compress, Unique,
// NonMaxSuppression. Their outputs take the size the reference gives on the case's inputs
// (Case::dims_from_values), as in a model that declares the output shape. Values are drawn so that the
// selection is not trivial: zeros among the NonZero inputs, duplicates among Unique's, random conditions,
// tied scores; sizes past one 1024-element scan chunk; the scalars of NonMaxSuppression as graph inputs (as
// in the ONNX tests), as constants and absent.
#include <cmath>
#include <cstdint>
#include <limits>

#include "cases_util.h"

namespace kiln::sweep {
namespace {

Case value_sized(std::string label, std::vector<Operand> ins, Attributes a, int64_t opset,
                 size_t outputs = 1) {
  Case c = make_case(std::move(label), std::move(ins), std::move(a), opset);
  c.outputs = outputs;
  c.dims_from_values = true;
  c.exact = true;  // selections and copies: bit for bit
  return c;
}

// Whole numbers in [lo, hi] (zeros and duplicates); bool draws its own 0/1.
Fill whole(double lo, double hi) {
  return {lo, hi, false, true};
}

// A float tensor with NaN, -0.0 and +0.0 among ordinary values: the reference's zero and order rules.
Operand special_floats(DType dt) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float v[] = {1.f, -0.f, nan, 2.f, 0.f, 1.f, nan, -3.f, 0.f, 2.f, -0.f, 5.f};
  TensorData t(dt, {12});
  for (int64_t i = 0; i < 12; ++i) {
    if (dt == DType::Float)
      t.data<float>()[i] = v[i];
    else if (dt == DType::Double)
      t.data<double>()[i] = v[i];
    else if (dt == DType::Float16)
      t.data<uint16_t>()[i] = float_to_half(v[i]);
    else
      t.data<uint16_t>()[i] = float_to_bfloat16(v[i]);
  }
  return fixed(std::move(t));
}

bool is_float(DType dt) {
  return dt == DType::Float || dt == DType::Double || dt == DType::Float16 || dt == DType::BFloat16;
}

const std::vector<DType>& select_dtypes() {
  static const std::vector<DType> v{DType::Float,  DType::Float16, DType::BFloat16,
                                    DType::Double, DType::Int32,   DType::Int64,
                                    DType::UInt8,  DType::Int8,    DType::Bool};
  return v;
}

std::vector<Case> nonzero_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  const std::vector<std::vector<int64_t>> shapes{{},     {7},      {2, 3},         {3, 1, 5, 2},
                                                 {1100}, {37, 65}, {2, 3, 2, 2, 3}};
  for (const auto& s : shapes)
    out.push_back(value_sized(dims_str(s) + " zeros among values", {input(dt, s, whole(0, 2))}, {}, 13));
  out.push_back(value_sized("[3000] mostly non-zero", {input(dt, {3000}, whole(0, 20))}, {}, 13));
  if (is_float(dt)) out.push_back(value_sized("[12] NaN and -0.0", {special_floats(dt)}, {}, 13));
  return out;
}

std::vector<Case> compress_cases(const std::string&, DType dt) {
  struct Spec {
    std::vector<int64_t> x;
    std::optional<int64_t> axis;
    int64_t cond;
  };
  const std::vector<Spec> specs{
      {{3, 2}, 0, 3},       {{3, 2}, 1, 2},       {{3, 2}, std::nullopt, 5},    {{3, 2}, -1, 2},
      {{2, 5, 3}, 1, 3},    {{4, 1500}, 1, 1500}, {{3000}, std::nullopt, 2500}, {{2, 3, 4, 5}, -3, 3},
      {{1300, 3}, 0, 1300},
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    Attributes a;
    if (s.axis) a.set("axis", *s.axis);
    out.push_back(value_sized(dims_str(s.x) + " axis " + (s.axis ? std::to_string(*s.axis) : "none") +
                                  " condition [" + std::to_string(s.cond) + "]",
                              {input(dt, s.x), input(DType::Bool, {s.cond})}, std::move(a), 11));
  }
  // A condition longer than the axis, false past its end (the reference's error otherwise).
  TensorData cond(DType::Bool, {5});
  const uint8_t bits[] = {1, 0, 1, 0, 0};
  for (int64_t i = 0; i < 5; ++i) cond.data<uint8_t>()[i] = bits[i];
  out.push_back(value_sized("[3, 4] axis 0 condition [5] longer", {input(dt, {3, 4}), fixed(std::move(cond))},
                            attrs({{"axis", int64_t{0}}}), 11));
  return out;
}

std::vector<Case> unique_cases(const std::string&, DType dt) {
  struct Spec {
    std::vector<int64_t> x;
    std::optional<int64_t> axis;
    int64_t sorted;
    Fill fill;
  };
  const std::vector<Spec> specs{
      {{6}, std::nullopt, 1, whole(0, 3)},
      {{6}, std::nullopt, 0, whole(0, 3)},
      {{300}, std::nullopt, 1, whole(0, 9)},
      {{300}, std::nullopt, 0, whole(0, 9)},
      {{3, 3}, 0, 1, whole(0, 1)},
      {{2, 4, 2}, 1, 1, whole(0, 1)},
      {{3, 3}, -1, 1, whole(0, 1)},
      {{40, 2}, 0, 0, whole(0, 1)},
      {{5, 30, 2}, 1, 1, whole(0, 1)},
      {{17, 3}, 0, 1, {}},
      {{4, 5, 6}, std::nullopt, 0, whole(0, 2)},
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    Attributes a = attrs({{"sorted", s.sorted}});
    if (s.axis) a.set("axis", *s.axis);
    out.push_back(value_sized(dims_str(s.x) + " axis " + (s.axis ? std::to_string(*s.axis) : "none") +
                                  " sorted " + std::to_string(s.sorted),
                              {input(dt, s.x, s.fill)}, std::move(a), 11, 4));
  }
  if (is_float(dt))
    for (int64_t sorted : {0, 1})
      out.push_back(value_sized("[12] NaN and -0.0 sorted " + std::to_string(sorted), {special_floats(dt)},
                                attrs({{"sorted", sorted}}), 11, 4));
  return out;
}

std::vector<Case> nms_cases(const std::string&, DType dt) {
  struct Spec {
    int64_t batch, boxes, classes, center;
    bool graph_scalars, score_threshold, tied;
    int64_t max_out;
  };
  const std::vector<Spec> specs{
      {1, 6, 1, 0, true, true, false, 3},       {1, 6, 1, 1, true, true, false, 3},
      {2, 50, 3, 0, true, true, false, 10},     {2, 50, 3, 1, false, true, false, 5},
      {1, 40, 2, 0, true, false, true, 40},     {3, 300, 2, 1, true, true, true, 1000},
      {1, 700, 1, 0, false, false, false, 700}, {1, 1, 1, 0, true, true, false, 3},
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    const Fill scores = s.tied ? whole(1, 3) : Fill{};
    std::vector<Operand> ins{input(dt, {s.batch, s.boxes, 4}),
                             input(dt, {s.batch, s.classes, s.boxes}, scores)};
    if (s.graph_scalars) {
      ins.push_back(
          input(DType::Int64, {1}, whole(static_cast<double>(s.max_out), static_cast<double>(s.max_out))));
      ins.push_back(input(DType::Float, {1}, {0.3, 0.7, true}));
      ins.push_back(s.score_threshold ? input(DType::Float, {1}, {0.1, 0.5}) : absent());
    } else {
      ins.push_back(scalar(DType::Int64, static_cast<double>(s.max_out), false));
      ins.push_back(scalar(DType::Float, 0.5, false));
      if (s.score_threshold) ins.push_back(scalar(DType::Float, 0.0, false));
    }
    out.push_back(value_sized("boxes [" + std::to_string(s.batch) + ", " + std::to_string(s.boxes) +
                                  ", 4] classes " + std::to_string(s.classes) + " center " +
                                  std::to_string(s.center) + " max " + std::to_string(s.max_out) +
                                  (s.graph_scalars ? " (inputs)" : " (constants)") +
                                  (s.score_threshold ? "" : " no score threshold") + (s.tied ? " tied" : ""),
                              std::move(ins), attrs({{"center_point_box", s.center}}), 11));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"NonZero"}, .dtypes = select_dtypes(), .cases = nonzero_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Compress"}, .dtypes = select_dtypes(), .cases = compress_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Unique"},
                  .dtypes = {DType::Float, DType::Float16, DType::Double, DType::Int32, DType::Int64,
                             DType::UInt8},
                  .cases = unique_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"NonMaxSuppression"},
                  .dtypes = {DType::Float, DType::Float16, DType::Double},
                  .cases = nms_cases});

}  // namespace
}  // namespace kiln::sweep
