// CUDA Pow on every numeric base dtype but bool, with an exponent of any numeric dtype but bool (mixed
// dtypes: float base with an integer exponent, integer base with a float exponent), output in the base's
// dtype (cuda.numeric_pow, priority 1, below cuda.elementwise's same-dtype float Pow). Numpy broadcasting
// through broadcast_cuda.cuh's plan, one thread per output element.
//
// As the reference (ops/elementwise_binary.cpp): both operands widen to double, pow in double, then
// static_cast to the base's compute type (integers truncate toward zero) and store. An integer base with a
// whole exponent in [0, 64] is raised by repeated squaring in double instead of pow(): exact wherever the
// result fits 53 bits, where CUDA's pow (2 ulp) could land just below a whole number and truncate one lower
// than the reference's correctly rounded std::pow.
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/broadcast_cuda.cuh"
#include "backends/cuda/numeric_types_cuda.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

// Element i of the exponent, of dtype t, as double (a uniform branch: every thread takes the same case).
__device__ __forceinline__ double exponent_at(const void* p, int64_t i, DType t) {
  switch (t) {
    case DType::Int8:
      return static_cast<const int8_t*>(p)[i];
    case DType::Int16:
      return static_cast<const int16_t*>(p)[i];
    case DType::Int32:
      return static_cast<const int32_t*>(p)[i];
    case DType::Int64:
      return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::UInt8:
      return static_cast<const uint8_t*>(p)[i];
    case DType::UInt16:
      return static_cast<const uint16_t*>(p)[i];
    case DType::UInt32:
      return static_cast<const uint32_t*>(p)[i];
    case DType::UInt64:
      return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    case DType::Float16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case DType::BFloat16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    case DType::Float:
      return static_cast<const float*>(p)[i];
    default:
      return static_cast<const double*>(p)[i];
  }
}

__device__ __forceinline__ double whole_power(double x, unsigned e) {
  double r = 1.0;
  while (e) {
    if (e & 1u) r *= x;
    x *= x;
    e >>= 1;
  }
  return r;
}

template <class T, typename I>
__global__ void numeric_pow_kernel(const typename T::storage* a, const void* b, DType b_dtype,
                                   typename T::storage* y, I n, bcast::Params<2> p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    bcast::offsets<2>(p, i, off);
    const double x = static_cast<double>(T::load(a[off[0]]));
    const double e = exponent_at(b, off[1], b_dtype);
    double r;
    if (!T::is_float && e >= 0 && e <= 64 && e == ::floor(e))
      r = whole_power(x, static_cast<unsigned>(e));
    else
      r = ::pow(x, e);
    y[i] = T::store(static_cast<typename T::compute>(r));
  }
}

std::optional<bcast::Params<2>> numeric_pow_plan(const LayerDesc& d) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !d.inputs[0].present || !d.inputs[1].present ||
      !d.outputs[0].present)
    return std::nullopt;
  const DType t = d.inputs[0].dtype, e = d.inputs[1].dtype;
  if (!numeric::is_numeric(t) || t == DType::Bool || !numeric::is_numeric(e) || e == DType::Bool ||
      d.outputs[0].dtype != t)
    return std::nullopt;
  return bcast::plan<2>({d.inputs[0].dims, d.inputs[1].dims}, d.outputs[0].dims);
}

class NumericPowKernel final : public CudaKernel {
 public:
  NumericPowKernel(bcast::Params<2> p, DType base, DType exponent)
      : p_(p), base_(base), exponent_(exponent) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    numeric::dispatch(base_, [&](auto t) {
      using T = decltype(t);
      using S = typename T::storage;
      if constexpr (!T::is_bool) {
        const S* a = static_cast<const S*>(in[0].data);
        S* y = static_cast<S*>(out[0].data);
        const unsigned int grid = blocks_for(n, kThreads);
        if (bcast::fits32(n))
          numeric_pow_kernel<T, uint32_t>
              <<<grid, kThreads, 0, rc.stream>>>(a, in[1].data, exponent_, y, static_cast<uint32_t>(n), p_);
        else
          numeric_pow_kernel<T, int64_t>
              <<<grid, kThreads, 0, rc.stream>>>(a, in[1].data, exponent_, y, n, p_);
        KILN_CUDA_CHECK_LAUNCH();
      }
    });
  }

 private:
  bcast::Params<2> p_;
  DType base_, exponent_;
};

KILN_REGISTER_KERNEL(KernelFactory{
    .name = "cuda.numeric_pow",
    .device = "cuda",
    .op = "Pow",
    .domain = "",
    .priority = 1,
    .supports = [](const LayerDesc& d) { return numeric_pow_plan(d).has_value(); },
    .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<NumericPowKernel>(*numeric_pow_plan(d), d.inputs[0].dtype, d.inputs[1].dtype);
    }});

}  // namespace
}  // namespace kiln::cuda
