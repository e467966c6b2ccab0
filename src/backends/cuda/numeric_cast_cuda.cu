// CUDA Cast / CastLike between any two numeric dtypes (cuda.numeric_cast): bool, int8..int64, uint8..uint64,
// float16, bfloat16, float32, float64. Priority 1, below cuda.cast, which keeps the float/float16/bfloat16
// pairs. Each element converts as the reference (ops/cast.cpp) does: load into the source's compute type
// (half types widen to float, bool to true/false), static_cast to the target's compute type (floats truncate
// toward zero into integers, anything non-zero becomes true), store (half types round to nearest even once,
// from float — so float64 -> float16 rounds through float32 as the reference does). A float out of an
// integer's range, or NaN, is undefined in C++: there the GPU saturates (NaN -> 0), the reference's CPU
// leaves what its conversion instruction gives. CastLike reads only its second input's dtype, constant or
// not.
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/numeric_types_cuda.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

template <class F, class T>
__global__ void numeric_cast_kernel(const typename F::storage* x, typename T::storage* y, int64_t n) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    y[i] = T::store(static_cast<typename T::compute>(F::load(x[i])));
}

class NumericCastKernel final : public CudaKernel {
 public:
  NumericCastKernel(DType from, DType to, bool like) : from_(from), to_(to), like_(like) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    if (from_ == to_) {
      if (in[0].data != out[0].data)
        KILN_CUDA_CHECK(
            cudaMemcpyAsync(out[0].data, in[0].data, out[0].nbytes(), cudaMemcpyDeviceToDevice, rc.stream));
      return;
    }
    numeric::dispatch(from_, [&](auto f) {
      numeric::dispatch(to_, [&](auto t) {
        using F = decltype(f);
        using T = decltype(t);
        numeric_cast_kernel<F, T><<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(
            static_cast<const typename F::storage*>(in[0].data),
            static_cast<typename T::storage*>(out[0].data), n);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }
  // CastLike's second input only lends its dtype.
  bool owns_constant_input(size_t k) const override { return like_ && k == 1; }

 private:
  DType from_, to_;
  bool like_;
};

bool numeric_cast_supported(const LayerDesc& d) {
  const bool like = d.node->op == "CastLike";
  if (d.inputs.size() != (like ? 2u : 1u) || d.outputs.size() != 1 || !d.inputs[0].present ||
      !d.outputs[0].present)
    return false;
  if (like && (!d.inputs[1].present || d.inputs[1].dtype != d.outputs[0].dtype)) return false;
  return numeric::is_numeric(d.inputs[0].dtype) && numeric::is_numeric(d.outputs[0].dtype) &&
         d.inputs[0].dims == d.outputs[0].dims;
}

KernelFactory numeric_cast_factory(const std::string& op) {
  return {.name = "cuda.numeric_cast",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 1,
          .supports = numeric_cast_supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<NumericCastKernel>(d.inputs[0].dtype, d.outputs[0].dtype,
                                                       d.node->op == "CastLike");
          }};
}

KILN_REGISTER_KERNEL(numeric_cast_factory("Cast"));
KILN_REGISTER_KERNEL(numeric_cast_factory("CastLike"));

}  // namespace
}  // namespace kiln::cuda
