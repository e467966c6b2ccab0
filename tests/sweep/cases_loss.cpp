// kiln_backend_sweep cases: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (2-D and with spatial
// dims, reductions none / sum / mean, with and without a weight — graph input or constant — int32 and int64
// targets, ignore_index in range and negative, SCE's log_prob output, many classes, many rows for the
// one-block sum) and DynamicQuantizeLinear (random signs, one-signed inputs, rounding ties, all zeros,
// a scalar, an input large enough to stride the one-block range search).
#include <string>

#include "cases_util.h"
#include "cases_values.h"

namespace kiln::sweep {
namespace {

// Targets are valid class indices, from `lo` (ignore_index -1 when it is -1) to classes - 1.
Operand targets(DType t, const std::vector<int64_t>& dims, int64_t classes, int64_t lo = 0) {
  return input(t, dims,
               Fill{.lo = static_cast<double>(lo), .hi = static_cast<double>(classes - 1), .whole = true});
}

std::vector<Case> loss_cases(const std::string& op, DType dt) {
  const bool sce = op == "SoftmaxCrossEntropyLoss";
  const DType i64 = DType::Int64, i32 = DType::Int32;
  const Fill w{0.1, 2.0, true};
  auto reduction = [](const std::string& r, Attributes a = {}) {
    a.set("reduction", r);
    return a;
  };
  auto ignore = [](int64_t v) { return attrs({{"ignore_index", v}}); };
  std::vector<Case> out{
      make_case("[3,5] mean", {input(dt, {3, 5}), targets(i64, {3}, 5)}, {}, 13),
      make_case("[3,5] none int32", {input(dt, {3, 5}), targets(i32, {3}, 5)}, reduction("none"), 13),
      make_case("[2,4,3,5] none weight ignore 1",
                {input(dt, {2, 4, 3, 5}), targets(i32, {2, 3, 5}, 4), input(dt, {4}, w)},
                reduction("none", ignore(1)), 13),
      make_case("[2,4,3,5] sum const weight ignore -1",
                {input(dt, {2, 4, 3, 5}), targets(i64, {2, 3, 5}, 4, -1), weight(dt, {4}, w)},
                reduction("sum", ignore(-1)), 13),
      make_case("[4,7,33] mean weight ignore 2",
                {input(dt, {4, 7, 33}), targets(i64, {4, 33}, 7), input(dt, {7}, w)}, ignore(2), 13),
      make_case("[4,7,33] mean ignore 0", {input(dt, {4, 7, 33}), targets(i32, {4, 33}, 7)}, ignore(0), 13),
      make_case("[8,10,1001] sum", {input(dt, {8, 10, 1001}), targets(i64, {8, 1001}, 10)}, reduction("sum"),
                13),
      make_case("[8,10,1001] mean weight ignore 3",
                {input(dt, {8, 10, 1001}), targets(i64, {8, 1001}, 10), input(dt, {10}, w)}, ignore(3), 13),
      make_case("[5,1000] mean many classes", {input(dt, {5, 1000}), targets(i64, {5}, 1000)}, {}, 13),
  };
  if (sce) {
    Case lp = make_case("[2,4,3,5] none log_prob ignore 1",
                        {input(dt, {2, 4, 3, 5}), targets(i64, {2, 3, 5}, 4), input(dt, {4}, w)},
                        reduction("none", ignore(1)), 13);
    lp.outputs = 2;
    out.push_back(lp);
    Case lp_mean =
        make_case("[6,300,7] mean log_prob", {input(dt, {6, 300, 7}), targets(i32, {6, 7}, 300)}, {}, 13);
    lp_mean.outputs = 2;
    out.push_back(lp_mean);
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"},
                  .dtypes = float_dtypes(),
                  .cases = loss_cases});

std::vector<Case> dynamic_quantize_cases(const std::string&, DType dt) {
  if (dt != DType::Float) return {};
  auto dq = [](const std::string& label, Operand x) {
    const std::vector<int64_t> dims = x.value ? x.value->dims() : x.dims;
    Case c = make_case(label + " " + dims_str(dims), {std::move(x)}, {}, 11);
    c.outputs = 3;
    c.exact = true;  // float32 arithmetic as the reference's: bit for bit
    return c;
  };
  const DType f = DType::Float;
  // lo -10, hi 117.5: scale 0.5 exactly and zero point 20; the others land on .5 ties after dividing.
  const std::vector<double> ties{-10, 117.5, 0.25, 0.75, -0.25, -0.75, 1.25, -1.25, 2.5, 63.75, 0, -9.75};
  const std::vector<double> negative{-0.5, -3.25, -1, -7.5, -0.125, -2};
  return {
      dq("random", input(f, {2, 3, 17, 19})),
      dq("positive", input(f, {4, 33}, Fill{0.1, 5.0, true})),
      dq("negative", fixed(tensor_of(f, {3, 6}, cycle(negative, 18)))),
      dq("ties", fixed(tensor_of(f, {4, 12}, cycle(ties, 48)))),
      dq("zeros", fixed(tensor_of(f, {5, 7}, std::vector<double>(35, 0.0)))),
      dq("scalar", input(f, {})),
      dq("large", input(f, {1, 64, 128, 130}, Fill{0.01, 30.0})),
  };
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"DynamicQuantizeLinear"},
                  .dtypes = {DType::Float},
                  .cases = dynamic_quantize_cases});

}  // namespace
}  // namespace kiln::sweep
