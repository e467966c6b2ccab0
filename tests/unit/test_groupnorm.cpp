// kiln.GroupNorm: the reference kernel against a loop written here, cpu.groupnorm against the reference, and
// the fuse_groupnorm rewrite on PyTorch's exported subgraph (positive and rejected matches).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "device/kernel.h"
#include "kiln/engine.h"
#include "kiln/passes.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

// Group norm + affine + Elu, straight from the definition.
std::vector<float> expected_group_norm(const std::vector<float>& x, int64_t n, int64_t c, int64_t s, int64_t groups,
                                       const std::vector<float>& gamma, const std::vector<float>& beta, float eps,
                                       bool elu) {
  std::vector<float> y(x.size());
  const int64_t cpg = c / groups;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < groups; ++g) {
      double sum = 0, sq = 0;
      const int64_t base = (b * c + g * cpg) * s;
      for (int64_t i = 0; i < cpg * s; ++i) sum += x[base + i];
      const double mean = sum / (cpg * s);
      for (int64_t i = 0; i < cpg * s; ++i) sq += (x[base + i] - mean) * (x[base + i] - mean);
      const double inv = 1 / std::sqrt(sq / (cpg * s) + eps);
      for (int64_t i = 0; i < cpg * s; ++i) {
        const int64_t ch = g * cpg + i / s;
        double v = (x[base + i] - mean) * inv * gamma[ch] + beta[ch];
        if (elu && v < 0) v = std::exp(v) - 1;
        y[base + i] = static_cast<float>(v);
      }
    }
  return y;
}

TEST(GroupNorm, ReferenceMatchesDefinition) {
  const int64_t n = 2, c = 8, h = 3, w = 5, groups = 4;
  auto x = randf(n * c * h * w), gamma = randf(c), beta = randf(c);
  OneNode node("GroupNorm", {F({n, c, h, w}, x), F({c}, gamma), F({c}, beta)});
  node.node->domain = "kiln";
  node.attr("num_groups", groups).attr("epsilon", 1e-3f).attr("activation", std::string("Elu"));
  expect_near(floats(node.run1()), expected_group_norm(x, n, c, h * w, groups, gamma, beta, 1e-3f, true));
  node.attr("num_groups", int64_t{3});  // does not divide 8
  EXPECT_NE(error_of([&] { node.run1(); }).find("does not divide"), std::string::npos);
}

