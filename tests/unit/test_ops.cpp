// Operator schemas: shape inference, reference kernels (checked against independent loops and against
// the ONNX backend node tests), and error messages.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>

#include "ops/op.h"
#include "ops/util.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::find_op;
using namespace kiln::test;  // NOLINT: shared test helpers

// ------------------------------------------------------------------------------------------ helpers
std::vector<int64_t> randi(int64_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> d(lo, hi);
  std::vector<int64_t> v(n);
  for (auto& x : v) {
    do x = d(rng());
    while (x == 0);
  }
  return v;
}
// Shape-only node: variables with shapes (and optional constant value inputs).
struct ShapeNode : OneNode {
  ShapeNode(const std::string& op, const std::vector<std::pair<DType, std::optional<Shape>>>& vars,
            const std::vector<TensorData>& consts = {}, size_t outputs = 1, int64_t opset = 18)
      : OneNode(op, {}, outputs, opset) {
    std::vector<Tensor*> ins;
    for (size_t k = 0; k < vars.size(); ++k) ins.push_back(g.add_variable("v" + std::to_string(k), vars[k].first, vars[k].second));
    for (size_t k = 0; k < consts.size(); ++k)
      ins.push_back(consts[k].empty_type() ? nullptr : g.add_constant("c" + std::to_string(k), consts[k]));
    node->set_inputs(ins);
  }
  std::string shape(size_t k = 0) {
    auto ctx = infer();
    return ctx.out[k].shape ? to_string(*ctx.out[k].shape) : "unknown";
  }
};

// ------------------------------------------------------------------------------------------ registry
TEST(OpsRegistry, EveryRequiredOpIsRegistered) {
  for (const char* op :
       {"Constant", "Reshape", "Shape", "Unsqueeze", "Gather", "Concat", "Mul", "Cast", "Conv", "Add",
        "InstanceNormalization", "Elu", "Transpose", "ConstantOfShape", "Slice", "Pad", "Div", "DepthToSpace",
        "Sigmoid", "Resize", "ConvTranspose", "BatchNormalization", "GroupNormalization", "LayerNormalization",
        "Relu", "LeakyRelu", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Softmax", "Gemm", "MatMul", "MaxPool",
        "AveragePool", "GlobalAveragePool", "Upsample", "SpaceToDepth", "Split", "Flatten", "Squeeze", "Identity",
        "Dropout", "Sub", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Floor", "Ceil", "Reciprocal", "Min", "Max",
        "Mod", "Equal", "Less", "Greater", "Not", "And", "Or", "Where", "Expand", "Range", "Size", "ReduceMean",
        "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ArgMax", "Tile"})
    EXPECT_NE(find_op("", op), nullptr) << op;
  EXPECT_EQ(find_op("ai.onnx", "Conv"), find_op("", "Conv"));
  EXPECT_EQ(find_op("", "NoSuchOp"), nullptr);
  EXPECT_NE(find_op("", "Conv")->reference, nullptr);
}

TEST(OpsRegistryDeathTest, DuplicateRegistrationAborts) {
  EXPECT_DEATH(ops::register_op({.op = "Relu", .infer = [](ops::InferContext&) {}}), "registered twice");
}

TEST(OpsRegistry, WrongInputCountNamesTheNode) {
  OneNode n("Add", {F({1}, {1})});
  std::string msg = error_of([&] { n.infer(); });
  EXPECT_NE(msg.find("the_Add"), std::string::npos) << msg;
  EXPECT_NE(msg.find("inputs"), std::string::npos) << msg;
}

// ------------------------------------------------------------------------------------ elementwise
TEST(OpsBinary, FloatArithmeticBroadcasts) {
  auto a = randf(24), b = randf(3);
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Min", "Max"}) {
    OneNode n(op, {F({2, 3, 4}, a), F({3, 1}, b)});
    TensorData out = n.run1();
    EXPECT_EQ(out.dims(), (std::vector<int64_t>{2, 3, 4}));
    std::vector<float> want;
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 4; ++k) {
          float x = a[(i * 3 + j) * 4 + k], y = b[j];
          std::string o = op;
          want.push_back(o == "Add" ? x + y : o == "Sub" ? x - y : o == "Mul" ? x * y : o == "Div" ? x / y
                         : o == "Min" ? std::min(x, y) : std::max(x, y));
        }
    expect_near(floats(out), want);
  }
}

TEST(OpsBinary, IntegerDivTruncatesAndModFollowsFmod) {
  auto a = randi(12, -50, 50), b = randi(12, -7, 7);
  OneNode div("Div", {I64({12}, a), I64({12}, b)});
  OneNode mod("Mod", {I64({12}, a), I64({12}, b)});
  OneNode fmod("Mod", {I64({12}, a), I64({12}, b)});
  fmod.attr("fmod", int64_t{1});
  auto q = div.run1(), m = mod.run1(), f = fmod.run1();
  EXPECT_EQ(q.dtype(), DType::Int64);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(q.data<int64_t>()[i], a[i] / b[i]);
    int64_t r = a[i] % b[i];
    if (r != 0 && ((r < 0) != (b[i] < 0))) r += b[i];  // Python's sign-of-divisor remainder
    EXPECT_EQ(m.data<int64_t>()[i], r) << a[i] << " mod " << b[i];
    EXPECT_EQ(f.data<int64_t>()[i], std::fmod(double(a[i]), double(b[i])));
  }
  EXPECT_NE(error_of([&] { OneNode("Div", {I64({1}, {1}), I64({1}, {0})}).run(); }).find("division by zero"), std::string::npos);
}

