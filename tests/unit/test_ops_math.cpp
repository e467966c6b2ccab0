// Reference kernels of the math, loss and window ops (loss.cpp, math_unary.cpp, ...): small hand-derived
// cases and the error paths the ONNX node tests do not reach. Expected values are computed here, never by the
// kernel.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ops/op.h"
#include "ops/util.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

TEST(OpsMathLoss, NllWeightedMeanAndIgnoreIndex) {
  // N = 2, C = 3: loss = -w[t] * x[n, t] = [-0.5 * -3, -0.2 * -0.5] = [1.5, 0.1]; mean divides by w[2] +
  // w[0].
  const TensorData x = F({2, 3}, {-1, -2, -3, -0.5f, -1.5f, -2.5f}), t = I64({2}, {2, 0}),
                   w = F({3}, {0.2f, 0.3f, 0.5f});
  OneNode none("NegativeLogLikelihoodLoss", {x, t, w});
  none.attr("reduction", std::string("none"));
  expect_near(floats(none.run1()), {1.5f, 0.1f});
  OneNode mean("NegativeLogLikelihoodLoss", {x, t, w});
  expect_near(floats(mean.run1()), {1.6f / 0.7f});
  // Ignoring class 0 drops the second sample from the sum and its weight from the divisor.
  OneNode ii("NegativeLogLikelihoodLoss", {x, t, w});
  ii.attr("ignore_index", int64_t{0});
  expect_near(floats(ii.run1()), {1.5f / 0.5f});
  OneNode sum("NegativeLogLikelihoodLoss", {x, t});
  sum.attr("reduction", std::string("sum"));
  expect_near(floats(sum.run1()), {3.5f});
}

TEST(OpsMathLoss, SoftmaxCrossEntropyWithLogProb) {
  // One sample over the classes (1, 2, 3), spatial dim 1: log_prob = x - log(e + e^2 + e^3).
  const TensorData x = F({1, 3, 1}, {1, 2, 3}), t = I64({1, 1}, {0});
  OneNode sce("SoftmaxCrossEntropyLoss", {x, t}, 2);
  auto out = sce.run();
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  expect_near(floats(out[0]), {static_cast<float>(lse - 1)});
  expect_near(floats(out[1]),
              {static_cast<float>(1 - lse), static_cast<float>(2 - lse), static_cast<float>(3 - lse)});
}

TEST(OpsMathLoss, RefusesBadTargetsAndAttributes) {
  const TensorData x = F({2, 3}, randf(6));
  OneNode out_of_range("NegativeLogLikelihoodLoss", {x, I64({2}, {1, 3})});
  EXPECT_NE(error_of([&] { out_of_range.run(); }).find("out of range"), std::string::npos);
  OneNode negative("SoftmaxCrossEntropyLoss", {x, I64({2}, {-1, 0})});
  EXPECT_NE(error_of([&] { negative.run(); }).find("out of range"), std::string::npos);
  OneNode bad_reduction("NegativeLogLikelihoodLoss", {x, I64({2}, {1, 2})});
  bad_reduction.attr("reduction", std::string("max"));
  EXPECT_NE(error_of([&] { bad_reduction.infer(); }).find("reduction"), std::string::npos);
  OneNode bad_shape("NegativeLogLikelihoodLoss", {x, I64({3}, {1, 2, 0})});
  EXPECT_NE(error_of([&] { bad_shape.run(); }).find("target"), std::string::npos);
  OneNode bad_weight("NegativeLogLikelihoodLoss", {x, I64({2}, {1, 2}), F({2}, {1, 1})});
  EXPECT_NE(error_of([&] { bad_weight.run(); }).find("weight"), std::string::npos);
}

