// Engine build/run/save/load on graphs the test builds, checked against loops written here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "kiln/engine.h"
#include "ops/op.h"

namespace kiln {
namespace {

// An op kiln can infer but has no kernel for on any device.
void infer_like_input(ops::InferContext& ctx) {
  ctx.out[0].dtype = ctx.input(0).dtype;
  ctx.out[0].shape = ctx.input(0).shape;
}
KILN_REGISTER_OP({.op = "NoKernelOp", .domain = "kiln.test", .infer = infer_like_input});

TensorData random_tensor(std::vector<int64_t> dims, uint32_t seed) {
  TensorData t(DType::Float, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// y = Elu(Relu(x) * w + x) reshaped to [N, -1] via a Shape chain; a dead Tanh branch.
std::unique_ptr<Graph> make_graph(const TensorData& w) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{2, 3, 4});
  auto* wc = g->add_constant("w", w);
  auto v = [&](const char* n) { return g->add_variable(n); };
  g->add_node("Relu", {x}, {v("r")}, "relu");
  g->add_node("Mul", {g->tensor("r"), wc}, {v("m")}, "mul");
  g->add_node("Add", {g->tensor("m"), x}, {v("s")}, "add");
  g->add_node("Elu", {g->tensor("s")}, {v("e")}, "elu")->attrs.set("alpha", 0.5f);
  g->add_node("Shape", {x}, {v("shape")}, "shape");
  g->add_node("Gather", {g->tensor("shape"), g->add_constant("zero", TensorData::scalar_int64(0))}, {v("n")}, "gather");
  g->add_node("Unsqueeze", {g->tensor("n"), g->add_constant("axes", TensorData::vector_int64({0}))}, {v("n1")},
              "unsq");
  g->add_node("Concat", {g->tensor("n1"), g->add_constant("m1", TensorData::vector_int64({-1}))}, {v("target")},
              "concat")
      ->attrs.set("axis", int64_t{0});
  g->add_node("Reshape", {g->tensor("e"), g->tensor("target")}, {v("y")}, "reshape");
  g->add_node("Tanh", {x}, {v("dead")}, "dead");
  g->inputs = {x};
  g->outputs = {g->tensor("y")};
  return g;
}

std::vector<float> expected(const TensorData& x, const TensorData& w) {
  std::vector<float> out(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    float xv = x.data<float>()[i];
    float s = std::max(xv, 0.f) * w.data<float>()[i % 4] + xv;
    out[static_cast<size_t>(i)] = s > 0 ? s : 0.5f * (std::exp(s) - 1.f);
  }
  return out;
}

void expect_close(const TensorData& got, const std::vector<float>& want) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got.data<float>()[i], want[i], 1e-6f) << i;
}

TEST(Engine, BuildsFoldsAndRunsCorrectly) {
  TensorData w = random_tensor({4}, 1);
  auto g = make_graph(w);
  std::vector<std::string> log;
  BuildOptions o;
  o.log = [&](const std::string& s) { log.push_back(s); };
  auto engine = Engine::build(*g, o);
  EXPECT_EQ(engine->layers().size(), 4u);  // shape chain folded, dead branch gone, Add+Elu one chain
  EXPECT_FALSE(log.empty());
  ASSERT_EQ(engine->outputs().size(), 1u);
  EXPECT_EQ(engine->outputs()[0].dims, (std::vector<int64_t>{2, 12}));
  EXPECT_LT(engine->planned_activation_bytes(), engine->total_activation_bytes());  // buffers are reused
  auto ctx = engine->create_context();
  for (uint32_t seed : {2u, 3u}) {  // fresh inputs each run; the arena is reused
    TensorData x = random_tensor({2, 3, 4}, seed);
    ctx->set_input("x", x);
    ctx->run();
    expect_close(ctx->output("y"), expected(x, w));
  }
  EXPECT_EQ(g->num_nodes(), 10u);  // the user's graph is untouched
}

TEST(Engine, SaveLoadRoundTripWithoutTheModel) {
  TensorData w = random_tensor({4}, 4);
  auto engine = Engine::build(*make_graph(w));
  const std::string path = ::testing::TempDir() + "/kiln_engine_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  auto loaded = Engine::load(path);
  ASSERT_EQ(loaded->layers().size(), engine->layers().size());
  for (size_t k = 0; k < engine->layers().size(); ++k)
    EXPECT_EQ(loaded->layers()[k].kernel, engine->layers()[k].kernel);
  EXPECT_EQ(loaded->planned_activation_bytes(), engine->planned_activation_bytes());
  TensorData x = random_tensor({2, 3, 4}, 5);
  auto ctx = loaded->create_context();
  ctx->set_input("x", x);
  ctx->run();
  expect_close(ctx->output("y"), expected(x, w));
  std::remove(path.c_str());
}

