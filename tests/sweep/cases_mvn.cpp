// kiln_backend_sweep cases: MeanVarianceNormalization — the default axes (N, H, W) on the ONNX test's shape
// and on odd ones, contiguous trailing axes, a leading axis (strided groups), every axis, one inner axis of
// many groups, rank 1, 5 and 8 with scattered axes, a group larger than a block, and data whose mean dwarfs
// its spread.
#include <string>

#include "cases_util.h"

namespace kiln::sweep {
namespace {

std::vector<Case> mvn_cases(const std::string&, DType dt) {
  auto make = [&](const std::vector<int64_t>& x, const std::vector<int64_t>& axes, Fill fill = {}) {
    Attributes a;
    std::string label = dims_str(x) + " axes default";
    if (!axes.empty()) {
      a.set("axes", axes);
      label = dims_str(x) + " axes " + dims_str(axes);
    }
    return make_case(label + (fill.lo >= 100 ? " shifted" : ""), {input(dt, x, fill)}, std::move(a), 13);
  };
  return {
      make({3, 3, 3, 1}, {}),
      make({2, 5, 7, 9}, {}),
      make({2, 4, 64, 130}, {}),
      make({2, 6, 5, 9}, {2, 3}),
      make({4, 33}, {-1}),
      make({3, 5000}, {0}),
      make({64, 1000}, {1}),
      make({2, 3, 4, 5}, {0, 1, 2, 3}),
      make({1000}, {0}),
      make({2, 3, 4, 5, 6}, {1, -2}),
      make({2, 1, 3, 1, 2, 3, 1, 2}, {0, 3, 5, 7}),
      make({3, 40, 120}, {-1, -2}, Fill{100.0, 101.0, true}),
  };
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"MeanVarianceNormalization"}, .dtypes = float_dtypes(), .cases = mvn_cases});

}  // namespace
}  // namespace kiln::sweep
