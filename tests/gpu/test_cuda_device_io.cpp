// Caller-owned device memory in and out of a CUDA engine (ExecutionContext::set_input_device,
// copy_output_to_device): static plans (the input copied device-to-device into the arena, no upload at run),
// inputs a by-input-values layer reads on the host, dynamic engines (bound until run()), data-dependent plans
// (through the host), the caller's own stream, and the one-line errors. Each result is compared with the same
// engine fed host tensors, and destinations are poisoned (NaN bytes) so an element never written shows.
#include "gpu_test_util.h"

namespace kiln::gpu_test {
namespace {

// Device memory holding `t`, freed with the object.
struct DeviceCopy {
  explicit DeviceCopy(const TensorData& t) : bytes(t.nbytes()) {
    KILN_CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(bytes, 1)));
    KILN_CUDA_CHECK(cudaMemcpy(ptr, t.raw(), bytes, cudaMemcpyHostToDevice));
  }
  explicit DeviceCopy(size_t n) : bytes(n) {
    KILN_CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(bytes, 1)));
    KILN_CUDA_CHECK(cudaMemset(ptr, 0xFF, std::max<size_t>(bytes, 1)));  // NaN in fp32
  }
  ~DeviceCopy() { cudaFree(ptr); }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
  TensorData download(DType dtype, const std::vector<int64_t>& dims) const {
    TensorData t(dtype, dims);
    KILN_CUDA_CHECK(cudaDeviceSynchronize());
    KILN_CUDA_CHECK(cudaMemcpy(t.raw(), ptr, t.nbytes(), cudaMemcpyDeviceToHost));
    return t;
  }
  void* ptr = nullptr;
  size_t bytes = 0;
};

// x [2, 3, 8, 8] -> Conv (4 filters, pad 1) -> Relu -> y; z = ReduceMean over HW.
std::unique_ptr<Graph> conv_graph(const Shape& x_shape) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, x_shape);
  auto v = [&](const char* name) { return g->add_variable(name); };
  g->add_node(
       "Conv",
       {x, g->add_constant("w", random_tensor({4, 3, 3, 3})), g->add_constant("b", random_tensor({4}))},
       {v("c")}, "conv")
      ->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g->add_node("Relu", {g->tensor("c")}, {v("y")}, "relu");
  g->add_node("ReduceMean", {g->tensor("y")}, {v("z")}, "mean")
      ->attrs.set("axes", std::vector<int64_t>{2, 3});
  g->inputs = {x};
  g->outputs = {g->tensor("y"), g->tensor("z")};
  return g;
}

BuildOptions cuda_fp32() {
  BuildOptions o = fp32();
  o.device = "cuda";
  return o;
}

// Runs `ctx` on device copies of `inputs` and returns each output copied device-to-device.
std::vector<TensorData> run_on_device(ExecutionContext& ctx,
                                      const std::vector<std::pair<std::string, TensorData>>& inputs,
                                      const std::vector<std::string>& outputs,
                                      cudaStream_t stream = nullptr) {
  std::vector<std::unique_ptr<DeviceCopy>> held;
  for (const auto& [name, t] : inputs) {
    held.push_back(std::make_unique<DeviceCopy>(t));
    ctx.set_input_device(name, held.back()->ptr, t.dtype(), t.dims(), stream);
  }
  ctx.run();
  std::vector<TensorData> result;
  for (const std::string& name : outputs) {
    const TensorInfo info = ctx.output_info(name);
    DeviceCopy out(*checked_nbytes(info.dtype, info.dims));
    ctx.copy_output_to_device(name, out.ptr, out.bytes, stream);
    result.push_back(out.download(info.dtype, info.dims));
  }
  return result;
}

