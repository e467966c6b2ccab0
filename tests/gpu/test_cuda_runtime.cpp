// GPU tests of the CUDA runtime and convolutions: every tactic family against the CPU reference at each
// precision, fused convolution activations, fp16 lowering, CUDA graphs vs plain stream launches, transfers
// off, timing cache, engine files and their device check. Skipped without a GPU.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gpu_test_util.h"
#include "kiln/onnx.h"
#include "nlohmann/json.hpp"
#include "device/device_backend.h"

using namespace kiln;
using namespace kiln::gpu_test;

namespace {

struct ConvCase {
  std::vector<int64_t> x, w;
  std::vector<int64_t> pads, strides;
  int64_t group = 1;
  bool bias = true;
};

std::unique_ptr<Graph> conv_graph(const ConvCase& c, const std::string& op = "Conv",
                                  const std::string& post = "") {
  std::vector<OperandSpec> ins{{c.x}, {c.w, DType::Float, random_tensor(c.w, 0.05f, 0.5f)}};
  if (c.bias) ins.push_back({{c.w[0]}, DType::Float, random_tensor({c.w[0]})});
  Attributes a;
  if (!c.pads.empty()) a.set("pads", c.pads);
  if (!c.strides.empty()) a.set("strides", c.strides);
  a.set("group", c.group);
  if (!post.empty()) a.set("kiln_post_op", post);
  return one_node_graph(op, ins, a, op == "Conv" ? "" : "kiln");
}

const std::vector<ConvCase> kConvCases = {
    {{1, 16, 24, 40}, {32, 16, 3, 3}, {1, 1, 1, 1}, {}},
    {{1, 64, 12, 20}, {64, 64, 1, 1}, {}, {}},  // 1x1: the cuBLAS tactic competes
    {{2, 8, 17, 19}, {12, 8, 5, 5}, {2, 2, 2, 2}, {2, 2}},
    {{1, 8, 9, 11}, {8, 4, 3, 3}, {1, 1, 1, 1}, {}, 2},            // grouped
    {{1, 4, 33}, {6, 4, 3}, {1, 1}, {}},                           // 1-D
    {{1, 2, 6, 10, 12}, {4, 2, 3, 3, 3}, {1, 1, 1, 1, 1, 1}, {}},  // 3-D with two input channels (cuDNN)
    {{1, 32, 10, 14}, {16, 32, 3, 3}, {}, {}, 1, false},           // no bias, valid
    {{1, 3, 20, 30}, {5, 3, 5, 5}, {2, 2, 2, 2}, {}},              // channel counts NHWC tactics pad to 8
    {{2, 13, 9, 14}, {1, 13, 3, 3}, {1, 1, 1, 1}, {}},  // batch 2, one output channel (a depth head)
};

BuildOptions precision(DType p, bool tf32) {
  BuildOptions o;
  o.precision = p;
  o.tf32 = tf32;
  return o;
}

}  // namespace

TEST(CudaConv, StrictFp32MatchesReference) {
  KILN_REQUIRE_GPU();
  for (const ConvCase& c : kConvCases) {
    Comparison r = compare_with_reference(*conv_graph(c), precision(DType::Float, false));
    EXPECT_LE(r.worst(), tolerance(DType::Float, false)) << "x " << to_string(make_shape(c.x));
    EXPECT_TRUE(r.uses_kernel("cuda.conv") || r.uses_kernel("cuda.conv3d_direct"));
  }
}

TEST(CudaConv, Tf32MatchesReference) {
  KILN_REQUIRE_GPU();
  for (const ConvCase& c : kConvCases) {
    Comparison r = compare_with_reference(*conv_graph(c), precision(DType::Float, true));
    EXPECT_LE(r.worst(), tolerance(DType::Float, true)) << "x " << to_string(make_shape(c.x));
  }
}

TEST(CudaConv, Fp16AndBf16MatchReference) {
  KILN_REQUIRE_GPU();
  for (const ConvCase& c : kConvCases) {
    for (DType p : {DType::Float16, DType::BFloat16}) {
      Comparison r = compare_with_reference(*conv_graph(c), precision(p, true));
      EXPECT_LE(r.worst(), tolerance(p, true)) << dtype_name(p) << " x " << to_string(make_shape(c.x));
    }
  }
}

