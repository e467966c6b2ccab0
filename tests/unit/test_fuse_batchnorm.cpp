// The batchnorm_into_conv rewrite: Conv → BatchNormalization folds into one Conv (weights rescaled, bias
// added), checked against the unfused graph run by the reference kernels; and what it must leave alone.
#include <gtest/gtest.h>

#include <random>

#include "kiln/engine.h"
#include "passes/rewrites.h"
#include "test_util.h"

namespace kiln {
namespace {

// Uniform in [lo, hi]; with `either_sign`, each value's sign is flipped at random (non-zero, both signs).
TensorData random_values(std::vector<int64_t> dims, uint32_t seed, float lo, float hi, bool either_sign = false) {
  TensorData t(DType::Float, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::bernoulli_distribution flip(0.5);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = either_sign && flip(rng) ? -u(rng) : u(rng);
  return t;
}

// x[1,6,9,11] → Conv 3x3 (6 → 8, groups, optional bias) → BatchNormalization → Relu → y.
struct ConvBn {
  Graph g;
  ConvBn(bool conv_bias, int64_t groups = 1, bool variable_mean = false, bool conv_read_twice = false) {
    g.set_opset("", 13);
    auto* x = g.add_variable("x", DType::Float, Shape{1, 6, 9, 11});
    std::vector<Tensor*> conv_in{x, g.add_constant("w", random_values({8, 6 / groups, 3, 3}, 1, 0.1f, 1.f, true))};
    if (conv_bias) conv_in.push_back(g.add_constant("b", random_values({8}, 2, 0.1f, 1.f, true)));
    auto* c = g.add_variable("c");
    Node* conv = g.add_node("Conv", conv_in, {c}, "conv");
    conv->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    conv->attrs.set("group", groups);
    Tensor* mean = variable_mean
                       ? g.add_variable("mean", DType::Float, Shape{8})
                       : static_cast<Tensor*>(g.add_constant("mean", random_values({8}, 5, -1.f, 1.f)));
    auto* n = g.add_variable("n");
    Node* bn = g.add_node("BatchNormalization",
                          {c, g.add_constant("scale", random_values({8}, 3, 0.5f, 2.f, true)),
                           g.add_constant("bias", random_values({8}, 4, -1.f, 1.f)), mean,
                           g.add_constant("var", random_values({8}, 6, 0.2f, 3.f))},
                          {n}, "bn");
    bn->attrs.set("epsilon", 1e-3f);
    auto* y = g.add_variable("y");
    if (conv_read_twice) {
      auto* r = g.add_variable("r");
      g.add_node("Relu", {n}, {r}, "relu");
      g.add_node("Add", {r, c}, {y}, "add");
    } else {
      g.add_node("Relu", {n}, {y}, "relu");
    }
    g.inputs = {x};
    if (variable_mean) g.inputs.push_back(mean);
    g.outputs = {y};
  }
};

size_t count_op(const Graph& g, const std::string& op) {
  size_t n = 0;
  for (const auto& node : g.nodes()) n += node->op == op;
  return n;
}

// The optimized engine against the unfused graph on the reference kernels, on fresh random inputs.
void expect_matches_reference(const Graph& g) {
  BuildOptions oracle;
  oracle.reference_kernels = true;
  oracle.skip_rewrites = rewrite_names();
  auto fast = Engine::build(g), slow = Engine::build(g, oracle);
  auto a = fast->create_context(), b = slow->create_context();
  for (Tensor* in : g.inputs) {
    const TensorData v =
        random_values(static_dims(*in->shape), 40 + static_cast<uint32_t>(in->name.size()), -2.f, 2.f);
    a->set_input(in->name, v);
    b->set_input(in->name, v);
  }
  a->run();
  b->run();
  const TensorData &got = a->output("y"), &want = b->output("y");
  ASSERT_EQ(got.dims(), want.dims());
  EXPECT_LE(test::rel_l2(got.data<float>(), want.data<float>(), got.numel()), 1e-5);
}

TEST(FuseBatchNorm, FoldsIntoConvWithAndWithoutBias) {
  for (bool bias : {true, false})
    for (int64_t groups : {1, 2}) {
      SCOPED_TRACE(std::string(bias ? "bias" : "no bias") + ", groups " + std::to_string(groups));
      ConvBn m(bias, groups);
      infer_shapes(m.g);
      auto g = m.g.copy();
      EXPECT_EQ(fuse_batchnorm_into_conv(*g), 1u);
      EXPECT_EQ(count_op(*g, "BatchNormalization"), 0u);
      const Node* conv = g->find_node("conv");
      ASSERT_NE(conv, nullptr);
      EXPECT_EQ(conv->inputs().size(), 3u);
      EXPECT_EQ(std::get<std::vector<std::string>>(conv->attrs.find("kiln_fused")->value),
                (std::vector<std::string>{"conv", "bn"}));
      expect_matches_reference(m.g);
      EXPECT_EQ(count_op(Engine::build(m.g)->graph(), "BatchNormalization"), 0u);
    }
}

TEST(FuseBatchNorm, LeavesWhatItCannotFoldAlone) {
  struct Case {
    const char* what;
    bool variable_mean, conv_read_twice, training;
  };
  for (const Case& c :
       {Case{"mean is not a constant", true, false, false},
        Case{"conv output read twice", false, true, false}, Case{"training mode", false, false, true}}) {
    SCOPED_TRACE(c.what);
    ConvBn m(true, 1, c.variable_mean, c.conv_read_twice);
    if (c.training) m.g.find_node("bn")->attrs.set("training_mode", int64_t{1});
    infer_shapes(m.g);
    auto g = m.g.copy();
    EXPECT_EQ(fuse_batchnorm_into_conv(*g), 0u);
    EXPECT_EQ(count_op(*g, "BatchNormalization"), 1u);
    if (!c.training) expect_matches_reference(m.g);
  }
}

}  // namespace
}  // namespace kiln