TEST(CudaDeviceIo, StaticEngineMatchesHostInputsWithoutUploads) {
  KILN_REQUIRE_GPU();
  auto engine = Engine::build(*conv_graph(Shape{2, 3, 8, 8}), cuda_fp32());
  auto dev = engine->create_context(), host = engine->create_context();
  for (bool transfers : {true, false}) {
    for (int run = 0; run < 3; ++run) {
      const TensorData x = random_tensor({2, 3, 8, 8});
      dev->set_data_transfers(transfers);
      const std::vector<TensorData> got = run_on_device(*dev, {{"x", x}}, {"y", "z"});
      host->set_input("x", x);
      host->run();
      EXPECT_EQ(rel_l2(got[0], host->output("y")), 0.0) << run;
      EXPECT_EQ(rel_l2(got[1], host->output("z")), 0.0) << run;
      EXPECT_EQ(got[0].dims(), (std::vector<int64_t>{2, 4, 8, 8}));
    }
  }
  // Bound once, run twice: the input stays in the engine's memory (it was copied, not referenced).
  const TensorData x = random_tensor({2, 3, 8, 8});
  DeviceCopy in(x);
  dev->set_input_device("x", in.ptr, DType::Float, {2, 3, 8, 8});
  KILN_CUDA_CHECK(cudaMemset(in.ptr, 0, in.bytes));  // legacy stream: after the copy
  dev->run();
  dev->run();
  host->set_input("x", x);
  host->run();
  EXPECT_EQ(rel_l2(dev->output("y"), host->output("y")), 0.0);
}

TEST(CudaDeviceIo, CallersStreamOrdersTheCopies) {
  KILN_REQUIRE_GPU();
  auto engine = Engine::build(*conv_graph(Shape{2, 3, 8, 8}), cuda_fp32());
  auto ctx = engine->create_context(), host = engine->create_context();
  cudaStream_t s = nullptr;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  for (int run = 0; run < 3; ++run) {
    const TensorData x = random_tensor({2, 3, 8, 8});
    const std::vector<TensorData> got = run_on_device(*ctx, {{"x", x}}, {"y"}, s);
    host->set_input("x", x);
    host->run();
    EXPECT_EQ(rel_l2(got[0], host->output("y")), 0.0) << run;
  }
  KILN_CUDA_CHECK(cudaStreamDestroy(s));
}

TEST(CudaDeviceIo, InputsReadOnTheHostByInputValuesLayers) {
  KILN_REQUIRE_GPU();
  auto g = std::make_unique<Graph>();  // Slice with starts/ends given as engine inputs
  g->set_opset("", 17);
  auto* x = g->add_variable("x", DType::Float, Shape{20, 10});
  auto* starts = g->add_variable("starts", DType::Int64, Shape{1});
  auto* ends = g->add_variable("ends", DType::Int64, Shape{1});
  auto* y = g->add_variable("y", DType::Float, Shape{5, 10});
  g->add_node("Slice", {x, starts, ends, g->add_constant("axes", TensorData::vector_int64({0}))}, {y},
              "slice");
  g->inputs = {x, starts, ends};
  g->outputs = {y};
  auto engine = Engine::build(*g, cuda_fp32());
  auto ctx = engine->create_context(), host = engine->create_context();
  const TensorData data = random_tensor({20, 10});
  for (int64_t start : {0, 5, 15, 5}) {
    const TensorData s = TensorData::vector_int64({start}), e = TensorData::vector_int64({start + 5});
    const std::vector<TensorData> got = run_on_device(*ctx, {{"x", data}, {"starts", s}, {"ends", e}}, {"y"});
    host->set_input("x", data);
    host->set_input("starts", s);
    host->set_input("ends", e);
    host->run();
    EXPECT_EQ(rel_l2(got[0], host->output("y")), 0.0) << start;
  }
}