// Each engine on its own (KILN_CUDA_CONV_ENGINE), so a tactic that timing rarely picks is still checked.
TEST(CudaConv, EveryEngineMatchesReference) {
  KILN_REQUIRE_GPU();
  struct EngineCase {
    const char* engine;
    std::vector<size_t> cases;  // indices into kConvCases the engine can run
    std::vector<DType> precisions;
  };
  const std::vector<EngineCase> engines = {
      {"cudnn.nchw", {0, 2, 3, 4, 5}, {DType::Float, DType::Float16}},
      {"cudnn.nhwc", {0, 2, 3, 7}, {DType::Float16, DType::BFloat16}},
      {"graph.nchw", {0, 2, 6}, {DType::Float16}},
      {"graph.nhwc", {0, 2, 6, 7}, {DType::Float16, DType::BFloat16}},
      {"graph.nchw8", {2, 7, 8}, {DType::Float16, DType::BFloat16}},
      {"cublas", {1}, {DType::Float, DType::Float16, DType::BFloat16}},
      {"gemm.im2col", {0, 2, 6}, {DType::Float, DType::Float16, DType::BFloat16}},
  };
  for (const EngineCase& e : engines) {
    ::setenv("KILN_CUDA_CONV_ENGINE", e.engine, 1);
    for (size_t i : e.cases)
      for (DType p : e.precisions)
        for (bool tf32 : {false, true}) {
          if (p != DType::Float && tf32) continue;
          if (p == DType::Float && tf32 && std::string(e.engine).rfind("graph", 0) != 0 && i > 0) continue;
          Comparison r = compare_with_reference(*conv_graph(kConvCases[i]), precision(p, tf32));
          EXPECT_LE(r.worst(), tolerance(p, tf32))
              << e.engine << " case " << i << " " << dtype_name(p) << (tf32 ? " tf32" : "");
        }
    ::unsetenv("KILN_CUDA_CONV_ENGINE");
  }
}

TEST(CudaConv, FusedActivations) {
  KILN_REQUIRE_GPU();
  for (const char* post : {"Relu", "Elu", "Sigmoid"}) {
    for (DType p : {DType::Float, DType::Float16}) {
      Comparison r =
          compare_with_reference(*conv_graph(kConvCases[0], "FusedConv", post), precision(p, false));
      EXPECT_LE(r.worst(), tolerance(p, false)) << post << " " << dtype_name(p);
      EXPECT_TRUE(r.uses_kernel("cuda.conv"));
    }
  }
}

namespace {
// x -> Conv -> Elu -> Add(x') -> Sigmoid: several layers, a residual, graph outputs at two depths.
std::unique_ptr<Graph> small_network() {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Variable* x = g->add_variable("x", DType::Float, make_shape({1, 8, 20, 28}));
  g->inputs.push_back(x);
  Tensor* w = g->add_constant("w", random_tensor({8, 8, 3, 3}, 0.05f, 0.3f));
  Tensor* b = g->add_constant("b", random_tensor({8}));
  Variable* c = g->add_variable("c");
  Node* conv = g->add_node("Conv", {x, w, b}, {c}, "conv");
  conv->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  Variable* e = g->add_variable("e");
  g->add_node("Elu", {c}, {e}, "elu");
  Variable* s = g->add_variable("s");
  g->add_node("Add", {e, x}, {s}, "residual");
  Variable* y = g->add_variable("y");
  g->add_node("Sigmoid", {s}, {y}, "sigmoid");
  g->outputs = {y, e};
  return g;
}
}  // namespace

TEST(CudaRuntime, SmallNetworkAllPrecisions) {
  KILN_REQUIRE_GPU();
  for (DType p : {DType::Float, DType::Float16, DType::BFloat16}) {
    Comparison r = compare_with_reference(*small_network(), precision(p, false));
    EXPECT_LE(r.worst(), tolerance(p, false)) << dtype_name(p);
  }
}

