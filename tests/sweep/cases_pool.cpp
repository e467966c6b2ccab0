// kiln_backend_sweep cases: pooling — MaxPool 1-D and 2-D: SqueezeNet's k3 s2 ceil_mode, k2 s2, padded k3 s1,
// dilated, VALID, asymmetric pads, planes large enough for the threaded split, and with the Indices output
// (which the CPU kernel leaves to the reference).
#include "cases_util.h"

namespace kiln::sweep {
namespace {

std::vector<Case> max_pool_cases(const std::string&, DType dt) {
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
    c.exact = true;  // a max picks one of its inputs
    out.push_back(std::move(c));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"MaxPool"}, .dtypes = float_dtypes(), .cases = max_pool_cases});

}  // namespace
}  // namespace kiln::sweep