TEST(OpsBinary, Float16StaysFloat16) {
  auto a = randf(6), b = randf(6);
  std::vector<uint16_t> ha, hb;
  for (int i = 0; i < 6; ++i) ha.push_back(float_to_half(a[i])), hb.push_back(float_to_half(b[i]));
  OneNode n("Mul", {TensorData::from_vector(DType::Float16, {6}, ha), TensorData::from_vector(DType::Float16, {6}, hb)});
  TensorData out = n.run1();
  ASSERT_EQ(out.dtype(), DType::Float16);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(out.data<uint16_t>()[i], float_to_half(half_to_float(ha[i]) * half_to_float(hb[i])));
}

TEST(OpsBinary, PowComparisonsAndLogic) {
  auto a = randf(8, 0.5f, 2.0f, false);
  auto e = randi(8, -3, 3);
  TensorData p = OneNode("Pow", {F({8}, a), I64({8}, e)}).run1();
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(p.data<float>()[i], std::pow(a[i], float(e[i])), 1e-4);
  auto b = randf(8);
  b[2] = a[2];
  for (const char* op : {"Equal", "Less", "Greater"}) {
    TensorData c = OneNode(op, {F({8}, a), F({8}, b)}).run1();
    ASSERT_EQ(c.dtype(), DType::Bool);
    for (int i = 0; i < 8; ++i) {
      bool want = std::string(op) == "Equal" ? a[i] == b[i] : std::string(op) == "Less" ? a[i] < b[i] : a[i] > b[i];
      EXPECT_EQ(c.data<uint8_t>()[i] != 0, want);
    }
  }
  auto x = TensorData::from_vector<uint8_t>(DType::Bool, {4}, {0, 0, 1, 1});
  auto y = TensorData::from_vector<uint8_t>(DType::Bool, {4}, {0, 1, 0, 1});
  EXPECT_EQ(OneNode("And", {x, y}).run1().to_int64_vector(), (std::vector<int64_t>{0, 0, 0, 1}));
  EXPECT_EQ(OneNode("Or", {x, y}).run1().to_int64_vector(), (std::vector<int64_t>{0, 1, 1, 1}));
  EXPECT_EQ(OneNode("Not", {x}).run1().to_int64_vector(), (std::vector<int64_t>{1, 1, 0, 0}));
  auto mx = OneNode("Max", {I64({3}, {1, 9, 3}), I64({1}, {4}), I64({3}, {2, 2, 8})}).run1();  // variadic
  EXPECT_EQ(mx.to_int64_vector(), (std::vector<int64_t>{4, 9, 8}));
}

TEST(OpsUnary, MatchesStdMath) {
  auto a = randf(10);
  auto pos = randf(10, 0.1f, 3.0f, false);
  struct Case { const char* op; bool positive; std::function<double(double)> f; };
  const std::vector<Case> cases = {
      {"Neg", false, [](double x) { return -x; }}, {"Abs", false, [](double x) { return std::fabs(x); }},
      {"Sqrt", true, [](double x) { return std::sqrt(x); }}, {"Exp", false, [](double x) { return std::exp(x); }},
      {"Log", true, [](double x) { return std::log(x); }}, {"Floor", false, [](double x) { return std::floor(x); }},
      {"Ceil", false, [](double x) { return std::ceil(x); }}, {"Reciprocal", false, [](double x) { return 1 / x; }},
      {"Relu", false, [](double x) { return x > 0 ? x : 0; }}, {"Sigmoid", false, [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"Tanh", false, [](double x) { return std::tanh(x); }}};
  for (const auto& c : cases) {
    const auto& in = c.positive ? pos : a;
    TensorData out = OneNode(c.op, {F({2, 5}, in)}).run1();
    std::vector<float> want;
    for (float x : in) want.push_back(static_cast<float>(c.f(x)));
    SCOPED_TRACE(c.op);
    expect_near(floats(out), want);
  }
  OneNode elu("Elu", {F({10}, a)});
  elu.attr("alpha", 0.7f);
  OneNode leaky("LeakyRelu", {F({10}, a)});
  leaky.attr("alpha", 0.2f);
  std::vector<float> we, wl;
  for (float x : a) we.push_back(x >= 0 ? x : 0.7f * (std::exp(x) - 1)), wl.push_back(x >= 0 ? x : 0.2f * x);
  expect_near(floats(elu.run1()), we);
  expect_near(floats(leaky.run1()), wl);
  // Integer Neg/Abs/Relu stay exact in int64.
  const int64_t big = (int64_t{1} << 60) + 1;
  EXPECT_EQ(OneNode("Neg", {I64({2}, {big, -3})}).run1().to_int64_vector(), (std::vector<int64_t>{-big, 3}));
  EXPECT_EQ(OneNode("Relu", {I64({2}, {big, -3})}).run1().to_int64_vector(), (std::vector<int64_t>{big, 0}));
  EXPECT_NE(error_of([&] { OneNode("Sqrt", {I64({1}, {4})}).run(); }).find("int64"), std::string::npos);
}

TEST(OpsUnary, ClipBothForms) {
  auto a = randf(10);
  OneNode c11("Clip", {F({10}, a), TensorData::scalar_float(-1.0f), TensorData::scalar_float(0.5f)}, 1, 13);
  OneNode c6("Clip", {F({10}, a)}, 1, 6);
  c6.attr("min", -1.0f).attr("max", 0.5f);
  std::vector<float> want;
  for (float x : a) want.push_back(std::min(std::max(x, -1.0f), 0.5f));
  expect_near(floats(c11.run1()), want);
  expect_near(floats(c6.run1()), want);
}

// --------------------------------------------------------------------------------- data movement
TEST(OpsGather, AnyAxisAndNegativeIndices) {
  auto a = randf(2 * 5 * 3);
  std::vector<int64_t> idx = {-1, 0, 3, -5};
  OneNode n("Gather", {F({2, 5, 3}, a), I64({2, 2}, idx)});
  n.attr("axis", int64_t{1});
  TensorData out = n.run1();
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{2, 2, 2, 3}));
  std::vector<float> want;
  for (int i = 0; i < 2; ++i)
    for (int64_t j : idx)
      for (int k = 0; k < 3; ++k) want.push_back(a[(i * 5 + (j < 0 ? j + 5 : j)) * 3 + k]);
  expect_near(floats(out), want, 0);
  // Scalar index on the shape vector (the PyTorch Shape→Gather pattern) gives a scalar.
  TensorData s = OneNode("Gather", {I64({7, 8, 9}), TensorData::scalar_int64(-2)}).run1();
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.as_int64(0), 8);
  EXPECT_NE(error_of([&] { OneNode("Gather", {I64({7}), TensorData::scalar_int64(1)}).run(); }).find("out of range"), std::string::npos);
}

