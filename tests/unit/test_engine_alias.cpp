// Zero-copy views in the engine: Reshape/Flatten/Squeeze/Unsqueeze/Identity/Dropout layers become "alias"
// layers whose output shares the input's buffer. Checked against loops written here, for memory, and
// through save/load.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "kiln/engine.h"

namespace kiln {
namespace {

TensorData random_tensor(std::vector<int64_t> dims, uint32_t seed) {
  TensorData t(DType::Float, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

bool is_view(const std::string& op) {
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" || op == "Identity" ||
         op == "Dropout";
}

void expect_views_aliased(const Engine& e, size_t expected_aliases) {
  size_t aliases = 0;
  for (const LayerInfo& l : e.layers()) {
    EXPECT_EQ(is_view(l.op), l.kernel == "alias") << l.name << " (" << l.op << ") runs " << l.kernel;
    aliases += l.kernel == "alias";
  }
  EXPECT_EQ(aliases, expected_aliases);
}

// x[2,3,4,5] → Relu → Reshape[2,60] → Unsqueeze(1) → Add(z[2,1,60]) → Squeeze(1) → Reshape[6,20] → y
std::unique_ptr<Graph> chain_graph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{2, 3, 4, 5});
  auto* z = g->add_variable("z", DType::Float, Shape{2, 1, 60});
  auto v = [&](const char* n) { return g->add_variable(n); };
  g->add_node("Relu", {x}, {v("r")}, "relu");
  g->add_node("Reshape", {g->tensor("r"), g->add_constant("s1", TensorData::vector_int64({2, 60}))}, {v("a")},
              "reshape1");
  g->add_node("Unsqueeze", {g->tensor("a"), g->add_constant("ax", TensorData::vector_int64({1}))}, {v("u")},
              "unsqueeze");
  g->add_node("Add", {g->tensor("u"), z}, {v("s")}, "add");
  g->add_node("Squeeze", {g->tensor("s"), g->add_constant("ax2", TensorData::vector_int64({1}))}, {v("q")},
              "squeeze");
  g->add_node("Reshape", {g->tensor("q"), g->add_constant("s2", TensorData::vector_int64({6, 20}))}, {v("y")},
              "reshape2");
  g->inputs = {x, z};
  g->outputs = {g->tensor("y")};
  return g;
}

void check_chain(Engine& e, uint32_t seed) {
  TensorData x = random_tensor({2, 3, 4, 5}, seed), z = random_tensor({2, 1, 60}, seed + 1);
  auto ctx = e.create_context();
  ctx->set_input("x", x);
  ctx->set_input("z", z);
  ctx->run();
  const TensorData& y = ctx->output("y");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{6, 20}));
  for (int64_t i = 0; i < 120; ++i)
    EXPECT_EQ(y.data<float>()[i], std::max(x.data<float>()[i], 0.f) + z.data<float>()[i]) << i;
}

TEST(EngineAlias, ChainOfViewsSharesBuffers) {
  auto engine = Engine::build(*chain_graph());
  expect_views_aliased(*engine, 4);
  // Buffers: x, z, Relu's r (shared by its Reshape and Unsqueeze) and Add's s (shared by Squeeze, Reshape):
  // four without reuse, and at the Add z, r and s are alive at once.
  constexpr size_t kBuf = 512;  // 120 floats, 64-byte aligned
  EXPECT_EQ(engine->total_activation_bytes(), 4 * kBuf);
  EXPECT_LE(engine->planned_activation_bytes(), 3 * kBuf);
  check_chain(*engine, 1);
  check_chain(*engine, 5);  // the arena is reused
}

TEST(EngineAlias, SaveLoadKeepsAliases) {
  auto engine = Engine::build(*chain_graph());
  const std::string path = ::testing::TempDir() + "/kiln_alias_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  auto loaded = Engine::load(path);
  std::remove(path.c_str());
  ASSERT_EQ(loaded->layers().size(), engine->layers().size());
  for (size_t k = 0; k < engine->layers().size(); ++k)
    EXPECT_EQ(loaded->layers()[k].kernel, engine->layers()[k].kernel);
  EXPECT_EQ(loaded->planned_activation_bytes(), engine->planned_activation_bytes());
  EXPECT_EQ(loaded->total_activation_bytes(), engine->total_activation_bytes());
  check_chain(*loaded, 9);
}

