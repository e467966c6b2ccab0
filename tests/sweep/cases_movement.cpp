// kiln_backend_sweep cases: data movement — Transpose, DepthToSpace / SpaceToDepth, Concat, Pad, Slice,
// Resize / Upsample, and the view ops a backend may copy (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
// Dropout). Every dtype class a byte-moving kernel may take (16-, 32- and 64-bit); outputs must be bit-exact
// except for linear Resize, which interpolates.
#include <climits>

#include "cases_util.h"

namespace kiln::sweep {
namespace {

Case exact(Case c) {
  c.exact = true;
  return c;
}

// ---------------------------------------------------------------------------------------- Transpose
std::vector<Case> transpose_cases(const std::string&, DType dt) {
  struct T {
    std::vector<int64_t> x, perm;
  };
  const std::vector<T> specs{
      {{37, 53}, {1, 0}},
      {{2, 6, 9, 11}, {0, 2, 3, 1}},
      {{2, 6, 9, 11}, {0, 3, 1, 2}},
      {{3, 4, 5}, {2, 0, 1}},
      {{3, 4, 5}, {0, 1, 2}},
      {{1, 16, 1, 25}, {0, 3, 2, 1}},
      {{2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}},
      {{2, 1, 3, 2, 3, 2}, {5, 4, 3, 2, 1, 0}},
      {{1, 64, 128, 130}, {0, 2, 3, 1}},
  };
  std::vector<Case> out;
  for (const T& s : specs)
    out.push_back(exact(
        make_case(dims_str(s.x) + " perm " + dims_str(s.perm), {input(dt, s.x)}, attrs({{"perm", s.perm}}))));
  out.push_back(exact(make_case("[4,5,6] no perm (reverse)", {input(dt, {4, 5, 6})})));
  return out;
}

// ------------------------------------------------------------------------------ DepthToSpace, SpaceToDepth
std::vector<Case> depth_space_cases(const std::string& op, DType dt) {
  struct S {
    std::vector<int64_t> x;
    int64_t block;
    std::string mode;
  };
  std::vector<S> specs;
  if (op == "DepthToSpace") {
    specs.push_back({{1, 8, 5, 7}, 2, "DCR"});
    specs.push_back({{2, 18, 4, 3}, 3, "CRD"});
    specs.push_back({{1, 16, 9, 11}, 2, "CRD"});
    specs.push_back({{1, 64, 128, 130}, 2, "DCR"});
  } else {
    specs.push_back({{1, 2, 10, 14}, 2, ""});
    specs.push_back({{2, 3, 9, 6}, 3, ""});
    specs.push_back({{1, 16, 256, 260}, 2, ""});
  }
  std::vector<Case> out;
  for (const S& s : specs) {
    Attributes a = attrs({{"blocksize", s.block}});
    if (!s.mode.empty()) a.set("mode", s.mode);
    out.push_back(
        exact(make_case(dims_str(s.x) + " b" + std::to_string(s.block) + (s.mode.empty() ? "" : " " + s.mode),
                        {input(dt, s.x)}, std::move(a))));
  }
  return out;
}

// -------------------------------------------------------------------------------------------- Concat
std::vector<Case> concat_cases(const std::string&, DType dt) {
  struct C {
    std::vector<std::vector<int64_t>> xs;
    int64_t axis;
  };
  const std::vector<C> specs{
      {{{2, 3, 4, 5}, {2, 1, 4, 5}, {2, 4, 4, 5}}, 1},
      {{{1, 3, 4}, {2, 3, 4}}, 0},
      {{{3, 4, 5}, {3, 4, 2}}, -1},
      {{{2, 3, 4, 1}, {2, 3, 4, 6}}, 3},
      {{{3, 7}}, 1},
      {{{1, 32, 128, 130}, {1, 32, 128, 130}}, 1},
  };
  std::vector<Case> out;
  for (const C& s : specs) {
    std::vector<Operand> in;
    std::string label;
    for (const auto& x : s.xs) {
      in.push_back(input(dt, x));
      label += dims_str(x);
    }
    out.push_back(exact(
        make_case(label + " axis " + std::to_string(s.axis), std::move(in), attrs({{"axis", s.axis}}))));
  }
  // A constant operand (the CPU executor passes constants by pointer too).
  out.push_back(exact(make_case("[2,3,5]+const[2,2,5] axis 1", {input(dt, {2, 3, 5}), weight(dt, {2, 2, 5})},
                                attrs({{"axis", int64_t{1}}}))));
  return out;
}

// ----------------------------------------------------------------------------------------------- Pad
std::vector<Case> pad_cases(const std::string&, DType dt) {
  const std::vector<int64_t> x{2, 3, 5, 7};
  const double value = dtype_is_float(dt) ? 1.5 : 3;
  std::vector<Case> out{
      make_case("constant " + dims_str(x) + " pads [0,1,2,3,0,2,1,0]",
                {input(dt, x), ints({0, 1, 2, 3, 0, 2, 1, 0}), scalar(dt, value)}, {}, 18),
      make_case("constant zero " + dims_str(x) + " pads [0,0,1,1,0,0,1,1]",
                {input(dt, x), ints({0, 0, 1, 1, 0, 0, 1, 1})}, {}, 13),
      make_case("constant axes [2,3] pads [1,1,2,2]",
                {input(dt, x), ints({1, 1, 2, 2}), scalar(dt, value), ints({2, 3})}, {}, 18),
      make_case("reflect pads [0,0,2,1,0,0,1,2]", {input(dt, x), ints({0, 0, 2, 1, 0, 0, 1, 2})},
                attrs({{"mode", std::string("reflect")}}), 13),
      make_case("edge pads [0,1,2,1,0,1,1,3]", {input(dt, x), ints({0, 1, 2, 1, 0, 1, 1, 3})},
                attrs({{"mode", std::string("edge")}}), 13),
      make_case("crop pads [0,0,-1,1,0,0,1,-2]", {input(dt, x), ints({0, 0, -1, 1, 0, 0, 1, -2})}, {}, 13),
      make_case("constant value as a graph input " + dims_str(x) + " pads [1,0,0,2,0,1,3,0]",
                {input(dt, x), ints({1, 0, 0, 2, 0, 1, 3, 0}), input(dt, {})}, {}, 13),
      make_case("wrap pads [0,1,3,2,0,0,2,4]", {input(dt, x), ints({0, 1, 3, 2, 0, 0, 2, 4})},
                attrs({{"mode", std::string("wrap")}}), 19),
      make_case("constant [1,32,128,128] pads 1",
                {input(dt, {1, 32, 128, 128}), ints({0, 0, 1, 1, 0, 0, 1, 1})}, {}, 13),
  };
  if (dtype_is_float(dt))  // Pad-2 pads float tensors only
    out.push_back(make_case("opset2 attr pads value 0.5", {input(dt, x)},
                            attrs({{"pads", std::vector<int64_t>{0, 0, 1, 2, 0, 0, 2, 1}}, {"value", 0.5f}}),
                            2));
  for (Case& c : out) c.exact = true;
  return out;
}

// --------------------------------------------------------------------------------------------- Slice
std::vector<Case> slice_cases(const std::string&, DType dt) {
  const std::vector<int64_t> x{4, 5, 6};
  const int64_t big = INT64_MAX;
  std::vector<Case> out{
      make_case("[4,5,6] axes [0,2]", {input(dt, x), ints({1, 0}), ints({3, 5}), ints({0, 2})}),
      make_case("[4,5,6] step -1 axis 1", {input(dt, x), ints({-1}), ints({-100}), ints({1}), ints({-1})}),
      make_case("[4,5,6] steps 2,3",
                {input(dt, x), ints({0, 1}), ints({big, big}), ints({0, 2}), ints({2, 3})}),
      make_case("[4,5,6] no axes", {input(dt, x), ints({1, 1, 1}), ints({-1, -1, -1})}),
      make_case("opset1 attributes", {input(dt, x)},
                attrs({{"starts", std::vector<int64_t>{1}},
                       {"ends", std::vector<int64_t>{4}},
                       {"axes", std::vector<int64_t>{2}}}),
                1),
      make_case("[1,64,128,130] crop",
                {input(dt, {1, 64, 128, 130}), ints({1, 1}), ints({127, 129}), ints({2, 3})}),
  };
  for (Case& c : out) c.exact = true;
  return out;
}

// -------------------------------------------------------------------------------------- Resize, Upsample
Operand scales(const std::vector<float>& s) {
  return fixed(TensorData::from_vector(DType::Float, {static_cast<int64_t>(s.size())}, s));
}

// cuda.resize_cubic: every coordinate mode, cubic_coeff_a, exclude_outside, up and down by scales and by
// sizes, tf_crop_and_resize sampling outside the input (extrapolation_value), axes, a grid of many blocks.
void append_cubic_cases(std::vector<Case>& out, DType dt) {
  auto cubic = [](std::string coord,
                  std::initializer_list<std::pair<std::string, AttributeValue>> more = {}) {
    Attributes a = attrs(more);
    a.set("mode", std::string("cubic"));
    a.set("coordinate_transformation_mode", coord);
    return a;
  };
  const std::vector<int64_t> x{1, 3, 5, 7};
  out.push_back(make_case("cubic half_pixel x2", {input(dt, x), absent(), scales({1, 1, 2, 2})},
                          cubic("half_pixel"), 13));
  out.push_back(make_case("cubic align_corners a=-0.5 exclude_outside sizes [1,3,9,13]",
                          {input(dt, x), absent(), absent(), ints({1, 3, 9, 13})},
                          cubic("align_corners", {{"cubic_coeff_a", -0.5f}, {"exclude_outside", int64_t{1}}}),
                          13));
  out.push_back(make_case("cubic asymmetric x1.7,x0.6 [2,5,13,22]",
                          {input(dt, {2, 5, 13, 22}), absent(), scales({1, 1, 1.7f, 0.6f})},
                          cubic("asymmetric"), 13));
  out.push_back(make_case("cubic pytorch_half_pixel exclude_outside x0.5 [1,3,8,10]",
                          {input(dt, {1, 3, 8, 10}), absent(), scales({1, 1, 0.5f, 0.5f})},
                          cubic("pytorch_half_pixel", {{"exclude_outside", int64_t{1}}}), 13));
  out.push_back(make_case("cubic half_pixel_symmetric x1.5,x2.5",
                          {input(dt, x), absent(), scales({1, 1, 1.5f, 2.5f})}, cubic("half_pixel_symmetric"),
                          19));
  out.push_back(
      make_case("cubic tf_crop_and_resize roi past the edges sizes [1,3,6,8]",
                {input(dt, x), scales({0, 0, -0.2f, 0.1f, 1, 1, 0.9f, 1.3f}), absent(), ints({1, 3, 6, 8})},
                cubic("tf_crop_and_resize", {{"extrapolation_value", 0.25f}}), 13));
  out.push_back(make_case("cubic axes [2,3] sizes [2,8,33,47]->[2,8,64,100]",
                          {input(dt, {2, 8, 33, 47}), absent(), absent(), ints({64, 100})},
                          cubic("half_pixel", {{"axes", std::vector<int64_t>{2, 3}}}), 18));
}

std::vector<Case> resize_cases(const std::string& op, DType dt) {
  const std::vector<int64_t> x{1, 3, 5, 7};
  auto nearest = [](std::string coord, std::string nmode) {
    return attrs({{"mode", std::string("nearest")},
                  {"coordinate_transformation_mode", coord},
                  {"nearest_mode", nmode}});
  };
  auto linear = [](std::string coord) {
    return attrs({{"mode", std::string("linear")}, {"coordinate_transformation_mode", coord}});
  };
  std::vector<Case> out;
  if (op == "Upsample") {
    out.push_back(exact(make_case("opset9 nearest x2,x3", {input(dt, x), scales({1, 1, 2, 3})},
                                  attrs({{"mode", std::string("nearest")}}), 9)));
    if (dtype_is_float(dt))  // interpolation is for float data
      out.push_back(make_case("opset9 linear x2", {input(dt, x), scales({1, 1, 2, 2})},
                              attrs({{"mode", std::string("linear")}}), 9));
    out.push_back(exact(
        make_case("opset7 attr scales x2,x2", {input(dt, x)},
                  attrs({{"mode", std::string("nearest")}, {"scales", std::vector<float>{1, 1, 2, 2}}}), 7)));
    return out;
  }
  out = {
      exact(make_case("nearest asym floor x2 " + dims_str(x), {input(dt, x), absent(), scales({1, 1, 2, 2})},
                      nearest("asymmetric", "floor"), 13)),
      exact(make_case("nearest asym floor sizes [1,3,10,21]",
                      {input(dt, x), absent(), absent(), ints({1, 3, 10, 21})},
                      nearest("asymmetric", "floor"), 13)),
      exact(make_case("nearest half_pixel x2", {input(dt, x), absent(), scales({1, 1, 2, 2})},
                      nearest("half_pixel", "round_prefer_floor"), 13)),
      exact(make_case("nearest asym floor x0.5 [1,3,8,10]",
                      {input(dt, {1, 3, 8, 10}), absent(), scales({1, 1, 0.5f, 0.5f})},
                      nearest("asymmetric", "floor"), 13)),
      exact(make_case("nearest 3-D asym floor x2",
                      {input(dt, {1, 2, 3, 4, 5}), absent(), scales({1, 1, 2, 2, 2})},
                      nearest("asymmetric", "floor"), 13)),
      exact(make_case("opset11 roi empty nearest x2", {input(dt, x), scales({}), scales({1, 1, 2, 2})},
                      nearest("asymmetric", "floor"), 11)),
      exact(make_case("opset10 nearest x2", {input(dt, x), scales({1, 1, 2, 2})},
                      attrs({{"mode", std::string("nearest")}}), 10)),
      exact(make_case(
          "nearest not_larger sizes [1,3,12,12]", {input(dt, x), absent(), absent(), ints({1, 3, 12, 12})},
          [] {
            Attributes a = attrs(
                {{"mode", std::string("nearest")}, {"keep_aspect_ratio_policy", std::string("not_larger")}});
            return a;
          }(),
          18)),
      exact(make_case("nearest asym floor x2 [1,16,128,128]",
                      {input(dt, {1, 16, 128, 128}), absent(), scales({1, 1, 2, 2})},
                      nearest("asymmetric", "floor"), 13)),
  };
  if (dtype_is_float(dt)) {  // interpolation is for float data
    out.push_back(make_case("linear half_pixel x2", {input(dt, x), absent(), scales({1, 1, 2, 2})},
                            linear("half_pixel"), 13));
    out.push_back(make_case("linear align_corners sizes [1,3,9,13]",
                            {input(dt, x), absent(), absent(), ints({1, 3, 9, 13})}, linear("align_corners"),
                            13));
    out.push_back(make_case("linear pytorch_half_pixel x0.5 [1,3,8,10]",
                            {input(dt, {1, 3, 8, 10}), absent(), scales({1, 1, 0.5f, 0.5f})},
                            linear("pytorch_half_pixel"), 13));
    // cpu.resize_linear: DeepLabV3's head (x8 by sizes, 21 classes), the other coordinate modes, odd
    // non-integer factors both ways; a batch/channel scale it leaves to the reference.
    out.push_back(make_case("linear half_pixel sizes [2,21,65,65]->[2,21,520,520]",
                            {input(dt, {2, 21, 65, 65}), absent(), absent(), ints({2, 21, 520, 520})},
                            linear("half_pixel"), 17));
    out.push_back(make_case("linear asymmetric x1.7,x0.6 [2,5,13,22]",
                            {input(dt, {2, 5, 13, 22}), absent(), scales({1, 1, 1.7f, 0.6f})},
                            linear("asymmetric"), 13));
    out.push_back(make_case("linear align_corners x2.5 [1,4,7,9]",
                            {input(dt, {1, 4, 7, 9}), absent(), scales({1, 1, 2.5f, 2.5f})},
                            linear("align_corners"), 13));
    out.push_back(make_case("linear pytorch_half_pixel sizes [1,3,1,30] from [1,3,6,11]",
                            {input(dt, {1, 3, 6, 11}), absent(), absent(), ints({1, 3, 1, 30})},
                            linear("pytorch_half_pixel"), 13));
    out.push_back(make_case("linear half_pixel channels x2 [1,3,5,7]",
                            {input(dt, x), absent(), scales({1, 2, 2, 2})}, linear("half_pixel"), 13));
    append_cubic_cases(out, dt);
  }
  return out;
}

// ----------------------------------------------------------------------------------------- view ops
std::vector<Case> view_cases(const std::string& op, DType dt) {
  std::vector<Case> out;
  if (op == "Reshape") {
    out.push_back(make_case("[2,3,4] -> [4,-1]", {input(dt, {2, 3, 4}), ints({4, -1})}));
    out.push_back(make_case("[2,3,4] -> [0,12]", {input(dt, {2, 3, 4}), ints({0, 12})}));
    out.push_back(make_case("[1,64,128,130] -> [64,-1]", {input(dt, {1, 64, 128, 130}), ints({64, -1})}));
  } else if (op == "Flatten") {
    out.push_back(make_case("[2,3,4,5] axis 2", {input(dt, {2, 3, 4, 5})}, attrs({{"axis", int64_t{2}}})));
    out.push_back(make_case("[2,3,4] default", {input(dt, {2, 3, 4})}));
  } else if (op == "Squeeze") {
    out.push_back(make_case("[3,1,5,1] axes [1]", {input(dt, {3, 1, 5, 1}), ints({1})}));
    out.push_back(make_case("[3,1,5,1] all", {input(dt, {3, 1, 5, 1})}));
  } else if (op == "Unsqueeze") {
    out.push_back(make_case("[3,5] axes [0,3]", {input(dt, {3, 5}), ints({0, 3})}));
  } else if (op == "Identity") {
    out.push_back(make_case("[2,3,17,19]", {input(dt, {2, 3, 17, 19})}));
    out.push_back(make_case("const [7]", {weight(dt, {7})}));
  } else if (op == "Dropout" && dtype_is_float(dt)) {  // Dropout takes float data
    out.push_back(make_case("[2,3,17,19]", {input(dt, {2, 3, 17, 19})}));
    out.push_back(make_case("ratio 0.3 training false",
                            {input(dt, {4, 9}), scalar(DType::Float, 0.3), scalar(DType::Bool, 0)}));
    // With the mask output (cuda.dropout): the ratio a graph input, or absent.
    out.push_back(make_case("mask [3,17,19]", {input(dt, {3, 17, 19})}));
    out.back().outputs = 2;
    out.push_back(make_case("mask, input ratio, training false",
                            {input(dt, {4, 9}), input(DType::Float, {}), scalar(DType::Bool, 0)}));
    out.back().outputs = 2;
    out.push_back(make_case("ratio 0 training true",
                            {input(dt, {4, 9}), scalar(DType::Float, 0), scalar(DType::Bool, 1)}));
    out.push_back(make_case("mask, ratio 0 training true",
                            {input(dt, {4, 9}), scalar(DType::Float, 0), scalar(DType::Bool, 1)}));
    out.back().outputs = 2;
  }
  for (Case& c : out) c.exact = true;
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"Transpose"}, .dtypes = movement_dtypes(), .cases = transpose_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"DepthToSpace", "SpaceToDepth"},
                  .dtypes = movement_dtypes(),
                  .cases = depth_space_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Concat"}, .dtypes = movement_dtypes(), .cases = concat_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Pad"}, .dtypes = movement_dtypes(), .cases = pad_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Slice"}, .dtypes = movement_dtypes(), .cases = slice_cases});
KILN_SWEEP_CASES(
    {.domain = "", .ops = {"Resize", "Upsample"}, .dtypes = movement_dtypes(), .cases = resize_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"},
                  .dtypes = movement_dtypes(),
                  .cases = view_cases});

}  // namespace
}  // namespace kiln::sweep
