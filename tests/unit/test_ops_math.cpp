// Reference kernels of the math, loss and window ops (loss.cpp, math_unary.cpp, ...): small hand-derived
// cases and the error paths the ONNX node tests do not reach. Expected values are computed here, never by the
// kernel.
#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace kiln
