// cuda.variadic: Sum, Mean, Max and Min over 1..8 broadcasting inputs, and PRelu (its slope broadcast to X),
// for float, float16 and bfloat16. (cuda.elementwise takes two-input Max/Min at a higher priority.)
//
// One thread per output element: the element's offset in each input is the dot product of its output index
// with that input's strides (0 along broadcast axes). The reference folds the inputs left to right, storing
// each partial result in the element type (acc = op(acc, x_k)), so the kernel rounds the accumulator to T
// after every step too: float16 Sums then match it exactly, not just closely. Mean divides the rounded Sum
// by the count in double, as the reference does.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;
constexpr int kMaxRank = 8;
constexpr int kMaxInputs = 8;

enum class Fold { Sum, Mean, Max, Min, PRelu };

// Output dims (merged where every input continues contiguously, innermost last) and per-input strides.
struct FoldParams {
  int rank = 0, count = 0;
  int64_t dims[kMaxRank] = {};
  int64_t strides[kMaxInputs][kMaxRank] = {};
};

struct Pointers {
  const void* in[kMaxInputs];
};

template <Fold op>
__device__ __forceinline__ float step(float acc, float v) {
  if constexpr (op == Fold::Sum || op == Fold::Mean)
    return acc + v;
  else if constexpr (op == Fold::Max)
    return acc < v ? v : acc;  // the reference's comparison: a NaN accumulator stays, a NaN v is skipped
  else if constexpr (op == Fold::Min)
    return v < acc ? v : acc;
  else
    return acc < 0.f ? acc * v : acc;  // PRelu: acc is x, v the slope
}

template <typename T, Fold op>
__global__ void fold_kernel(Pointers ptrs, T* y, int64_t n, FoldParams p) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t off[kMaxInputs] = {};
    int64_t t = i;
    for (int k = p.rank - 1; k >= 0; --k) {
      const int64_t q = t / p.dims[k], r = t - q * p.dims[k];
      for (int j = 0; j < p.count; ++j) off[j] += r * p.strides[j][k];
      t = q;
    }
    float acc = to_float(static_cast<const T*>(ptrs.in[0])[off[0]]);
    for (int j = 1; j < p.count; ++j)
      acc = to_float(from_float<T>(step<op>(acc, to_float(static_cast<const T*>(ptrs.in[j])[off[j]]))));
    if constexpr (op == Fold::Mean)
      acc = __double2float_rn(static_cast<double>(acc) / static_cast<double>(p.count));
    y[i] = from_float<T>(acc);
  }
}

// dims left-padded with 1s to `rank`.
std::vector<int64_t> padded(const std::vector<int64_t>& d, size_t rank) {
  std::vector<int64_t> p(rank - d.size(), 1);
  p.insert(p.end(), d.begin(), d.end());
  return p;
}

// Strides of every input over the output, then adjacent axes merged where every input walks on contiguously
// (or stays broadcast); size-1 output axes dropped. False when an input does not broadcast to the output.
bool plan_fold(const LayerDesc& d, FoldParams& p) {
  const auto& out = d.outputs[0].dims;
  if (out.size() > kMaxRank) return false;
  const size_t count = d.inputs.size();
  std::vector<std::vector<int64_t>> strides(count, std::vector<int64_t>(out.size(), 0));
  for (size_t j = 0; j < count; ++j) {
    if (d.inputs[j].dims.size() > out.size()) return false;
    const auto pd = padded(d.inputs[j].dims, out.size());
    int64_t acc = 1;
    for (size_t k = out.size(); k-- > 0;) {
      if (pd[k] != out[k] && pd[k] != 1) return false;
      strides[j][k] = pd[k] == 1 ? 0 : acc;
      acc *= pd[k];
    }
  }
  std::vector<int64_t> md;
  std::vector<std::vector<int64_t>> ms(count);
  for (size_t k = 0; k < out.size(); ++k) {
    if (out[k] == 1) continue;
    bool merge = !md.empty();
    for (size_t j = 0; merge && j < count; ++j) merge = ms[j].back() == strides[j][k] * out[k];
    if (merge) {
      md.back() *= out[k];
      for (size_t j = 0; j < count; ++j) ms[j].back() = strides[j][k];
    } else {
      md.push_back(out[k]);
      for (size_t j = 0; j < count; ++j) ms[j].push_back(strides[j][k]);
    }
  }
  p.rank = static_cast<int>(md.size());
  p.count = static_cast<int>(count);
  for (size_t k = 0; k < md.size(); ++k) {
    p.dims[k] = md[k];
    for (size_t j = 0; j < count; ++j) p.strides[j][k] = ms[j][k];
  }
  return true;
}