TEST(OpsConcatSplit, ConcatAndSplitAreInverse) {
  auto a = randf(2 * 3 * 2), b = randf(2 * 1 * 2);
  OneNode c("Concat", {F({2, 3, 2}, a), F({2, 1, 2}, b)});
  c.attr("axis", int64_t{-2});
  TensorData out = c.run1();
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{2, 4, 2}));
  std::vector<float> want;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) want.push_back(a[(i * 3 + j) * 2 + k]);
    for (int k = 0; k < 2; ++k) want.push_back(b[i * 2 + k]);
  }
  expect_near(floats(out), want, 0);
  // Split-13 with sizes as input, and Split-11 with the attribute.
  OneNode s13("Split", {out, I64({3, 1})}, 2, 13);
  s13.attr("axis", int64_t{1});
  OneNode s11("Split", {out}, 2, 11);
  s11.attr("axis", int64_t{1}).attr("split", std::vector<int64_t>{3, 1});
  for (auto* s : {&s13, &s11}) {
    auto parts = s->run();
    EXPECT_EQ(floats(parts[0]), a);
    EXPECT_EQ(floats(parts[1]), b);
  }
  OneNode even("Split", {F({6}, randf(6))}, 3, 13);
  EXPECT_EQ(even.run()[2].dims(), (std::vector<int64_t>{2}));
  OneNode n18("Split", {F({7}, randf(7))}, 3, 18);
  n18.attr("num_outputs", int64_t{3});
  auto p18 = n18.run();
  EXPECT_EQ(p18[0].numel() + p18[1].numel() + p18[2].numel(), 7);
  EXPECT_EQ(p18[2].numel(), 1);  // ceil(7/3) = 3, 3, remainder 1
}

TEST(OpsSlice, StepsClampingAndBothForms) {
  auto a = randf(5 * 6);
  const int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  // rows 4..0 step -2 (start clamps from 100), columns -4..end
  OneNode n("Slice", {F({5, 6}, a), I64({100, -4}), I64({kMin, kMax}), I64({0, 1}), I64({-2, 1})});
  TensorData out = n.run1();
  std::vector<float> want;
  for (int i = 4; i >= 0; i -= 2)
    for (int j = 2; j < 6; ++j) want.push_back(a[i * 6 + j]);
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{3, 4}));
  expect_near(floats(out), want, 0);
  // Opset 9: attributes, steps 1.
  OneNode old("Slice", {F({5, 6}, a)}, 1, 9);
  old.attr("starts", std::vector<int64_t>{1}).attr("ends", std::vector<int64_t>{-1}).attr("axes", std::vector<int64_t>{1});
  want.clear();
  for (int i = 0; i < 5; ++i)
    for (int j = 1; j < 5; ++j) want.push_back(a[i * 6 + j]);
  expect_near(floats(old.run1()), want, 0);
  // Empty result when start is past the end.
  EXPECT_EQ(OneNode("Slice", {F({5, 6}, a), I64({7}), I64({9}), I64({0})}).run1().numel(), 0);
}

TEST(OpsTranspose, PermutesLikeALoop) {
  auto a = randf(2 * 3 * 4);
  OneNode n("Transpose", {F({2, 3, 4}, a)});
  n.attr("perm", std::vector<int64_t>{2, 0, 1});
  TensorData out = n.run1();
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{4, 2, 3}));
  std::vector<float> want;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) want.push_back(a[(i * 3 + j) * 4 + k]);
  expect_near(floats(out), want, 0);
  EXPECT_EQ(OneNode("Transpose", {F({2, 3, 4}, a)}).run1().dims(), (std::vector<int64_t>{4, 3, 2}));  // default reverses
}

