// CumSum on CUDA (cuda.cumsum): one thread per line along the axis, summing sequentially in the reference's
// order (forward or reverse, inclusive or exclusive), so results equal the reference bit for bit: float types
// accumulate in double and round once per stored element, integers wrap (two's complement) in 64 bits.
// The axis is a constant or a device scalar (ONNX's node tests feed it as a graph input): then each thread
// reads it and finds its line; an axis outside [-rank, rank) (the reference's error) is wrapped into range,
// so nothing is read out of bounds.
#include "backends/cuda/movement_cuda.cuh"
#include "backends/cuda/numeric_cuda.cuh"

namespace kiln::cuda::cumsum {
namespace {

using movement::factory;
using movement::kThreads;
using movement::LayerDesc;
using movement::TensorView;

struct CumSumParams {
  int rank;  // of x, at least 1 (a scalar is a one-element vector)
  int64_t dims[movement::kMaxRank];
  int axis;  // normalized; -1: read from the device (axis_size bytes: 4 or 8)
  int axis_size;
  bool exclusive, reverse;
};

// The axis in [0, rank): the constant, or the device scalar wrapped into range.
__device__ __forceinline__ int line_axis(const void* axis, const CumSumParams& p) {
  if (p.axis >= 0) return p.axis;
  const int64_t a =
      p.axis_size == 4 ? *static_cast<const int32_t*>(axis) : *static_cast<const int64_t*>(axis);
  return static_cast<int>(((a % p.rank) + p.rank) % p.rank);
}

// One thread per line; the grid covers numel threads, as many as the shortest axis could need.
template <typename T>
__global__ void cumsum_kernel(const T* src, const void* axis_ptr, T* dst, CumSumParams p) {
  const int axis = line_axis(axis_ptr, p);
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < p.rank; ++k) {
    if (k < axis) outer *= p.dims[k];
    if (k > axis) inner *= p.dims[k];
  }
  const int64_t n = p.dims[axis];
  const int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (line >= outer * inner) return;
  const int64_t o = line / inner, i = line - o * inner;
  using Acc = std::conditional_t<is_device_float_v<T>, double, uint64_t>;
  Acc acc = 0;
  for (int64_t s = 0; s < n; ++s) {
    const int64_t at = (o * n + (p.reverse ? n - 1 - s : s)) * inner + i;
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
  CumSumKernel(DType dtype, CumSumParams p, int64_t numel) : dtype_(dtype), p_(p), numel_(numel) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (numel_ == 0) return;
    dispatch_numeric(dtype_, [&](auto t) {
      using T = decltype(t);
      cumsum_kernel<T><<<blocks_for(numel_, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const T*>(in[0].data), in[1].data, static_cast<T*>(out[0].data), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  // A constant axis is read at create time.
  bool owns_constant_input(size_t k) const override { return k == 1 && p_.axis >= 0; }

 private:
  DType dtype_;
  CumSumParams p_;
  int64_t numel_;
};

std::optional<CumSumParams> cumsum_plan(const LayerDesc& d) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !is_numeric_dtype(d.inputs[0].dtype) ||
      d.outputs[0].dtype != d.inputs[0].dtype || d.outputs[0].dims != d.inputs[0].dims)
    return std::nullopt;
  const auto& a = d.inputs[1];
  if (!a.present || (a.dtype != DType::Int32 && a.dtype != DType::Int64) || ops::numel(a.dims) != 1)
    return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(x.size()));  // a scalar is a 1-vector
  if (rank > movement::kMaxRank) return std::nullopt;
  CumSumParams p{};
  p.rank = static_cast<int>(rank);
  for (int64_t k = 0; k < rank; ++k) p.dims[k] = x.empty() ? 1 : x[static_cast<size_t>(k)];
  p.axis = -1;
  p.axis_size = static_cast<int>(dtype_size(a.dtype));
  if (a.constant) {
    int64_t axis = a.constant->as_int64(0);
    if (axis < -rank || axis >= rank) return std::nullopt;
    p.axis = static_cast<int>(axis < 0 ? axis + rank : axis);
  }
  p.exclusive = d.node->attrs.get_int("exclusive", 0) != 0;
  p.reverse = d.node->attrs.get_int("reverse", 0) != 0;
  return p;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.cumsum", "CumSum", [](const LayerDesc& d) { return cumsum_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<CumSumKernel>(d.inputs[0].dtype, *cumsum_plan(d), ops::numel(d.inputs[0].dims));
    }));

}  // namespace
}  // namespace kiln::cuda::cumsum
