// kiln — MatMul and Gemm on CUDA through cuBLASLt. This header is internal to the family's files:
// matmul_lt_cuda.cpp (one cuBLASLt problem: its layouts, the algorithms chosen at create time, the call),
// matmul_cuda.cpp (the MatMul and Gemm layers read into such problems, and their factories) and
// matmul_broadcast_cuda.cu (Gemm's C broadcast into Y before a GEMM that accumulates onto it).
//
// Everything is row-major [rows, cols] here, as ONNX stores it. cuBLASLt is column-major: a row-major
// Y = A B is, read column-major, Y^T = B^T A^T, so the LtGemm passes B as cuBLASLt's A and A as its B.
#pragma once
#include <cublasLt.h>

#include <memory>
#include <string>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda::matmul {

#define KILN_CUBLASLT_CHECK(expr)                                                                   \
  do {                                                                                              \
    const cublasStatus_t kiln_cublaslt_status_ = (expr);                                            \
    if (kiln_cublaslt_status_ != CUBLAS_STATUS_SUCCESS)                                             \
      throw Error(std::string("cuBLASLt error ") + cublasLtGetStatusString(kiln_cublaslt_status_) + \
                  " in " #expr);                                                                    \
  } while (0)

// The process's cuBLASLt handle, created on first use (thread-safe), never destroyed. Kernels get it at
// create time, so it is never created inside a CUDA graph capture. The stream is an argument of every call,
// not handle state, so calls need no lock.
cublasLtHandle_t lt_handle();

// One GEMM, possibly strided-batched: Y[b] (m x n, ld n) = alpha op(A[b]) op(B[b]) + beta C[b] (+ bias[n] on
// every row). A is stored [m, k] ([k, m] when trans_a), B [k, n] ([n, k] when trans_b); batch entry b of an
// operand starts stride_* elements after entry b - 1 (0: the same matrix for every entry).
struct LtProblem {
  DType dtype = DType::Float;
  bool tf32 = true;  // fp32 on TF32 tensor cores (BuildOptions::tf32); fp16/bf16 always accumulate in fp32
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_y = 0;
  float alpha = 1.f, beta = 0.f;  // beta != 0: C ([m, n], ld n, stride_y) is read
  bool bias = false;              // cuBLASLt's bias epilogue (batch 1): + bias[j] on column j, after alpha
};

class LtGemm {
 public:
  // Chooses the algorithms (cublasLtMatmulAlgoGetHeuristic, no timing): one for 16-byte aligned pointers, and
  // one for pointers aligned only to the element (a view at an odd offset). nullptr when cuBLASLt has none
  // for the problem as stated (the caller may state it differently, e.g. without the bias epilogue).
  static std::unique_ptr<LtGemm> create(const LtProblem& p);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  size_t workspace_bytes() const { return workspace_; }
  const LtProblem& problem() const { return p_; }
  std::string describe() const;

  // Enqueues the GEMM on `stream`. c: C when beta != 0 (may equal y), else ignored; bias: the [n] vector when
  // the problem has the bias epilogue. No allocation, no synchronization: capturable.
  void run(const void* a, const void* b, const void* c, void* y, const void* bias,
           const RunContext& rc) const;

 private:
  struct Algo {
    bool found = false;
    cublasLtMatmulAlgo_t algo{};
    size_t workspace = 0;
    unsigned align_a = 0, align_b = 0, align_y = 0;  // pointer alignment (bytes) it was chosen for
  };
  explicit LtGemm(const LtProblem& p);
  Algo choose(unsigned align_a, unsigned align_b, unsigned align_y) const;
  // Fills a matmul descriptor in caller storage (so that run() sets the bias pointer without a shared
  // object).
  void init_desc(cublasLtMatmulDescOpaque_t* desc, const void* bias) const;

  LtProblem p_;
  cublasLtMatrixLayout_t layout_a_ = nullptr, layout_b_ = nullptr, layout_y_ = nullptr;  // ours, row-major
  Algo aligned_, unaligned_;
  size_t workspace_ = 0;
};

// Y[i, j] = scale * C[i * stride_i + j * stride_j] for an [m, n] Y (Gemm's C broadcast to [M, N]).
void launch_broadcast_matrix(DType dtype, const void* c, void* y, int64_t m, int64_t n, int64_t stride_i,
                             int64_t stride_j, float scale, cudaStream_t stream);

}  // namespace kiln::cuda::matmul
