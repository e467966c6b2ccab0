// kiln_backend_sweep cases: TopK, largest and smallest, along the last, first and a middle axis, K from 0 to
// the whole row, rows from 1 element to the longest the CUDA kernel sorts on chip (4096), many rows, K as
// the opset-9 attribute; and ties — few distinct values, so equal values must come out smaller index first
// — plus NaN, ±inf and ±0 for the float types. Values are copies: compared bit for bit.
#include <limits>

#include "cases_util.h"
#include "cases_values.h"

namespace kiln::sweep {
namespace {

Case topk(const std::string& label, Operand x, int64_t k, int64_t axis, bool largest) {
  const std::string what = label + " " + dims_str(x.dims) + " k=" + std::to_string(k) +
                           " axis=" + std::to_string(axis) + (largest ? " largest" : " smallest");
  Case c = make_case(what, {std::move(x), ints({k})},
                     attrs({{"axis", axis}, {"largest", int64_t{largest ? 1 : 0}}}));
  c.outputs = 2;
  c.exact = true;
  return c;
}

std::vector<Case> topk_cases(const std::string&, DType dt) {
  const bool is_float = dt == DType::Float || dt == DType::Float16 || dt == DType::BFloat16;
  // Few distinct values: most elements tie with many others.
  auto ties = [&](std::vector<int64_t> dims) {
    return fixed(tensor_of(dt, dims, cycle({1, 2, 3, -1, 0, 2, 1, 3, -4}, product(dims))));
  };
  std::vector<Case> out{
      topk("", input(dt, {3, 10}), 3, -1, true),
      topk("", input(dt, {4, 17}), 5, -1, false),
      topk("middle axis", input(dt, {5, 7, 6}), 4, 1, true),
      topk("first axis", input(dt, {9, 4, 3}), 2, 0, false),
      topk("whole row", input(dt, {2, 33}), 33, 1, true),
      topk("k=0", input(dt, {3, 8}), 0, -1, true),
      topk("one element", input(dt, {6, 1}), 1, -1, true),
      topk("many rows", input(dt, {64, 1000}), 50, -1, true),
      topk("strided rows", input(dt, {2, 16, 64, 64}), 5, 1, false),
      topk("longest row", input(dt, {3, 4096}), 100, -1, true),
      topk("ties", ties({6, 50}), 20, -1, true),
      topk("ties", ties({6, 50}), 20, -1, false),
      topk("ties first axis", ties({50, 6}), 50, 0, true),
      topk("ties longest row", ties({2, 4096}), 3000, -1, false),
  };
  {  // opset 9: K is an attribute
    Case c = make_case("opset 9 k=3 [4,12]", {input(dt, {4, 12})}, attrs({{"k", int64_t{3}}}), 9);
    c.outputs = 2;
    c.exact = true;
    out.push_back(c);
  }
  if (is_float) {
    const double inf = std::numeric_limits<double>::infinity(),
                 nan = std::numeric_limits<double>::quiet_NaN();
    const std::vector<double> specials{nan, 1.0, -inf, inf, 1.0, nan, -0.0, 0.0, 3.0, -2.0, 0.0};
    const std::vector<int64_t> dims{5, 40};
    for (bool largest : {true, false})
      out.push_back(
          topk("NaN inf zeros", fixed(tensor_of(dt, dims, cycle(specials, product(dims)))), 15, -1, largest));
    // Random values that round onto few float16 / bfloat16 numbers.
    out.push_back(topk("rounded ties", input(dt, {8, 300}, {1.0, 1.05, true}), 40, -1, true));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"TopK"},
                  .dtypes = {DType::Float, DType::Float16, DType::BFloat16, DType::Int32, DType::Int64},
                  .cases = topk_cases});

}  // namespace
}  // namespace kiln::sweep
