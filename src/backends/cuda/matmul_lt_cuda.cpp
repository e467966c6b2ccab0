// One cuBLASLt GEMM (LtGemm, matmul_cuda.h): the matrix layouts made once at create time, the algorithms
// chosen by cuBLASLt's heuristic (no timing), and the call, which only enqueues on the layer's stream.
#include <algorithm>
#include <cstdint>

#include "backends/cuda/matmul_cuda.h"

namespace kiln::cuda::matmul {
namespace {

// cuBLASLt's own recommendation for Hopper; the executor shares one workspace of the largest layer's size.
constexpr uint64_t kMaxWorkspace = uint64_t(32) << 20;
// Pointers at this alignment let cuBLASLt use 16-byte vector loads and TMA; the executor's buffers have it.
constexpr unsigned kVectorAlign = 16;

cudaDataType_t lt_type(DType t) {
  return t == DType::Float ? CUDA_R_32F : t == DType::Float16 ? CUDA_R_16F : CUDA_R_16BF;
}

// Largest power of two (up to `cap`) dividing `bytes`; `cap` for 0.
unsigned align_of(int64_t bytes, unsigned cap) {
  if (bytes == 0) return cap;
  const auto low = static_cast<uint64_t>(bytes) & (~static_cast<uint64_t>(bytes) + 1);
  return static_cast<unsigned>(std::min<uint64_t>(low, cap));
}

bool aligned_to(const void* p, unsigned align) {
  return reinterpret_cast<uintptr_t>(p) % align == 0;
}

cublasLtMatrixLayout_t make_layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                   int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  KILN_CUBLASLT_CHECK(
      cublasLtMatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  if (batch > 1) {
    const auto count = static_cast<int32_t>(batch);
    const int64_t offset = stride;
    const cublasStatus_t s1 =
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count));
    const cublasStatus_t s2 = cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                               &offset, sizeof(offset));
    if (s1 != CUBLAS_STATUS_SUCCESS || s2 != CUBLAS_STATUS_SUCCESS) {
      cublasLtMatrixLayoutDestroy(l);
      KILN_CUBLASLT_CHECK(s1 != CUBLAS_STATUS_SUCCESS ? s1 : s2);
    }
  }
  return l;
}

struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  Preference() { KILN_CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&p)); }
  ~Preference() { cublasLtMatmulPreferenceDestroy(p); }
  template <typename T>
  void set(cublasLtMatmulPreferenceAttributes_t attr, T value) {
    KILN_CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &value, sizeof(value)));
  }
};

}  // namespace

cublasLtHandle_t lt_handle() {
  static const cublasLtHandle_t handle = [] {  // a static's initialization is thread-safe
    cublasLtHandle_t h = nullptr;
    KILN_CUBLASLT_CHECK(cublasLtCreate(&h));
    return h;
  }();
  return handle;
}

LtGemm::LtGemm(const LtProblem& p) : p_(p) {}

LtGemm::~LtGemm() {
  for (cublasLtMatrixLayout_t l : {layout_a_, layout_b_, layout_y_})
    if (l) cublasLtMatrixLayoutDestroy(l);
}

std::unique_ptr<LtGemm> LtGemm::create(const LtProblem& p) {
  if (p.m <= 0 || p.n <= 0 || p.k <= 0 || p.batch <= 0 || (p.bias && p.batch != 1))
    throw Error("cuBLASLt GEMM: invalid problem (m " + std::to_string(p.m) + ", n " + std::to_string(p.n) +
                ", k " + std::to_string(p.k) + ", batch " + std::to_string(p.batch) + ")");
  std::unique_ptr<LtGemm> g(new LtGemm(p));
  lt_handle();
  const cudaDataType_t t = lt_type(p.dtype);
  // Column-major views of the row-major matrices (see matmul_cuda.h): A [m, k] is k x m with ld k, A^T
  // stored [k, m] is m x k with ld m; likewise B; Y [m, n] is n x m with ld n.
  g->layout_a_ = p.trans_a ? make_layout(t, p.m, p.k, p.m, p.batch, p.stride_a)
                           : make_layout(t, p.k, p.m, p.k, p.batch, p.stride_a);
  g->layout_b_ = p.trans_b ? make_layout(t, p.k, p.n, p.k, p.batch, p.stride_b)
                           : make_layout(t, p.n, p.k, p.n, p.batch, p.stride_b);
  g->layout_y_ = make_layout(t, p.n, p.m, p.n, p.batch, p.stride_y);

  // The aligned algorithm assumes what the batch strides keep: every entry's pointer must be aligned too.
  const int64_t elem = static_cast<int64_t>(dtype_size(p.dtype));
  const bool batched = p.batch > 1;
  const unsigned aa = align_of(batched ? p.stride_a * elem : 0, kVectorAlign),
                 ab = align_of(batched ? p.stride_b * elem : 0, kVectorAlign),
                 ay = align_of(batched ? p.stride_y * elem : 0, kVectorAlign);
  g->aligned_ = g->choose(aa, ab, ay);
  if (!g->aligned_.found) return nullptr;
  const auto e = static_cast<unsigned>(elem);
  g->unaligned_ = aa == e && ab == e && ay == e ? g->aligned_ : g->choose(e, e, e);
  g->workspace_ = std::max(g->aligned_.workspace, g->unaligned_.found ? g->unaligned_.workspace : 0);
  return g;
}

