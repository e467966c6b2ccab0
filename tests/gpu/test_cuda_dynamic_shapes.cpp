// Dynamic engines on CUDA: one engine with an optimization profile runs several input shapes (a plan per shape,
// the opt shape's kernels reused), each checked against the CPU reference on the same random input; a graph
// whose shapes depend on computed values is refused at build time with a one-line error.
#include "gpu_test_util.h"

namespace kiln::gpu_test {
namespace {

// x [N, 8, H, W] -> Conv 8->16 3x3 pad 1 -> Relu -> Transpose to NHWC -> y [N, H, W, 16].
std::unique_ptr<Graph> make_graph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{Dim::symbolic("N"), 8, Dim::symbolic("H"), Dim::symbolic("W")});
  auto v = [&](const char* n) { return g->add_variable(n); };
  g->add_node("Conv", {x, g->add_constant("w", random_tensor({16, 8, 3, 3})), g->add_constant("b", random_tensor({16}))},
              {v("c")}, "conv")
      ->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g->add_node("Relu", {g->tensor("c")}, {v("r")}, "relu");
  g->add_node("Transpose", {g->tensor("r")}, {v("y")}, "nhwc")->attrs.set("perm", std::vector<int64_t>{0, 2, 3, 1});
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
  for (std::vector<int64_t> dims : {std::vector<int64_t>{1, 8, 8, 8}, {4, 8, 32, 32}, {3, 8, 17, 45}, {16, 8, 64, 64}, {4, 8, 32, 32}}) {
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
    EXPECT_LE(rel_l2(ctx->output("y"), ref_ctx->output("y")), tolerance(DType::Float, false)) << to_string(make_shape(dims));
  }
  EXPECT_EQ(error_of([&] { ctx->set_input("x", random_tensor({17, 8, 8, 8})); }),
            "input 'x' dim 0 = 17 is outside every profile (profile 0: 1..16)");
}

TEST(CudaDynamicShapes, ValueDependentShapesAreRefusedAtBuild) {
  KILN_REQUIRE_GPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* n = g->add_variable("n", DType::Int64, Shape{});
  g->add_node("Range", {g->add_constant("start", TensorData::scalar_int64(0)), n,
                        g->add_constant("delta", TensorData::scalar_int64(1))},
              {g->add_variable("y")}, "range");
  g->inputs = {n};
  g->outputs = {g->tensor("y")};
  BuildOptions o;
  o.device = "cuda";
  EXPECT_NE(error_of([&] { Engine::build(*g, o); }).find("data-dependent shapes are not supported"), std::string::npos);
}

}  // namespace
}  // namespace kiln::gpu_test