TEST(OpsReshape, ViewsKeepValues) {
  auto a = randf(24);
  TensorData r = OneNode("Reshape", {F({2, 3, 4}, a), I64({0, -1, 2})}).run1();
  EXPECT_EQ(r.dims(), (std::vector<int64_t>{2, 6, 2}));
  EXPECT_EQ(floats(r), a);
  OneNode fl("Flatten", {F({2, 3, 4}, a)});
  fl.attr("axis", int64_t{2});
  EXPECT_EQ(fl.run1().dims(), (std::vector<int64_t>{6, 4}));
  EXPECT_EQ(OneNode("Squeeze", {F({1, 24, 1}, a)}).run1().dims(), (std::vector<int64_t>{24}));
  EXPECT_EQ(OneNode("Squeeze", {F({1, 24, 1}, a), I64({-1})}).run1().dims(), (std::vector<int64_t>{1, 24}));
  OneNode un11("Unsqueeze", {F({24}, a)}, 1, 11);
  un11.attr("axes", std::vector<int64_t>{0, -1});
  EXPECT_EQ(un11.run1().dims(), (std::vector<int64_t>{1, 24, 1}));
  EXPECT_EQ(OneNode("Unsqueeze", {TensorData::scalar_int64(3), I64({0})}).run1().dims(), (std::vector<int64_t>{1}));
  OneNode allow("Reshape", {F({0, 4}, {}), I64({4, 0})});
  allow.attr("allowzero", int64_t{1});
  EXPECT_EQ(allow.run1().dims(), (std::vector<int64_t>{4, 0}));
}

TEST(OpsCast, AllDirections) {
  std::vector<float> v = {-2.7f, -0.5f, 0.0f, 1.5f, 3.9f, 100.25f};
  auto cast = [&](DType to, const TensorData& x) {
    OneNode n("Cast", {x});
    n.attr("to", static_cast<int64_t>(to));
    return n.run1();
  };
  TensorData x = F({6}, v);
  TensorData i32 = cast(DType::Int32, x);
  ASSERT_EQ(i32.dtype(), DType::Int32);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(i32.data<int32_t>()[i], static_cast<int32_t>(std::trunc(v[i])));
  TensorData b = cast(DType::Bool, x);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(b.data<uint8_t>()[i], v[i] != 0 ? 1 : 0);
  TensorData h = cast(DType::Float16, x);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(h.data<uint16_t>()[i], float_to_half(v[i]));
  TensorData bf = cast(DType::BFloat16, x);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(bf.data<uint16_t>()[i], float_to_bfloat16(v[i]));
  TensorData back = cast(DType::Float, h);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back.data<float>()[i], half_to_float(float_to_half(v[i])));
  TensorData d = cast(DType::Double, I64({3}, {(int64_t{1} << 40) + 3, -7, 0}));
  EXPECT_EQ(d.data<double>()[0], double((int64_t{1} << 40) + 3));
  TensorData u8 = cast(DType::UInt8, I64({2}, {255, 7}));
  EXPECT_EQ(u8.to_int64_vector(), (std::vector<int64_t>{255, 7}));
  TensorData s(DType::String, {1});
  EXPECT_NE(error_of([&] { cast(DType::Float, s); }).find("string"), std::string::npos);
}

TEST(OpsConstant, ConstantConstantOfShapeRangeShapeSize) {
  OneNode c("Constant", {});
  c.attr("value", F({2}, {1.5f, 2.5f}));
  EXPECT_EQ(floats(c.run1()), (std::vector<float>{1.5f, 2.5f}));
  auto ci = c.infer();
  ASSERT_TRUE(ci.out[0].value.has_value());
  OneNode cos("ConstantOfShape", {I64({2, 3})});
  cos.attr("value", TensorData::from_vector<int64_t>(DType::Int64, {1}, {7}));
  TensorData z = cos.run1();
  EXPECT_EQ(z.dtype(), DType::Int64);
  EXPECT_EQ(z.to_int64_vector(), std::vector<int64_t>(6, 7));
  EXPECT_EQ(OneNode("ConstantOfShape", {I64({2})}).run1().dtype(), DType::Float);
  TensorData r = OneNode("Range", {TensorData::scalar_int64(10), TensorData::scalar_int64(-3), TensorData::scalar_int64(-4)}).run1();
  EXPECT_EQ(r.to_int64_vector(), (std::vector<int64_t>{10, 6, 2, -2}));
  TensorData rf = OneNode("Range", {TensorData::scalar_float(0.5f), TensorData::scalar_float(2.0f), TensorData::scalar_float(0.4f)}).run1();
  expect_near(floats(rf), {0.5f, 0.9f, 1.3f, 1.7f});
  EXPECT_EQ(OneNode("Shape", {F({2, 3, 4}, randf(24))}).run1().to_int64_vector(), (std::vector<int64_t>{2, 3, 4}));
  OneNode sh15("Shape", {F({2, 3, 4}, randf(24))});
  sh15.attr("start", int64_t{-2}).attr("end", int64_t{100});
  EXPECT_EQ(sh15.run1().to_int64_vector(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(OneNode("Size", {F({2, 3, 4}, randf(24))}).run1().as_int64(0), 24);
}

TEST(OpsBroadcastCopy, ExpandTileWhere) {
  auto a = randf(3);
  TensorData e = OneNode("Expand", {F({3, 1}, a), I64({2, 1, 4})}).run1();
  EXPECT_EQ(e.dims(), (std::vector<int64_t>{2, 3, 4}));
  std::vector<float> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) want.push_back(a[j]);
  expect_near(floats(e), want, 0);
  TensorData t = OneNode("Tile", {F({1, 3}, a), I64({2, 2})}).run1();
  EXPECT_EQ(t.dims(), (std::vector<int64_t>{2, 6}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 6; ++j) EXPECT_EQ(t.data<float>()[i * 6 + j], a[j % 3]);
  auto x = randf(6), y = randf(2);
  auto cond = TensorData::from_vector<uint8_t>(DType::Bool, {3, 1}, {1, 0, 1});
  TensorData w = OneNode("Where", {cond, F({3, 2}, x), F({2}, y)}).run1();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) EXPECT_EQ(w.data<float>()[i * 2 + j], i != 1 ? x[i * 2 + j] : y[j]);
}

TEST(OpsReduce, AxesAttributeOrInputKeepdims) {
  auto a = randi(24, -5, 5);
  for (const char* op : {"ReduceSum", "ReduceProd", "ReduceMin", "ReduceMax"}) {
    OneNode in18(op, {I64({2, 3, 4}, a), I64({0, -1})});
    OneNode at11(op, {I64({2, 3, 4}, a)}, 1, 11);
    at11.attr("axes", std::vector<int64_t>{0, 2}).attr("keepdims", int64_t{0});
    std::vector<int64_t> want;
    for (int j = 0; j < 3; ++j) {
      std::string o = op;
      int64_t acc = o == "ReduceProd" ? 1 : o == "ReduceSum" ? 0 : a[j * 4];
      for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) {
          int64_t v = a[(i * 3 + j) * 4 + k];
          acc = o == "ReduceSum" ? acc + v : o == "ReduceProd" ? acc * v : o == "ReduceMin" ? std::min(acc, v) : std::max(acc, v);
        }
      want.push_back(acc);
    }
    TensorData k = in18.run1(), nk = at11.run1();
    EXPECT_EQ(k.dims(), (std::vector<int64_t>{1, 3, 1})) << op;
    EXPECT_EQ(nk.dims(), (std::vector<int64_t>{3})) << op;
    EXPECT_EQ(k.to_int64_vector(), want) << op;
    EXPECT_EQ(nk.to_int64_vector(), want) << op;
  }
  EXPECT_EQ(OneNode("ReduceSum", {I64({3}, {1, 2, 3})}).run1().to_int64_vector(), (std::vector<int64_t>{6}));
}

