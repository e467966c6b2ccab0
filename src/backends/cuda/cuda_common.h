// kiln — CUDA backend, host side: error checking, the kernel base class the CUDA executor enqueues, and the
// launch context every CUDA kernel receives. Compiled with the host compiler and with nvcc.
#pragma once
#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "device/kernel.h"
#include "kiln/error.h"

namespace kiln::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t error, const char* expr, const char* file, int line);

// Every CUDA runtime call goes through this: a failure becomes a kiln::Error naming the call and the place.
#define KILN_CUDA_CHECK(expr)                                                       \
  do {                                                                              \
    const cudaError_t kiln_cuda_status_ = (expr);                                   \
    if (kiln_cuda_status_ != cudaSuccess)                                           \
      ::kiln::cuda::throw_cuda_error(kiln_cuda_status_, #expr, __FILE__, __LINE__); \
  } while (0)
// After every kernel launch (bad launch configuration, missing kernel image).
#define KILN_CUDA_CHECK_LAUNCH() KILN_CUDA_CHECK(cudaGetLastError())

// What a CUDA kernel gets at enqueue time. All layers of a context run in order on one stream, so they
// share one workspace of the largest size any kernel asked for.
struct RunContext {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  // The layer's own pinned host memory (CudaKernel::host_staging_bytes), kept by the context for its
  // lifetime: host work enqueued on the stream (cudaLaunchHostFunc) reads and writes it when the stream gets
  // there.
  void* host_staging = nullptr;
};

// Base of every kernel a "cuda" KernelFactory creates. TensorViews hold device pointers. enqueue() must only
// enqueue work on rc.stream (no allocation, no synchronization): the executor may capture it in a CUDA graph.
class CudaKernel : public backend::Kernel {
 public:
  void run(const std::vector<backend::TensorView>&, const std::vector<backend::TensorView>&) const final;
  virtual void enqueue(const std::vector<backend::TensorView>& inputs,
                       const std::vector<backend::TensorView>& outputs, const RunContext& rc) const = 0;
  virtual size_t workspace_bytes() const { return 0; }
  // Constant inputs the kernel uploaded itself at create time (in its own layout and precision, e.g.
  // convolution weights): the executor does not upload them and passes data == nullptr for them.
  virtual bool owns_constant_input(size_t index) const { return false; }
  // Pinned host memory this layer needs per context (host work on the stream; a region of its own, since
  // captured graphs replay host callbacks with the pointers of the capture).
  virtual size_t host_staging_bytes() const { return 0; }
  // After a run has finished: throws what host work enqueued for this layer failed with, if it did.
  virtual void check_host_work(const RunContext&) const {}
};

// The usual CUDA factory: one planning function decides support and feeds the kernel. `plan(desc, p)` returns
// false, or throws kiln::Error (an attribute of the wrong type), for a layer the kernel cannot run exactly;
// create() makes K(std::move(p)).
template <typename Plan, typename K>
backend::KernelFactory planned_factory(const std::string& name, const std::string& op,
                                       bool (*plan)(const backend::LayerDesc&, Plan&),
                                       const std::string& domain = "", int priority = 10) {
  return {.name = name,
          .device = "cuda",
          .op = op,
          .domain = domain,
          .priority = priority,
          .supports =
              [plan](const backend::LayerDesc& d) {
                Plan p;
                try {
                  return plan(d, p);
                } catch (const Error&) {
                  return false;
                }
              },
          .create = [plan, name](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            Plan p;
            if (!plan(d, p)) throw Error(name + ": layer '" + d.node->name + "' is not supported");
            return std::make_unique<K>(std::move(p));
          }};
}

// Whether a Dropout layer passes its input through unchanged (inference, or training at a constant ratio of
// 0): what cuda.copy and cuda.dropout take (dropout_cuda.cpp).
bool dropout_is_identity(const backend::LayerDesc& d);

// Float dtypes the CUDA kernels compute in (float accumulation for the 16-bit ones).
inline bool is_cuda_float(DType t) {
  return t == DType::Float || t == DType::Float16 || t == DType::BFloat16;
}

// Whether this process can use a CUDA GPU (cached). reason() says why not.
bool gpu_available();
std::string gpu_unavailable_reason();

// Uploads `bytes` from host memory into a new device allocation owned by the returned pointer.
struct DeviceBuffer {
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  DeviceBuffer(const void* host, size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), bytes(o.bytes) {
    o.ptr = nullptr;
    o.bytes = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* ptr = nullptr;
  size_t bytes = 0;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

}  // namespace kiln::cuda
