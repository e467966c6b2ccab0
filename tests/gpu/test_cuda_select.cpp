// Ops whose output count depends on the data, on CUDA, with the output shape declared by the model (as the
// ONNX node tests do): the result matches the reference, and data that selects a different count than the
// declared shape is an error naming the layer once the run is over, not a write past the output; a good
// input afterwards runs again.
#include "gpu_test_util.h"

namespace kiln::gpu_test {
namespace {

TensorData bools(const std::vector<int64_t>& dims, const std::vector<uint8_t>& v) {
  TensorData t(DType::Bool, dims);
  for (size_t i = 0; i < v.size(); ++i) static_cast<uint8_t*>(t.raw())[i] = v[i];
  return t;
}

// x [2, 2] bool -> NonZero -> y int64 [2, 3] (declared).
std::unique_ptr<Graph> nonzero_graph() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Bool, Shape{2, 2});
  auto* y = g->add_variable("y", DType::Int64, Shape{2, 3});
  g->add_node("NonZero", {x}, {y}, "nonzero");
  g->inputs = {x};
  g->outputs = {y};
  return g;
}

TEST(CudaSelect, NonZeroMatchesAndReportsACountMismatch) {
  KILN_REQUIRE_GPU();
  auto g = nonzero_graph();
  BuildOptions o = fp32();
  o.device = "cuda";
  auto engine = Engine::build(*g, o);
  bool on_cuda = false;
  for (const LayerInfo& l : engine->layers()) on_cuda |= l.kernel == "cuda.nonzero";
  EXPECT_TRUE(on_cuda);
  auto ctx = engine->create_context();
  for (bool use_graph : {false, true}) {
    ctx->set_use_graph(use_graph);
    ctx->set_input("x", bools({2, 2}, {1, 0, 1, 1}));
    ASSERT_EQ(error_of([&] { ctx->run(); }), "(no error)");
    const TensorData y = ctx->output("y");
    const std::vector<int64_t> want{0, 1, 1, 0, 0, 1};
    ASSERT_EQ(y.numel(), 6);
    for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(static_cast<const int64_t*>(y.raw())[i], want[i]) << i;

    ctx->set_input("x", bools({2, 2}, {1, 1, 1, 1}));
    const std::string e = error_of([&] { ctx->run(); });
    EXPECT_NE(e.find("NonZero: the data gives 4 non-zero elements, the planned output has 3"),
              std::string::npos)
        << e;
  }
  ctx->set_input("x", bools({2, 2}, {0, 1, 1, 1}));
  EXPECT_EQ(error_of([&] { ctx->run(); }), "(no error)");
}

// x [3, 2] float, condition [5] bool (a graph input) -> Compress (axis 0) -> y [2, 2] (declared); a true
// condition entry past the axis is the reference's error.
TEST(CudaSelect, CompressReportsAConditionPastTheAxis) {
  KILN_REQUIRE_GPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 11);
  auto* x = g->add_variable("x", DType::Float, Shape{3, 2});
  auto* c = g->add_variable("c", DType::Bool, Shape{5});
  auto* y = g->add_variable("y", DType::Float, Shape{2, 2});
  g->add_node("Compress", {x, c}, {y}, "compress")->attrs.set("axis", int64_t{0});
  g->inputs = {x, c};
  g->outputs = {y};
  BuildOptions o = fp32();
  o.device = "cuda";
  auto engine = Engine::build(*g, o);
  auto ctx = engine->create_context();
  const TensorData xv = random_tensor({3, 2});
  ctx->set_input("x", xv);
  ctx->set_input("c", bools({5}, {0, 1, 1, 0, 0}));
  ASSERT_EQ(error_of([&] { ctx->run(); }), "(no error)");
  const TensorData yv = ctx->output("y");
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(static_cast<const float*>(yv.raw())[i], static_cast<const float*>(xv.raw())[2 + i]) << i;
  ctx->set_input("c", bools({5}, {0, 1, 1, 0, 1}));
  const std::string e = error_of([&] { ctx->run(); });
  EXPECT_NE(e.find("condition element 4 is true but the axis has 3 entries"), std::string::npos) << e;
}

}  // namespace
}  // namespace kiln::gpu_test
