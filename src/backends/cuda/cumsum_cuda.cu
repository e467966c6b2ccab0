// CumSum on CUDA (cuda.cumsum): one thread per line along the axis, summing sequentially in the reference's
// order (forward or reverse, inclusive or exclusive), so results equal the reference bit for bit: float types
// accumulate in double and round once per stored element, integers wrap (two's complement) in 64 bits.
// The axis must be a constant.
#include "backends/cuda/movement_cuda.cuh"
#include "backends/cuda/numeric_cuda.cuh"

namespace kiln::cuda::cumsum {
namespace {

using movement::factory;
using movement::kThreads;
using movement::LayerDesc;
using movement::TensorView;

struct CumSumParams {
  int64_t outer, n, inner;  // lines = outer * inner, each n long with stride inner
  bool exclusive, reverse;
};

template <typename T>
__global__ void cumsum_kernel(const T* src, T* dst, CumSumParams p) {
  const int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (line >= p.outer * p.inner) return;
  const int64_t o = line / p.inner, i = line - o * p.inner;
  using Acc = std::conditional_t<is_device_float_v<T>, double, uint64_t>;
  Acc acc = 0;
  for (int64_t s = 0; s < p.n; ++s) {
    const int64_t at = (o * p.n + (p.reverse ? p.n - 1 - s : s)) * p.inner + i;
    Acc v;
    if constexpr (is_device_float_v<T>)
      v = load_double(src[at]);
    else
      v = static_cast<uint64_t>(src[at]);
    if (!p.exclusive) acc += v;
    if constexpr (is_device_float_v<T>)
      dst[at] = store_double<T>(acc);
    else
      dst[at] = static_cast<T>(acc);
    if (p.exclusive) acc += v;
  }
}

class CumSumKernel final : public CudaKernel {
 public:
  CumSumKernel(DType dtype, CumSumParams p) : dtype_(dtype), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t lines = p_.outer * p_.inner;
    if (lines == 0 || p_.n == 0) return;
    dispatch_numeric(dtype_, [&](auto t) {
      using T = decltype(t);
      cumsum_kernel<T><<<blocks_for(lines, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const T*>(in[0].data), static_cast<T*>(out[0].data), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  bool owns_constant_input(size_t k) const override { return k == 1; }  // the axis, read at create time

 private:
  DType dtype_;
  CumSumParams p_;
};

std::optional<CumSumParams> cumsum_plan(const LayerDesc& d) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !is_numeric_dtype(d.inputs[0].dtype) ||
      d.outputs[0].dtype != d.inputs[0].dtype || d.outputs[0].dims != d.inputs[0].dims)
    return std::nullopt;
  const TensorData* a = d.inputs[1].constant;
  if (!a || a->numel() != 1 || !dtype_is_integer(a->dtype())) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(x.size()));  // a scalar is a 1-vector
  int64_t axis = a->as_int64(0);
  if (axis < -rank || axis >= rank) return std::nullopt;
  if (axis < 0) axis += rank;
  CumSumParams p{};
  p.n = x.empty() ? 1 : x[static_cast<size_t>(axis)];
  p.inner = x.empty() ? 1 : ops::numel({x.begin() + axis + 1, x.end()});
  p.outer = x.empty() ? 1 : ops::numel({x.begin(), x.begin() + axis});
  p.exclusive = d.node->attrs.get_int("exclusive", 0) != 0;
  p.reverse = d.node->attrs.get_int("reverse", 0) != 0;
  return p;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.cumsum", "CumSum", [](const LayerDesc& d) { return cumsum_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<CumSumKernel>(d.inputs[0].dtype, *cumsum_plan(d));
    }));

}  // namespace
}  // namespace kiln::cuda::cumsum
