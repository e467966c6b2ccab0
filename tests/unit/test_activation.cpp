// ops/activation.h: the one definition of the element-wise activations (names, attributes, defaults,
// formulas) and how nodes and fused nodes carry them.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/graph.h"
#include "ops/activation.h"

namespace kiln {
namespace {

using ops::Activation;
using ops::ActivationParams;

TEST(Activation, TableNamesAndDefaults) {
  for (const ops::ActivationInfo& info : ops::kActivations) {
    EXPECT_EQ(&ops::activation_info(info.act), &info);  // indexed by the enum
    if (info.act == Activation::None) continue;
    EXPECT_EQ(ops::activation_of(info.op), info.act);
    EXPECT_TRUE(ops::is_activation(info.op));
  }
  EXPECT_FALSE(ops::activation_of("Add").has_value());
  EXPECT_FALSE(ops::is_activation(""));
  EXPECT_FLOAT_EQ(ops::activation_info(Activation::Elu).alpha, 1.f);
  EXPECT_FLOAT_EQ(ops::activation_info(Activation::LeakyRelu).alpha, 0.01f);
  EXPECT_FLOAT_EQ(ops::activation_info(Activation::HardSigmoid).beta, 0.5f);
}

TEST(Activation, FormulasMatchTheirDefinitions) {
  const auto f = [](Activation a, double x, double alpha = 0, double beta = 0) {
    return ops::apply<ops::StdMath>(a, x, alpha, beta);
  };
  EXPECT_EQ(f(Activation::None, -2.5), -2.5);
  EXPECT_EQ(f(Activation::Relu, -2.0), 0.0);
  EXPECT_EQ(f(Activation::Relu, 3.0), 3.0);
  EXPECT_DOUBLE_EQ(f(Activation::LeakyRelu, -2.0, 0.1), -0.2);
  EXPECT_DOUBLE_EQ(f(Activation::Elu, -1.0, 0.5), 0.5 * (std::exp(-1.0) - 1));
  EXPECT_DOUBLE_EQ(f(Activation::Sigmoid, 0.3), 1 / (1 + std::exp(-0.3)));
  EXPECT_DOUBLE_EQ(f(Activation::Tanh, 0.3), std::tanh(0.3));
  EXPECT_DOUBLE_EQ(f(Activation::Softplus, 100.0), 100.0);  // no overflow
  EXPECT_DOUBLE_EQ(f(Activation::Softplus, -1.0), std::log1p(std::exp(-1.0)));
  EXPECT_DOUBLE_EQ(f(Activation::HardSigmoid, 1.0, 0.2, 0.5), 0.7);
  EXPECT_EQ(f(Activation::HardSigmoid, 10.0, 0.2, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(f(Activation::HardSwish, 1.0), 1.0 * (1.0 / 6 + 0.5));
  EXPECT_EQ(f(Activation::HardSwish, -4.0), -0.0);
  // Selu's beta is its gamma; defaults are ONNX's float constants.
  EXPECT_DOUBLE_EQ(f(Activation::Selu, -0.7, 1.5, 1.2), 1.2 * 1.5 * (std::exp(-0.7) - 1));
  EXPECT_DOUBLE_EQ(f(Activation::Selu, 0.7, 1.5, 1.2), 1.2 * 0.7);
  EXPECT_FLOAT_EQ(ops::activation_info(Activation::Selu).alpha, 1.67326319217681884765625f);
  EXPECT_FLOAT_EQ(ops::activation_info(Activation::Selu).beta, 1.05070102214813232421875f);
  EXPECT_DOUBLE_EQ(f(Activation::Celu, -0.7, 2.0), 2.0 * (std::exp(-0.35) - 1));
  EXPECT_DOUBLE_EQ(f(Activation::Celu, 0.7, 2.0), 0.7);
  EXPECT_EQ(f(Activation::ThresholdedRelu, 0.9, 1.0), 0.0);
  EXPECT_EQ(f(Activation::ThresholdedRelu, 1.1, 1.0), 1.1);
  EXPECT_DOUBLE_EQ(f(Activation::Softsign, -3.0), -0.75);
  EXPECT_DOUBLE_EQ(f(Activation::Mish, -1.3), -1.3 * std::tanh(std::log(1 + std::exp(-1.3))));
  EXPECT_DOUBLE_EQ(f(Activation::Mish, 50.0), 50.0);  // softplus does not overflow
  const int64_t relu_int = ops::activate<Activation::Relu, ops::StdMath>(int64_t{-7}, int64_t{0}, int64_t{0});
  EXPECT_EQ(relu_int, 0);
}

TEST(Activation, OfNodeReadsAttributesWithDefaults) {
  Graph g;
  Node* elu = g.add_node("Elu", {g.add_variable("x")}, {g.add_variable("y")}, "elu");
  auto p = ops::activation_of(*elu);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->act, Activation::Elu);
  EXPECT_FLOAT_EQ(p->alpha, 1.f);
  elu->attrs.set("alpha", 0.3f);
  EXPECT_FLOAT_EQ(ops::activation_of(*elu)->alpha, 0.3f);
  elu->attrs.set("alpha", int64_t{1});  // not a float: not a well-formed Elu
  EXPECT_FALSE(ops::activation_of(*elu));

  Node* hs = g.add_node("HardSigmoid", {g.tensor("y")}, {g.add_variable("z")}, "hs");
  hs->attrs.set("beta", 0.25f);
  p = ops::activation_of(*hs);
  ASSERT_TRUE(p);
  EXPECT_FLOAT_EQ(p->alpha, 0.2f);
  EXPECT_FLOAT_EQ(p->beta, 0.25f);
  hs->attrs.set("gamma", 1.f);  // not one of its attributes
  EXPECT_FALSE(ops::activation_of(*hs));

  Node* custom = g.add_node("Relu", {g.tensor("z")}, {g.add_variable("w")}, "custom", "my.domain");
  EXPECT_FALSE(ops::activation_of(*custom));
  Node* add = g.add_node("Add", {g.tensor("z"), g.tensor("z")}, {g.add_variable("v")}, "add");
  EXPECT_FALSE(ops::activation_of(*add));
}

TEST(Activation, FusedAttributesRoundTrip) {
  Attributes a;
  EXPECT_EQ(ops::fused_activation(a, ops::kFusedConvActivation)->act, Activation::None);
  ops::set_fused_activation(a, ops::kFusedConvActivation, {Activation::Relu, 0.f, 0.f});
  EXPECT_EQ(a.get_string("kiln_post_op", ""), "Relu");
  EXPECT_FALSE(a.has("kiln_post_alpha"));  // Relu has no alpha
  Attributes e;
  ops::set_fused_activation(e, ops::kGroupNormActivation, {Activation::Elu, 0.7f, 0.f});
  EXPECT_EQ(e.get_string("activation", ""), "Elu");
  EXPECT_FLOAT_EQ(e.get_float("alpha", 0), 0.7f);
  EXPECT_FALSE(e.has("beta"));
  const auto back = ops::fused_activation(e, ops::kGroupNormActivation);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->act, Activation::Elu);
  EXPECT_FLOAT_EQ(back->alpha, 0.7f);
  Attributes d;
  d.set("activation", std::string("Elu"));  // alpha absent: Elu's default
  EXPECT_FLOAT_EQ(ops::fused_activation(d, ops::kGroupNormActivation)->alpha, 1.f);
  Attributes r;  // an alpha next to an activation without one is not read
  r.set("activation", std::string("Relu"));
  r.set("alpha", 0.7f);
  EXPECT_FLOAT_EQ(ops::fused_activation(r, ops::kGroupNormActivation)->alpha, 0.f);
  d.set("activation", std::string("Swish"));
  EXPECT_FALSE(ops::fused_activation(d, ops::kGroupNormActivation));

  Attributes node_attrs;
  ops::set_activation_attributes(node_attrs, {Activation::HardSigmoid, 0.1f, 0.4f});
  EXPECT_FLOAT_EQ(node_attrs.get_float("alpha", 0), 0.1f);
  EXPECT_FLOAT_EQ(node_attrs.get_float("beta", 0), 0.4f);
  const ActivationParams p = ops::activation_params(Activation::HardSigmoid, node_attrs);
  EXPECT_FLOAT_EQ(p.alpha, 0.1f);
  EXPECT_FLOAT_EQ(p.beta, 0.4f);
}

}  // namespace
}  // namespace kiln
