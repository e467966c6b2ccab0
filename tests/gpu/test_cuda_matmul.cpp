// cuda.matmul / cuda.gemm (cuBLASLt) against the CPU reference at realistic transformer sizes, which the
// sweep's small cases do not reach: fp16 within 2e-3 and TF32 within 1e-3 relative L2 (the bounds),
// strict fp32, the Gemm bias epilogue, a batched attention product; and one LtGemm called directly on
// pointers aligned only to their element (the fallback algorithm no engine-built layer normally needs).
#include <cstdint>
#include <vector>

#include "backends/cuda/matmul_cuda.h"
#include "gpu_test_util.h"

namespace kiln {
namespace {

using gpu_test::compare_with_reference;
using gpu_test::one_node_graph;
using gpu_test::OperandSpec;
using gpu_test::random_tensor;

BuildOptions options(DType precision, bool tf32) {
  BuildOptions o;
  o.precision = precision;
  o.tf32 = tf32;
  return o;
}

std::string tactic_of(const gpu_test::Comparison& c, const std::string& kernel) {
  for (const LayerInfo& l : c.cuda_layers)
    if (l.kernel == kernel) return l.tactic;
  return "";
}

// Y[384, 3072] = X[384, 768] W[768, 3072]: a BERT-base FFN's first product, W constant (a Linear layer).
std::unique_ptr<Graph> ffn_matmul() {
  return one_node_graph("MatMul",
                        {OperandSpec{{384, 768}, DType::Float, std::nullopt},
                         OperandSpec{{768, 3072}, DType::Float, random_tensor({768, 3072}, 0.01f, 0.1f)}});
}

TEST(CudaMatMul, Fp16Realistic) {
  KILN_REQUIRE_GPU();
  const auto c = compare_with_reference(*ffn_matmul(), options(DType::Float16, false));
  EXPECT_LE(c.worst(), 2e-3);
  EXPECT_TRUE(c.uses_kernel("cuda.matmul")) << tactic_of(c, "cuda.matmul");
}

TEST(CudaMatMul, Tf32Realistic) {
  KILN_REQUIRE_GPU();
  const auto c = compare_with_reference(*ffn_matmul(), options(DType::Float, true));
  EXPECT_LE(c.worst(), 1e-3);
  EXPECT_TRUE(c.uses_kernel("cuda.matmul"));
  EXPECT_NE(tactic_of(c, "cuda.matmul").find("tf32"), std::string::npos) << tactic_of(c, "cuda.matmul");
}

TEST(CudaMatMul, Fp32Strict) {
  KILN_REQUIRE_GPU();
  auto g = one_node_graph("MatMul", {OperandSpec{{2, 96, 256}, DType::Float, std::nullopt},
                                     OperandSpec{{256, 200}, DType::Float, random_tensor({256, 200})}});
  const auto c = compare_with_reference(*g, options(DType::Float, false));
  EXPECT_LE(c.worst(), 1e-5);
  EXPECT_NE(tactic_of(c, "cuda.matmul").find("fp32"), std::string::npos) << tactic_of(c, "cuda.matmul");
}

// Attention scores, both operands activations: [2, 12, 128, 64] x [2, 12, 64, 128], strided-batched.
TEST(CudaMatMul, BatchedAttentionFp16) {
  KILN_REQUIRE_GPU();
  auto g = one_node_graph("MatMul", {OperandSpec{{2, 12, 128, 64}, DType::Float, std::nullopt},
                                     OperandSpec{{2, 12, 64, 128}, DType::Float, std::nullopt}});
  const auto c = compare_with_reference(*g, options(DType::Float16, false));
  EXPECT_LE(c.worst(), 2e-3);
  EXPECT_NE(tactic_of(c, "cuda.matmul").find("batch 24"), std::string::npos) << tactic_of(c, "cuda.matmul");
}

// Y = X W^T + b (a Linear layer exported as Gemm): the bias epilogue.
TEST(CudaGemm, BiasEpilogueFp16AndTf32) {
  KILN_REQUIRE_GPU();
  Attributes a;
  a.set("transB", int64_t{1});
  auto g = one_node_graph("Gemm",
                          {OperandSpec{{256, 512}, DType::Float, std::nullopt},
                           OperandSpec{{1024, 512}, DType::Float, random_tensor({1024, 512}, 0.01f, 0.1f)},
                           OperandSpec{{1024}, DType::Float, random_tensor({1024})}},
                          a);
  for (const auto& [precision, tol] : {std::pair{DType::Float16, 2e-3}, std::pair{DType::Float, 1e-3}}) {
    const auto c = compare_with_reference(*g, options(precision, true));
    EXPECT_LE(c.worst(), tol) << dtype_name(precision);
    EXPECT_NE(tactic_of(c, "cuda.gemm").find("+bias"), std::string::npos) << tactic_of(c, "cuda.gemm");
  }
}

// Operands one element past a 16-byte boundary (a view into a larger buffer): LtGemm must take its
// element-aligned algorithm. fp16, Y[m, n] = A[m, k] B[k, n] against a double-precision product.
TEST(CudaMatMul, ElementAlignedPointers) {
  KILN_REQUIRE_GPU();
  const int64_t m = 40, n = 24, k = 56;
  const TensorData a = random_tensor({m * k + 1}, 0.1f, 1.f, DType::Float16);
  const TensorData b = random_tensor({k * n + 1}, 0.1f, 1.f, DType::Float16);
  cuda::matmul::LtProblem p;
  p.dtype = DType::Float16;
  p.m = m;
  p.n = n;
  p.k = k;
  auto gemm = cuda::matmul::LtGemm::create(p);
  ASSERT_TRUE(gemm);
  cuda::DeviceBuffer da(a.raw(), a.nbytes()), db(b.raw(), b.nbytes()), dy((m * n + 1) * 2),
      ws(gemm->workspace_bytes());
  const auto* pa = static_cast<const unsigned char*>(da.ptr) + 2;
  const auto* pb = static_cast<const unsigned char*>(db.ptr) + 2;
  auto* py = static_cast<unsigned char*>(dy.ptr) + 2;
  gemm->run(pa, pb, nullptr, py, nullptr, cuda::RunContext{nullptr, ws.ptr, ws.bytes});
  KILN_CUDA_CHECK(cudaDeviceSynchronize());
  TensorData y(DType::Float16, {m * n + 1});
  KILN_CUDA_CHECK(cudaMemcpy(y.raw(), dy.ptr, y.nbytes(), cudaMemcpyDeviceToHost));
  TensorData want(DType::Float, {m * n}), got(DType::Float, {m * n});
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t q = 0; q < k; ++q) acc += a.as_double(1 + i * k + q) * b.as_double(1 + q * n + j);
      static_cast<float*>(want.raw())[i * n + j] = static_cast<float>(acc);
      static_cast<float*>(got.raw())[i * n + j] = static_cast<float>(y.as_double(1 + i * n + j));
    }
  EXPECT_LE(gpu_test::rel_l2(got, want), 2e-3) << gemm->describe();
}

}  // namespace
}  // namespace kiln
