// kiln_backend_sweep cases: normalization — InstanceNormalization, kiln.GroupNorm (with its fused Relu / Elu,
// as fuse_groupnorm writes it) and the built-in GroupNormalizationPlugin (TensorRT's contract; its oracle is
// kiln.GroupNorm's reference). Ranks 2 to 5, tiny and odd planes, planes large enough for the CPU kernels'
// threaded split and the CUDA kernels' two-pass path, scale/bias as constants or as inputs, and data whose
// mean is far larger than its spread (the kernels' shifted sums).
#include "cases_util.h"

namespace kiln::sweep {
namespace {

const Fill kShifted{100.0, 101.0, true};  // |mean| >> std

struct NormSpec {
  std::vector<int64_t> x;
  int64_t groups = 1;
  std::string note;
  Fill fill;
  bool constant_affine = true;
};

NormSpec spec(std::vector<int64_t> x, int64_t groups = 1, std::string note = "") {
  NormSpec s;
  s.x = std::move(x);
  s.groups = groups;
  s.note = std::move(note);
  if (s.note == "shifted") s.fill = kShifted;
  if (s.note == "scale/bias inputs") s.constant_affine = false;
  return s;
}

std::vector<Operand> operands(const NormSpec& s, DType dt) {
  const std::vector<int64_t> c{s.x[1]};
  if (s.constant_affine) return {input(dt, s.x, s.fill), weight(dt, c), weight(dt, c)};
  return {input(dt, s.x, s.fill), input(dt, c), input(dt, c)};
}

std::string label(const NormSpec& s, const std::string& extra) {
  std::string l = dims_str(s.x);
  if (s.groups > 1) l += " g" + std::to_string(s.groups);
  if (!s.note.empty()) l += " " + s.note;
  return extra.empty() ? l : l + " " + extra;
}

std::vector<Case> instance_norm_cases(const std::string&, DType dt) {
  const std::vector<NormSpec> specs{
      spec({1, 3, 5, 7}),
      spec({2, 8, 33, 17}),
      spec({2, 16, 9}),
      spec({1, 4, 6, 5, 7}),
      spec({2, 8, 33, 17}, 1, "scale/bias inputs"),
      spec({1, 6, 17, 19}, 1, "shifted"),
      spec({1, 16, 256, 260}),
  };
  std::vector<Case> out;
  for (const NormSpec& s : specs) out.push_back(make_case(label(s, ""), operands(s, dt)));
  out.push_back(make_case(label(specs[1], "eps=1e-3"), operands(specs[1], dt), attrs({{"epsilon", 1e-3f}})));
  return out;
}

std::vector<NormSpec> group_specs() {
  return {
      spec({2, 8, 5, 7}, 2),
      spec({1, 32, 17, 19}, 8),
      spec({1, 12, 6, 5, 4}, 3),
      spec({2, 6}, 3),
      spec({1, 16, 33, 17}, 4, "shifted"),
      spec({1, 32, 20, 21}, 4, "scale/bias inputs"),
      spec({1, 64, 128, 130}, 16),
      spec({1, 64, 96, 320}, 16),
  };
}

std::vector<Case> group_norm_cases(const std::string&, DType dt) {
  static const char* acts[] = {"", "Relu", "Elu"};
  std::vector<Case> out;
  size_t k = 0;
  for (const NormSpec& s : group_specs()) {
    const std::string act = acts[k++ % 3];
    Attributes a = attrs({{"num_groups", s.groups}, {"epsilon", 1e-5f}});
    if (!act.empty()) a.set("activation", act);
    if (act == "Elu") a.set("alpha", 0.7f);
    out.push_back(make_case(label(s, act.empty() ? "" : "+" + act), operands(s, dt), std::move(a), 1));
  }
  return out;
}

std::vector<Case> group_norm_plugin_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  for (const NormSpec& s : group_specs()) {
    if (s.x.size() < 3) continue;  // the plugin's contract: rank >= 3
    const float eps = s.groups == 16 ? 1e-3f : 1e-5f;
    Case c = make_case(label(s, ""), operands(s, dt),
                       attrs({{"num_groups", s.groups}, {"eps", eps}, {"plugin_version", std::string("1")}}));
    c.oracle = Oracle{"GroupNorm", "kiln", attrs({{"num_groups", s.groups}, {"epsilon", eps}})};
    out.push_back(std::move(c));
  }
  return out;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"InstanceNormalization"}, .dtypes = float_dtypes(), .cases = instance_norm_cases});