TEST(OpsMathUnary, GeluMatchesTorch) {
  // Expected: torch.nn.functional.gelu in float64 (approximate "none" and "tanh").
  const std::vector<float> x{-3.1f, -1.2f, -0.4f, 0.0f, 0.3f, 1.7f, 4.2f};
  OneNode exact("Gelu", {F({7}, x)}, 1, 20);
  expect_near(floats(exact.run1()), {-0.00299956996098f, -0.138083604266f, -0.137831303356f, 0.0f,
                                     0.185373426657f, 1.62423871331f, 4.19994394785f});
  OneNode tanh("Gelu", {F({7}, x)}, 1, 20);
  tanh.attr("approximate", std::string("tanh"));
  expect_near(floats(tanh.run1()), {-0.00262661023055f, -0.138297230862f, -0.137838830573f, 0.0f,
                                    0.185370923543f, 1.62410589555f, 4.19997390293f});
  OneNode bad("Gelu", {F({7}, x)}, 1, 20);
  bad.attr("approximate", std::string("erf"));
  EXPECT_NE(error_of([&] { bad.run(); }).find("approximate"), std::string::npos);
}

TEST(OpsMathUnary, ShrinkOnIntegersAndIsInfDirections) {
  // Shrink on int32 (lambd 1.5, bias 1): 3 -> 2, -3 -> -2, |x| <= 1.5 -> 0.
  OneNode shrink("Shrink", {TensorData::from_vector(DType::Int32, {4}, std::vector<int32_t>{3, -3, 1, -1})});
  shrink.attr("lambd", 1.5f).attr("bias", 1.f);
  EXPECT_EQ(shrink.run1().to_int64_vector(), (std::vector<int64_t>{2, -2, 0, 0}));
  const float inf = std::numeric_limits<float>::infinity();
  const TensorData x = F({4}, {inf, -inf, std::nanf(""), 2.f});
  OneNode neg_only("IsInf", {x});
  neg_only.attr("detect_positive", int64_t{0});
  EXPECT_EQ(neg_only.run1().to_int64_vector(), (std::vector<int64_t>{0, 1, 0, 0}));
  EXPECT_EQ(OneNode("IsNaN", {x}).run1().to_int64_vector(), (std::vector<int64_t>{0, 0, 1, 0}));
  OneNode on_ints("IsNaN", {I64({1}, {1})});
  EXPECT_NE(error_of([&] { on_ints.infer(); }).find("float"), std::string::npos);
}

TEST(OpsMathBinary, PReluBitShiftMean) {
  // PRelu with a per-channel slope [2, 1] on X [2, 2, 1]: negative entries scale by their channel's slope.
  OneNode prelu("PRelu", {F({2, 2, 1}, {-1, 2, -3, -4}), F({2, 1}, {0.5f, 0.25f})});
  expect_near(floats(prelu.run1()), {-0.5f, 2, -1.5f, -1});
  OneNode wider("PRelu", {F({2}, {-1, 2}), F({3, 2}, randf(6))});  // the slope must not widen X
  EXPECT_NE(error_of([&] { wider.run(); }).find("slope"), std::string::npos);
  // uint8: 200 << 1 wraps to 144; shifting by 8 or more empties the byte.
  const auto u8 = [](std::vector<uint8_t> v) {
    return TensorData::from_vector(DType::UInt8, {static_cast<int64_t>(v.size())}, v);
  };
  OneNode left("BitShift", {u8({200, 3, 255}), u8({1, 2, 8})});
  left.attr("direction", std::string("LEFT"));
  EXPECT_EQ(left.run1().to_int64_vector(), (std::vector<int64_t>{144, 12, 0}));
  OneNode right("BitShift", {u8({200, 3, 255}), u8({1, 2, 9})});
  right.attr("direction", std::string("RIGHT"));
  EXPECT_EQ(right.run1().to_int64_vector(), (std::vector<int64_t>{100, 0, 0}));
  OneNode signed_shift("BitShift", {I64({1}, {4}), I64({1}, {1})});
  signed_shift.attr("direction", std::string("LEFT"));
  EXPECT_NE(error_of([&] { signed_shift.run(); }).find("unsupported dtype"), std::string::npos);
  OneNode no_direction("BitShift", {u8({1}), u8({1})});
  EXPECT_NE(error_of([&] { no_direction.infer(); }).find("direction"), std::string::npos);
  // Mean broadcasts: ([1, 2] + [[3], [5]] + 4) / 3.
  OneNode mean("Mean", {F({2}, {1, 2}), F({2, 1}, {3, 5}), F({}, {4})});
  expect_near(floats(mean.run1()), {8 / 3.f, 9 / 3.f, 10 / 3.f, 11 / 3.f});
}

