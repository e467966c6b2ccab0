// CUDA Max, Min and Sum of 1 to 8 inputs on every numeric dtype but bool Sum (cuda.numeric_variadic), numpy
// broadcasting of all inputs at once through broadcast_cuda.cuh's plan, one thread per output element.
// Priority 1, below the float and int32/int64 kernels. The reference folds its inputs pairwise, storing each
// partial result: the kernel folds in the same order and rounds each partial Sum through the storage type
// (half types), so float16 sums match it bit for bit. Max/Min keep the reference's comparison (a < b ? b :
// a), so a NaN on the left of a comparison wins and one on the right loses, as there. Integer sums wrap.
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "backends/cuda/broadcast_cuda.cuh"
#include "backends/cuda/numeric_types_cuda.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;
constexpr int kMaxInputs = 8;

enum class Fold { Max, Min, Sum };

struct Inputs {
  const void* p[kMaxInputs];
};

template <class T>
__device__ __forceinline__ typename T::compute fold(Fold f, typename T::compute a, typename T::compute b) {
  using C = typename T::compute;
  if (f == Fold::Max) return a < b ? b : a;
  if (f == Fold::Min) return b < a ? b : a;
  if constexpr (T::is_float)
    return a + b;
  else if constexpr (T::is_bool)
    return a || b;
  else
    return static_cast<C>(static_cast<numeric::WrapT<C>>(a) + static_cast<numeric::WrapT<C>>(b));
}

template <class T, int N>
__global__ void numeric_variadic_kernel(Inputs in, typename T::storage* y, int64_t n, bcast::Params<N> p,
                                        Fold f) {
  using S = typename T::storage;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[N];
    bcast::offsets<N>(p, i, off);
    typename T::compute acc = T::load(static_cast<const S*>(in.p[0])[off[0]]);
#pragma unroll
    for (int j = 1; j < N; ++j)
      acc = T::load(T::store(fold<T>(f, acc, T::load(static_cast<const S*>(in.p[j])[off[j]]))));
    y[i] = T::store(acc);
  }
}

// Calls f(std::integral_constant<int, N>{}) for n in 1..kMaxInputs.
template <typename F>
void dispatch_count(size_t n, F&& f) {
  switch (n) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 5:
      return f(std::integral_constant<int, 5>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 7:
      return f(std::integral_constant<int, 7>{});
    default:
      return f(std::integral_constant<int, 8>{});
  }
}

bool numeric_variadic_supported(const LayerDesc& d) {
  const size_t n = d.inputs.size();
  if (n < 1 || n > static_cast<size_t>(kMaxInputs) || d.outputs.size() != 1 || !d.outputs[0].present)
    return false;
  const DType t = d.outputs[0].dtype;
  if (!numeric::is_numeric(t)) return false;
  std::vector<std::vector<int64_t>> dims;
  for (const auto& x : d.inputs) {
    if (!x.present || x.dtype != t) return false;
    dims.push_back(x.dims);
  }
  bool ok = false;
  dispatch_count(n,
                 [&](auto c) { ok = bcast::plan<decltype(c)::value>(dims, d.outputs[0].dims).has_value(); });
  return ok;
}

class NumericVariadicKernel final : public CudaKernel {
 public:
  explicit NumericVariadicKernel(const LayerDesc& d) : dtype_(d.outputs[0].dtype), count_(d.inputs.size()) {
    const std::string& op = d.node->op;
    fold_ = op == "Max" ? Fold::Max : (op == "Min" ? Fold::Min : Fold::Sum);
    std::vector<std::vector<int64_t>> dims;
    for (const auto& x : d.inputs) dims.push_back(x.dims);
    dispatch_count(count_,
                   [&](auto c) { plan_ = *bcast::plan<decltype(c)::value>(dims, d.outputs[0].dims); });
  }
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    Inputs ptrs{};
    for (size_t k = 0; k < count_; ++k) ptrs.p[k] = in[k].data;
    numeric::dispatch(dtype_, [&](auto t) {
      using T = decltype(t);
      dispatch_count(count_, [&](auto c) {
        constexpr int N = decltype(c)::value;
        const auto& p = std::get<bcast::Params<N>>(plan_);
        numeric_variadic_kernel<T, N><<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(
            ptrs, static_cast<typename T::storage*>(out[0].data), n, p, fold_);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }

 private:
  DType dtype_;
  size_t count_;
  Fold fold_;
  std::variant<bcast::Params<1>, bcast::Params<2>, bcast::Params<3>, bcast::Params<4>, bcast::Params<5>,
               bcast::Params<6>, bcast::Params<7>, bcast::Params<8>>
      plan_;  // the alternative of the input count
};

KernelFactory numeric_variadic_factory(const std::string& op) {
  return {.name = "cuda.numeric_variadic",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 1,
          .supports = numeric_variadic_supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<NumericVariadicKernel>(d);
          }};
}

KILN_REGISTER_KERNEL(numeric_variadic_factory("Max"));
KILN_REGISTER_KERNEL(numeric_variadic_factory("Min"));
KILN_REGISTER_KERNEL(numeric_variadic_factory("Sum"));

}  // namespace
}  // namespace kiln::cuda
