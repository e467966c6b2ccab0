// kiln_backend_sweep cases: comparisons (Equal Less Greater LessOrEqual GreaterOrEqual → bool) on every
// operand dtype, And / Or / Xor on bool, Where (three-way broadcasting, any element size) and Mod
// (integer and float, both sign rules). Comparison operands are small whole numbers so equal pairs occur.
#include "cases_util.h"

namespace kiln::sweep {
namespace {

// Broadcast shapes of two operands: same, scalar constant, variable [1], rank-3 general, rank 6, empty,
// large.
std::vector<Case> two_operand_cases(DType dt, Fill fill, Attributes a = {}) {
  auto two = [&](std::string label, Operand x, Operand y) { return make_case(std::move(label), {x, y}, a); };
  const std::vector<int64_t> s{2, 3, 17, 19}, big{2, 16, 64, 64};
  return {
      two("same " + dims_str(s), input(dt, s, fill), input(dt, s, fill)),
      two("scalar const b " + dims_str(s), input(dt, s, fill), weight(dt, {}, fill)),
      two("scalar var a[1] " + dims_str(s), input(dt, {1}, fill), input(dt, s, fill)),
      two("general [4,1,5]x[3,1]", input(dt, {4, 1, 5}, fill), input(dt, {3, 1}, fill)),
      two("rank6 [2,1,3,1,2,5]x[1,2,1,4,1,5]", input(dt, {2, 1, 3, 1, 2, 5}, fill),
          input(dt, {1, 2, 1, 4, 1, 5}, fill)),
      two("empty [0,3]x[3]", input(dt, {0, 3}, fill), input(dt, {3}, fill)),
      two("channel [1,16,1,1] " + dims_str(big), input(dt, big, fill), input(dt, {1, 16, 1, 1}, fill)),
  };
}

std::vector<Case> compare_cases(const std::string&, DType dt) {
  return two_operand_cases(dt, Fill{-3, 3, false, true});
}

std::vector<Case> bool_cases(const std::string&, DType dt) {
  return two_operand_cases(dt, {});
}

std::vector<Case> where_cases(const std::string&, DType dt) {
  auto three = [&](std::string label, std::vector<int64_t> c, Operand x, Operand y) {
    Case k = make_case(std::move(label), {input(DType::Bool, c), x, y});
    k.exact = true;
    return k;
  };
  const std::vector<int64_t> s{2, 3, 17, 19};
  return {
      three("same " + dims_str(s), s, input(dt, s), input(dt, s)),
      three("c[3,1] x[2,1,4] y[4]", {3, 1}, input(dt, {2, 1, 4}), input(dt, {4})),
      three("x scalar const " + dims_str(s), s, weight(dt, {}), input(dt, s)),
      three("c[1,16,1,1] [2,16,64,64]", {1, 16, 1, 1}, input(dt, {2, 16, 64, 64}),
            input(dt, {2, 16, 64, 64})),
      three("c[] x[5,6] y[6]", {}, input(dt, {5, 6}), input(dt, {6})),
      three("empty c[0,3] x[3] y[1]", {0, 3}, input(dt, {3}), input(dt, {1})),
  };
}

std::vector<Case> mod_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  for (int64_t fmod : {0, 1}) {
    const std::string rule = fmod ? " fmod" : " sign of divisor";
    for (Case& c : two_operand_cases(dt, {}, attrs({{"fmod", fmod}}))) {
      c.label += rule;
      out.push_back(std::move(c));
    }
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"},
                  .dtypes = {DType::Float, DType::Float16, DType::BFloat16, DType::Double, DType::Int32,
                             DType::Int64, DType::Bool},
                  .cases = compare_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"And", "Or", "Xor"}, .dtypes = {DType::Bool}, .cases = bool_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Where"},
                  .dtypes = {DType::Float, DType::Float16, DType::BFloat16, DType::Double, DType::Int32,
                             DType::Int64, DType::Bool},
                  .cases = where_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Mod"},
                  .dtypes = {DType::Float, DType::Float16, DType::BFloat16, DType::Double, DType::Int32,
                             DType::Int64},
                  .cases = mod_cases});

}  // namespace
}  // namespace kiln::sweep
