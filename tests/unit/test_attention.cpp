// fuse_attention on attention as nn.MultiheadAttention exports it (Div(Q, sqrt(Dh)), MatMul with the
// transposed K, optional additive mask, Softmax, MatMul with V): the rewrite fires and kiln.Attention's
// reference matches the unfused graph; near-misses are left alone; the CPU (no Attention kernel of its own
// besides the reference) keeps its MatMul/Softmax kernels. CUDA kernels: kiln_backend_sweep.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "kiln/engine.h"
#include "kiln/passes.h"
#include "passes/rewrites.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

struct Variant {
  int64_t softmax_axis = -1;
  bool mask = true;
  bool scale_scalar = true;    // false: Q is multiplied by a [Dh] constant
  bool scale_div = true;       // Div(Q, 8) or Mul(8^-1, Q)
  bool scores_output = false;  // the scores are also a graph output (a second consumer)
};

constexpr int64_t kB = 2, kH = 3, kS = 5, kSkv = 7, kDh = 8, kDv = 6;

// q [B, H, S, Dh], k [B, H, Skv, Dh] (transposed in the graph), v [B, H, Skv, Dv], mask [B, 1, 1, Skv].
struct ExportedAttention {
  Graph g;
  explicit ExportedAttention(const Variant& v) {
    g.set_opset("", 17);
    Tensor* q = g.add_variable("q", DType::Float, Shape{kB, kH, kS, kDh});
    Tensor* k = g.add_variable("k", DType::Float, Shape{kB, kH, kSkv, kDh});
    Tensor* val = g.add_variable("v", DType::Float, Shape{kB, kH, kSkv, kDv});
    auto t = [&](const char* n) { return g.add_variable(n); };
    g.add_node("Transpose", {k}, {t("kt")}, "transpose")->attrs.set("perm", std::vector<int64_t>{0, 1, 3, 2});
    if (!v.scale_scalar)
      g.add_node("Mul", {q, g.add_constant("c", F({kDh}, randf(kDh)))}, {t("qs")}, "scale");
    else if (v.scale_div)
      g.add_node("Div", {q, g.add_constant("c", TensorData::scalar_float(8.f))}, {t("qs")}, "scale");
    else
      g.add_node("Mul", {g.add_constant("c", TensorData::scalar_float(0.125f)), q}, {t("qs")}, "scale");
    g.add_node("MatMul", {g.tensor("qs"), g.tensor("kt")}, {t("scores")}, "qk");
    Tensor* logits = g.tensor("scores");
    if (v.mask) {
      g.inputs.push_back(g.add_variable("mask", DType::Float, Shape{kB, 1, 1, kSkv}));
      g.add_node("Add", {logits, g.tensor("mask")}, {t("masked")}, "add_mask");
      logits = g.tensor("masked");
    }
    g.add_node("Softmax", {logits}, {t("p")}, "softmax")->attrs.set("axis", v.softmax_axis);
    g.add_node("MatMul", {g.tensor("p"), val}, {t("y")}, "pv");
    g.inputs.insert(g.inputs.begin(), {q, k, val});
    g.outputs = {g.tensor("y")};
    if (v.scores_output) g.outputs.push_back(g.tensor("scores"));
    fold_constants(g);  // infers the shapes the rewrite checks, as the builder does before rewrites
  }
};

std::map<std::string, TensorData> random_inputs(bool mask) {
  std::map<std::string, TensorData> in{{"q", F({kB, kH, kS, kDh}, randf(kB * kH * kS * kDh))},
                                       {"k", F({kB, kH, kSkv, kDh}, randf(kB * kH * kSkv * kDh))},
                                       {"v", F({kB, kH, kSkv, kDv}, randf(kB * kH * kSkv * kDv))}};
  if (mask) {
    std::vector<float> m = randf(kB * kSkv);
    m[3] = -INFINITY;  // a masked-out key
    in["mask"] = F({kB, 1, 1, kSkv}, m);
  }
  return in;
}