// Runs cpu.groupnorm and the reference on the same layer; outputs poisoned with NaN first.
void check_cpu_kernel(std::vector<int64_t> dims, int64_t groups, const std::string& act, float offset) {
  Graph g;
  g.set_opset("kiln", 1);
  const int64_t c = dims[1];
  TensorData x(DType::Float, dims);
  auto xv = randf(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = xv[static_cast<size_t>(i)] + offset;
  TensorData gamma = F({c}, randf(c)), beta = F({c}, randf(c));
  Node* node = g.add_node("GroupNorm", {g.add_variable("x", DType::Float, make_shape(dims)),
                                        g.add_constant("gamma", gamma), g.add_constant("beta", beta)},
                          {g.add_variable("y", DType::Float, make_shape(dims))}, "gn", "kiln");
  node->attrs.set("num_groups", groups);
  node->attrs.set("activation", act);
  backend::LayerDesc desc;
  desc.node = node;
  desc.opset = 1;
  desc.threads = 2;
  desc.inputs = {{DType::Float, dims, nullptr, true}, {DType::Float, {c}, &gamma, true}, {DType::Float, {c}, &beta, true}};
  desc.outputs = {{DType::Float, dims, nullptr, true}};
  const backend::KernelFactory* fast = backend::find_kernel("cpu", "kiln", "GroupNorm", "cpu.groupnorm");
  const backend::KernelFactory* ref = backend::find_kernel("cpu", "kiln", "GroupNorm", "reference");
  ASSERT_TRUE(fast && ref);
  ASSERT_TRUE(fast->supports(desc));
  TensorData want(DType::Float, dims), got(DType::Float, dims);
  std::fill_n(got.data<float>(), got.numel(), std::numeric_limits<float>::quiet_NaN());
  ref->create(desc)->run({{DType::Float, dims, x.raw()}, {DType::Float, {c}, gamma.raw()}, {DType::Float, {c}, beta.raw()}},
                         {{DType::Float, dims, want.raw()}});
  fast->create(desc)->run({{DType::Float, dims, x.raw()}, {DType::Float, {c}, gamma.raw()}, {DType::Float, {c}, beta.raw()}},
                          {{DType::Float, dims, got.raw()}});
  EXPECT_LE(rel_l2(got.data<float>(), want.data<float>(), got.numel()), 1e-5) << to_string(make_shape(dims));
}

TEST(GroupNorm, CpuKernelMatchesReference) {
  check_cpu_kernel({2, 32, 5, 7}, 8, "Relu", 0.f);
  check_cpu_kernel({1, 64, 12, 20}, 16, "Elu", 3.f);  // offset mean stresses the variance
  check_cpu_kernel({1, 64, 96, 160}, 16, "Elu", 0.f);  // threaded, planes split across threads
  check_cpu_kernel({1, 32, 4, 4, 4}, 16, "", 1.f);     // 3-D spatial, no activation
}

// PyTorch's GroupNorm export around input X [1, C, H, W] (C = channels, G = groups).
struct ExportedGroupNorm {
  Graph g;
  std::vector<float> gamma, beta;
  Tensor *x, *y;
  ExportedGroupNorm(int64_t c, int64_t groups, std::vector<float> in_scale, std::vector<float> in_bias,
                    std::vector<int64_t> gamma_dims, bool elu = true) {
    g.set_opset("", 11);
    const int64_t h = 6, w = 10;
    x = g.add_variable("x", DType::Float, Shape{1, c, h, w});
    auto v = [&](const char* n) { return g.add_variable(n); };
    int64_t gamma_n = 1;
    for (int64_t d : gamma_dims) gamma_n *= d;
    gamma = randf(gamma_n);
    beta = randf(gamma_n);
    g.add_node("Reshape", {x, g.add_constant("grouped", TensorData::vector_int64({0, groups, -1}))}, {v("r1")}, "r1");
    g.add_node("InstanceNormalization",
               {g.tensor("r1"), g.add_constant("ones", F({groups}, in_scale)), g.add_constant("zeros", F({groups}, in_bias))},
               {v("in")}, "in")
        ->attrs.set("epsilon", 1e-5f);
    g.add_node("Shape", {x}, {v("xs")}, "shape");
    g.add_node("Reshape", {g.tensor("in"), g.tensor("xs")}, {v("r2")}, "r2");
    g.add_node("Mul", {g.tensor("r2"), g.add_constant("gamma", F(gamma_dims, gamma))}, {v("m")}, "mul");
    g.add_node("Add", {g.add_constant("beta", F(gamma_dims, beta)), g.tensor("m")}, {v("a")}, "add");
    y = g.tensor("a");
    if (elu) {
      g.add_node("Elu", {g.tensor("a")}, {v("e")}, "elu");
      y = g.tensor("e");
    }
    g.inputs = {x};
    g.outputs = {y};
  }
};

TEST(GroupNorm, RewriteCollapsesExportedSubgraph) {
  const int64_t c = 32, groups = 16;
  ExportedGroupNorm m(c, groups, std::vector<float>(groups, 1.f), std::vector<float>(groups, 0.f), {c, 1, 1});
  fold_constants(m.g);
  std::vector<NotFolded> rejected;
  EXPECT_EQ(fuse_groupnorm(m.g, &rejected), 1u);
  EXPECT_TRUE(rejected.empty());
  ASSERT_EQ(m.g.num_nodes(), 1u);
  const Node* gn = m.g.nodes()[0].get();
  EXPECT_EQ(gn->op, "GroupNorm");
  EXPECT_EQ(gn->domain, "kiln");
  EXPECT_EQ(gn->attrs.get_int("num_groups", 0), groups);
  EXPECT_EQ(gn->attrs.get_string("activation", ""), "Elu");
  const Attribute* fused = gn->attrs.find("kiln_fused");
  ASSERT_NE(fused, nullptr);
  EXPECT_EQ(std::get<std::vector<std::string>>(fused->value).size(), 6u);
  EXPECT_EQ(gn->output(0)->name, "e");                     // the graph output keeps its name
  m.g.validate();

  // Numerics through the engine (which also runs the rewrite) against the definition.
  ExportedGroupNorm fresh(c, groups, std::vector<float>(groups, 1.f), std::vector<float>(groups, 0.f), {c, 1, 1});
  auto engine = Engine::build(fresh.g);
  ASSERT_EQ(engine->layers().size(), 1u);
  EXPECT_EQ(engine->layers()[0].fused.size(), 6u);  // r1, in, r2, mul, add, elu
  auto xv = randf(c * 60);
  auto ctx = engine->create_context();
  ctx->set_input("x", F({1, c, 6, 10}, xv));
  ctx->run();
  expect_near(floats(ctx->output("e")), expected_group_norm(xv, 1, c, 60, groups, fresh.gamma, fresh.beta, 1e-5f, true), 1e-4f);
}

TEST(GroupNorm, RewriteRejectsWhatDoesNotFit) {
  const int64_t groups = 16;
  auto ones = std::vector<float>(groups, 1.f), zeros = std::vector<float>(groups, 0.f);
  auto expect_rejected = [](ExportedGroupNorm& m, const char* why) {
    fold_constants(m.g);
    const size_t before = m.g.num_nodes();
    std::vector<NotFolded> rejected;
    EXPECT_EQ(fuse_groupnorm(m.g, &rejected), 0u) << why;
    EXPECT_EQ(m.g.num_nodes(), before) << why;
    ASSERT_EQ(rejected.size(), 1u) << why;
    EXPECT_NE(rejected[0].reason.find(why), std::string::npos) << rejected[0].reason;
  };
  std::vector<float> scaled = ones;
  scaled[3] = 2.f;
  ExportedGroupNorm not_ones(32, groups, scaled, zeros, {32, 1, 1});
  expect_rejected(not_ones, "scale is not all ones");
  std::vector<float> shifted = zeros;
  shifted[0] = 0.5f;
  ExportedGroupNorm not_zeros(32, groups, ones, shifted, {32, 1, 1});
  expect_rejected(not_zeros, "bias is not all zeros");
  ExportedGroupNorm no_divide(24, groups, ones, zeros, {24, 1, 1});
  expect_rejected(no_divide, "does not divide");
  ExportedGroupNorm full_gamma(32, groups, ones, zeros, {32, 6, 10});  // γ per element, not per channel
  expect_rejected(full_gamma, "per-channel");

  // An intermediate read by someone else (here: a graph output) is not a match at all.
  ExportedGroupNorm shared(32, groups, ones, zeros, {32, 1, 1});
  shared.g.outputs.push_back(shared.g.tensor("m"));
  fold_constants(shared.g);
  EXPECT_EQ(fuse_groupnorm(shared.g), 0u);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

TEST(GroupNorm, RewriteToPluginNodesRunsThePlugin) {
  const int64_t c = 64, groups = 16;
  ExportedGroupNorm m(c, groups, std::vector<float>(groups, 1.f), std::vector<float>(groups, 0.f), {c, 1, 1});
  fold_constants(m.g);
  EXPECT_EQ(fuse_groupnorm(m.g, nullptr, GroupNormTarget::Plugin), 1u);
  ASSERT_EQ(m.g.num_nodes(), 2u);  // the plugin, then the Elu it does not absorb
  const Node* gn = m.g.nodes()[0].get();
  EXPECT_EQ(gn->op, "GroupNormalizationPlugin");
  EXPECT_EQ(gn->domain, "");
  EXPECT_EQ(gn->attrs.get_int("num_groups", 0), groups);
  EXPECT_FLOAT_EQ(gn->attrs.get_float("eps", 0.f), 1e-5f);
  EXPECT_EQ(gn->attrs.get_string("plugin_version", ""), "1");
  EXPECT_EQ(m.g.nodes()[1]->op, "Elu");

  auto engine = Engine::build(m.g);
  EXPECT_EQ(engine->layers()[0].kernel, "plugin");
  auto xv = randf(c * 60);
  for (float& v : xv) v += 2.f;  // offset mean
  auto ctx = engine->create_context();
  ctx->set_input("x", F({1, c, 6, 10}, xv));
  ctx->run();
  expect_near(floats(ctx->output("e")), expected_group_norm(xv, 1, c, 60, groups, m.gamma, m.beta, 1e-5f, true), 1e-4f);
}

}  // namespace
}  // namespace kiln
