// kiln_backend_sweep cases: Conv and kiln.FusedConv (Conv + Relu/Elu/Sigmoid, as fuse_conv_activation
// writes it) — 1-D to 3-D, bias or not, groups and depthwise, strides, dilations, symmetric and asymmetric
// pads, auto_pad, 1x1 (GEMM paths), one input channel 3-D (PackNet's packing convolution, the direct CUDA
// kernel), one output channel (PackNet's disparity heads) and one layer large enough for cpu.conv_onednn to
// time its tactics. cpu.conv_onednn's tactics are also forced one by one (conv_tactics.h), so each
// implementation it may pick is checked, not only the one picked here.
#if __has_include("backends/cpu/conv_tactics.h")
#include "backends/cpu/conv_tactics.h"
#define KILN_SWEEP_CONV_TACTICS 1
#endif
#include "cases_util.h"

namespace kiln::sweep {
namespace {

struct ConvSpec {
  std::string what;
  std::vector<int64_t> x, w;  // X [N, C, ...], W [M, C/group, k...]
  bool bias = false;
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pads;  // empty = the default
  std::string auto_pad;
};

const std::vector<ConvSpec>& specs() {
  static const std::vector<ConvSpec> s{
      {"3x3 p1", {1, 8, 13, 15}, {16, 8, 3, 3}, true, 1, {}, {}, {1, 1, 1, 1}, ""},
      {"1x1", {2, 32, 9, 7}, {24, 32, 1, 1}, false, 1, {}, {}, {}, ""},
      {"depthwise s2 p1", {1, 16, 12, 12}, {16, 1, 3, 3}, true, 16, {2, 2}, {}, {1, 1, 1, 1}, ""},
      {"g4 dil2 p2", {1, 16, 11, 10}, {8, 4, 3, 3}, false, 4, {}, {2, 2}, {2, 2, 2, 2}, ""},
      {"asym pads", {1, 4, 10, 9}, {8, 4, 3, 3}, true, 1, {}, {}, {0, 1, 2, 1}, ""},
      {"SAME_UPPER s2", {1, 6, 9, 10}, {5, 6, 3, 3}, true, 1, {2, 2}, {}, {}, "SAME_UPPER"},
      {"SAME_LOWER s2 even (asym)", {1, 3, 8, 8}, {4, 3, 3, 3}, true, 1, {2, 2}, {}, {}, "SAME_LOWER"},
      {"depthwise asym fp16 path", {2, 8, 9, 9}, {8, 1, 3, 3}, false, 8, {2, 2}, {}, {0, 0, 1, 1}, ""},
      {"1-D asym", {1, 3, 11}, {4, 3, 3}, true, 1, {}, {}, {2, 0}, ""},
      {"1-D k5", {2, 4, 17}, {6, 4, 5}, true, 1, {}, {}, {2, 2}, ""},
      {"3-D p1", {1, 4, 6, 7, 8}, {8, 4, 3, 3, 3}, true, 1, {}, {}, {1, 1, 1, 1, 1, 1}, ""},
      {"3-D cin1 3x3x3", {1, 1, 8, 12, 16}, {8, 1, 3, 3, 3}, true, 1, {}, {}, {1, 1, 1, 1, 1, 1}, ""},
      {"3-D cin1 M12 wide", {2, 1, 5, 9, 70}, {12, 1, 3, 3, 3}, false, 1, {}, {}, {1, 1, 1, 1, 1, 1}, ""},
      {"3-D cin1 2x3x3", {1, 1, 6, 7, 9}, {4, 1, 2, 3, 3}, true, 1, {}, {}, {0, 1, 1, 1, 1, 0}, ""},
      {"cout1 64->1", {1, 64, 24, 20}, {1, 64, 3, 3}, true, 1, {}, {}, {1, 1, 1, 1}, ""},
      {"3x3 p1 large", {1, 16, 40, 40}, {32, 16, 3, 3}, true, 1, {}, {}, {1, 1, 1, 1}, ""},
  };
  return s;
}

int64_t out_dim(const ConvSpec& s, size_t i) {
  const size_t n = s.x.size() - 2;
  const int64_t in = s.x[i + 2], k = s.w[i + 2];
  const int64_t stride = s.strides.empty() ? 1 : s.strides[i], dil = s.dilations.empty() ? 1 : s.dilations[i];
  if (s.auto_pad == "SAME_UPPER" || s.auto_pad == "SAME_LOWER") return (in + stride - 1) / stride;
  const int64_t pads = s.pads.empty() ? 0 : s.pads[i] + s.pads[i + n];
  return (in + pads - ((k - 1) * dil + 1)) / stride + 1;
}

Case conv_case(const ConvSpec& s, DType dt, const std::string& post) {
  std::vector<Operand> in{input(dt, s.x), weight(dt, s.w, {0.05, 0.5})};
  if (s.bias) in.push_back(weight(dt, {s.w[0]}));
  Attributes a;
  if (s.group != 1) a.set("group", s.group);
  if (!s.strides.empty()) a.set("strides", s.strides);
  if (!s.dilations.empty()) a.set("dilations", s.dilations);
  if (!s.pads.empty()) a.set("pads", s.pads);
  if (!s.auto_pad.empty()) a.set("auto_pad", s.auto_pad);
  a.set("kernel_shape", std::vector<int64_t>(s.w.begin() + 2, s.w.end()));
  std::string label = s.what + " x" + dims_str(s.x) + " w" + dims_str(s.w) + (s.bias ? " +b" : "");
  if (!post.empty()) {
    a.set("kiln_post_op", post);
    if (post == "Elu") a.set("kiln_post_alpha", 0.7f);
    label += " +" + post;
  }
  Case c = make_case(label, std::move(in), std::move(a), post.empty() ? 17 : 1);
  c.tf32 = true;
  double flops = 2.0 * static_cast<double>(s.x[0] * s.w[0] * product({s.w.begin() + 1, s.w.end()}));
  for (size_t i = 0; i + 2 < s.x.size(); ++i) flops *= static_cast<double>(out_dim(s, i));
  c.flops = flops;
  return c;
}

std::vector<Case> conv_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  for (const ConvSpec& s : specs()) out.push_back(conv_case(s, dt, ""));
  return out;
}

std::vector<Case> fused_conv_cases(const std::string&, DType dt) {
  static const char* posts[] = {"Relu", "Elu", "Sigmoid"};
  std::vector<Case> out;
  size_t k = 0;
  for (const ConvSpec& s : specs()) out.push_back(conv_case(s, dt, posts[k++ % 3]));
  out.push_back(conv_case(specs()[0], dt, ""));  // FusedConv without an activation is a plain Conv
  return out;
}

// ConvTranspose: the PP-OCR detector's 2x2 stride-2 upsampling, pads with output_padding, groups, dilation
// with asymmetric pads, 1-D and 3-D, output_shape, SAME_UPPER, output_padding past the end pad (which
// cpu.conv_transpose leaves to the reference), one layer large enough to be threaded, depthwise and grouped
// layers with strides, dilations and output_padding, SAME_LOWER, pads past the kernel and a bias computed at
// run time (the cuDNN kernel's direct and cropped paths, constant and device bias).
std::vector<Case> conv_transpose_cases(const std::string&, DType dt) {
  using V = std::vector<int64_t>;
  struct Spec {
    std::string what;
    V x, w;  // X [N, C, ...], W [C, M/group, k...]
    bool bias;
    Attributes a;
  };
  const std::vector<Spec> specs{
      {"2x2 s2", {1, 16, 10, 12}, {16, 8, 2, 2}, true, attrs({{"strides", V{2, 2}}})},
      {"3x3 s2 p1 outpad1",
       {1, 4, 7, 7},
       {4, 6, 3, 3},
       false,
       attrs({{"strides", V{2, 2}}, {"pads", V{1, 1, 1, 1}}, {"output_padding", V{1, 1}}})},
      {"g2", {1, 8, 6, 6}, {8, 3, 3, 3}, true, attrs({{"group", int64_t{2}}})},
      {"dil2 asym pads",
       {1, 3, 6, 5},
       {3, 4, 3, 2},
       true,
       attrs({{"dilations", V{2, 2}}, {"pads", V{1, 0, 2, 1}}})},
      {"1-D s3", {2, 4, 9}, {4, 5, 4}, true, attrs({{"strides", V{3}}})},
      {"3-D s2", {1, 4, 4, 5, 6}, {4, 3, 2, 2, 2}, false, attrs({{"strides", V{2, 2, 2}}})},
      {"output_shape",
       {1, 4, 5, 5},
       {4, 4, 3, 3},
       true,
       attrs({{"strides", V{2, 2}}, {"output_shape", V{10, 10}}})},
      {"SAME_UPPER s2",
       {1, 4, 5, 6},
       {4, 3, 3, 3},
       false,
       attrs({{"strides", V{2, 2}}, {"auto_pad", std::string("SAME_UPPER")}})},
      {"outpad past pads",
       {1, 3, 5, 5},
       {3, 2, 3, 3},
       false,
       attrs({{"strides", V{2, 2}}, {"output_padding", V{1, 1}}})},
      {"2x2 s2 large", {1, 64, 40, 40}, {64, 32, 2, 2}, true, attrs({{"strides", V{2, 2}}})},
      {"depthwise s2 p1 outpad1",
       {1, 8, 9, 7},
       {8, 1, 3, 3},
       true,
       attrs({{"group", int64_t{8}},
              {"strides", V{2, 2}},
              {"pads", V{1, 1, 1, 1}},
              {"output_padding", V{1, 1}}})},
      {"g4 s3x2 dil2 asym outpad",
       {2, 8, 5, 7},
       {8, 2, 3, 2},
       false,
       attrs({{"group", int64_t{4}},
              {"strides", V{3, 2}},
              {"dilations", V{2, 1}},
              {"pads", V{1, 0, 0, 2}},
              {"output_padding", V{2, 1}}})},
      {"SAME_LOWER s2",
       {1, 3, 5, 4},
       {3, 2, 4, 3},
       true,
       attrs({{"strides", V{2, 2}}, {"auto_pad", std::string("SAME_LOWER")}})},
      {"pads past kernel", {1, 2, 6, 5}, {2, 3, 3, 3}, true, attrs({{"pads", V{3, 0, 0, 3}}})},
      {"3-D s2 p1 outpad",
       {1, 2, 3, 4, 5},
       {2, 3, 3, 3, 3},
       true,
       attrs({{"strides", V{2, 1, 2}}, {"pads", V{1, 1, 1, 1, 1, 1}}, {"output_padding", V{1, 0, 0}}})},
      {"1-D VALID s2 outpad1",
       {1, 3, 11},
       {3, 4, 3},
       false,
       attrs({{"strides", V{2}}, {"output_padding", V{1}}, {"auto_pad", std::string("VALID")}})},
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    std::vector<Operand> in{input(dt, s.x), weight(dt, s.w, {0.05, 0.5})};
    const int64_t group = s.a.get_int("group", 1);
    if (s.bias) in.push_back(weight(dt, {s.w[1] * group}));
    Case c = make_case(s.what + " x" + dims_str(s.x) + " w" + dims_str(s.w) + (s.bias ? " +b" : ""),
                       std::move(in), s.a, 17);
    c.tf32 = true;
    c.flops = 2.0 * static_cast<double>(product(s.x) * product({s.w.begin() + 1, s.w.end()}));
    out.push_back(std::move(c));
  }
  // A bias computed at run time (cuda.conv_transpose reads it in place as float: fp32 only).
  Case c = make_case("runtime bias s2 outpad1 x[1,4,5,6] w[4,3,3,3]",
                     {input(dt, {1, 4, 5, 6}), weight(dt, {4, 3, 3, 3}, {0.05, 0.5}), input(dt, {3})},
                     attrs({{"strides", V{2, 2}}, {"output_padding", V{1, 1}}}), 17);
  c.tf32 = true;
  out.push_back(std::move(c));
  return out;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"ConvTranspose"}, .dtypes = float_dtypes(), .cases = conv_transpose_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Conv"}, .dtypes = float_dtypes(), .cases = conv_cases});
KILN_SWEEP_CASES(
    {.domain = "kiln", .ops = {"FusedConv"}, .dtypes = float_dtypes(), .cases = fused_conv_cases});

#ifdef KILN_SWEEP_CONV_TACTICS
std::vector<Variant> conv_tactics(const backend::LayerDesc& desc) {
  std::vector<Variant> out;
  for (const std::string& name : backend::conv_onednn::tactics_for(desc))
    out.push_back({"tactic " + name, [name](const backend::LayerDesc& d) {
                     return backend::conv_onednn::create_with_tactic(d, name);
                   }});
  return out;
}
const bool conv_tactics_registered = register_variants("cpu", "cpu.conv_onednn", conv_tactics);
#endif

}  // namespace
}  // namespace kiln::sweep
