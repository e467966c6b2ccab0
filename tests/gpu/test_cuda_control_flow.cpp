// If and Scan on CUDA, which has no kernel for either: the builder's inline_if and unroll_scan rewrites turn
// the ONNX node tests test_if, test_scan_sum (Scan-8) and test_scan9_sum into plain layers (no host
// fallback), and the engine reproduces the tests' expected outputs.
#include <filesystem>

#include "gpu_test_util.h"
#include "kiln/onnx.h"
#include "kiln/tensor_io.h"

namespace kiln::gpu_test {
namespace {

TEST(CudaControlFlow, NodeTestsRunAsPlainLayers) {
  KILN_REQUIRE_GPU();
  namespace fs = std::filesystem;
  const fs::path root = "/usr/share/libonnx-testdata/data/node";
  if (!fs::exists(root)) GTEST_SKIP() << "no ONNX node tests at " << root;
  for (const char* name : {"test_if", "test_scan_sum", "test_scan9_sum"}) {
    auto g = import_onnx((root / name / "model.onnx").string());
    BuildOptions o = fp32();
    o.device = "cuda";
    auto engine = Engine::build(*g, o);
    for (const LayerInfo& l : engine->layers()) {
      EXPECT_NE(l.op, "If") << name;
      EXPECT_NE(l.op, "Scan") << name;
      EXPECT_NE(l.kernel, "host_fallback") << name << ": " << l.op;
    }
    auto ctx = engine->create_context();
    const fs::path data = root / name / "test_data_set_0";
    for (size_t k = 0; k < g->inputs.size(); ++k)
      ctx->set_input(g->inputs[k]->name,
                     read_tensor_proto((data / ("input_" + std::to_string(k) + ".pb")).string()));
    ctx->run();
    for (size_t k = 0; k < g->outputs.size(); ++k) {
      const TensorData want = read_tensor_proto((data / ("output_" + std::to_string(k) + ".pb")).string());
      const TensorData& got = ctx->output(g->outputs[k]->name);
      ASSERT_EQ(got.dims(), want.dims()) << name;
      for (int64_t i = 0; i < want.numel(); ++i)
        EXPECT_NEAR(got.as_double(i), want.as_double(i), 1e-5) << name;
    }
  }
}

}  // namespace
}  // namespace kiln::gpu_test
