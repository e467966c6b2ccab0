// MaxUnpool on CUDA (cuda.max_unpool): Y is zero except Y.flat[I[i]] = X[i]; elements moved as bits (any
// dtype of 1, 2, 4 or 8 bytes, as the reference unpools), I int64 on the device.
// Two passes, deterministic without a data race:
//   claim:  one thread per X element marks its target, winner[I[i]] = max(winner[I[i]], i) (atomicMax), so
//           when indices repeat the largest i wins, as the reference's last write does;
//   gather: one thread per Y element copies X[winner] or writes zero.
// winner (int64 per Y element) lives in the workspace. The reference fails on an index outside Y; on the
// device, where a run cannot fail, such an index is skipped (its X element is not written anywhere).
// The output shape must be the unpooled one ((in - 1) * stride - pads + kernel), as the reference requires:
// an output_shape input is accepted when the planned Y has that shape, and is not read.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "ops/util.h"

namespace kiln::cuda::max_unpool {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

__global__ void claim_kernel(const int64_t* __restrict__ indices, int64_t n, int64_t total,
                             long long* __restrict__ winner) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t at = indices[i];
    if (at >= 0 && at < total) atomicMax(winner + at, static_cast<long long>(i));
  }
}

template <typename B>
__global__ void gather_kernel(const B* __restrict__ x, const long long* __restrict__ winner,
                              B* __restrict__ y, int64_t total) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += step) {
    const long long from = winner[o];
    y[o] = from >= 0 ? x[from] : B{0};
  }
}

class MaxUnpoolKernel final : public CudaKernel {
 public:
  MaxUnpoolKernel(size_t element_size, int64_t n, int64_t total)
      : size_(element_size), n_(n), total_(total) {}
  size_t workspace_bytes() const override { return static_cast<size_t>(total_) * sizeof(long long); }
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (total_ == 0) return;
    if (rc.workspace_bytes < workspace_bytes()) throw Error("cuda.max_unpool: workspace too small");
    auto* winner = static_cast<long long*>(rc.workspace);
    KILN_CUDA_CHECK(cudaMemsetAsync(winner, 0xFF, workspace_bytes(), rc.stream));  // -1: no X element
    if (n_ > 0) {
      claim_kernel<<<blocks_for(n_, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const int64_t*>(in[1].data), n_, total_, winner);
      KILN_CUDA_CHECK_LAUNCH();
    }
    dispatch_bits(size_, [&](auto bits) {
      using B = decltype(bits);
      gather_kernel<B><<<blocks_for(total_, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const B*>(in[0].data), winner, static_cast<B*>(out[0].data), total_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  size_t size_;
  int64_t n_, total_;  // X (and I) elements, Y elements
};

// The unpooled shape of X [N, C, spatial...] under the node's kernel_shape, strides and pads, or nullopt when
// the attributes are missing, malformed or give a negative size (the reference's errors).
std::optional<std::vector<int64_t>> unpooled_dims(const LayerDesc& d, const std::vector<int64_t>& x) {
  if (x.size() < 3) return std::nullopt;
  const size_t n = x.size() - 2;
  const Attributes& a = d.node->attrs;
  if (!a.has("kernel_shape")) return std::nullopt;
  const auto kernel = a.get_ints("kernel_shape");
  const auto strides = a.get_ints("strides", std::vector<int64_t>(n, 1));
  const auto pads = a.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  if (kernel.size() != n || strides.size() != n || pads.size() != 2 * n) return std::nullopt;
  std::vector<int64_t> out{x[0], x[1]};
  for (size_t i = 0; i < n; ++i) {
    if (kernel[i] < 1 || strides[i] < 1 || pads[i] < 0 || pads[i + n] < 0) return std::nullopt;
    const int64_t o = (x[i + 2] - 1) * strides[i] - (pads[i] + pads[i + n]) + kernel[i];
    if (o < 0) return std::nullopt;
    out.push_back(o);
  }
  return out;
}

// X of any dtype of 1, 2, 4 or 8 bytes (strings excluded), I int64 of X's dims, Y of X's dtype and the
// unpooled dims; an optional output_shape input is allowed (Y's planned dims are what count).
bool max_unpool_supported(const LayerDesc& d) {
  if (d.inputs.size() < 2 || d.inputs.size() > 3 || d.outputs.size() != 1 || !d.inputs[0].present ||
      !d.inputs[1].present || !d.outputs[0].present)
    return false;
  const DType t = d.inputs[0].dtype;
  const size_t es = dtype_size(t);  // 0 for strings
  if (!(es == 1 || es == 2 || es == 4 || es == 8) || d.outputs[0].dtype != t ||
      d.inputs[1].dtype != DType::Int64 || d.inputs[1].dims != d.inputs[0].dims)
    return false;
  for (int64_t v : d.inputs[0].dims)
    if (v < 0) return false;
  try {
    const auto u = unpooled_dims(d, d.inputs[0].dims);
    return u && *u == d.outputs[0].dims;
  } catch (const Error&) {  // an attribute of the wrong type
    return false;
  }
}

KernelFactory max_unpool_factory() {
  return {.name = "cuda.max_unpool",
          .device = "cuda",
          .op = "MaxUnpool",
          .domain = "",
          .priority = 10,
          .supports = max_unpool_supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<MaxUnpoolKernel>(
                dtype_size(d.inputs[0].dtype), ops::numel(d.inputs[0].dims), ops::numel(d.outputs[0].dims));
          }};
}

KILN_REGISTER_KERNEL(max_unpool_factory());

}  // namespace
}  // namespace kiln::cuda::max_unpool