TEST(OpsMathLinalg, DetPivotsAndBatches) {
  // [[0, 2], [3, 4]] needs a row swap: det = 0 * 4 - 2 * 3 = -6. [[1, 2, 3], [0, 4, 5], [1, 0, 6]]: cofactors
  // along the first row give 1 * 24 - 2 * (-5) + 3 * (-4) = 22; a matrix with two equal rows has det 0.
  EXPECT_EQ(floats(OneNode("Det", {F({2, 2}, {0, 2, 3, 4})}).run1()), std::vector<float>{-6});
  OneNode batch("Det", {F({2, 3, 3}, {1, 2, 3, 0, 4, 5, 1, 0, 6, 1, 2, 3, 0.5f, 1, 7, 1, 2, 3})});
  const TensorData d = batch.run1();
  EXPECT_EQ(d.dims(), std::vector<int64_t>{2});
  expect_near(floats(d), {22, 0});
  OneNode not_square("Det", {F({2, 3}, randf(6))});
  EXPECT_NE(error_of([&] { not_square.infer(); }).find("square"), std::string::npos);
}

TEST(OpsMathWindows, HandDerivedValuesAndSizes) {
  const auto size = [](int64_t n) { return I64({}, {n}); };
  // Periodic Hann of 4: 0.5 - 0.5 cos(2 pi n / 4).
  expect_near(floats(OneNode("HannWindow", {size(4)}).run1()), {0, 0.5f, 1, 0.5f});
  // Symmetric Blackman of 3 (N = 2): 0.42 - 0.5 cos(pi n) + 0.08 cos(2 pi n).
  OneNode blackman("BlackmanWindow", {size(3)});
  blackman.attr("periodic", int64_t{0});
  expect_near(floats(blackman.run1()), {0, 1, 0}, 1e-6f);
  // Periodic Hamming of 2 in double: 25/46 -+ 21/46.
  OneNode hamming("HammingWindow", {size(2)});
  hamming.attr("output_datatype", static_cast<int64_t>(DType::Double));
  const TensorData h = hamming.run1();
  EXPECT_EQ(h.dtype(), DType::Double);
  EXPECT_DOUBLE_EQ(h.as_double(0), 4.0 / 46);
  EXPECT_DOUBLE_EQ(h.as_double(1), 1.0);
  OneNode one("HannWindow", {size(1)});
  one.attr("periodic", int64_t{0});
  EXPECT_EQ(floats(one.run1()), std::vector<float>{1});
  EXPECT_EQ(OneNode("HannWindow", {size(0)}).run1().numel(), 0);
  OneNode negative("HannWindow", {size(-2)});
  EXPECT_NE(error_of([&] { negative.run(); }).find("size"), std::string::npos);
}

TEST(OpsMathNorm, MeanVarianceNormalizationOverAxes) {
  // Axes {1}: each row of [[1, 3], [2, 6]] becomes (x - mean) / (std + 1e-9) = [-1, 1].
  OneNode mvn("MeanVarianceNormalization", {F({2, 2}, {1, 3, 2, 6})});
  mvn.attr("axes", std::vector<int64_t>{1});
  expect_near(floats(mvn.run1()), {-1, 1, -1, 1});
  OneNode bad_axes("MeanVarianceNormalization", {F({2, 2}, {1, 3, 2, 6})});  // default axes need rank 4
  EXPECT_NE(error_of([&] { bad_axes.infer(); }).find("out of range"), std::string::npos);
}

}  // namespace
}  // namespace kiln
