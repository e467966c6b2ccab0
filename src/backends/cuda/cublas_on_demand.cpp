// cuBLAS and cuBLASLt, loaded when the CUDA backend first calls them instead of when libkiln is loaded.
//
// Why: the two libraries' load-time initialisation costs about 150 MiB of resident memory in every process
// that loads libkiln, CPU-only ones included (`import kiln` to fold a graph, the CLI on a machine without a
// GPU). The entry points kiln uses are defined here, hidden (other libraries in the process keep binding to
// the real cuBLAS), and forward to the symbols found with dlopen/dlsym in libcublas.so.<major> and
// libcublasLt.so.<major>, searched as the dynamic linker searches (libkiln's RUNPATH, LD_LIBRARY_PATH).
// If a library cannot be loaded, each call returns CUBLAS_STATUS_NOT_INITIALIZED and the status strings say
// why, so the backend's first cuBLAS check reports it in one line.
// Adding a cuBLAS call elsewhere in the backend: add its forwarder here (the link fails without it, since
// libkiln no longer links cuBLAS).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <dlfcn.h>

#include <string>

namespace {

#define KILN_STRINGIFY_(x) #x
#define KILN_STRINGIFY(x) KILN_STRINGIFY_(x)  // expands first: cublasCreate is a macro for cublasCreate_v2

struct Library {
  void* handle = nullptr;
  std::string error;  // why handle is null
};

Library open_library(const char* name) {
  Library lib;
  lib.handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib.handle) {
    const char* why = dlerror();
    lib.error = std::string("cannot load ") + name + ": " + (why ? why : "unknown error");
  }
  return lib;
}

const Library& cublas_library() {
  static const Library lib = open_library("libcublas.so." KILN_STRINGIFY(CUBLAS_VER_MAJOR));
  return lib;
}

const Library& cublaslt_library() {
  static const Library lib = open_library("libcublasLt.so." KILN_STRINGIFY(CUBLAS_VER_MAJOR));
  return lib;
}

template <typename Function>
Function* find(const Library& lib, const char* name) {
  return lib.handle ? reinterpret_cast<Function*>(dlsym(lib.handle, name)) : nullptr;
}

}  // namespace

// One forwarder: resolved once, then a plain indirect call. (The type is spelled from `params`, not taken
// with decltype: cuBLAS declares C++ overloads of some entry points, cublasGemmEx among them.)
#define KILN_FORWARD(library, name, params, args)                                  \
  extern "C" __attribute__((visibility("hidden"))) cublasStatus_t name params {    \
    using Function = cublasStatus_t params;                                        \
    static Function* const real = find<Function>(library(), KILN_STRINGIFY(name)); \
    return real ? real args : CUBLAS_STATUS_NOT_INITIALIZED;                       \
  }

KILN_FORWARD(cublas_library, cublasCreate, (cublasHandle_t * handle), (handle))
KILN_FORWARD(cublas_library, cublasDestroy, (cublasHandle_t handle), (handle))
KILN_FORWARD(cublas_library, cublasGetVersion, (cublasHandle_t handle, int* version), (handle, version))
KILN_FORWARD(cublas_library, cublasSetStream, (cublasHandle_t handle, cudaStream_t stream), (handle, stream))
KILN_FORWARD(cublas_library, cublasSetWorkspace, (cublasHandle_t handle, void* workspace, size_t bytes),
             (handle, workspace, bytes))
KILN_FORWARD(cublas_library, cublasGemmEx,
             (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
              const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
              cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
              cublasComputeType_t computeType, cublasGemmAlgo_t algo),
             (handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
              computeType, algo))
KILN_FORWARD(cublas_library, cublasGemmStridedBatchedEx,
             (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
              const void* alpha, const void* A, cudaDataType Atype, int lda, long long int strideA,
              const void* B, cudaDataType Btype, int ldb, long long int strideB, const void* beta, void* C,
              cudaDataType Ctype, int ldc, long long int strideC, int batchCount,
              cublasComputeType_t computeType, cublasGemmAlgo_t algo),
             (handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C,
              Ctype, ldc, strideC, batchCount, computeType, algo))

KILN_FORWARD(cublaslt_library, cublasLtCreate, (cublasLtHandle_t * handle), (handle))
KILN_FORWARD(cublaslt_library, cublasLtMatmulDescInit_internal,
             (cublasLtMatmulDesc_t desc, size_t size, cublasComputeType_t computeType,
              cudaDataType_t scaleType),
             (desc, size, computeType, scaleType))
KILN_FORWARD(cublaslt_library, cublasLtMatmulDescSetAttribute,
             (cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void* buf, size_t bytes),
             (desc, attr, buf, bytes))
KILN_FORWARD(cublaslt_library, cublasLtMatrixLayoutCreate,
             (cublasLtMatrixLayout_t * layout, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld),
             (layout, type, rows, cols, ld))
KILN_FORWARD(cublaslt_library, cublasLtMatrixLayoutDestroy, (cublasLtMatrixLayout_t layout), (layout))
KILN_FORWARD(cublaslt_library, cublasLtMatrixLayoutSetAttribute,
             (cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr, const void* buf,
              size_t bytes),
             (layout, attr, buf, bytes))
KILN_FORWARD(cublaslt_library, cublasLtMatmulPreferenceCreate, (cublasLtMatmulPreference_t * pref), (pref))
KILN_FORWARD(cublaslt_library, cublasLtMatmulPreferenceDestroy, (cublasLtMatmulPreference_t pref), (pref))
KILN_FORWARD(cublaslt_library, cublasLtMatmulPreferenceSetAttribute,
             (cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
              size_t bytes),
             (pref, attr, buf, bytes))
KILN_FORWARD(cublaslt_library, cublasLtMatmulAlgoGetHeuristic,
             (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t Adesc,
              cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
              cublasLtMatmulPreference_t preference, int requestedAlgoCount,
              cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount),
             (handle, desc, Adesc, Bdesc, Cdesc, Ddesc, preference, requestedAlgoCount, heuristicResultsArray,
              returnAlgoCount))
KILN_FORWARD(cublaslt_library, cublasLtMatmul,
             (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
              cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta,
              const void* C, cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,
              const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspaceSizeInBytes,
              cudaStream_t stream),
             (handle, desc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, workspace,
              workspaceSizeInBytes, stream))

// Status strings: the library's own, or why it could not be loaded.
namespace {
const char* unavailable(const Library& lib) {
  return lib.handle ? "(status string unavailable)" : lib.error.c_str();
}
}  // namespace

extern "C" __attribute__((visibility("hidden"))) const char* cublasGetStatusString(cublasStatus_t status) {
  static decltype(cublasGetStatusString)* const real =
      find<decltype(cublasGetStatusString)>(cublas_library(), "cublasGetStatusString");
  return real ? real(status) : unavailable(cublas_library());
}

extern "C" __attribute__((visibility("hidden"))) const char* cublasLtGetStatusString(cublasStatus_t status) {
  static decltype(cublasLtGetStatusString)* const real =
      find<decltype(cublasLtGetStatusString)>(cublaslt_library(), "cublasLtGetStatusString");
  return real ? real(status) : unavailable(cublaslt_library());
}