KILN_SWEEP_CASES(
    {.domain = "kiln", .ops = {"GroupNorm"}, .dtypes = float_dtypes(), .cases = group_norm_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"GroupNormalizationPlugin"},
                  .dtypes = float_dtypes(),
                  .cases = group_norm_plugin_cases});

// BatchNormalization (inference): constant per-channel parameters (var positive) on 5-D, 4-D, 3-D and 2-D
// inputs, one large enough to be threaded; variable parameters (which cpu.batch_norm leaves to the
// reference), all or only mean/var; and float32 parameters for 16-bit data, constant and variable.
std::vector<Case> batch_norm_cases(const std::string&, DType dt) {
  const Fill positive{0.2, 2.0, true};
  std::vector<Case> out;
  for (const std::vector<int64_t>& x :
       std::vector<std::vector<int64_t>>{{2, 8, 9, 11}, {3, 5, 17}, {4, 6}, {1, 64, 56, 56}}) {
    const std::vector<int64_t> c{x[1]};
    out.push_back(
        make_case(dims_str(x) + " eps=1e-3",
                  {input(dt, x), weight(dt, c), weight(dt, c), weight(dt, c), weight(dt, c, positive)},
                  attrs({{"epsilon", 1e-3f}}), 15));
  }
  const std::vector<int64_t> x{2, 4, 5, 5}, c{4};
  out.push_back(make_case(dims_str(x) + " variable params",
                          {input(dt, x), input(dt, c), input(dt, c), input(dt, c), input(dt, c, positive)},
                          {}, 15));
  out.push_back(make_case(dims_str(x) + " variable mean/var",
                          {input(dt, x), weight(dt, c), weight(dt, c), input(dt, c), input(dt, c, positive)},
                          {}, 15));
  const std::vector<int64_t> x5{1, 3, 4, 5, 6}, c3{3};
  out.push_back(make_case(dims_str(x5), {input(dt, x5), weight(dt, c3), weight(dt, c3), weight(dt, c3),
                                         weight(dt, c3, positive)}));
  if (dt != DType::Float) {
    const DType f = DType::Float;
    out.push_back(make_case(dims_str(x) + " float32 params",
                            {input(dt, x), weight(f, c), weight(f, c), weight(f, c), weight(f, c, positive)},
                            {}, 15));
    out.push_back(make_case(dims_str(x) + " variable float32 params",
                            {input(dt, x), input(f, c), input(f, c), input(f, c), input(f, c, positive)}, {},
                            15));
  }
  return out;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"BatchNormalization"}, .dtypes = float_dtypes(), .cases = batch_norm_cases});

// LayerNormalization (ONNX's and kiln's, as fuse_layernorm writes it): the last axis of transformer
// activations (ViT's 197x768, a threaded size), trailing axes, scale as [1, D] (leading 1s), no bias, data
// whose mean dwarfs its spread, and an output Mean (which cpu.layernorm leaves to the reference).
std::vector<Case> layer_norm_cases(const std::string&, DType dt) {
  auto c = [&](std::vector<int64_t> x, int64_t axis, std::vector<int64_t> scale, bool bias, Fill fill = {}) {
    std::vector<Operand> ops{input(dt, x, fill), weight(dt, scale)};
    if (bias) ops.push_back(weight(dt, scale));
    return make_case(dims_str(x) + " axis " + std::to_string(axis) + " scale " + dims_str(scale) +
                         (bias ? "" : " no bias"),
                     std::move(ops), attrs({{"axis", axis}, {"epsilon", 1e-5f}}));
  };
  std::vector<Case> out{c({2, 7, 32}, -1, {32}, true),
                        c({1, 197, 768}, 2, {768}, true),
                        c({2, 3, 5, 9}, 2, {5, 9}, true),
                        c({4, 33}, 1, {1, 33}, false),
                        c({1, 40, 120}, -1, {120}, true, kShifted),
                        c({3, 17}, -1, {17}, true)};
  out.back().outputs = 2;
  // Rows long enough for a block each (CUDA), the whole tensor as one row, scale and bias broadcast along
  // the leading normalized dim, and both statistics outputs.
  out.push_back(c({3, 5000}, -1, {5000}, true));
  out.push_back(c({3, 4, 5}, -3, {3, 4, 5}, true));
  out.push_back(c({2, 6, 8}, 1, {8}, true));
  out.push_back(c({5, 2, 33}, -2, {2, 33}, true));
  out.back().outputs = 3;
  return out;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"LayerNormalization"}, .dtypes = float_dtypes(), .cases = layer_norm_cases});
