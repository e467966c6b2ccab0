// kiln_backend_sweep cases: Mean over one to eight inputs (same shape and numpy broadcasting of every input,
// a scalar among them) and PRelu with each slope layout (scalar, per-channel, row, full, rank-matched).
// Sum, Max and Min share their generators with the binary ops (cases_elementwise.cpp).
#include "cases_util.h"

namespace kiln::sweep {
namespace {

std::vector<Case> mean_cases(const std::string&, DType dt) {
  const std::vector<int64_t> x{2, 3, 17, 19}, big{2, 16, 181, 191};
  std::vector<Operand> eight;
  for (int k = 0; k < 8; ++k) eight.push_back(input(dt, {3, 5, 7}));
  return {
      make_case("one " + dims_str(x), {input(dt, x)}),
      make_case("two " + dims_str(x), {input(dt, x), input(dt, x)}),
      make_case("three " + dims_str(x), {input(dt, x), input(dt, x), input(dt, x)}),
      make_case("two " + dims_str(big), {input(dt, big), input(dt, big)}),
      make_case("four broadcast [2,1,5,1]+[1,3,1,7]+[7]+[]",
                {input(dt, {2, 1, 5, 1}), input(dt, {1, 3, 1, 7}), input(dt, {7}), input(dt, {})}),
      make_case("three rank6",
                {input(dt, {2, 1, 3, 1, 2, 5}), input(dt, {1, 2, 1, 4, 1, 5}), input(dt, {4, 2, 1})}),
      make_case("eight [3,5,7]", eight),
      make_case("empty [0,3]+[3]", {input(dt, {0, 3}), input(dt, {3})}),
  };
}

KILN_SWEEP_CASES({.domain = "", .ops = {"Mean"}, .dtypes = float_dtypes(), .cases = mean_cases});

std::vector<Case> prelu_cases(const std::string&, DType dt) {
  const std::vector<int64_t> nchw{2, 16, 9, 11}, big{2, 16, 181, 191};
  auto two = [&](const std::string& label, const std::vector<int64_t>& x, Operand slope) {
    return make_case(label + " " + dims_str(x), {input(dt, x), std::move(slope)});
  };
  return {
      two("scalar slope", nchw, weight(dt, {})),
      two("slope [1]", nchw, weight(dt, {1})),
      two("channel slope [16,1,1]", nchw, weight(dt, {16, 1, 1})),
      two("channel slope [1,16,1,1] variable", nchw, input(dt, {1, 16, 1, 1})),
      two("row slope [11]", nchw, weight(dt, {11})),
      two("full slope", nchw, input(dt, nchw)),
      two("general slope [16,1,11]", nchw, weight(dt, {16, 1, 11})),
      two("channel slope [16,1,1]", big, weight(dt, {16, 1, 1})),
  };
}

KILN_SWEEP_CASES({.domain = "", .ops = {"PRelu"}, .dtypes = float_dtypes(), .cases = prelu_cases});

}  // namespace
}  // namespace kiln::sweep
