// Dynamic engines (optimization profiles): one engine runs every shape inside its profiles, each checked
// against a fixed-shape build of the same graph with reference kernels on the same random input.
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
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// x [N, 3, H, W] -> Conv 3->4 (3x3, pad 1) -> Relu -> Reshape to [N, -1] through a Shape chain -> y [N,
// 4*H*W]. The Shape chain folds only once N is known, so each specialization must fold it again.
std::unique_ptr<Graph> make_graph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float,
                            Shape{Dim::symbolic("N"), 3, Dim::symbolic("H"), Dim::symbolic("W")});
  auto v = [&](const char* n) { return g->add_variable(n); };
  g->add_node(
       "Conv",
       {x, g->add_constant("w", random_tensor({4, 3, 3, 3}, 1)), g->add_constant("b", random_tensor({4}, 2))},
       {v("c")}, "conv")
      ->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g->add_node("Relu", {g->tensor("c")}, {v("r")}, "relu");
  g->add_node("Shape", {x}, {v("shape")}, "shape");
  g->add_node("Gather", {g->tensor("shape"), g->add_constant("zero", TensorData::scalar_int64(0))}, {v("n")},
              "gather");
  g->add_node("Unsqueeze", {g->tensor("n"), g->add_constant("axes", TensorData::vector_int64({0}))},
              {v("n1")}, "unsq");
  g->add_node("Concat", {g->tensor("n1"), g->add_constant("m1", TensorData::vector_int64({-1}))},
              {v("target")}, "concat")
      ->attrs.set("axis", int64_t{0});
  g->add_node("Reshape", {g->tensor("r"), g->tensor("target")}, {v("y")}, "reshape");
  g->inputs = {x};
  g->outputs = {g->tensor("y")};
  return g;
}

BuildOptions dynamic_options() {
  BuildOptions o;
  o.threads = 1;
  o.profiles = {{{"x", {{1, 3, 4, 4}, {2, 3, 8, 8}, {4, 3, 16, 16}}}}};
  return o;
}

// The oracle: the graph built for exactly this shape with reference kernels.
TensorData reference_output(const TensorData& x) {
  BuildOptions o;
  o.threads = 1;
  o.reference_kernels = true;
  o.input_shapes["x"] = x.dims();
  auto engine = Engine::build(*make_graph(), o);
  auto ctx = engine->create_context();
  ctx->set_input("x", x);
  ctx->run();
  return ctx->output("y");
}

void expect_close(const TensorData& got, const TensorData& want) {
  ASSERT_EQ(got.dims(), want.dims());
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double e = double(got.data<float>()[i]) - double(want.data<float>()[i]);
    num += e * e;
    den += double(want.data<float>()[i]) * double(want.data<float>()[i]);
  }
  EXPECT_LE(std::sqrt(num / den), 1e-5);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DynamicShapes, OneEngineRunsEveryShapeInsideTheProfile) {
  auto engine = Engine::build(*make_graph(), dynamic_options());
  ASSERT_EQ(engine->inputs().size(), 1u);
  EXPECT_EQ(engine->inputs()[0].dims, (std::vector<int64_t>{-1, 3, -1, -1}));
  ASSERT_EQ(engine->profiles().size(), 1u);
  auto ctx = engine->create_context();
  uint32_t seed = 10;
  for (std::vector<int64_t> dims :
       {std::vector<int64_t>{1, 3, 4, 4}, {2, 3, 8, 8}, {3, 3, 5, 13}, {4, 3, 16, 16}, {1, 3, 4, 4}}) {
    TensorData x = random_tensor(dims, seed++);
    ctx->set_input("x", x);
    ctx->run();
    expect_close(ctx->output("y"), reference_output(x));
  }
  // min, opt and max were planned at build time; 3x3x5x13 once, on first use; the repeat of min is cached.
  EXPECT_EQ(engine->specialized_plans(), 4u);
  // Memory is reported for the largest shape: 4x4x16x16 fp32 conv output alone is 16 KiB.
  EXPECT_GE(engine->planned_activation_bytes(), size_t{4 * 4 * 16 * 16 * 4});
}

