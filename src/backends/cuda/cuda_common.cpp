#include "backends/cuda/cuda_common.h"

#include <cstring>
#include <mutex>

#include "kiln/tensor_data.h"

namespace kiln::cuda {

void throw_cuda_error(cudaError_t error, const char* expr, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw Error(std::string("CUDA error ") + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) +
              ") in " + expr + " at " + (base ? base + 1 : file) + ":" + std::to_string(line));
}

void CudaKernel::run(const std::vector<backend::TensorView>&, const std::vector<backend::TensorView>&) const {
  throw Error("a CUDA kernel was run on the host; CUDA layers run through the CUDA executor");
}

namespace {
std::once_flag probe_once;
std::string probe_reason;
}  // namespace

std::string gpu_unavailable_reason() {
  std::call_once(probe_once, [] {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess)
      probe_reason = std::string("no usable CUDA GPU (") + cudaGetErrorString(e) + ")";
    else if (count == 0)
      probe_reason = "no CUDA GPU in this machine";
    cudaGetLastError();  // a failed probe must not leave a sticky error for later calls
  });
  return probe_reason;
}

bool gpu_available() {
  return gpu_unavailable_reason().empty();
}

DeviceBuffer::DeviceBuffer(size_t n) : bytes(n) {
  if (n) KILN_CUDA_CHECK(cudaMalloc(&ptr, n));
}

DeviceBuffer::DeviceBuffer(const void* host, size_t n) : DeviceBuffer(n) {
  if (!n) return;
  KILN_CUDA_CHECK(cudaMemcpy(ptr, host, n, cudaMemcpyHostToDevice));
  // From pageable memory cudaMemcpy may return once the bytes are staged, before the DMA lands; work on a
  // non-blocking stream (every kiln stream) is not ordered after it. Wait, so the buffer is whole when handed
  // out. (The backend sweep found this: inputs over ~64 KB read half-copied.)
  KILN_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr) cudaFree(ptr);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr) cudaFree(ptr);
    ptr = o.ptr;
    bytes = o.bytes;
    o.ptr = nullptr;
    o.bytes = 0;
  }
  return *this;
}

}  // namespace kiln::cuda