TEST(OpsPad, ModesAndForms) {
  auto a = randf(3 * 4);
  const std::vector<int64_t> pads = {1, 2, 2, 0};  // begins (rows, cols), ends
  for (const char* mode : {"constant", "reflect", "edge"}) {
    OneNode n("Pad", {F({3, 4}, a), I64(pads), TensorData::scalar_float(9.0f)});
    n.attr("mode", std::string(mode));
    OneNode old("Pad", {F({3, 4}, a)}, 1, 2);
    old.attr("mode", std::string(mode)).attr("pads", pads).attr("value", 9.0f);
    std::vector<float> want;
    for (int i = -1; i < 5; ++i)
      for (int j = -2; j < 4; ++j) {
        int ii = i, jj = j;
        std::string m = mode;
        if (m == "edge") ii = std::clamp(ii, 0, 2), jj = std::clamp(jj, 0, 3);
        if (m == "reflect") ii = ii < 0 ? -ii : ii > 2 ? 4 - ii : ii, jj = jj < 0 ? -jj : jj > 3 ? 6 - jj : jj;
        want.push_back(ii < 0 || ii > 2 || jj < 0 || jj > 3 ? 9.0f : a[ii * 4 + jj]);
      }
    SCOPED_TRACE(mode);
    TensorData out = n.run1();
    EXPECT_EQ(out.dims(), (std::vector<int64_t>{6, 6}));
    expect_near(floats(out), want, 0);
    expect_near(floats(old.run1()), want, 0);
  }
  // Negative pads crop; axes input (opset 18).
  TensorData crop = OneNode("Pad", {F({3, 4}, a), I64({-1, 1}), TensorData(), I64({1})}).run1();
  EXPECT_EQ(crop.dims(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(crop.data<float>()[0], a[1]);
  EXPECT_EQ(crop.data<float>()[3], 0.0f);
}

TEST(OpsDepthSpace, DcrCrdAndInverse) {
  const int64_t n = 1, c = 8, h = 2, w = 3, b = 2;
  auto a = randf(n * c * h * w);
  for (const char* mode : {"DCR", "CRD"}) {
    OneNode d2s("DepthToSpace", {F({n, c, h, w}, a)});
    d2s.attr("blocksize", b).attr("mode", std::string(mode));
    TensorData out = d2s.run1();
    ASSERT_EQ(out.dims(), (std::vector<int64_t>{1, 2, 4, 6}));
    const int64_t co = c / (b * b);
    // The spec's reshape → transpose → reshape, written as index arithmetic.
    for (int64_t oc = 0; oc < co; ++oc)
      for (int64_t y = 0; y < h * b; ++y)
        for (int64_t x = 0; x < w * b; ++x) {
          const int64_t by = y % b, bx = x % b;
          const int64_t ic = std::string(mode) == "DCR" ? (by * b + bx) * co + oc : oc * b * b + by * b + bx;
          EXPECT_EQ(out.data<float>()[(oc * h * b + y) * w * b + x], a[(ic * h + y / b) * w + x / b]);
        }
    if (std::string(mode) == "DCR") {
      OneNode s2d("SpaceToDepth", {out});
      s2d.attr("blocksize", b);
      EXPECT_EQ(floats(s2d.run1()), a);
    }
  }
}

// ---------------------------------------------------------------------------------- shape inference
const Dim N = Dim::symbolic("N");

TEST(OpsInfer, Conv) {
  ShapeNode c3("Conv", {{DType::Float, Shape{N, 4, 8, 16, 16}}, {DType::Float, Shape{6, 4, 3, 3, 3}}});
  c3.attr("pads", std::vector<int64_t>{1, 1, 1, 1, 1, 1});
  EXPECT_EQ(c3.shape(), "Nx6x8x16x16");
  ShapeNode s("Conv", {{DType::Float, Shape{1, 4, 15, 20}}, {DType::Float, Shape{8, 2, 3, 3}}});
  s.attr("group", int64_t{2}).attr("strides", std::vector<int64_t>{2, 2}).attr("dilations", std::vector<int64_t>{2, 1});
  EXPECT_EQ(s.shape(), "1x8x6x9");  // (15-5)/2+1, (20-3)/2+1
  s.attr("auto_pad", std::string("SAME_UPPER"));
  EXPECT_EQ(s.shape(), "1x8x8x10");
  ShapeNode c1("Conv", {{DType::Float, Shape{2, 3, 10}}, {DType::Float, Shape{5, 3, 4}}});
  c1.attr("auto_pad", std::string("VALID"));
  EXPECT_EQ(c1.shape(), "2x5x7");
  ShapeNode bad("Conv", {{DType::Float, Shape{1, 3, 8, 8}}, {DType::Float, Shape{8, 4, 3, 3}}});
  std::string msg = error_of([&] { bad.infer(); });
  EXPECT_NE(msg.find("the_Conv"), std::string::npos) << msg;
  EXPECT_NE(msg.find("channels"), std::string::npos) << msg;
  ShapeNode ct("ConvTranspose", {{DType::Float, Shape{N, 8, 5, 5}}, {DType::Float, Shape{8, 3, 3, 3}}});
  ct.attr("strides", std::vector<int64_t>{2, 2}).attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .attr("output_padding", std::vector<int64_t>{1, 1}).attr("group", int64_t{1});
  EXPECT_EQ(ct.shape(), "Nx3x10x10");
  ct.attr("output_shape", std::vector<int64_t>{9, 9});
  EXPECT_EQ(ct.shape(), "Nx3x9x9");
}

TEST(OpsInfer, PoolsAndNorms) {
  ShapeNode mp("MaxPool", {{DType::Float, Shape{N, 3, 32, 31}}}, {}, 2);
  mp.attr("kernel_shape", std::vector<int64_t>{3, 3}).attr("strides", std::vector<int64_t>{2, 2});
  EXPECT_EQ(mp.shape(), "Nx3x15x15");
  mp.attr("ceil_mode", int64_t{1});
  EXPECT_EQ(mp.shape(), "Nx3x16x15");
  EXPECT_EQ(mp.infer().out[1].dtype, DType::Int64);
  ShapeNode ap("AveragePool", {{DType::Float, Shape{1, 3, 5, 5}}});
  ap.attr("kernel_shape", std::vector<int64_t>{2, 2}).attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .attr("strides", std::vector<int64_t>{2, 2}).attr("ceil_mode", int64_t{1});
  EXPECT_EQ(ap.shape(), "1x3x3x3");  // a 4th window would start inside the end padding
  EXPECT_EQ(ShapeNode("GlobalAveragePool", {{DType::Float, Shape{N, 7, 5, 5}}}).shape(), "Nx7x1x1");
  ShapeNode in("InstanceNormalization", {{DType::Float, Shape{N, 4, 8, 8, 8}}, {DType::Float, Shape{4}}, {DType::Float, Shape{4}}});
  EXPECT_EQ(in.shape(), "Nx4x8x8x8");
  ShapeNode badin("InstanceNormalization", {{DType::Float, Shape{N, 4, 8, 8}}, {DType::Float, Shape{5}}, {DType::Float, Shape{4}}});
  EXPECT_NE(error_of([&] { badin.infer(); }).find("the_InstanceNormalization"), std::string::npos);
  ShapeNode bn("BatchNormalization", {{DType::Float, Shape{N, 4, 3}}, {DType::Float, Shape{4}}, {DType::Float, Shape{4}},
                                      {DType::Float, Shape{4}}, {DType::Float, Shape{4}}});
  EXPECT_EQ(bn.shape(), "Nx4x3");
  ShapeNode gn("GroupNormalization", {{DType::Float, Shape{N, 6, 4, 4}}, {DType::Float, Shape{3}}, {DType::Float, Shape{3}}});
  gn.attr("num_groups", int64_t{3});
  EXPECT_EQ(gn.shape(), "Nx6x4x4");
  gn.attr("num_groups", int64_t{4});
  EXPECT_NE(error_of([&] { gn.infer(); }).find("num_groups"), std::string::npos);
  ShapeNode ln("LayerNormalization", {{DType::Float16, Shape{N, 5, 8}}, {DType::Float16, Shape{8}}}, {}, 3);
  EXPECT_EQ(ln.shape(0), "Nx5x8");
  EXPECT_EQ(ln.shape(1), "Nx5x1");
  EXPECT_EQ(ln.infer().out[1].dtype, DType::Float);
  ShapeNode sm("Softmax", {{DType::Float, Shape{N, 10}}});
  sm.attr("axis", int64_t{2});
  std::string msg = error_of([&] { sm.infer(); });
  EXPECT_NE(msg.find("the_Softmax"), std::string::npos) << msg;
  EXPECT_NE(msg.find("axis 2"), std::string::npos) << msg;
}

TEST(OpsInfer, ResizeAndUpsampleForms) {
  // Resize-10: (X, scales).
  ShapeNode r10("Resize", {{DType::Float, Shape{N, 3, 5, 7}}}, {F({4}, {1, 1, 2, 2})}, 1, 10);
  EXPECT_EQ(r10.shape(), "Nx3x10x14");
  // Resize-11+: (X, roi, scales) — the PackNet export form — and (X, roi, empty scales, sizes).
  ShapeNode r11("Resize", {{DType::Float, Shape{N, 3, 5, 7}}}, {F({0}, {}), F({4}, {1, 1, 1.5f, 2})}, 1, 11);
  EXPECT_EQ(r11.shape(), "Nx3x7x14");
  ShapeNode rs("Resize", {{DType::Float, Shape{1, 3, 5, 7}}}, {F({0}, {}), F({0}, {}), I64({1, 3, 9, 4})}, 1, 13);
  EXPECT_EQ(rs.shape(), "1x3x9x4");
  ShapeNode r13("Resize", {{DType::Float, Shape{1, 3, 5, 7}}}, {TensorData(), F({4}, {1, 1, 0.5f, 0.5f})}, 1, 13);
  EXPECT_EQ(r13.shape(), "1x3x2x3");
  ShapeNode r18("Resize", {{DType::Float, Shape{1, 3, 10, 20}}}, {TensorData(), TensorData(), I64({8, 8})}, 1, 18);
  r18.attr("axes", std::vector<int64_t>{2, 3}).attr("keep_aspect_ratio_policy", std::string("not_larger"));
  EXPECT_EQ(r18.shape(), "1x3x4x8");
  ShapeNode u7("Upsample", {{DType::Float, Shape{N, 2, 4, 4}}}, {}, 1, 7);
  u7.attr("scales", std::vector<float>{1, 1, 2, 3});
  EXPECT_EQ(u7.shape(), "Nx2x8x12");
  ShapeNode u9("Upsample", {{DType::Float, Shape{N, 2, 4, 4}}}, {F({4}, {1, 1, 2, 2})}, 1, 9);
  EXPECT_EQ(u9.shape(), "Nx2x8x8");
  // Scales known only at run time: rank still known.
  ShapeNode unk("Resize", {{DType::Float, Shape{1, 3, 5, 7}}, {DType::Float, Shape{0}}, {DType::Float, Shape{4}}}, {}, 1, 11);
  EXPECT_EQ(unk.shape(), "?x?x?x?");
}

TEST(OpsInfer, PackNetPatterns) {
  // Pad with pads from a value, reflect mode.
  ShapeNode pad("Pad", {{DType::Float, Shape{N, 3, 8, 9}}}, {I64({0, 0, 1, 2, 0, 0, 3, 4})}, 1, 11);
  pad.attr("mode", std::string("reflect"));
  EXPECT_EQ(pad.shape(), "Nx3x12x15");
  ShapeNode pad2("Pad", {{DType::Float, Shape{N, 3, 8, 9}}}, {}, 1, 2);
  pad2.attr("pads", std::vector<int64_t>{0, 0, 1, 1, 0, 0, 1, 1});
  EXPECT_EQ(pad2.shape(), "Nx3x10x11");
  ShapeNode d2s("DepthToSpace", {{DType::Float, Shape{N, 12, 4, 5}}});
  d2s.attr("blocksize", int64_t{2});
  EXPECT_EQ(d2s.shape(), "Nx3x8x10");
  // Slice with step -1 over [4,2], then Transpose → [2,4] (the pads reversal in PyTorch's Pad export).
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  ShapeNode sl("Slice", {{DType::Int64, Shape{4, 2}}}, {I64({-1}), I64({kMin}), I64({0}), I64({-1})});
  EXPECT_EQ(sl.shape(), "4x2");
  ShapeNode tr("Transpose", {{DType::Int64, *sl.infer().out[0].shape}});
  tr.attr("perm", std::vector<int64_t>{1, 0});
  EXPECT_EQ(tr.shape(), "2x4");
  // Symbolic batch passes through Slice over other axes and through elementwise ops.
  ShapeNode sl2("Slice", {{DType::Float, Shape{N, 8, 6}}}, {I64({1}), I64({-1}), I64({2})});
  EXPECT_EQ(sl2.shape(), "Nx8x4");
  ShapeNode add("Add", {{DType::Float, Shape{N, 3, 1}}, {DType::Float, Shape{4}}});
  EXPECT_EQ(add.shape(), "Nx3x4");
  ShapeNode badd("Add", {{DType::Float, Shape{N, 3}}, {DType::Float, Shape{4}}});
  EXPECT_NE(error_of([&] { badd.infer(); }).find("broadcast"), std::string::npos);
  ShapeNode cat("Concat", {{DType::Float, Shape{N, 3, 4}}, {DType::Float, Shape{N, 5, 4}}});
  cat.attr("axis", int64_t{1});
  EXPECT_EQ(cat.shape(), "Nx8x4");
  ShapeNode mul("Mul", {{DType::Float, Shape{N, 3, 4}}, {DType::Float, Shape{}}});
  EXPECT_EQ(mul.shape(), "Nx3x4");
  ShapeNode el("Elu", {{DType::Float, Shape{N, 3}}});
  EXPECT_EQ(el.shape(), "Nx3");
  ShapeNode cast("Cast", {{DType::Float, Shape{N}}});
  cast.attr("to", int64_t{7});
  EXPECT_EQ(cast.infer().out[0].dtype, DType::Int64);
  ShapeNode un("Unsqueeze", {{DType::Int64, Shape{}}}, {I64({0})});
  EXPECT_EQ(un.shape(), "1");
  ShapeNode ga("Gather", {{DType::Int64, Shape{4}}}, {TensorData::scalar_int64(0)});
  EXPECT_EQ(ga.infer().out[0].shape->size(), 0u);
}

TEST(OpsInfer, ShapeValuesAndReshape) {
  ShapeNode st("Shape", {{DType::Float, Shape{2, 3, 4}}});
  auto ctx = st.infer();
  ASSERT_TRUE(ctx.out[0].value.has_value());
  EXPECT_EQ(ctx.out[0].value->to_int64_vector(), (std::vector<int64_t>{2, 3, 4}));
  ShapeNode sym("Shape", {{DType::Float, Shape{N, 3, 4}}});
  auto sctx = sym.infer();
  EXPECT_FALSE(sctx.out[0].value.has_value());
  EXPECT_EQ(to_string(*sctx.out[0].shape), "3");
  sym.attr("start", int64_t{1});  // opset 15: the static tail is known
  EXPECT_EQ(sym.infer().out[0].value->to_int64_vector(), (std::vector<int64_t>{3, 4}));
  ShapeNode size("Size", {{DType::Float, Shape{2, 3, 4}}});
  EXPECT_EQ(size.infer().out[0].value->as_int64(0), 24);

  EXPECT_EQ(ShapeNode("Reshape", {{DType::Float, Shape{2, 3, 4}}}, {I64({0, -1})}).shape(), "2x12");
  EXPECT_EQ(ShapeNode("Reshape", {{DType::Float, Shape{N, 3, 4}}}, {I64({0, 12})}).shape(), "Nx12");
  EXPECT_EQ(ShapeNode("Reshape", {{DType::Float, Shape{N, 3, 4}}, {DType::Int64, Shape{3}}}).shape(), "?x?x?");
  ShapeNode two("Reshape", {{DType::Float, Shape{2, 3, 4}}}, {I64({-1, -1})});
  std::string msg = error_of([&] { two.infer(); });
  EXPECT_NE(msg.find("the_Reshape"), std::string::npos) << msg;
  EXPECT_NE(msg.find("-1"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { ShapeNode("Reshape", {{DType::Float, Shape{2, 3, 4}}}, {I64({5, -1})}).infer(); }).find("cannot reshape"),
            std::string::npos);
  EXPECT_EQ(ShapeNode("Flatten", {{DType::Float, Shape{N, 3, 4}}}).shape(), "Nx12");
  ShapeNode gbad("Gather", {{DType::Float, Shape{2, 3}}}, {I64({0})});
  gbad.attr("axis", int64_t{2});
  msg = error_of([&] { gbad.infer(); });
  EXPECT_NE(msg.find("the_Gather"), std::string::npos) << msg;
  EXPECT_NE(msg.find("axis 2 is out of range for rank 2"), std::string::npos) << msg;
  ShapeNode sq("Squeeze", {{DType::Float, Shape{N, 1, 4}}}, {I64({1})});
  EXPECT_EQ(sq.shape(), "Nx4");
  ShapeNode sqbad("Squeeze", {{DType::Float, Shape{N, 2, 4}}}, {I64({1})});
  EXPECT_NE(error_of([&] { sqbad.infer(); }).find("cannot squeeze"), std::string::npos);
}

TEST(OpsInfer, MatMulGemmExpandRangeReduceSplit) {
  EXPECT_EQ(ShapeNode("MatMul", {{DType::Float, Shape{N, 1, 3, 4}}, {DType::Float, Shape{5, 4, 6}}}).shape(), "Nx5x3x6");
  EXPECT_EQ(ShapeNode("MatMul", {{DType::Float, Shape{4}}, {DType::Float, Shape{N, 4, 6}}}).shape(), "Nx6");
  EXPECT_NE(error_of([&] { ShapeNode("MatMul", {{DType::Float, Shape{3, 4}}, {DType::Float, Shape{5, 6}}}).infer(); })
                .find("inner"), std::string::npos);
  ShapeNode gemm("Gemm", {{DType::Float, Shape{N, 16}}, {DType::Float, Shape{10, 16}}, {DType::Float, Shape{10}}});
  gemm.attr("transB", int64_t{1});
  EXPECT_EQ(gemm.shape(), "Nx10");
  EXPECT_EQ(ShapeNode("Expand", {{DType::Float, Shape{N, 1, 4}}}, {I64({3, 1})}).shape(), "Nx3x4");
  ShapeNode rg("Range", {}, {TensorData::scalar_int64(0), TensorData::scalar_int64(10), TensorData::scalar_int64(3)});
  EXPECT_EQ(rg.shape(), "4");
  ShapeNode rm("ReduceMean", {{DType::Float, Shape{N, 3, 4, 5}}}, {}, 1, 13);
  rm.attr("axes", std::vector<int64_t>{2, 3});
  EXPECT_EQ(rm.shape(), "Nx3x1x1");
  ShapeNode am("ArgMax", {{DType::Float, Shape{N, 3, 4}}});
  am.attr("axis", int64_t{-1}).attr("keepdims", int64_t{0});
  EXPECT_EQ(am.shape(), "Nx3");
  EXPECT_EQ(am.infer().out[0].dtype, DType::Int64);
  ShapeNode sp("Split", {{DType::Float, Shape{N, 6, 4}}}, {I64({2, 4})}, 2, 13);
  sp.attr("axis", int64_t{1});
  EXPECT_EQ(sp.shape(1), "Nx4x4");
  ShapeNode where("Where", {{DType::Bool, Shape{N, 1}}, {DType::Float, Shape{3}}, {DType::Float, Shape{1}}});
  EXPECT_EQ(where.shape(), "Nx3");
  ShapeNode dr("Dropout", {{DType::Float, Shape{N, 3}}}, {}, 2);
  EXPECT_EQ(dr.shape(1), "Nx3");
  EXPECT_EQ(dr.infer().out[1].dtype, DType::Bool);
}

}  // namespace
}  // namespace kiln