TEST(DynamicShapes, ShapesOutsideEveryProfileNameInputDimAndRange) {
  auto engine = Engine::build(*make_graph(), dynamic_options());
  auto ctx = engine->create_context();
  EXPECT_EQ(error_of([&] {
              ctx->set_input("x", random_tensor({5, 3, 8, 8}, 1));
            }),
            "input 'x' dim 0 = 5 is outside every profile (profile 0: 1..4)");
  EXPECT_EQ(error_of([&] {
              ctx->set_input_shape("x", {1, 3, 8, 17});
            }),
            "input 'x' dim 3 = 17 is outside every profile (profile 0: 4..16)");
  EXPECT_EQ(error_of([&] { ctx->set_input_shape("x", {1, 3, 8}); }), "input 'x' has rank 4, not 3 (1x3x8)");
  EXPECT_NE(error_of([&] { ctx->set_input_shape("y", {1}); }).find("the engine has no input 'y'"),
            std::string::npos);
  // A shape set after the data contradicts it: run() says so instead of reading the wrong bytes.
  ctx->set_input("x", random_tensor({2, 3, 8, 8}, 2));
  ctx->set_input_shape("x", {2, 3, 8, 9});
  EXPECT_EQ(error_of([&] { ctx->run(); }),
            "input 'x' holds 2x3x8x8 but set_input_shape gave 2x3x8x9 after it");
}

TEST(DynamicShapes, SeveralProfilesAndTheirChecks) {
  BuildOptions o = dynamic_options();
  o.profiles.push_back({{"x", {{8, 3, 4, 4}, {8, 3, 4, 4}, {12, 3, 6, 6}}}});
  auto engine = Engine::build(*make_graph(), o);
  auto ctx = engine->create_context();
  TensorData x = random_tensor({10, 3, 5, 6}, 3);  // only profile 1 holds it
  ctx->set_input("x", x);
  ctx->run();
  expect_close(ctx->output("y"), reference_output(x));
  // Each dim fits some profile, but no profile fits them all.
  EXPECT_EQ(error_of([&] {
              ctx->set_input("x", random_tensor({10, 3, 16, 16}, 4));
              ctx->run();
            }),
            "input shapes x:10x3x16x16; are not inside any one profile");

  auto build_error = [](std::function<void(BuildOptions&)> edit) {
    BuildOptions bad = dynamic_options();
    edit(bad);
    return error_of([&] { Engine::build(*make_graph(), bad); });
  };
  EXPECT_EQ(build_error([](BuildOptions& b) { b.profiles[0]["x"].opt[0] = 9; }),
            "profile 0: input 'x' dim 0: needs 0 < min <= opt <= max, got 1, 9, 4");
  EXPECT_EQ(build_error([](BuildOptions& b) { b.profiles[0]["x"].max[1] = 4; }),
            "profile 0: input 'x' dim 1 is 3 in the model; its range must be that value only");
  EXPECT_EQ(build_error([](BuildOptions& b) {
              b.profiles[0]["x"].min = {1, 3};
            }),
            "profile 0: input 'x': min, opt and max must have the model's rank (4)");
  EXPECT_EQ(build_error([](BuildOptions& b) { b.profiles[0]["z"] = b.profiles[0]["x"]; }),
            "profile 0 names 'z', which is not a model input");
  EXPECT_EQ(build_error([](BuildOptions& b) { b.profiles[0].clear(); }),
            "profile 0 gives no range for dynamic input 'x' (Nx3xHxW)");
}