Fold fold_of(const std::string& op) {
  if (op == "Sum") return Fold::Sum;
  if (op == "Mean") return Fold::Mean;
  if (op == "Max") return Fold::Max;
  if (op == "Min") return Fold::Min;
  return Fold::PRelu;
}

bool variadic_supported(const LayerDesc& d) {
  const bool prelu = d.node->op == "PRelu";
  const size_t count = d.inputs.size();
  if (count < 1 || count > kMaxInputs || (prelu && count != 2) || d.outputs.size() != 1 ||
      !d.outputs[0].present)
    return false;
  const DType t = d.outputs[0].dtype;
  if (!is_cuda_float(t)) return false;
  for (const auto& in : d.inputs)
    if (!in.present || in.dtype != t) return false;
  // PRelu's slope broadcasts one way only: Y has X's shape (the reference fails otherwise).
  if (prelu && d.outputs[0].dims != d.inputs[0].dims) return false;
  FoldParams p;
  return plan_fold(d, p);
}

template <Fold op>
void launch_fold(DType dtype, const Pointers& ptrs, void* y, int64_t n, const FoldParams& p, cudaStream_t s) {
  dispatch_float_type(dtype, [&](auto t) {
    using T = decltype(t);
    fold_kernel<T, op><<<blocks_for(n, kThreads), kThreads, 0, s>>>(ptrs, static_cast<T*>(y), n, p);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

class FoldKernel final : public CudaKernel {
 public:
  FoldKernel(Fold op, DType dtype, const FoldParams& p) : op_(op), dtype_(dtype), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    Pointers ptrs{};
    for (int j = 0; j < p_.count; ++j) ptrs.in[j] = in[static_cast<size_t>(j)].data;
    switch (op_) {
      case Fold::Sum:
        launch_fold<Fold::Sum>(dtype_, ptrs, out[0].data, n, p_, rc.stream);
        break;
      case Fold::Mean:
        launch_fold<Fold::Mean>(dtype_, ptrs, out[0].data, n, p_, rc.stream);
        break;
      case Fold::Max:
        launch_fold<Fold::Max>(dtype_, ptrs, out[0].data, n, p_, rc.stream);
        break;
      case Fold::Min:
        launch_fold<Fold::Min>(dtype_, ptrs, out[0].data, n, p_, rc.stream);
        break;
      case Fold::PRelu:
        launch_fold<Fold::PRelu>(dtype_, ptrs, out[0].data, n, p_, rc.stream);
        break;
    }
  }

 private:
  Fold op_;
  DType dtype_;
  FoldParams p_;
};

std::unique_ptr<backend::Kernel> create_variadic(const LayerDesc& d) {
  FoldParams p;
  if (!variadic_supported(d) || !plan_fold(d, p))
    throw Error("cuda.variadic: layer '" + d.node->name + "' is not supported");
  return std::make_unique<FoldKernel>(fold_of(d.node->op), d.outputs[0].dtype, p);
}

KernelFactory variadic_factory(const std::string& op) {
  return {.name = "cuda.variadic",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 5,
          .supports = variadic_supported,
          .create = create_variadic};
}

KILN_REGISTER_KERNEL(variadic_factory("Sum"));
KILN_REGISTER_KERNEL(variadic_factory("Mean"));
KILN_REGISTER_KERNEL(variadic_factory("Max"));
KILN_REGISTER_KERNEL(variadic_factory("Min"));
KILN_REGISTER_KERNEL(variadic_factory("PRelu"));

}  // namespace
}  // namespace kiln::cuda