TEST(Engine, CorruptOrForeignEngineFilesAreRejected) {
  auto engine = Engine::build(*make_graph(random_tensor({4}, 6)));
  const std::string path = ::testing::TempDir() + "/kiln_corrupt_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write = [&](const std::string& b) { std::ofstream(path, std::ios::binary | std::ios::trunc) << b; };
  auto expect_error = [&](const char* what) {
    try {
      Engine::load(path);
      ADD_FAILURE() << "expected an error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x5a;
  write(flipped);
  expect_error("a flipped byte");
  write(bytes.substr(0, bytes.size() - 10));
  expect_error("a truncated file");
  std::string version = bytes;
  version[8] = 99;
  write(version);
  expect_error("a newer format version");
  write("not an engine at all");
  expect_error("a foreign file");
  std::remove(path.c_str());
  EXPECT_THROW(Engine::load(path), Error);  // missing
}

TEST(Engine, WrongInputsGiveClearErrors) {
  auto engine = Engine::build(*make_graph(random_tensor({4}, 7)));
  auto ctx = engine->create_context();
  EXPECT_THROW(ctx->run(), Error);  // input not set
  EXPECT_THROW(ctx->set_input("x", random_tensor({2, 3, 5}, 1)), Error);
  EXPECT_THROW(ctx->set_input("x", TensorData(DType::Int64, {2, 3, 4})), Error);
  EXPECT_THROW(ctx->set_input("nope", random_tensor({2, 3, 4}, 1)), Error);
  EXPECT_THROW(ctx->output("y"), Error);  // not run yet
}

// Caller-owned device memory is for devices with their own (tests/gpu/test_cuda_device_io.cpp runs it); a CPU
// engine refuses it naming the tensor. output_info gives the last run's output without downloading it.
TEST(Engine, DeviceMemoryCallsOnACpuEngine) {
  auto engine = Engine::build(*make_graph(random_tensor({4}, 7)));
  auto ctx = engine->create_context();
  EXPECT_THROW(ctx->output_info("y"), Error);  // not run yet
  float dummy[24] = {};
  try {
    ctx->set_input_device("x", dummy, DType::Float, {2, 3, 4});
    ADD_FAILURE() << "a cpu engine took device memory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
  ctx->set_input("x", random_tensor({2, 3, 4}, 1));
  ctx->run();
  const TensorInfo info = ctx->output_info("y");
  EXPECT_EQ(info.dtype, ctx->output("y").dtype());
  EXPECT_EQ(info.dims, ctx->output("y").dims());
  EXPECT_THROW(ctx->output_info("nope"), Error);
  EXPECT_THROW(ctx->copy_output_to_device("y", dummy, sizeof(dummy)), Error);
}

TEST(Engine, SymbolicInputNeedsShapes) {
  Graph g;
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{Dim::symbolic("N"), 3});
  auto* y = g.add_variable("y");
  g.add_node("Relu", {x}, {y}, "relu");
  g.inputs = {x};
  g.outputs = {y};
  EXPECT_THROW(Engine::build(g), Error);
  BuildOptions o;
  o.input_shapes["x"] = {5, 3};
  auto engine = Engine::build(g, o);
  EXPECT_EQ(engine->inputs()[0].dims, (std::vector<int64_t>{5, 3}));
  o.input_shapes["x"] = {5, 4};
  EXPECT_THROW(Engine::build(g, o), Error);  // contradicts the static dim
}

TEST(Engine, OpWithoutKernelIsNamedInTheError) {
  Graph g;
  g.source = "m.onnx";
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{1, 1, 4, 4});
  auto* y = g.add_variable("y");
  g.set_opset("kiln.test", 1);
  g.add_node("NoKernelOp", {x}, {y}, "lp", "kiln.test");
  g.inputs = {x};
  g.outputs = {y};
  try {
    Engine::build(g);
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("m.onnx"), std::string::npos) << m;
    EXPECT_NE(m.find("'lp'"), std::string::npos) << m;
    EXPECT_NE(m.find("NoKernelOp"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace kiln