TEST(DynamicShapes, SaveLoadKeepsProfilesAndKernels) {
  auto engine = Engine::build(*make_graph(), dynamic_options());
  const std::string path = ::testing::TempDir() + "/kiln_dynamic_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  auto loaded = Engine::load(path);
  std::remove(path.c_str());
  ASSERT_EQ(loaded->profiles().size(), 1u);
  EXPECT_EQ(loaded->profiles()[0].at("x").max, (std::vector<int64_t>{4, 3, 16, 16}));
  EXPECT_EQ(loaded->planned_activation_bytes(), engine->planned_activation_bytes());
  ASSERT_EQ(loaded->layers().size(), engine->layers().size());
  for (size_t k = 0; k < engine->layers().size(); ++k) {
    EXPECT_EQ(loaded->layers()[k].kernel, engine->layers()[k].kernel);
    EXPECT_EQ(loaded->layers()[k].tactic, engine->layers()[k].tactic);
  }
  auto ctx = loaded->create_context();
  TensorData x = random_tensor({3, 3, 7, 9}, 5);
  ctx->set_input("x", x);
  ctx->run();
  expect_close(ctx->output("y"), reference_output(x));
}

TEST(DynamicShapes, PlanCacheIsBounded) {
  auto engine = Engine::build(*make_graph(), dynamic_options());
  auto ctx = engine->create_context();
  for (int64_t w = 4; w <= 16; ++w)
    for (int64_t h : {4, 5}) {
      ctx->set_input("x", random_tensor({1, 3, h, w}, static_cast<uint32_t>(w * h)));
      ctx->run();
      EXPECT_EQ(ctx->output("y").dims(), (std::vector<int64_t>{1, 4 * h * w}));
    }
  EXPECT_LE(engine->specialized_plans(), 17u);
}

TEST(DynamicShapes, FixedShapeEngineRefusesOtherShapes) {
  BuildOptions o;
  o.input_shapes["x"] = {1, 3, 4, 4};
  auto engine = Engine::build(*make_graph(), o);
  EXPECT_TRUE(engine->profiles().empty());
  auto ctx = engine->create_context();
  EXPECT_EQ(error_of([&] {
              ctx->set_input_shape("x", {2, 3, 4, 4});
            }),
            "input 'x' is 1x3x4x4 in this engine (built for fixed shapes), not 2x3x4x4");
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// y = Relu(Range(0, n, 1) * 0.5 - 1) with n = the number of x's elements above 0 (ReduceSum of Greater cast to
// int64): y's length is known only once x is. Conv on a fixed-shape branch shows layers with known shapes still
// run their chosen kernels.
std::unique_ptr<Graph> make_data_dependent_graph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{1, 2, 5, 5});
  auto v = [&](const char* n) { return g->add_variable(n); };
  g->add_node("Greater", {x, g->add_constant("zero", TensorData::from_vector(DType::Float, {}, std::vector<float>{0.f}))},
              {v("pos")}, "greater");
  g->add_node("Cast", {g->tensor("pos")}, {v("pos64")}, "cast")->attrs.set("to", int64_t{7});
  g->add_node("ReduceSum", {g->tensor("pos64")}, {v("n")}, "count")->attrs.set("keepdims", int64_t{0});
  g->add_node("Range",
              {g->add_constant("start", TensorData::scalar_int64(0)), g->tensor("n"),
               g->add_constant("delta", TensorData::scalar_int64(1))},
              {v("r")}, "range");
  g->add_node("Cast", {g->tensor("r")}, {v("rf")}, "castf")->attrs.set("to", int64_t{1});
  g->add_node("Mul", {g->tensor("rf"), g->add_constant("half", TensorData::from_vector(DType::Float, {}, std::vector<float>{0.5f}))},
              {v("m")}, "mul");
  g->add_node("Sub", {g->tensor("m"), g->add_constant("one", TensorData::from_vector(DType::Float, {}, std::vector<float>{1.f}))},
              {v("s")}, "sub");
  g->add_node("Relu", {g->tensor("s")}, {v("y")}, "relu");
  g->add_node("Conv", {x, g->add_constant("w", random_tensor({3, 2, 3, 3}, 7))}, {v("c")}, "conv");
  g->inputs = {x};
  g->outputs = {g->tensor("y"), g->tensor("c")};
  return g;
}

