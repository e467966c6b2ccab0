// Host fallback on CUDA: a build lists every layer without a CUDA kernel in one error; with
// allow_host_fallback those layers run on the host between CUDA layers (copies enqueued on the stream, the
// reference kernel in a host callback), eagerly and replayed as a CUDA graph, and match the CPU reference; a
// failure inside the host work surfaces as an error naming the layer, once the run is over.
#include "gpu_test_util.h"

namespace kiln::gpu_test {
namespace {

// x [4, 3, 3] -> Relu -> Det -> Neg -> y [4]; Det (no CUDA kernel) sits between two CUDA layers, and a second
// Det reads a constant (read from the host copy, never uploaded).
std::unique_ptr<Graph> det_graph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  auto* x = g->add_variable("x", DType::Float, Shape{4, 3, 3});
  auto v = [&](const char* n) { return g->add_variable(n); };
  g->add_node("Relu", {x}, {v("r")}, "relu");
  g->add_node("Det", {g->tensor("r")}, {v("d")}, "det");
  g->add_node("Neg", {g->tensor("d")}, {v("y")}, "neg");
  g->add_node("Det", {g->add_constant("m", random_tensor({2, 5, 5}))}, {v("dm")}, "det_of_constant");
  g->add_node("Add", {g->tensor("dm"), g->add_constant("one", random_tensor({2}))}, {v("z")}, "add");
  g->inputs = {x};
  g->outputs = {g->tensor("y"), g->tensor("z")};
  return g;
}

TEST(CudaHostFallback, BuildListsEveryLayerWithoutAKernel) {
  KILN_REQUIRE_GPU();
  auto g = det_graph();
  BuildOptions o = fp32();
  o.device = "cuda";
  o.fold.max_folded_bytes = 4;  // keeps det_of_constant (8 bytes out) a layer
  const std::string e = error_of([&] { Engine::build(*g, o); });
  EXPECT_NE(e.find("2 layers have no cuda kernel (--allowHostFallback runs them on the host):"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("node 'det' (Det) with inputs float32 4x3x3"), std::string::npos) << e;
  EXPECT_NE(e.find("node 'det_of_constant' (Det) with inputs float32 2x5x5"), std::string::npos) << e;
}

TEST(CudaHostFallback, FallbackLayersRunOnTheHostEagerAndInAGraph) {
  KILN_REQUIRE_GPU();
  auto g = det_graph();
  BuildOptions o = fp32();
  o.allow_host_fallback = true;
  o.fold.max_folded_bytes = 4;
  const Comparison c = compare_with_reference(*g, o);
  EXPECT_LE(c.worst(), 1e-5);
  EXPECT_TRUE(c.uses_kernel("host_fallback"));
  EXPECT_TRUE(c.uses_kernel("cuda.elementwise"));
  for (const LayerInfo& l : c.cuda_layers)  // the copies are reported: 4x3x3 floats out, 4 back
    if (l.name == "det")
      EXPECT_EQ(l.tactic, "on the host (reference kernel): 144 B to the host, 16 B back per run");

  // The same engine, many runs with fresh inputs: the captured graph replays the host work each time.
  BuildOptions ref;
  ref.reference_kernels = true;
  auto ref_engine = Engine::build(*g, ref);
  o.device = "cuda";
  auto engine = Engine::build(*g, o);
  auto ctx = engine->create_context(), ref_ctx = ref_engine->create_context();
  for (bool use_graph : {true, true, false, true}) {
    const TensorData x = random_tensor({4, 3, 3});
    ctx->set_input("x", x);
    ref_ctx->set_input("x", x);
    ctx->set_use_graph(use_graph);
    ctx->run();
    ref_ctx->run();
    EXPECT_LE(rel_l2(ctx->output("y"), ref_ctx->output("y")), 1e-5);
    EXPECT_LE(rel_l2(ctx->output("z"), ref_ctx->output("z")), 1e-5);
  }
}

TEST(CudaHostFallback, AFailureOnTheHostNamesTheLayer) {
  KILN_REQUIRE_GPU();
  // MaxUnpool has no CUDA kernel; an index outside the unpooled tensor fails in the reference.
  auto g = one_node_graph("MaxUnpool", {{{1, 1, 2, 2}}, {{1, 1, 2, 2}, DType::Int64}});
  g->nodes().front()->attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  g->nodes().front()->attrs.set("strides", std::vector<int64_t>{2, 2});
  BuildOptions o;
  o.device = "cuda";
  o.allow_host_fallback = true;
  auto engine = Engine::build(*g, o);
  auto ctx = engine->create_context();
  ctx->set_input("x0", random_tensor({1, 1, 2, 2}));
  TensorData indices(DType::Int64, {1, 1, 2, 2});
  auto* at = static_cast<int64_t*>(indices.raw());
  at[0] = 0, at[1] = 99, at[2] = 8, at[3] = 15;
  ctx->set_input("x1", indices);
  const std::string e = error_of([&] { ctx->run(); });
  EXPECT_NE(e.find("layer 'the_MaxUnpool' (MaxUnpool): on the host:"), std::string::npos) << e;
  EXPECT_NE(e.find("I[1] = 99 is outside the unpooled tensor's 16 elements"), std::string::npos) << e;
  // A good input afterwards runs (the failure is not sticky).
  at[1] = 3;
  ctx->set_input("x1", indices);
  EXPECT_EQ(error_of([&] { ctx->run(); }), "(no error)");
}

}  // namespace
}  // namespace kiln::gpu_test
