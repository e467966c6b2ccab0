// GPU tests of the math and signal kernels with scalar operands that are graph inputs (device data), as in
// ONNX's node tests — what the backend sweep cannot express, since its inference needs those scalars constant
// for a static output shape. Here the output shape is declared on the graph, the scalars are fed at run time,
// and cuda.stft / cuda.mel_weight_matrix / cuda.dft must run (no host fallback) and match the CPU reference.
// Skipped without a GPU.
#include "gpu_test_util.h"

using namespace kiln;
using namespace kiln::gpu_test;

namespace {

struct Feed {
  std::string name;
  DType dtype;
  std::vector<int64_t> dims;
  std::optional<double> value;  // a scalar's value; random data otherwise
};

TensorData feed_value(const Feed& f) {
  if (!f.value) return random_tensor(f.dims, 0.1f, 2.0f, f.dtype);
  TensorData t(f.dtype, f.dims);
  switch (f.dtype) {
    case DType::Int32:
      t.data<int32_t>()[0] = static_cast<int32_t>(*f.value);
      break;
    case DType::Int64:
      t.data<int64_t>()[0] = static_cast<int64_t>(*f.value);
      break;
    case DType::Double:
      t.data<double>()[0] = *f.value;
      break;
    default:
      t.data<float>()[0] = static_cast<float>(*f.value);
  }
  return t;
}

// One node whose inputs are all graph inputs ("" = omitted) and whose output shape is declared; returns the
// relative L2 between the CUDA and reference outputs and the CUDA layer's kernel name.
std::pair<double, std::string> run_one(const std::string& op, const std::vector<Feed>& feeds, DType out_dtype,
                                       const std::vector<int64_t>& out_dims, const Attributes& attrs = {}) {
  Graph g;
  g.set_opset("", 17);
  std::vector<Tensor*> ins;
  for (const Feed& f : feeds) {
    if (f.name.empty()) {
      ins.push_back(nullptr);
      continue;
    }
    Variable* v = g.add_variable(f.name, f.dtype, make_shape(f.dims));
    g.inputs.push_back(v);
    ins.push_back(v);
  }
  Variable* y = g.add_variable("y", out_dtype, make_shape(out_dims));
  g.add_node(op, ins, {y}, "the_" + op)->attrs = attrs;
  g.outputs.push_back(y);

  BuildOptions ref;
  ref.reference_kernels = true;
  BuildOptions o = fp32();
  o.device = "cuda";
  auto ref_engine = Engine::build(g, ref);
  auto cuda_engine = Engine::build(g, o);
  auto ref_ctx = ref_engine->create_context(), cuda_ctx = cuda_engine->create_context();
  for (const Feed& f : feeds) {
    if (f.name.empty()) continue;
    const TensorData t = feed_value(f);
    ref_ctx->set_input(f.name, t);
    cuda_ctx->set_input(f.name, t);
  }
  ref_ctx->run();
  cuda_ctx->run();
  std::string kernel;
  for (const LayerInfo& l : cuda_engine->layers())
    if (l.name == "the_" + op) kernel = l.kernel;
  return {rel_l2(cuda_ctx->output("y"), ref_ctx->output("y")), kernel};
}

}  // namespace

TEST(CudaMath, StftReadsFrameStepAndLengthOnTheDevice) {
  KILN_REQUIRE_GPU();
  // test_stft: frame_step 8 and frame_length 16 as graph inputs, no window.
  auto [err, kernel] = run_one("STFT",
                               {{"signal", DType::Float, {1, 128, 1}},
                                {"frame_step", DType::Int64, {}, 8},
                                {""},
                                {"frame_length", DType::Int64, {}, 16}},
                               DType::Float, {1, 15, 9, 2});
  EXPECT_EQ(kernel, "cuda.stft");
  EXPECT_LE(err, 1e-5);
  // test_stft_with_window: frame_step a graph input, the frame the window's length; two-sided, int32 step.
  Attributes two_sided;
  two_sided.set("onesided", int64_t{0});
  std::tie(err, kernel) = run_one("STFT",
                                  {{"signal", DType::Float, {2, 100, 1}},
                                   {"frame_step", DType::Int32, {}, 7},
                                   {"window", DType::Float, {10}}},
                                  DType::Float, {2, 13, 10, 2}, two_sided);
  EXPECT_EQ(kernel, "cuda.stft");
  EXPECT_LE(err, 1e-5);
}

TEST(CudaMath, MelWeightMatrixReadsEveryScalarOnTheDevice) {
  KILN_REQUIRE_GPU();
  auto [err, kernel] = run_one("MelWeightMatrix",
                               {{"num_mel_bins", DType::Int64, {}, 8},
                                {"dft_length", DType::Int64, {}, 16},
                                {"sample_rate", DType::Int64, {}, 8192},
                                {"lower_edge_hertz", DType::Float, {}, 0},
                                {"upper_edge_hertz", DType::Float, {}, 4096}},
                               DType::Float, {9, 8});
  EXPECT_EQ(kernel, "cuda.mel_weight_matrix");
  EXPECT_LE(err, 1e-6);
}

TEST(CudaMath, DftReadsDftLengthOnTheDevice) {
  KILN_REQUIRE_GPU();
  // One-sided: 6 bins fit dft_length 10 and 11; the device value decides which transform it is.
  Attributes a;
  a.set("onesided", int64_t{1});
  a.set("axis", int64_t{1});
  for (double n : {10.0, 11.0}) {
    auto [err, kernel] =
        run_one("DFT", {{"x", DType::Float, {2, 8, 3, 1}}, {"dft_length", DType::Int64, {}, n}}, DType::Float,
                {2, 6, 3, 2}, a);
    EXPECT_EQ(kernel, "cuda.dft");
    EXPECT_LE(err, 1e-5) << "dft_length " << n;
  }
}
