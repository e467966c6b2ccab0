// kiln_backend_sweep cases: pooling — MaxPool, AveragePool (also with count_include_pad) and LpPool (p = 1,
// 2, 3) 1-D to 3-D: SqueezeNet's k3 s2 ceil_mode, k2 s2, padded k3 s1, dilated, VALID, SAME_UPPER/SAME_LOWER
// on odd sizes, asymmetric pads, ceil_mode whose last window runs past the end padding, planes large enough
// for the threaded split and the GPU's many blocks, and with the Indices output (which the CPU kernel leaves
// to the reference) row- and column-major (storage_order); GlobalAveragePool and GlobalMaxPool on planes
// small enough for a warp each and large enough for a block each.
#include "cases_util.h"

namespace kiln::sweep {
namespace {

std::vector<Case> pool_cases(const std::string& op, DType dt) {
  const bool average = op == "AveragePool", lp = op == "LpPool";
  using V = std::vector<int64_t>;
  struct Spec {
    V x, k, strides, pads, dil;
    int64_t ceil = 0;
    std::string auto_pad = "NOTSET";
    size_t outputs = 1;
    int64_t storage_order = 0;
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
      {{1, 3, 10, 11}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 1},             // ceil: last window past pad_end
      {{2, 3, 11, 10}, {3, 2}, {2, 3}, {0, 0, 0, 0}, {1, 1}, 0, "SAME_UPPER"},
      {{1, 4, 9, 8}, {2, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 0, "SAME_LOWER"},
      {{2, 3, 25}, {3}, {2}, {1, 1}, {2}, 1},                                     // 1-D dilated ceil
      {{1, 3, 7, 8, 9}, {2, 3, 2}, {2, 1, 2}, {0, 1, 1, 1, 0, 0}, {1, 1, 2}},     // 3-D
      {{2, 2, 6, 7, 5}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1, 1, 1, 1}, {1, 1, 1}, 1},  // 3-D ceil
      {{1, 2, 5, 6, 7}, {2, 2, 3}, {1, 2, 2}, {0, 0, 0, 0, 0, 0}, {1, 1, 1}, 0, "SAME_UPPER"},
      {{1, 5, 11, 13}, {3, 3}, {2, 2}, {1, 0, 1, 2}, {1, 2}, 1, "NOTSET", 2},     // Indices, pads, ceil
      {{1, 5, 11, 13}, {3, 2}, {2, 2}, {1, 1, 0, 1}, {1, 1}, 0, "NOTSET", 2, 1},  // Indices column-major
      {{2, 3, 19}, {3}, {2}, {1, 1}, {1}, 1, "NOTSET", 2, 1},                     // 1-D Indices
      {{1, 2, 5, 6, 7}, {2, 3, 2}, {2, 2, 2}, {1, 0, 1, 0, 1, 1}, {1, 1, 1}, 0, "NOTSET", 2, 1},  // 3-D
      {{1, 3, 6, 5, 4}, {2, 2, 2}, {1, 2, 1}, {0, 0, 0, 0, 0, 0}, {1, 1, 1}, 0, "NOTSET", 2},     // 3-D
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    if (s.outputs > 1 && op != "MaxPool") continue;  // only MaxPool has Indices
    Attributes a =
        attrs({{"kernel_shape", s.k}, {"strides", s.strides}, {"dilations", s.dil}, {"ceil_mode", s.ceil}});
    if (s.storage_order) a.set("storage_order", s.storage_order);
    if (s.auto_pad == "NOTSET")
      a.set("pads", s.pads);
    else
      a.set("auto_pad", s.auto_pad);
    std::string label = dims_str(s.x) + " k" + dims_str(s.k) + " s" + dims_str(s.strides);
    if (s.ceil) label += " ceil";
    if (s.auto_pad != "NOTSET") label += " " + s.auto_pad;
    if (s.outputs > 1) label += s.storage_order ? " +indices col-major" : " +indices";
    Case c = make_case(label, {input(dt, s.x)}, a, lp ? 18 : 12);
    c.outputs = s.outputs;
    c.exact = op == "MaxPool";  // a max picks one of its inputs
    if (lp) {                   // p = 2 (the default), 1 and 3 take different paths
      for (int64_t p : {1, 3}) {
        Case cp = c;
        cp.attrs.set("p", p);
        cp.label += " p" + std::to_string(p);
        out.push_back(std::move(cp));
      }
    }
    out.push_back(c);
    if (average) {  // the padded extent as the divisor
      c.attrs.set("count_include_pad", int64_t{1});
      c.label += " count_include_pad";
      out.push_back(std::move(c));
    }
  }
  return out;
}

// Global pools: 2-D, 1-D, 3-D, one spatial position, planes large enough to be threaded (and for a block
// each on the GPU: over 2048 elements, 2049 for a partial last round), ResNet-50's 2048 planes of 7x7.
std::vector<Case> global_pool_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  for (const std::vector<int64_t>& x : std::vector<std::vector<int64_t>>{{1, 8, 13, 13},
                                                                         {2, 5, 29},
                                                                         {1, 3, 4, 5, 6},
                                                                         {2, 7, 1, 1},
                                                                         {1, 96, 80, 80},
                                                                         {2, 3, 2049},
                                                                         {2, 1024, 7, 7}})
    out.push_back(make_case(dims_str(x), {input(dt, x)}));
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"MaxPool", "AveragePool", "LpPool"},
                  .dtypes = float_dtypes(),
                  .cases = pool_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"GlobalAveragePool", "GlobalMaxPool"},
                  .dtypes = float_dtypes(),
                  .cases = global_pool_cases});

}  // namespace
}  // namespace kiln::sweep
