// Layers whose CUDA kernel needs operands as constants that the model gives as engine inputs (a Slice's
// starts/ends, a Conv's weights): the build picks the kernel per run from the inputs' values
// (kByInputValuesKernel). Checked against the CPU reference over runs with changing values, eagerly and
// replayed as a CUDA graph (a new kernel means a new capture).
#include "gpu_test_util.h"

namespace kiln::gpu_test {
namespace {

TensorData int64_tensor(std::vector<int64_t> v) {
  TensorData t(DType::Int64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) static_cast<int64_t*>(t.raw())[i] = v[i];
  return t;
}

// x [rows, 10] -> Slice(starts, ends: engine inputs, axes [0]) -> y [length, 10] (declared: the values are
// not known when building).
std::unique_ptr<Graph> slice_graph(int64_t rows, int64_t length) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  auto* x = g->add_variable("x", DType::Float, Shape{rows, 10});
  auto* starts = g->add_variable("starts", DType::Int64, Shape{1});
  auto* ends = g->add_variable("ends", DType::Int64, Shape{1});
  auto* y = g->add_variable("y", DType::Float, Shape{length, 10});
  g->add_node("Slice", {x, starts, ends, g->add_constant("axes", int64_tensor({0}))}, {y}, "slice");
  g->inputs = {x, starts, ends};
  g->outputs = {y};
  return g;
}

struct Pair {
  std::unique_ptr<Engine> cuda, ref;
  std::unique_ptr<ExecutionContext> cuda_ctx, ref_ctx;
};

Pair build_pair(const Graph& g) {
  BuildOptions ref;
  ref.reference_kernels = true;
  BuildOptions o = fp32();
  o.device = "cuda";
  Pair p;
  p.cuda = Engine::build(g, o);
  p.ref = Engine::build(g, ref);
  p.cuda_ctx = p.cuda->create_context();
  p.ref_ctx = p.ref->create_context();
  return p;
}

TEST(CudaByInputValues, SliceBoundsGivenAsInputsChooseTheKernelEachRun) {
  KILN_REQUIRE_GPU();
  auto g = slice_graph(20, 5);
  Pair p = build_pair(*g);
  bool chosen_by_values = false;
  for (const LayerInfo& l : p.cuda->layers()) chosen_by_values |= l.kernel == "by_input_values";
  EXPECT_TRUE(chosen_by_values);
  const TensorData x = random_tensor({20, 10});
  const std::vector<std::pair<int64_t, bool>> runs = {
      {0, true}, {5, true}, {0, true}, {15, false}, {5, true}};
  for (const auto& [start, use_graph] : runs) {
    for (auto* ctx : {p.cuda_ctx.get(), p.ref_ctx.get()}) {
      ctx->set_input("x", x);
      ctx->set_input("starts", int64_tensor({start}));
      ctx->set_input("ends", int64_tensor({start + 5}));
    }
    p.cuda_ctx->set_use_graph(use_graph);
    p.cuda_ctx->run();
    p.ref_ctx->run();
    EXPECT_EQ(rel_l2(p.cuda_ctx->output("y"), p.ref_ctx->output("y")), 0.0) << "start " << start;
  }
}

TEST(CudaByInputValues, ConvWeightsGivenAsAnInput) {
  KILN_REQUIRE_GPU();
  auto g = one_node_graph("Conv", {{{1, 3, 9, 9}}, {{4, 3, 3, 3}}, {{4}}});
  g->nodes().front()->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Pair p = build_pair(*g);
  for (int run = 0; run < 3; ++run) {
    const TensorData x = random_tensor({1, 3, 9, 9}), w = random_tensor({4, 3, 3, 3}), b = random_tensor({4});
    for (auto* ctx : {p.cuda_ctx.get(), p.ref_ctx.get()}) {
      ctx->set_input("x0", x);
      ctx->set_input("x1", w);
      ctx->set_input("x2", b);
    }
    p.cuda_ctx->run();
    p.ref_ctx->run();
    EXPECT_LE(rel_l2(p.cuda_ctx->output("y0"), p.ref_ctx->output("y0")), 1e-5) << "run " << run;
  }
}

TEST(CudaByInputValues, ValuesThatChangeEveryRunAreRefusedAfterTheCap) {
  KILN_REQUIRE_GPU();
  constexpr int64_t kRows = 80;
  static_assert(kRows > 64);
  auto g = slice_graph(kRows, 1);
  Pair p = build_pair(*g);
  const TensorData x = random_tensor({kRows, 10});
  std::string error;
  for (int64_t start = 0; start < kRows && error.empty(); ++start) {
    p.cuda_ctx->set_input("x", x);
    p.cuda_ctx->set_input("starts", int64_tensor({start}));
    p.cuda_ctx->set_input("ends", int64_tensor({start + 1}));
    error = error_of([&] { p.cuda_ctx->run(); });
    if (error == "(no error)") error.clear();
    if (!error.empty()) EXPECT_EQ(start, 64);
  }
  EXPECT_NE(error.find("layer 'slice' (Slice)"), std::string::npos) << error;
  EXPECT_NE(error.find("chose 64 kernels already"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

}  // namespace
}  // namespace kiln::gpu_test
