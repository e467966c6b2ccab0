// kiln_backend_sweep cases: pooling — MaxPool and AveragePool (also with count_include_pad) 1-D and 2-D:
// SqueezeNet's k3 s2 ceil_mode, k2 s2, padded k3 s1, dilated, VALID, asymmetric pads, planes large enough for
// the threaded split, and with the Indices output (which the CPU kernel leaves to the reference);
// GlobalAveragePool.
#include "cases_util.h"

namespace kiln::sweep {
namespace {

std::vector<Case> pool_cases(const std::string& op, DType dt) {
  const bool average = op == "AveragePool";
  using V = std::vector<int64_t>;
  struct Spec {
    V x, k, strides, pads, dil;
    int64_t ceil = 0;
    std::string auto_pad = "NOTSET";
    size_t outputs = 1;
  };
  const std::vector<Spec> specs{
      {{1, 8, 13, 13}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},  // SqueezeNet
      {{2, 4, 16, 12}, {2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}},
      {{1, 3, 11, 9}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}},
      {{1, 5, 17, 15}, {3, 2}, {2, 1}, {1, 0, 2, 1}, {2, 2}},  // asymmetric pads, dilation
      {{1, 6, 10, 10}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 0, "VALID"},
      {{2, 3, 29}, {4}, {3}, {1, 2}, {1}},                                   // 1-D
      {{1, 64, 112, 112}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},             // threaded
      {{1, 4, 9, 9}, {2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 0, "NOTSET", 2},  // Indices wanted
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    if (average && s.outputs > 1) continue;  // AveragePool has no Indices
    Attributes a =
        attrs({{"kernel_shape", s.k}, {"strides", s.strides}, {"dilations", s.dil}, {"ceil_mode", s.ceil}});
    if (s.auto_pad == "NOTSET")
      a.set("pads", s.pads);
    else
      a.set("auto_pad", s.auto_pad);
    std::string label = dims_str(s.x) + " k" + dims_str(s.k) + " s" + dims_str(s.strides);
    if (s.ceil) label += " ceil";
    if (s.auto_pad != "NOTSET") label += " " + s.auto_pad;
    if (s.outputs > 1) label += " +indices";
    Case c = make_case(label, {input(dt, s.x)}, a, 12);
    c.outputs = s.outputs;
    c.exact = !average;  // a max picks one of its inputs
    out.push_back(c);
    if (average && s.auto_pad == "NOTSET" && s.dil == V{1, 1}) {  // the padded extent as the divisor
      c.attrs.set("count_include_pad", int64_t{1});
      c.label += " count_include_pad";
      out.push_back(std::move(c));
    }
  }
  return out;
}

// GlobalAveragePool: 2-D, 1-D, 3-D, one spatial position, and planes large enough to be threaded.
std::vector<Case> global_pool_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  for (const std::vector<int64_t>& x : std::vector<std::vector<int64_t>>{
           {1, 8, 13, 13}, {2, 5, 29}, {1, 3, 4, 5, 6}, {2, 7, 1, 1}, {1, 96, 80, 80}})
    out.push_back(make_case(dims_str(x), {input(dt, x)}));
  return out;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"MaxPool", "AveragePool"}, .dtypes = float_dtypes(), .cases = pool_cases});
KILN_SWEEP_CASES(
    {.domain = "", .ops = {"GlobalAveragePool"}, .dtypes = float_dtypes(), .cases = global_pool_cases});

}  // namespace
}  // namespace kiln::sweep