TEST(DataDependentShapes, RunsWhereShapesDependOnComputedValues) {
  BuildOptions o;
  o.threads = 1;
  auto engine = Engine::build(*make_data_dependent_graph(), o);
  ASSERT_EQ(engine->outputs().size(), 2u);
  EXPECT_EQ(engine->outputs()[0].dims, (std::vector<int64_t>{-1}));  // known only while running
  for (const LayerInfo& l : engine->layers()) EXPECT_EQ(l.kernel, "per-run") << l.name;
  // The oracle for the Conv branch: the same plan with reference kernels only.
  BuildOptions ref = o;
  ref.reference_kernels = true;
  auto ref_engine = Engine::build(*make_data_dependent_graph(), ref);
  auto ref_ctx = ref_engine->create_context();
  auto ctx = engine->create_context();
  for (uint32_t seed : {1u, 2u, 3u}) {
    TensorData x = random_tensor({1, 2, 5, 5}, seed);
    int64_t n = 0;
    for (int64_t i = 0; i < x.numel(); ++i) n += x.data<float>()[i] > 0;
    ctx->set_input("x", x);
    ctx->run();
    const TensorData& y = ctx->output("y");
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{n}));
    for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], std::max(0.5f * float(i) - 1.f, 0.f));
    ref_ctx->set_input("x", x);
    ref_ctx->run();
    expect_close(ctx->output("c"), ref_ctx->output("c"));
    EXPECT_EQ(ctx->output("c").dims(), (std::vector<int64_t>{1, 3, 3, 3}));
  }
  // An engine file keeps such a plan.
  const std::string path = ::testing::TempDir() + "/kiln_data_dependent_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  auto loaded = Engine::load(path);
  std::remove(path.c_str());
  auto ctx2 = loaded->create_context();
  TensorData x = random_tensor({1, 2, 5, 5}, 9);
  ctx2->set_input("x", x);
  ctx->set_input("x", x);
  ctx2->run();
  ctx->run();
  EXPECT_EQ(ctx2->output("y").dims(), ctx->output("y").dims());
  const TensorData &a = ctx2->output("c"), &b = ctx->output("c");
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// The same input dims can give other output dims when a value sets them (Expand's target shape here): every run
// must produce its own shape, growing and shrinking, with the per-run executor's kernels keyed by input and
// output shapes (today Expand runs its reference, which takes any shape; a kernel made for one output shape
// would write past a smaller buffer if reused).
TEST(DataDependentShapes, KernelsFollowOutputShapesNotOnlyInputShapes) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{1, 1});
  auto* s = g->add_variable("s", DType::Int64, Shape{2});
  g->add_node("Expand", {x, s}, {g->add_variable("e")}, "expand");
  g->add_node("Relu", {g->tensor("e")}, {g->add_variable("y")}, "relu");
  g->inputs = {x, s};
  g->outputs = {g->tensor("y")};
  BuildOptions o;
  o.threads = 1;
  auto engine = Engine::build(*g, o);
  auto ctx = engine->create_context();
  for (std::vector<int64_t> target : {std::vector<int64_t>{4, 4}, {2, 3}, {4, 4}, {1, 1}}) {
    TensorData xv = TensorData::from_vector(DType::Float, {1, 1}, std::vector<float>{1.5f});
    ctx->set_input("x", xv);
    ctx->set_input("s", TensorData::vector_int64(target));
    ctx->run();
    const TensorData& y = ctx->output("y");
    ASSERT_EQ(y.dims(), target);
    for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.data<float>()[i], 1.5f);
  }
}

}  // namespace
}  // namespace kiln
