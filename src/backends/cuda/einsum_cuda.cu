// Einsum on CUDA (cuda.einsum): one thread per output element, looping over every combination of the summed
// labels — the reference's loop (ops/einsum.cpp) split by output element, in its order, so float results
// equal the reference's: products and sums in double (no fused multiply-add), rounded once on store; integers
// multiply and add wrapping in uint64. The equation is parsed at create time by the reference's parser
// (ops/einsum.h). Each operand gets one stride per loop label (the sum of its dims' strides with that label;
// 0 for broadcast dims). Not fast (no tiling or tensor cores): it exists so any Einsum runs on the GPU.
#include <algorithm>
#include <cctype>

#include "backends/cuda/math_cuda.cuh"
#include "ops/einsum.h"

namespace kiln::cuda::einsum {
namespace {

using namespace math;

constexpr int kMaxOperands = 4;
constexpr int kMaxLoop = 16;  // output labels + summed labels
constexpr int kEllipsis = ops::kEinsumEllipsis;

struct EinsumParams {
  int operands;
  int out_rank;  // the first out_rank loop labels are the output's, in its order; the rest are summed
  int loop;
  int64_t dims[kMaxLoop];
  int64_t strides[kMaxOperands][kMaxLoop];
  int64_t out_numel, sum_numel;
};

// The kernel's loop for the layer; nullopt where the reference would fail or the kernel's limits are passed.
std::optional<EinsumParams> plan(const LayerDesc& d) {
  const size_t n_in = d.inputs.size();
  if (n_in < 1 || n_in > kMaxOperands || d.outputs.size() != 1 || !d.node->attrs.has("equation"))
    return std::nullopt;
  const DType dt = d.inputs[0].dtype;
  if (!is_numeric_dtype(dt) || d.outputs[0].dtype != dt) return std::nullopt;
  for (const auto& x : d.inputs)
    if (!x.present || x.dtype != dt) return std::nullopt;

  std::vector<int64_t> ranks;
  for (const auto& x : d.inputs) ranks.push_back(static_cast<int64_t>(x.dims.size()));
  ops::EinsumEquation e;
  try {
    e = ops::parse_einsum(d.node->attrs.get_string("equation", ""), ranks);
  } catch (const Error&) {
    return std::nullopt;  // the reference refuses it too
  }
  const std::vector<std::vector<int>>& operands = e.operands;
  const std::vector<int>& output = e.output;
  const int ellipsis_rank = e.ellipsis_rank;

  // Label sizes: letters must agree, ellipsis dims broadcast (size 1 against any).
  std::vector<int64_t> size(kEllipsis + ellipsis_rank, 1);
  std::vector<bool> set(size.size(), false);
  for (size_t k = 0; k < n_in; ++k)
    for (size_t i = 0; i < operands[k].size(); ++i) {
      const int l = operands[k][i];
      const int64_t v = d.inputs[k].dims[i];
      if (l >= kEllipsis && v == 1) continue;
      if (set[l] && v != size[l]) return std::nullopt;
      size[l] = v;
      set[l] = true;
    }

  // Loop labels: the output's, then the summed ones in order of appearance (the reference's order).
  std::vector<int> loop = output;
  std::vector<bool> in_loop(size.size(), false);
  for (int l : loop) in_loop[l] = true;
  for (const auto& labels : operands)
    for (int l : labels)
      if (!in_loop[l]) {
        loop.push_back(l);
        in_loop[l] = true;
      }
  if (loop.size() > kMaxLoop) return std::nullopt;

  EinsumParams p{};
  p.operands = static_cast<int>(n_in);
  p.out_rank = static_cast<int>(output.size());
  p.loop = static_cast<int>(loop.size());
  std::vector<int64_t> out_dims;
  p.out_numel = 1;
  p.sum_numel = 1;
  for (size_t j = 0; j < loop.size(); ++j) {
    p.dims[j] = size[loop[j]];
    (static_cast<int>(j) < p.out_rank ? p.out_numel : p.sum_numel) *= p.dims[j];
    if (static_cast<int>(j) < p.out_rank) out_dims.push_back(p.dims[j]);
  }
  if (out_dims != d.outputs[0].dims) return std::nullopt;
  for (size_t k = 0; k < n_in; ++k) {
    const auto& dims = d.inputs[k].dims;
    const std::vector<int64_t> s = ops::strides_of(dims);
    for (size_t i = 0; i < dims.size(); ++i)
      if (dims[i] != 1)
        p.strides[k][std::find(loop.begin(), loop.end(), operands[k][i]) - loop.begin()] += s[i];
  }
  return p;
}

// ------------------------------------------------------------------------------------------- kernel
struct Operands {
  const void* in[kMaxOperands];
};

// One thread per output element (grid-stride). The summed labels advance like an odometer, last fastest
// (the reference's row-major order); each operand's offset moves by its stride as a label steps.
template <typename T>
__global__ void einsum_kernel(Operands ops_in, T* out, EinsumParams p) {
  using Acc = std::conditional_t<is_device_float_v<T>, double, uint64_t>;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < p.out_numel; e += step) {
    int64_t off[kMaxOperands] = {};
    int64_t rest = e;
    for (int j = p.out_rank - 1; j >= 0; --j) {
      const int64_t c = rest % p.dims[j];
      rest /= p.dims[j];
      for (int k = 0; k < p.operands; ++k) off[k] += c * p.strides[k][j];
    }
    int64_t idx[kMaxLoop] = {};
    Acc acc = 0;
    for (int64_t s = 0; s < p.sum_numel; ++s) {
      Acc prod = 1;
      for (int k = 0; k < p.operands; ++k) {
        const T v = static_cast<const T*>(ops_in.in[k])[off[k]];
        if constexpr (is_device_float_v<T>)
          prod = __dmul_rn(prod, load_double(v));
        else
          prod *= static_cast<uint64_t>(v);
      }
      if constexpr (is_device_float_v<T>)
        acc = __dadd_rn(acc, prod);
      else
        acc += prod;
      for (int j = p.loop - 1; j >= p.out_rank; --j) {  // next combination of the summed labels
        for (int k = 0; k < p.operands; ++k) off[k] += p.strides[k][j];
        if (++idx[j] < p.dims[j]) break;
        for (int k = 0; k < p.operands; ++k) off[k] -= p.strides[k][j] * p.dims[j];
        idx[j] = 0;
      }
    }
    if constexpr (is_device_float_v<T>)
      out[e] = store_double<T>(acc);
    else
      out[e] = static_cast<T>(acc);
  }
}

class EinsumKernel final : public CudaKernel {
 public:
  EinsumKernel(DType dtype, EinsumParams p) : dtype_(dtype), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.out_numel == 0) return;
    Operands o{};
    for (int k = 0; k < p_.operands; ++k) o.in[k] = in[static_cast<size_t>(k)].data;
    dispatch_numeric(dtype_, [&](auto t) {
      using T = decltype(t);
      einsum_kernel<T><<<blocks_for(p_.out_numel, kThreads), kThreads, 0, rc.stream>>>(
          o, static_cast<T*>(out[0].data), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  std::string describe() const override {
    return std::to_string(p_.out_rank) + " output labels, " + std::to_string(p_.loop - p_.out_rank) +
           " summed (" + std::to_string(p_.sum_numel) + " terms per element)";
  }

 private:
  DType dtype_;
  EinsumParams p_;
};

KILN_REGISTER_KERNEL(factory(
    "cuda.einsum", "Einsum", [](const LayerDesc& d) { return plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<EinsumKernel>(d.inputs[0].dtype, *plan(d));
    }));

}  // namespace
}  // namespace kiln::cuda::einsum