TEST(CudaDeviceIo, DynamicEngineBindsUntilRun) {
  KILN_REQUIRE_GPU();
  BuildOptions o = cuda_fp32();
  o.profiles = {{{"x", {{1, 3, 8, 8}, {2, 3, 8, 8}, {4, 3, 8, 8}}}}};
  auto engine = Engine::build(*conv_graph(Shape{Dim::symbolic("N"), 3, 8, 8}), o);
  auto ctx = engine->create_context(), host = engine->create_context();
  for (int64_t n : {3, 1, 4, 3}) {
    const TensorData x = random_tensor({n, 3, 8, 8});
    const std::vector<TensorData> got = run_on_device(*ctx, {{"x", x}}, {"y", "z"});
    host->set_input("x", x);
    host->run();
    EXPECT_EQ(got[0].dims(), host->output("y").dims());
    EXPECT_EQ(rel_l2(got[0], host->output("y")), 0.0) << n;
    EXPECT_EQ(rel_l2(got[1], host->output("z")), 0.0) << n;
  }
  EXPECT_NE(error_of([&] {
              run_on_device(*ctx, {{"x", random_tensor({5, 3, 8, 8})}}, {"y"});
            }).find("'x'"),
            std::string::npos);
}

TEST(CudaDeviceIo, DataDependentPlanGoesThroughTheHost) {
  KILN_REQUIRE_GPU();
  auto g = std::make_unique<Graph>();
  g->set_opset("", 13);
  auto* x = g->add_variable("x", DType::Float, Shape{3, 4});
  auto v = [&](const char* name) { return g->add_variable(name); };
  g->add_node("Relu", {x}, {v("r")}, "relu");
  g->add_node("NonZero", {g->tensor("r")}, {v("i")}, "nonzero");
  g->inputs = {x};
  g->outputs = {g->tensor("i")};
  BuildOptions o = cuda_fp32();
  o.allow_host_fallback = true;
  auto engine = Engine::build(*g, o);
  auto ctx = engine->create_context(), host = engine->create_context();
  const TensorData data = random_tensor({3, 4});
  const std::vector<TensorData> got = run_on_device(*ctx, {{"x", data}}, {"i"});
  host->set_input("x", data);
  host->run();
  EXPECT_EQ(got[0].dims(), host->output("i").dims());
  EXPECT_EQ(rel_l2(got[0], host->output("i")), 0.0);
}

TEST(CudaDeviceIo, ErrorsNameTheTensor) {
  KILN_REQUIRE_GPU();
  auto engine = Engine::build(*conv_graph(Shape{2, 3, 8, 8}), cuda_fp32());
  auto ctx = engine->create_context();
  DeviceCopy in(random_tensor({2, 3, 8, 8}));
  auto message = [&](const std::function<void()>& f) {
    const std::string e = error_of(f);
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    return e;
  };
  EXPECT_NE(message([&] {
              ctx->set_input_device("x", in.ptr, DType::Double, {2, 3, 8, 8});
            }).find("'x'"),
            std::string::npos);
  EXPECT_NE(message([&] {
              ctx->set_input_device("x", in.ptr, DType::Float, {2, 3, 8, 7});
            }).find("'x'"),
            std::string::npos);
  EXPECT_NE(message([&] {
              ctx->set_input_device("x", nullptr, DType::Float, {2, 3, 8, 8});
            }).find("'x'"),
            std::string::npos);
  EXPECT_NE(message([&] {
              ctx->set_input_device("nope", in.ptr, DType::Float, {2, 3, 8, 8});
            }).find("'nope'"),
            std::string::npos);
  DeviceCopy out(2 * 4 * 8 * 8 * sizeof(float));
  EXPECT_NE(message([&] { ctx->copy_output_to_device("y", out.ptr, out.bytes); }).find("'y'"),
            std::string::npos);  // not run yet
  ctx->set_input_device("x", in.ptr, DType::Float, {2, 3, 8, 8});
  ctx->run();
  EXPECT_NE(
      message([&] { ctx->copy_output_to_device("y", out.ptr, out.bytes - 1); }).find("'y' needs 2048 bytes"),
      std::string::npos);
  ctx->copy_output_to_device("y", out.ptr, out.bytes);
  EXPECT_EQ(rel_l2(out.download(DType::Float, {2, 4, 8, 8}), ctx->output("y")), 0.0);
}

}  // namespace
}  // namespace kiln::gpu_test
