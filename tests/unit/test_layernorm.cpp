// fuse_layernorm on the pre-opset-17 exported chain (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul,
// Add): the rewrite fires, and the engine's output matches the unfused graph's; chains that don't fit are
// left alone. cpu.layernorm itself is compared with the reference by kiln_backend_sweep (cases_norm.cpp).
#include <gtest/gtest.h>

#include "kiln/engine.h"
#include "passes/rewrites.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

struct Variant {
  int64_t axis = -1;         // the ReduceMeans' axes attribute
  float exponent = 2.f;      // Pow's
  bool eps_constant = true;  // false: eps is a graph input
  int64_t opset = 13;
  std::vector<int64_t> gamma_dims{32};
};

// X [2, 7, 32] through the chain as PyTorch writes nn.LayerNorm at opset 13.
struct ExportedLayerNorm {
  Graph g;
  std::vector<float> gamma, beta;
  explicit ExportedLayerNorm(const Variant& v) {
    g.set_opset("", v.opset);
    Tensor* x = g.add_variable("x", DType::Float, Shape{2, 7, 32});
    auto t = [&](const char* n) { return g.add_variable(n); };
    auto reduce = [&](Tensor* in, const char* out, const char* name) {
      g.add_node("ReduceMean", {in}, {t(out)}, name)->attrs.set("axes", std::vector<int64_t>{v.axis});
    };
    reduce(x, "mean", "mean");
    g.add_node("Sub", {x, g.tensor("mean")}, {t("d")}, "sub");
    g.add_node("Pow", {g.tensor("d"), g.add_constant("two", TensorData::scalar_float(v.exponent))}, {t("sq")},
               "pow");
    reduce(g.tensor("sq"), "var", "var");
    Tensor* eps = v.eps_constant
                      ? static_cast<Tensor*>(g.add_constant("eps", TensorData::scalar_float(1e-5f)))
                      : g.add_variable("eps", DType::Float, Shape{});
    g.add_node("Add", {g.tensor("var"), eps}, {t("ve")}, "add_eps");
    g.add_node("Sqrt", {g.tensor("ve")}, {t("sd")}, "sqrt");
    g.add_node("Div", {g.tensor("d"), g.tensor("sd")}, {t("n")}, "div");
    int64_t k = 1;
    for (int64_t d : v.gamma_dims) k *= d;
    gamma = randf(k);
    beta = randf(k);
    g.add_node("Mul", {g.tensor("n"), g.add_constant("gamma", F(v.gamma_dims, gamma))}, {t("m")}, "mul");
    g.add_node("Add", {g.add_constant("beta", F(v.gamma_dims, beta)), g.tensor("m")}, {t("y")}, "add");
    g.inputs = {x};
    if (!v.eps_constant) g.inputs.push_back(eps);
    g.outputs = {g.tensor("y")};
  }
};

std::vector<float> run(Graph& g, const std::vector<float>& x, bool fused) {
  BuildOptions o;
  if (!fused) o.skip_rewrites = {"layernorm"};
  auto engine = Engine::build(g, o);
  EXPECT_EQ(engine->layers().size() == 1, fused);
  auto ctx = engine->create_context();
  ctx->set_input("x", F({2, 7, 32}, x));
  ctx->run();
  return floats(ctx->output("y"));
}

TEST(LayerNorm, RewriteCollapsesExportedChain) {
  for (int64_t opset : {13, 17}) {
    ExportedLayerNorm m(Variant{.opset = opset});
    std::vector<NotFolded> rejected;
    EXPECT_EQ(fuse_layernorm(m.g, &rejected), 1u);
    EXPECT_TRUE(rejected.empty());
    ASSERT_EQ(m.g.num_nodes(), 1u);
    const Node* ln = m.g.nodes()[0].get();
    EXPECT_EQ(ln->op, "LayerNormalization");
    EXPECT_EQ(ln->domain, opset >= 17 ? "" : "kiln");
    EXPECT_EQ(ln->attrs.get_int("axis", 0), 2);
    EXPECT_FLOAT_EQ(ln->attrs.get_float("epsilon", 0), 1e-5f);
    EXPECT_EQ(ln->inputs().size(), 3u);
    EXPECT_EQ(std::get<std::vector<std::string>>(ln->attrs.find("kiln_fused")->value).size(), 9u);
    EXPECT_EQ(ln->output(0)->name, "y");
    m.g.validate();
  }
  // Through the engine (cpu.layernorm) against the unfused chain, with data whose mean dwarfs its spread.
  for (const std::vector<int64_t>& gd : {std::vector<int64_t>{32}, {1, 1, 32}}) {
    ExportedLayerNorm a(Variant{.gamma_dims = gd}), b(Variant{.gamma_dims = gd});
    dynamic_cast<Constant*>(b.g.tensor("gamma"))->set_values(F(gd, a.gamma));
    dynamic_cast<Constant*>(b.g.tensor("beta"))->set_values(F(gd, a.beta));
    auto x = randf(2 * 7 * 32);
    for (float& v : x) v += 50.f;
    const auto want = run(b.g, x, false), got = run(a.g, x, true);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LT(rel_l2(got.data(), want.data(), static_cast<int64_t>(got.size())), 1e-5);
  }
}

TEST(LayerNorm, RewriteLeavesOtherChainsAlone) {
  auto expect_left = [](Variant v, const char* why) {
    ExportedLayerNorm m(v);
    const size_t before = m.g.num_nodes();
    std::vector<NotFolded> rejected;
    EXPECT_EQ(fuse_layernorm(m.g, &rejected), 0u) << why;
    EXPECT_EQ(m.g.num_nodes(), before) << why;
    ASSERT_EQ(rejected.size(), 1u) << why;
    EXPECT_NE(rejected[0].reason.find(why), std::string::npos) << rejected[0].reason;
  };
  expect_left(Variant{.axis = 1}, "trailing axes");
  expect_left(Variant{.exponent = 3.f}, "exponent");
  expect_left(Variant{.eps_constant = false}, "epsilon");
}

}  // namespace
}  // namespace kiln