// A view with several consumers, a root read after its views, views that are graph outputs (of an alias
// chain, and of a graph input): the root buffer must survive until the last of them.
//   r = Relu(x); a = Reshape(r, [6,20]); p = Sigmoid(a); m = Mul(a, p); y1 = Dropout(Identity(m))
//   y2 = Flatten(a); y3 = Add(r, x); y4 = Reshape(x, [120])
TEST(EngineAlias, ViewWithSeveralConsumersAndOutputs) {
  Graph g;
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{2, 3, 4, 5});
  auto v = [&](const char* n) { return g.add_variable(n); };
  g.add_node("Relu", {x}, {v("r")}, "relu");
  g.add_node("Reshape", {g.tensor("r"), g.add_constant("s1", TensorData::vector_int64({6, 20}))}, {v("a")}, "rs");
  g.add_node("Sigmoid", {g.tensor("a")}, {v("p")}, "sig");
  g.add_node("Mul", {g.tensor("a"), g.tensor("p")}, {v("m")}, "mul");
  g.add_node("Identity", {g.tensor("m")}, {v("i")}, "id");
  g.add_node("Dropout", {g.tensor("i")}, {v("y1")}, "drop");
  g.add_node("Flatten", {g.tensor("a")}, {v("y2")}, "flat");
  g.add_node("Add", {g.tensor("r"), x}, {v("y3")}, "add");
  g.add_node("Reshape", {x, g.add_constant("s2", TensorData::vector_int64({120}))}, {v("y4")}, "rsx");
  g.inputs = {x};
  g.outputs = {g.tensor("y1"), g.tensor("y2"), g.tensor("y3"), g.tensor("y4")};

  auto engine = Engine::build(g);
  expect_views_aliased(*engine, 5);
  const std::string path = ::testing::TempDir() + "/kiln_alias2_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  auto loaded = Engine::load(path);
  std::remove(path.c_str());
  expect_views_aliased(*loaded, 5);
  for (Engine* e : {engine.get(), loaded.get()}) {
    TensorData x_val = random_tensor({2, 3, 4, 5}, 3);
    auto ctx = e->create_context();
    ctx->set_input("x", x_val);
    ctx->run();
    const float* xs = x_val.data<float>();
    for (int64_t i = 0; i < 120; ++i) {
      const float r = std::max(xs[i], 0.f);
      EXPECT_NEAR(ctx->output("y1").data<float>()[i], r / (1.f + std::exp(-r)), 1e-6f) << i;
      EXPECT_EQ(ctx->output("y2").data<float>()[i], r) << i;
      EXPECT_EQ(ctx->output("y3").data<float>()[i], r + xs[i]) << i;
      EXPECT_EQ(ctx->output("y4").data<float>()[i], xs[i]) << i;
    }
    EXPECT_EQ(ctx->output("y2").dims(), (std::vector<int64_t>{6, 20}));
    EXPECT_EQ(ctx->output("y4").dims(), (std::vector<int64_t>{120}));
  }
}

// The root's last direct reader is the first view; a layer in between (Tanh) would reuse the root's buffer
// if the views did not extend its lifetime:
//   r = Relu(x); a = Reshape(r, [120]); b = Tanh(x); u = Reshape(a, [2,60]); y = Add(u, b)
TEST(EngineAlias, ViewsKeepTheRootBufferAlive) {
  Graph g;
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{2, 60});
  auto v = [&](const char* n) { return g.add_variable(n); };
  g.add_node("Relu", {x}, {v("r")}, "relu");
  g.add_node("Reshape", {g.tensor("r"), g.add_constant("s1", TensorData::vector_int64({120}))}, {v("a")}, "rs1");
  g.add_node("Tanh", {x}, {v("b")}, "tanh");
  g.add_node("Reshape", {g.tensor("a"), g.add_constant("s2", TensorData::vector_int64({2, 60}))}, {v("u")}, "rs2");
  g.add_node("Add", {g.tensor("u"), g.tensor("b")}, {v("y")}, "add");
  g.inputs = {x};
  g.outputs = {g.tensor("y")};
  auto engine = Engine::build(g);
  expect_views_aliased(*engine, 2);
  TensorData x_val = random_tensor({2, 60}, 12);
  auto ctx = engine->create_context();
  ctx->set_input("x", x_val);
  ctx->run();
  for (int64_t i = 0; i < 120; ++i) {
    const float xv = x_val.data<float>()[i];
    EXPECT_NEAR(ctx->output("y").data<float>()[i], std::max(xv, 0.f) + std::tanh(xv), 1e-6f) << i;
  }
}

TEST(EngineAlias, ViewOfAConstantKeepsItsKernel) {
  // Folding is what normally removes these; with a view of a constant left in the graph, it must not alias
  // (constants are not in the arena).
  Graph g;
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{2, 3});
  g.add_node("Identity", {g.add_constant("c", random_tensor({2, 3}, 4))}, {g.add_variable("ci")}, "idc");
  g.add_node("Add", {x, g.tensor("ci")}, {g.add_variable("y")}, "add");
  g.inputs = {x};
  g.outputs = {g.tensor("y")};
  BuildOptions o;
  o.fold.max_folded_bytes = 0;  // keep the Identity of the constant
  auto engine = Engine::build(g, o);
  bool found = false;
  for (const LayerInfo& l : engine->layers())
    if (l.op == "Identity") {
      found = true;
      EXPECT_NE(l.kernel, "alias");
    }
  EXPECT_TRUE(found);
  TensorData x_val = random_tensor({2, 3}, 8);
  auto ctx = engine->create_context();
  ctx->set_input("x", x_val);
  ctx->run();
  const TensorData c = random_tensor({2, 3}, 4);
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_EQ(ctx->output("y").data<float>()[i], x_val.data<float>()[i] + c.data<float>()[i]);
}

}  // namespace
}  // namespace kiln