KILN_SWEEP_CASES(
    {.domain = "kiln", .ops = {"LayerNormalization"}, .dtypes = float_dtypes(), .cases = layer_norm_cases});

// LRN: AlexNet's size 5 / beta 0.75 (alpha large enough that the denominator matters), beta 0.5 and 1, an
// even window, 3-D and 5-D inputs, one layer large enough to be threaded, beta 0.6 (which cpu.lrn leaves
// to the reference), a window wider than the channels and size 1.
std::vector<Case> lrn_cases(const std::string&, DType dt) {
  struct Spec {
    std::vector<int64_t> x;
    int64_t size;
    float alpha, beta, bias;
  };
  const std::vector<Spec> specs{
      {{2, 16, 9, 11}, 5, 0.5f, 0.75f, 1.f},  {{1, 7, 6, 5}, 3, 0.2f, 0.5f, 2.f},
      {{1, 9, 4, 7}, 4, 0.3f, 1.f, 1.5f},     {{2, 6, 13}, 5, 0.4f, 0.75f, 1.f},
      {{1, 5, 3, 4, 5}, 3, 0.4f, 0.75f, 1.f}, {{1, 64, 56, 56}, 5, 1e-2f, 0.75f, 1.f},
      {{1, 8, 5, 5}, 5, 0.3f, 0.6f, 1.f},     {{2, 3, 4, 5}, 7, 0.5f, 0.75f, 1.f},
      {{1, 4, 3, 3}, 1, 0.5f, 0.75f, 1.f}};
  std::vector<Case> out;
  for (const Spec& s : specs)
    out.push_back(
        make_case(dims_str(s.x) + " size " + std::to_string(s.size) + " beta " + std::to_string(s.beta),
                  {input(dt, s.x)},
                  attrs({{"size", s.size}, {"alpha", s.alpha}, {"beta", s.beta}, {"bias", s.bias}}), 13));
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"LRN"}, .dtypes = float_dtypes(), .cases = lrn_cases});

// Softmax, LogSoftmax and Hardmax: the last axis (opset 13: a classifier head, attention scores, PP-OCR's
// 6625-way output), opset 11 coercing to 2-D at axis 1, at a negative axis and at axis 0 (one long row), one
// large enough to be threaded, inner axes at opset 13 (which cpu.softmax leaves to the reference; short and
// long columns on CUDA), and data full of ties (Hardmax takes the first maximum).
std::vector<Case> softmax_cases(const std::string&, DType dt) {
  const Fill wide{0.1, 8.0};
  auto c = [&](std::vector<int64_t> x, int64_t axis, int64_t opset) {
    return make_case(dims_str(x) + " axis " + std::to_string(axis) + " opset " + std::to_string(opset),
                     {input(dt, x, wide)}, attrs({{"axis", axis}}), opset);
  };
  std::vector<Case> out{c({2, 1000}, -1, 13),   c({1, 8, 40, 40}, -1, 13), c({1, 40, 6625}, -1, 13),
                        c({2, 3, 5, 7}, 1, 11), c({2, 3, 5, 7}, -2, 11),   c({64, 8, 4096}, -1, 13),
                        c({2, 5, 7, 3}, 1, 13), c({3, 5000}, 0, 11),       c({2, 40, 9}, -2, 13),
                        c({3, 1}, -1, 13)};
  TensorData ties(dt, {4, 37});
  for (int64_t i = 0; i < ties.numel(); ++i) {
    const float v = static_cast<float>((i * 7 + i / 3) % 5 - 2);
    if (dt == DType::Float)
      ties.data<float>()[i] = v;
    else
      ties.data<uint16_t>()[i] = dt == DType::Float16 ? float_to_half(v) : float_to_bfloat16(v);
  }
  out.push_back(
      make_case("[4, 37] axis -1 opset 13 ties", {fixed(ties)}, attrs({{"axis", int64_t{-1}}}), 13));
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Softmax", "LogSoftmax", "Hardmax"},
                  .dtypes = float_dtypes(),
                  .cases = softmax_cases});

}  // namespace
}  // namespace kiln::sweep