std::vector<float> run(Graph& g, const std::map<std::string, TensorData>& in, std::string* layer_ops) {
  auto engine = Engine::build(g);
  for (const LayerInfo& l : engine->layers()) *layer_ops += l.op + " ";
  auto ctx = engine->create_context();
  for (const auto& [name, value] : in) ctx->set_input(name, value);
  ctx->run();
  return floats(ctx->output("y"));
}

TEST(Attention, RewriteFusesExportedAttentionAndMatchesIt) {
  for (const Variant& v : {Variant{}, Variant{.mask = false}, Variant{.scale_div = false},
                           Variant{.softmax_axis = 3, .mask = false}}) {
    ExportedAttention fused(v), plain(v);
    std::vector<NotFolded> rejected;
    ASSERT_EQ(fuse_attention(fused.g, &rejected), 1u);
    EXPECT_TRUE(rejected.empty());
    fused.g.validate();
    ASSERT_EQ(fused.g.num_nodes(), 2u);  // K's Transpose stays a layer
    const Node* a = fused.g.nodes()[1].get();
    EXPECT_EQ(a->op, "Attention");
    EXPECT_EQ(a->domain, "kiln");
    EXPECT_FLOAT_EQ(a->attrs.get_float("scale", 0), 0.125f);
    EXPECT_EQ(a->inputs().size(), v.mask ? 4u : 3u);
    EXPECT_EQ(a->input(0)->name, "q");
    EXPECT_EQ(a->input(1)->name, "kt");
    EXPECT_EQ(std::get<std::vector<std::string>>(a->attrs.find("kiln_fused")->value).size(),
              v.mask ? 5u : 4u);
    EXPECT_EQ(a->output(0)->name, "y");

    const auto in = random_inputs(v.mask);
    std::string fused_ops, plain_ops;
    const auto got = run(fused.g, in, &fused_ops), want = run(plain.g, in, &plain_ops);
    EXPECT_NE(fused_ops.find("Attention"), std::string::npos) << fused_ops;
    // On the CPU the builder leaves attention to the MatMul/Softmax kernels (the reference would be slower).
    EXPECT_EQ(plain_ops.find("Attention"), std::string::npos) << plain_ops;
    EXPECT_NE(plain_ops.find("Softmax"), std::string::npos) << plain_ops;
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LT(rel_l2(got.data(), want.data(), static_cast<int64_t>(got.size())), 1e-5);
  }
}

TEST(Attention, RewriteLeavesNearMissesAlone) {
  auto expect_left = [](const Variant& v, const char* why) {
    ExportedAttention m(v);
    const size_t before = m.g.num_nodes();
    std::vector<NotFolded> rejected;
    EXPECT_EQ(fuse_attention(m.g, &rejected), 0u) << why;
    EXPECT_EQ(m.g.num_nodes(), before) << why;
    if (*why) {
      ASSERT_EQ(rejected.size(), 1u) << why;
      EXPECT_NE(rejected[0].reason.find(why), std::string::npos) << rejected[0].reason;
    }
  };
  expect_left(Variant{.softmax_axis = 2}, "not over the last axis");
  expect_left(Variant{.softmax_axis = -2, .mask = false}, "not over the last axis");
  expect_left(Variant{.scale_scalar = false}, "not a float scalar constant");
  expect_left(Variant{.scores_output = true}, "");  // the scores have another reader: no attention at all
}

TEST(Attention, ReferenceRejectsShapesThatDoNotFit) {
  ExportedAttention m(Variant{.mask = false});
  ASSERT_EQ(fuse_attention(m.g), 1u);
  Node* a = m.g.nodes()[1].get();
  a->input(2)->shape = Shape{kB, kH, kSkv + 1, kDv};  // V's rows no longer match Kt's columns
  EXPECT_NE(error_of([&] { Engine::build(m.g); }).find("do not fit"), std::string::npos);
}

}  // namespace
}  // namespace kiln
