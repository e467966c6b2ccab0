// Host fallback on CUDA: a build lists every layer without a CUDA kernel in one error; with
// allow_host_fallback those layers run on the host between CUDA layers (copies enqueued on the stream, the
// reference kernel in a host callback), eagerly and replayed as a CUDA graph, and match the CPU reference; a
// failure inside the host work surfaces as an error naming the layer, once the run is over. The layers are of
// a test-only op (kiln.test.HostCube: a reference kernel and no CUDA kernel, whatever kernels kiln gains).
#include "gpu_test_util.h"
#include "ops/op.h"

namespace kiln::gpu_test {
namespace {

void infer_host_cube(ops::InferContext& ctx) {
  ctx.out[0].dtype = ctx.input(0).dtype;
  ctx.out[0].shape = ctx.input(0).shape;
}

// y = x^3; refuses |x| > 1000 (the failure the tests provoke).
void host_cube(ops::KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.dtype() != DType::Float) ctx.fail("float32 only");
  TensorData y(DType::Float, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = static_cast<const float*>(x.raw())[i];
    if (std::fabs(v) > 1000)
      ctx.fail("x[" + std::to_string(i) + "] = " + std::to_string(v) + " is over 1000");
    static_cast<float*>(y.raw())[i] = v * v * v;
  }
  ctx.out[0] = std::move(y);
}

KILN_REGISTER_OP({.op = "HostCube", .domain = "kiln.test", .infer = infer_host_cube, .reference = host_cube});

// x [4, 3, 3] -> Relu -> HostCube -> Neg -> y; the host layer sits between two CUDA layers, and a second
// HostCube reads a constant (read from the host copy, never uploaded).
std::unique_ptr<Graph> host_graph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  g->set_opset("kiln.test", 1);
  auto* x = g->add_variable("x", DType::Float, Shape{4, 3, 3});
  auto v = [&](const char* n) { return g->add_variable(n); };
  g->add_node("Relu", {x}, {v("r")}, "relu");
  g->add_node("HostCube", {g->tensor("r")}, {v("d")}, "cube", "kiln.test");
  g->add_node("Neg", {g->tensor("d")}, {v("y")}, "neg");
  g->add_node("HostCube", {g->add_constant("m", random_tensor({2, 5}))}, {v("dm")}, "cube_of_constant",
              "kiln.test");
  g->add_node("Add", {g->tensor("dm"), g->add_constant("one", random_tensor({2, 5}))}, {v("z")}, "add");
  g->inputs = {x};
  g->outputs = {g->tensor("y"), g->tensor("z")};
  return g;
}

TEST(CudaHostFallback, BuildListsEveryLayerWithoutAKernel) {
  KILN_REQUIRE_GPU();
  auto g = host_graph();
  BuildOptions o = fp32();
  o.device = "cuda";
  o.fold.max_folded_bytes = 4;  // keeps cube_of_constant (40 bytes out) a layer
  const std::string e = error_of([&] { Engine::build(*g, o); });
  EXPECT_NE(e.find("2 layers have no cuda kernel (--allowHostFallback runs them on the host):"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("node 'cube' (HostCube) with inputs float32 4x3x3"), std::string::npos) << e;
  EXPECT_NE(e.find("node 'cube_of_constant' (HostCube) with inputs float32 2x5"), std::string::npos) << e;
}

TEST(CudaHostFallback, FallbackLayersRunOnTheHostEagerAndInAGraph) {
  KILN_REQUIRE_GPU();
  auto g = host_graph();
  BuildOptions o = fp32();
  o.allow_host_fallback = true;
  o.fold.max_folded_bytes = 4;
  const Comparison c = compare_with_reference(*g, o);
  EXPECT_LE(c.worst(), 1e-5);
  EXPECT_TRUE(c.uses_kernel("host_fallback"));
  EXPECT_TRUE(c.uses_kernel("cuda.elementwise"));
  for (const LayerInfo& l : c.cuda_layers)  // the copies are reported: 4x3x3 floats out and back
    if (l.name == "cube")
      EXPECT_EQ(l.tactic, "on the host (reference kernel): 144 B to the host, 144 B back per run");

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
  auto g = host_graph();
  BuildOptions o;
  o.device = "cuda";
  o.allow_host_fallback = true;
  o.fold.max_folded_bytes = 4;
  auto engine = Engine::build(*g, o);
  auto ctx = engine->create_context();
  TensorData x = random_tensor({4, 3, 3});
  static_cast<float*>(x.raw())[7] = 5000;
  ctx->set_input("x", x);
  const std::string e = error_of([&] { ctx->run(); });
  EXPECT_NE(e.find("layer 'cube' (HostCube): on the host:"), std::string::npos) << e;
  EXPECT_NE(e.find("x[7] = 5000.000000 is over 1000"), std::string::npos) << e;
  // A good input afterwards runs (the failure is not sticky).
  static_cast<float*>(x.raw())[7] = 1;
  ctx->set_input("x", x);
  EXPECT_EQ(error_of([&] { ctx->run(); }), "(no error)");
}

}  // namespace
}  // namespace kiln::gpu_test
