// OneHot on CUDA (cuda.onehot): one thread per output element compares its position along the new axis with
// its index (any numeric dtype; floats truncated toward zero, non-finite or huge ones match nothing, negative
// ones count from the end, others outside [-depth, depth) give an all-off row, as the reference does) and
// copies values[1] ("on") or values[0] ("off") as bits. depth comes from the output's static shape.
#include "backends/cuda/movement_cuda.cuh"
#include "backends/cuda/numeric_cuda.cuh"

namespace kiln::cuda::onehot {
namespace {

using movement::factory;
using movement::kThreads;
using movement::LayerDesc;
using movement::TensorView;

struct OneHotParams {
  int64_t n, depth, inner;  // output elements; the new axis; index elements after the axis
};

// The index as an int64, false when it matches no position (the reference's `integral`).
template <typename I>
__device__ __forceinline__ bool index_value(I v, int64_t& k) {
  if constexpr (is_device_float_v<I>) {
    const double d = load_double(v);
    if (!(fabs(d) < 9.2e18)) return false;
    k = static_cast<int64_t>(d);
  } else {
    k = static_cast<int64_t>(v);
  }
  return true;
}

template <typename I, typename B>
__global__ void onehot_kernel(const I* idx, const B* values, B* out, OneHotParams p) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= p.n) return;
  const int64_t i = e % p.inner, rest = e / p.inner, d = rest % p.depth, o = rest / p.depth;
  int64_t k = 0;
  bool on = index_value(idx[o * p.inner + i], k) && k >= -p.depth && k < p.depth;
  on = on && (k < 0 ? k + p.depth : k) == d;
  out[e] = values[on ? 1 : 0];
}

class OneHotKernel final : public CudaKernel {
 public:
  OneHotKernel(DType index_dtype, size_t value_size, OneHotParams p)
      : index_dtype_(index_dtype), value_size_(value_size), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.n == 0) return;
    dispatch_numeric(index_dtype_, [&](auto it) {
      using I = decltype(it);
      movement::dispatch_bits(value_size_, [&](auto b) {
        using B = decltype(b);
        onehot_kernel<I, B><<<blocks_for(p_.n, kThreads), kThreads, 0, rc.stream>>>(
            static_cast<const I*>(in[0].data), static_cast<const B*>(in[2].data),
            static_cast<B*>(out[0].data), p_);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }

 private:
  DType index_dtype_;
  size_t value_size_;
  OneHotParams p_;
};

std::optional<OneHotParams> onehot_plan(const LayerDesc& d) {
  if (d.inputs.size() != 3 || d.outputs.size() != 1 || !is_numeric_dtype(d.inputs[0].dtype))
    return std::nullopt;
  const DType vt = d.inputs[2].dtype;
  const size_t vs = dtype_size(vt);
  if (vt == DType::String || vt != d.outputs[0].dtype || d.inputs[2].dims != std::vector<int64_t>{2} ||
      !(vs == 1 || vs == 2 || vs == 4 || vs == 8))
    return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  const int64_t rank = static_cast<int64_t>(x.size());
  if (y.size() != x.size() + 1) return std::nullopt;
  int64_t axis = d.node->attrs.get_int("axis", -1);
  if (axis < -(rank + 1) || axis > rank) return std::nullopt;
  if (axis < 0) axis += rank + 1;
  OneHotParams p{};
  p.depth = y[static_cast<size_t>(axis)];
  if (p.depth < 1) return std::nullopt;
  p.inner = ops::numel({x.begin() + axis, x.end()});
  p.n = ops::numel(y);
  if (p.inner < 1) p.inner = 1;  // an empty output (n == 0) is not launched
  return p;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.onehot", "OneHot", [](const LayerDesc& d) { return onehot_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<OneHotKernel>(d.inputs[0].dtype, dtype_size(d.inputs[2].dtype),
                                            *onehot_plan(d));
    }));

}  // namespace
}  // namespace kiln::cuda::onehot
