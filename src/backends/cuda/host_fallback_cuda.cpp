// The host fallback: D2H copies of the inputs, the reference kernel in a cudaLaunchHostFunc callback, H2D
// copies of the outputs, all on the context's stream. Each context gives the layer its own pinned region
// (RunContext::host_staging), laid out as [status][input 0]...[output 0]...; constant inputs are read from
// the graph's host copy and never uploaded (owns_constant_input).
#include "backends/cuda/host_fallback_cuda.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda {
namespace {

using backend::LayerDesc;
using backend::TensorView;

constexpr size_t kAlign = 256;
size_t aligned(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

class HostFallbackKernel;

// The head of the layer's staging region: what the callback needs, and how it ended.
struct Status {
  const HostFallbackKernel* kernel;
  bool failed;
  char message[1024];
};

class HostFallbackKernel final : public CudaKernel {
 public:
  explicit HostFallbackKernel(const LayerDesc& desc) : reference_(backend::make_reference_kernel(desc)) {
    size_t offset = aligned(sizeof(Status));
    auto place = [&](const LayerDesc::Operand& o, std::vector<Slot>& slots, bool constant) {
      Slot s{o.dtype, o.dims, o.present, SIZE_MAX, nullptr, 0};
      if (o.present) {
        s.bytes = static_cast<size_t>(checked_numel(o.dims).value_or(0)) * dtype_size(o.dtype);
        if (constant && o.constant) {
          s.host_constant = o.constant->raw();
        } else {
          s.offset = offset;
          offset += aligned(s.bytes);
        }
      }
      slots.push_back(s);
    };
    for (const LayerDesc::Operand& o : desc.inputs) place(o, inputs_, true);
    for (const LayerDesc::Operand& o : desc.outputs) place(o, outputs_, false);
    staging_bytes_ = offset;
  }

  size_t host_staging_bytes() const override { return staging_bytes_; }
  bool owns_constant_input(size_t k) const override { return inputs_[k].host_constant != nullptr; }
  // The profile's and verbose layer list's account of the copies this layer adds to every run.
  std::string describe() const override {
    auto copied = [](const std::vector<Slot>& slots) {
      size_t bytes = 0;
      for (const Slot& s : slots)
        if (s.offset != SIZE_MAX) bytes += s.bytes;
      return std::to_string(bytes);
    };
    return "on the host (reference kernel): " + copied(inputs_) + " B to the host, " + copied(outputs_) +
           " B back per run";
  }

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    auto* base = static_cast<unsigned char*>(rc.host_staging);
    if (!base) throw Error("host fallback layer enqueued without its host staging memory");
    auto* status = reinterpret_cast<Status*>(base);
    status->kernel = this;
    status->failed = false;
    status->message[0] = '\0';
    for (size_t k = 0; k < inputs_.size(); ++k)
      if (inputs_[k].offset != SIZE_MAX && inputs_[k].bytes)
        KILN_CUDA_CHECK(cudaMemcpyAsync(base + inputs_[k].offset, in[k].data, inputs_[k].bytes,
                                        cudaMemcpyDeviceToHost, rc.stream));
    KILN_CUDA_CHECK(cudaLaunchHostFunc(rc.stream, &HostFallbackKernel::run_on_host, base));
    for (size_t k = 0; k < outputs_.size(); ++k)
      if (outputs_[k].offset != SIZE_MAX && outputs_[k].bytes && out[k].data)
        KILN_CUDA_CHECK(cudaMemcpyAsync(out[k].data, base + outputs_[k].offset, outputs_[k].bytes,
                                        cudaMemcpyHostToDevice, rc.stream));
  }

  void check_host_work(const RunContext& rc) const override {
    const auto* status = static_cast<const Status*>(rc.host_staging);
    if (status && status->failed) throw Error(std::string("on the host: ") + status->message);
  }

 private:
  struct Slot {
    DType dtype;
    std::vector<int64_t> dims;
    bool present;
    size_t offset;              // in the staging region; SIZE_MAX: absent or a host constant
    const void* host_constant;  // a constant input, read where the graph keeps it
    size_t bytes;
  };

  // CUDA calls are not allowed in a host callback, and nothing may be thrown through one: failures are kept
  // in the status and thrown by check_host_work once the run is over.
  static void CUDART_CB run_on_host(void* user) {
    auto* base = static_cast<unsigned char*>(user);
    auto* status = reinterpret_cast<Status*>(base);
    const HostFallbackKernel& self = *status->kernel;
    status->failed = false;  // a replayed graph runs this without enqueue()
    try {
      auto views = [&](const std::vector<Slot>& slots) {
        std::vector<TensorView> v;
        for (const Slot& s : slots) {
          if (!s.present) {
            v.emplace_back();
            continue;
          }
          void* data = s.host_constant ? const_cast<void*>(s.host_constant) : base + s.offset;
          v.push_back({s.dtype, s.dims, data});
        }
        return v;
      };
      self.reference_->run(views(self.inputs_), views(self.outputs_));
    } catch (const std::exception& e) {
      status->failed = true;
      std::strncpy(status->message, e.what(), sizeof(status->message) - 1);
      status->message[sizeof(status->message) - 1] = '\0';
    }
  }

  std::unique_ptr<backend::Kernel> reference_;
  std::vector<Slot> inputs_, outputs_;
  size_t staging_bytes_ = 0;
};

}  // namespace

std::unique_ptr<backend::Kernel> make_host_fallback_kernel(const LayerDesc& desc) {
  return std::make_unique<HostFallbackKernel>(desc);
}

}  // namespace kiln::cuda
