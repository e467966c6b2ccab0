// ai.onnx.preview.training optimizers (Adagrad, Momentum, Adam): reference kernels against values derived by
// hand from the ONNX spec's formulas.
#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln {
namespace {

using test::error_of;
using test::F;
using test::I64;

std::vector<TensorData> run(const std::string& op, const std::vector<TensorData>& in, size_t n_out,
                            Attributes attrs) {
  Graph g;
  std::vector<Tensor*> ins, outs;
  for (size_t k = 0; k < in.size(); ++k) ins.push_back(g.add_variable("in" + std::to_string(k)));
  for (size_t k = 0; k < n_out; ++k) outs.push_back(g.add_variable("out" + std::to_string(k)));
  Node* n = g.add_node(op, ins, outs, "", "ai.onnx.preview.training");
  n->attrs = std::move(attrs);
  ops::KernelContext ctx(*n, 1);
  for (const TensorData& t : in) ctx.in.push_back(&t);
  ops::run_reference(*ops::find_op("ai.onnx.preview.training", op), ctx);
  return ctx.out;
}

// Adam at T = 2 (bias-corrected rate) on two tensors: X1 = [1], G1 = [-1], V1 = [2], H1 = [0.5]; X2 = [3],
// G2 = [0.5], V2 = [-1], H2 = [2]. alpha 0.9, beta 0.8, epsilon 0.01, norm_coefficient 0.1, R 0.2.
//   g1 = 0.1 * 1 - 1 = -0.9;  V1' = 0.9 * 2 + 0.1 * -0.9 = 1.71;  H1' = 0.8 * 0.5 + 0.2 * 0.81 = 0.562
//   rate = 0.2 * sqrt(1 - 0.8^2) / (1 - 0.9^2) = 0.2 * 0.6 / 0.19 = 0.631578947...
//   X1' = 1 - rate * 1.71 / (sqrt(0.562) + 0.01) = 1 - 0.631578947 * 1.71 / 0.759669...
//   g2 = 0.3 + 0.5 = 0.8;  V2' = -0.9 + 0.08 = -0.82;  H2' = 1.6 + 0.128 = 1.728
//   X2' = 3 + 0.631578947 * 0.82 / (sqrt(1.728) + 0.01)
TEST(OptimizerOps, AdamUpdatesEveryTensorWithBiasCorrection) {
  Attributes a;
  a.set("alpha", 0.9f);
  a.set("beta", 0.8f);
  a.set("epsilon", 0.01f);
  a.set("norm_coefficient", 0.1f);
  const std::vector<TensorData> out =
      run("Adam",
          {F({}, {0.2f}), I64({}, {2}), F({1}, {1}), F({1}, {3}), F({1}, {-1}), F({1}, {0.5f}), F({1}, {2}),
           F({1}, {-1}), F({1}, {0.5f}), F({1}, {2})},
          6, a);
  const double rate = 0.2 * 0.6 / 0.19;
  EXPECT_NEAR(out[0].as_double(0), 1 - rate * 1.71 / (std::sqrt(0.562) + 0.01), 1e-6);
  EXPECT_NEAR(out[1].as_double(0), 3 + rate * 0.82 / (std::sqrt(1.728) + 0.01), 1e-6);
  EXPECT_NEAR(out[2].as_double(0), 1.71, 1e-6);
  EXPECT_NEAR(out[3].as_double(0), -0.82, 1e-6);
  EXPECT_NEAR(out[4].as_double(0), 0.562, 1e-6);
  EXPECT_NEAR(out[5].as_double(0), 1.728, 1e-6);
}

// Momentum: T = 0 uses beta 1. Nesterov: X' = X - R * (g + alpha * V'). X = [2], G = [1], V = [-3], alpha
// 0.5, norm 0: V' = 0.5 * -3 + 1 = -0.5; X' = 2 - 0.1 * (1 - 0.25) = 1.925. At T = 1 with beta 0.2: V' = -1.5
// + 0.2.
TEST(OptimizerOps, MomentumStandardAndNesterov) {
  Attributes a;
  a.set("alpha", 0.5f);
  a.set("beta", 0.2f);
  a.set("norm_coefficient", 0.0f);
  a.set("mode", std::string("nesterov"));
  std::vector<TensorData> out =
      run("Momentum", {F({}, {0.1f}), I64({}, {0}), F({1}, {2}), F({1}, {1}), F({1}, {-3})}, 2, a);
  EXPECT_NEAR(out[0].as_double(0), 1.925, 1e-6);
  EXPECT_NEAR(out[1].as_double(0), -0.5, 1e-6);
  a.set("mode", std::string("standard"));
  out = run("Momentum", {F({}, {0.1f}), I64({}, {1}), F({1}, {2}), F({1}, {1}), F({1}, {-3})}, 2, a);
  EXPECT_NEAR(out[1].as_double(0), -1.3, 1e-6);
  EXPECT_NEAR(out[0].as_double(0), 2 + 0.13, 1e-6);
  a.erase("mode");
  EXPECT_NE(error_of([&] {
              run("Momentum", {F({}, {0.1f}), I64({}, {1}), F({1}, {2}), F({1}, {1}), F({1}, {-3})}, 2, a);
            }).find("'mode' is required"),
            std::string::npos);
}

// ONNX's test_adam_multiple data was generated with epsilon 1e-2 without setting it on the node; with the
// attribute set, its expected X1_new, V1_new and H1_new come out.
TEST(OptimizerOps, AdamMatchesOnnxMultipleDataWithItsEpsilon) {
  Attributes a;
  a.set("alpha", 0.95f);
  a.set("beta", 0.85f);
  a.set("epsilon", 1e-2f);
  a.set("norm_coefficient", 0.001f);
  const std::vector<TensorData> out = run(
      "Adam", {F({}, {0.1f}), I64({}, {0}), F({1}, {1}), F({1}, {-1}), F({1}, {2}), F({1}, {0.5f})}, 3, a);
  EXPECT_NEAR(out[0].as_double(0), 0.7591362595558167, 1e-6);
  EXPECT_NEAR(out[1].as_double(0), 1.8500499725341797, 1e-6);
  EXPECT_NEAR(out[2].as_double(0), 0.5747001767158508, 1e-6);
}

}  // namespace
}  // namespace kiln
