// kiln_backend_sweep cases: the unary ops outside ops/activation.h — trigonometry and hyperbolic functions
// (inputs inside each one's domain), Shrink and Gelu with their attributes, IsNaN / IsInf on NaN, ±inf and
// overflowing values with each detect_* choice, and Not on bool.
#include <limits>

#include "cases_util.h"
#include "cases_values.h"

namespace kiln::sweep {
namespace {

// Odd-sized, tiny, rank-3 with a 1, rank-1 and one large enough for many blocks (grid-stride loops).
const std::vector<std::vector<int64_t>>& shapes() {
  static const std::vector<std::vector<int64_t>> s{{2, 3, 17, 19}, {5}, {3, 1, 7}, {2, 16, 181, 191}};
  return s;
}

// Magnitudes inside each op's domain (a random sign unless positive).
Fill domain_of(const std::string& op) {
  if (op == "Tan") return {0.01, 1.4};  // away from the pole at pi/2
  if (op == "Asin" || op == "Acos") return {0.01, 0.99};
  if (op == "Atan") return {0.05, 10.0};
  if (op == "Sinh" || op == "Cosh") return {0.01, 5.0};
  if (op == "Asinh") return {0.01, 20.0};
  if (op == "Acosh") return {1.0, 20.0, true};
  if (op == "Atanh") return {0.01, 0.95};
  if (op == "Gelu") return {0.01, 5.0};  // past erf's and tanh's saturation
  return {};
}

std::vector<Case> math_cases(const std::string& op, DType dt) {
  const int64_t opset = op == "Gelu" ? 20 : 17;
  const Fill fill = domain_of(op);
  std::vector<Case> out;
  for (const auto& dims : shapes())
    out.push_back(make_case(dims_str(dims), {input(dt, dims, fill)}, {}, opset));
  const std::vector<int64_t> dims{2, 5, 9, 13};
  if (op == "Shrink") {
    out.push_back(make_case(dims_str(dims) + " lambd=1 bias=0.3", {input(dt, dims)},
                            attrs({{"lambd", 1.0f}, {"bias", 0.3f}})));
    out.push_back(make_case(dims_str(dims) + " lambd=0 bias=-0.5", {input(dt, dims)},
                            attrs({{"lambd", 0.0f}, {"bias", -0.5f}})));
  }
  if (op == "Gelu") {
    for (const std::string a : {"tanh", "none"})
      for (const auto& d : {dims, std::vector<int64_t>{2, 16, 181, 191}})
        out.push_back(make_case(dims_str(d) + " approximate=" + a, {input(dt, d, fill)},
                                attrs({{"approximate", a}}), 20));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Shrink",
                          "Gelu"},
                  .dtypes = float_dtypes(),
                  .cases = math_cases});

// IsNaN / IsInf: random values never are NaN or infinite, so a constant of NaN, ±inf, zeros and numbers
// (65536 overflows float16 to inf), and random magnitudes up to 1e40 (past every float type's range).
std::vector<Case> classify_cases(const std::string& op, DType dt) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> pattern{nan, inf, -inf, 0.0, 1.5, -2.25, 65536.0, -1e39, -nan};
  std::vector<Case> out;
  for (const std::vector<int64_t>& dims : {std::vector<int64_t>{3, 37}, std::vector<int64_t>{4, 301, 257}})
    out.push_back(
        make_case("specials " + dims_str(dims), {fixed(tensor_of(dt, dims, cycle(pattern, product(dims))))}));
  out.push_back(make_case("wide random [2,3,17,19]", {input(dt, {2, 3, 17, 19}, {1e3, 1e40})}));
  if (op == "IsInf") {
    const std::vector<int64_t> dims{5, 61};
    const Operand x = fixed(tensor_of(dt, dims, cycle(pattern, product(dims))));
    out.push_back(make_case("positive only", {x}, attrs({{"detect_negative", int64_t{0}}})));
    out.push_back(make_case("negative only", {x}, attrs({{"detect_positive", int64_t{0}}})));
    out.push_back(
        make_case("neither", {x}, attrs({{"detect_positive", int64_t{0}}, {"detect_negative", int64_t{0}}})));
  }
  return out;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"IsNaN", "IsInf"}, .dtypes = float_dtypes(), .cases = classify_cases});

std::vector<Case> not_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  for (const auto& dims : shapes()) out.push_back(make_case(dims_str(dims), {input(dt, dims)}));
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"Not"}, .dtypes = {DType::Bool}, .cases = not_cases});

}  // namespace
}  // namespace kiln::sweep
