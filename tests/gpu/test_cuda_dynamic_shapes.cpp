// Dynamic engines on CUDA: one engine with an optimization profile runs several input shapes (a plan per
// shape, the opt shape's kernels reused), each checked against the CPU reference on the same random input; a
// graph whose shapes depend on computed values runs on the per-run executor.
#include "gpu_test_util.h"

namespace kiln::gpu_test {
namespace {

// x [N, 8, H, W] -> Conv 8->16 3x3 pad 1 -> Relu -> Transpose to NHWC -> y [N, H, W, 16].
std::unique_ptr<Graph> make_graph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float,
                            Shape{Dim::symbolic("N"), 8, Dim::symbolic("H"), Dim::symbolic("W")});
  auto v = [&](const char* n) { return g->add_variable(n); };
  g->add_node(
       "Conv",
       {x, g->add_constant("w", random_tensor({16, 8, 3, 3})), g->add_constant("b", random_tensor({16}))},
       {v("c")}, "conv")
      ->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g->add_node("Relu", {g->tensor("c")}, {v("r")}, "relu");
  g->add_node("Transpose", {g->tensor("r")}, {v("y")}, "nhwc")
      ->attrs.set("perm", std::vector<int64_t>{0, 2, 3, 1});
  g->inputs = {x};
  g->outputs = {g->tensor("y")};
  return g;
}

TEST(CudaDynamicShapes, OneEngineRunsEveryShapeInsideTheProfile) {
  KILN_REQUIRE_GPU();
  BuildOptions o = fp32();
  o.device = "cuda";
  o.profiles = {{{"x", {{1, 8, 8, 8}, {4, 8, 32, 32}, {16, 8, 64, 64}}}}};
  auto g = make_graph();
  auto engine = Engine::build(*g, o);
  auto ctx = engine->create_context();
  for (std::vector<int64_t> dims :
       {std::vector<int64_t>{1, 8, 8, 8}, {4, 8, 32, 32}, {3, 8, 17, 45}, {16, 8, 64, 64}, {4, 8, 32, 32}}) {
    BuildOptions ref;
    ref.reference_kernels = true;
    ref.input_shapes["x"] = dims;
    auto ref_engine = Engine::build(*g, ref);
    auto ref_ctx = ref_engine->create_context();
    TensorData x = random_tensor(dims);
    ctx->set_input("x", x);
    ctx->run();
    ref_ctx->set_input("x", x);
    ref_ctx->run();
    EXPECT_LE(rel_l2(ctx->output("y"), ref_ctx->output("y")), tolerance(DType::Float, false))
        << to_string(make_shape(dims));
  }
  EXPECT_EQ(error_of([&] {
              ctx->set_input("x", random_tensor({17, 8, 8, 8}));
            }),
            "input 'x' dim 0 = 17 is outside every profile (profile 0: 1..16)");
}

// Shapes that depend on values run on the per-run executor: Range over an input's value, then CUDA layers on
// the result, at two values in one context, equal to the CPU's.
TEST(CudaDynamicShapes, ValueDependentShapesRunPerRun) {
  KILN_REQUIRE_GPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* n = g->add_variable("n", DType::Int64, Shape{});
  auto v = [&](const char* name) { return g->add_variable(name); };
  g->add_node("Range",
              {g->add_constant("start", TensorData::scalar_int64(0)), n,
               g->add_constant("delta", TensorData::scalar_int64(1))},
              {v("r")}, "range");
  Node* cast = g->add_node("Cast", {g->tensor("r")}, {v("f")}, "cast");
  cast->attrs.set("to", static_cast<int64_t>(DType::Float));
  g->add_node("Sin", {g->tensor("f")}, {v("y")}, "sin");
  g->inputs = {n};
  g->outputs = {g->tensor("y")};
  BuildOptions ref;
  ref.reference_kernels = true;
  BuildOptions o = fp32();
  o.device = "cuda";
  auto engine = Engine::build(*g, o), ref_engine = Engine::build(*g, ref);
  EXPECT_EQ(engine->layers().at(0).kernel, "per-run");
  auto ctx = engine->create_context(), ref_ctx = ref_engine->create_context();
  for (int64_t count : {5, 1000, 5}) {
    ctx->set_input("n", TensorData::scalar_int64(count));
    ref_ctx->set_input("n", TensorData::scalar_int64(count));
    ctx->run();
    ref_ctx->run();
    ASSERT_EQ(ctx->output("y").numel(), count);
    EXPECT_LE(rel_l2(ctx->output("y"), ref_ctx->output("y")), 1e-6) << count;
  }
}

// NonZero's output is sized by its data: no CUDA kernel can plan it, so a run refuses it naming the layer,
// and runs it on the host when the build allows (the layers around it stay on the GPU).
TEST(CudaDynamicShapes, DataSizedOutputsNeedHostFallback) {
  KILN_REQUIRE_GPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{3, 4});
  auto v = [&](const char* name) { return g->add_variable(name); };
  g->add_node("Relu", {x}, {v("r")}, "relu");
  g->add_node("NonZero", {g->tensor("r")}, {v("i")}, "nonzero");
  g->add_node("Transpose", {g->tensor("i")}, {v("y")}, "transpose");
  g->inputs = {x};
  g->outputs = {g->tensor("y")};
  BuildOptions o = fp32();
  o.device = "cuda";
  const TensorData data = random_tensor({3, 4});  // about half positive
  {
    auto engine = Engine::build(*g, o);
    auto ctx = engine->create_context();
    ctx->set_input("x", data);
    const std::string e = error_of([&] { ctx->run(); });
    EXPECT_NE(e.find("layer 'nonzero' (NonZero): "), std::string::npos) << e;
    EXPECT_NE(e.find("--allowHostFallback"), std::string::npos) << e;
  }
  o.allow_host_fallback = true;
  BuildOptions ref;
  ref.reference_kernels = true;
  auto engine = Engine::build(*g, o), ref_engine = Engine::build(*g, ref);
  auto ctx = engine->create_context(), ref_ctx = ref_engine->create_context();
  ctx->set_input("x", data);
  ref_ctx->set_input("x", data);
  ctx->run();
  ref_ctx->run();
  EXPECT_EQ(ctx->output("y").dims(), ref_ctx->output("y").dims());
  EXPECT_EQ(rel_l2(ctx->output("y"), ref_ctx->output("y")), 0.0);
}

// Strings live on the host: a CUDA build refuses them up front, in the one list of layers it cannot run.
TEST(CudaDynamicShapes, HostOnlyValuesAreRefusedAtBuild) {
  KILN_REQUIRE_GPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{2});
  Node* cast = g->add_node("Cast", {x}, {g->add_variable("s")}, "to_string");
  cast->attrs.set("to", static_cast<int64_t>(DType::String));
  g->inputs = {x};
  g->outputs = {g->tensor("s")};
  BuildOptions o;
  o.device = "cuda";
  const std::string e = error_of([&] { Engine::build(*g, o); });
  EXPECT_NE(e.find("1 layer has no cuda kernel (--allowHostFallback runs them on the host):"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("node 'to_string' (Cast) (its string, sequence or optional values live on the host)"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace kiln::gpu_test