void LtGemm::init_desc(cublasLtMatmulDescOpaque_t* desc, const void* bias) const {
  const cublasComputeType_t compute =
      p_.dtype == DType::Float && p_.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  KILN_CUBLASLT_CHECK(cublasLtMatmulDescInit(desc, compute, CUDA_R_32F));
  // cuBLASLt's A is our B and its B our A (Y^T = B^T A^T).
  const cublasOperation_t op_lt_a = p_.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_lt_b = p_.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  KILN_CUBLASLT_CHECK(
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_lt_a, sizeof(op_lt_a)));
  KILN_CUBLASLT_CHECK(
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_lt_b, sizeof(op_lt_b)));
  if (p_.bias) {
    // The bias runs along cuBLASLt's rows, which are our columns: bias[j] for Y[:, j]; in Y's dtype.
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    KILN_CUBLASLT_CHECK(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    KILN_CUBLASLT_CHECK(
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
}

LtGemm::Algo LtGemm::choose(unsigned align_a, unsigned align_b, unsigned align_y) const {
  Algo a;
  a.align_a = align_a;
  a.align_b = align_b;
  a.align_y = align_y;
  cublasLtMatmulDescOpaque_t desc;
  init_desc(&desc, nullptr);
  Preference pref;
  pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, kMaxWorkspace);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(align_b));  // cuBLASLt's A: B
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(align_a));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(align_y));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(align_y));
  // Split-K partial sums of fp16/bf16 in fp32, never rounded to the 16-bit output type in between (the
  // in-place and output-type schemes add the parts in the output type: ~1e-3 relative error each).
  if (p_.dtype != DType::Float)
    pref.set(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
             static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE));
  cublasLtMatmulHeuristicResult_t result{};
  int count = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(lt_handle(), &desc, layout_b_, layout_a_, layout_y_,
                                                          layout_y_, pref.p, 1, &result, &count);
  if (s == CUBLAS_STATUS_SUCCESS && count > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    a.found = true;
    a.algo = result.algo;
    a.workspace = result.workspaceSize;
  }
  return a;
}

void LtGemm::run(const void* a, const void* b, const void* c, void* y, const void* bias,
                 const RunContext& rc) const {
  const void* cp = p_.beta != 0.f ? c : y;  // with beta 0, cuBLASLt reads no C
  const bool aligned = aligned_to(a, aligned_.align_a) && aligned_to(b, aligned_.align_b) &&
                       aligned_to(y, aligned_.align_y) && aligned_to(cp, aligned_.align_y);
  const Algo& algo = aligned ? aligned_ : unaligned_;
  if (!algo.found)
    throw Error("cuBLASLt GEMM: no algorithm for operands aligned only to their element size (" + describe() +
                ")");
  if (algo.workspace > rc.workspace_bytes)
    throw Error("cuBLASLt GEMM: workspace of " + std::to_string(rc.workspace_bytes) + " bytes, needs " +
                std::to_string(algo.workspace));
  cublasLtMatmulDescOpaque_t desc;
  init_desc(&desc, bias);
  KILN_CUBLASLT_CHECK(cublasLtMatmul(lt_handle(), &desc, &p_.alpha, b, layout_b_, a, layout_a_, &p_.beta, cp,
                                     layout_y_, y, layout_y_, &algo.algo, rc.workspace, rc.workspace_bytes,
                                     rc.stream));
}

std::string LtGemm::describe() const {
  std::string s = std::string("cublasLt ") + dtype_name(p_.dtype);
  if (p_.dtype == DType::Float) s += p_.tf32 ? " tf32" : " fp32";
  s += " m" + std::to_string(p_.m) + " n" + std::to_string(p_.n) + " k" + std::to_string(p_.k);
  if (p_.trans_a || p_.trans_b) s += std::string(" ") + (p_.trans_a ? "T" : "N") + (p_.trans_b ? "T" : "N");
  if (p_.batch > 1) s += " batch " + std::to_string(p_.batch);
  if (p_.bias) s += " +bias";
  if (p_.beta != 0.f) s += " +C";
  return s + " ws " + std::to_string(workspace_);
}

}  // namespace kiln::cuda::matmul