TEST(CudaRuntime, GraphStreamAndNoTransfersAgree) {
  KILN_REQUIRE_GPU();
  auto g = small_network();
  BuildOptions o;
  o.device = "cuda";
  auto engine = Engine::build(*g, o);
  const TensorData x = random_tensor({1, 8, 20, 28});
  std::vector<TensorData> outs;
  for (int mode = 0; mode < 3; ++mode) {
    auto ctx = engine->create_context();
    ctx->set_use_graph(mode == 0);
    ctx->set_data_transfers(mode != 2);
    ctx->set_input("x", x);
    ctx->run();
    ctx->run();  // a replay must give the same result
    outs.push_back(ctx->output("y"));
    EXPECT_GE(ctx->last_run_times().compute_ms, 0.0);
  }
  EXPECT_EQ(rel_l2(outs[1], outs[0]), 0.0);
  EXPECT_EQ(rel_l2(outs[2], outs[0]), 0.0);
}

TEST(CudaRuntime, ProfilingTimesEveryLayer) {
  KILN_REQUIRE_GPU();
  auto g = small_network();
  BuildOptions o;
  o.device = "cuda";
  auto engine = Engine::build(*g, o);
  auto ctx = engine->create_context();
  ctx->set_input("x", random_tensor({1, 8, 20, 28}));
  ctx->set_profiling(true);
  ctx->run();
  ASSERT_EQ(ctx->layer_times_ms().size(), engine->layers().size());
  for (size_t k = 0; k < engine->layers().size(); ++k)
    if (engine->layers()[k].kernel != "alias")
      EXPECT_GT(ctx->layer_times_ms()[k], 0.0) << engine->layers()[k].name;
}

TEST(CudaRuntime, EngineFileRoundTripAndDeviceCheck) {
  KILN_REQUIRE_GPU();
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("kiln_gpu_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto g = small_network();
  BuildOptions o;
  o.device = "cuda";
  o.precision = DType::Float16;
  o.timing_cache_file = (dir / "cache.json").string();
  auto engine = Engine::build(*g, o);
  EXPECT_TRUE(fs::exists(dir / "cache.json"));
  const std::string path = (dir / "net.kiln").string();
  engine->save(path);
  auto loaded = Engine::load(path);
  EXPECT_EQ(loaded->options().precision, DType::Float16);
  const TensorData x = random_tensor({1, 8, 20, 28});
  auto a = engine->create_context(), b = loaded->create_context();
  a->set_input("x", x);
  b->set_input("x", x);
  a->run();
  b->run();
  EXPECT_EQ(rel_l2(b->output("y"), a->output("y")), 0.0);  // same tactics, same numerics
  EXPECT_NE(engine->device_description().find("compute_capability"), std::string::npos);

  // A rebuild with the warm cache times nothing and gives the same result.
  std::vector<std::string> lines;
  o.log = [&](const std::string& l) { lines.push_back(l); };
  auto rebuilt = Engine::build(*g, o);
  bool all_hits = false;
  for (const std::string& l : lines)
    all_hits |= l.find("timing cache:") != std::string::npos && l.find(" 0 timed") != std::string::npos;
  EXPECT_TRUE(all_hits);

  // An engine recorded for another GPU (or cuDNN) is refused with a message naming the file.
  const DeviceBackend* cuda = find_device_backend("cuda");
  ASSERT_NE(cuda, nullptr);
  nlohmann::json info = nlohmann::json::parse(engine->device_description());
  EXPECT_NO_THROW(cuda->check_compatible(info.dump(), path));
  info["gpu"] = "Some Other GPU";
  const std::string err = error_of([&] { cuda->check_compatible(info.dump(), path); });
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("Some Other GPU"), std::string::npos) << err;
  info = nlohmann::json::parse(engine->device_description());
  info["cudnn"] = 1;
  EXPECT_NE(error_of([&] { cuda->check_compatible(info.dump(), path); }).find("rebuild"), std::string::npos);
  fs::remove_all(dir);
}

TEST(CudaRuntime, ClearErrors) {
  // Runs without a GPU too: the error names the device and why.
  auto g = small_network();
  BuildOptions o;
  o.device = "tpu";
  EXPECT_NE(error_of([&] { Engine::build(*g, o); }).find("device 'tpu' is not available"), std::string::npos);
  if (cuda::gpu_available()) return;
  o.device = "cuda";
  EXPECT_NE(error_of([&] { Engine::build(*g, o); }).find("device 'cuda'"), std::string::npos);
}
