// ReverseSequence on CUDA (cuda.reverse_sequence): one thread per output element; the first sequence_lens[b]
// time steps of batch entry b come reversed, the rest are copied; elements moved as bits (any dtype).
// sequence_lens lives on the device, where an invalid length cannot fail the run: lengths outside [0, T]
// (the reference's error) are clamped into it, so nothing is read out of bounds.
#include "backends/cuda/movement_cuda.cuh"

namespace kiln::cuda::reverse_sequence {
namespace {

using movement::factory;
using movement::kThreads;
using movement::LayerDesc;
using movement::TensorView;

struct ReverseParams {
  int64_t n, d0, d1, inner;  // elements; the first two dims; elements per (d0, d1) entry
  bool time_first;           // time_axis == 0
};

template <typename B>
__global__ void reverse_sequence_kernel(const B* src, const int64_t* lens, B* dst, ReverseParams p) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= p.n) return;
  const int64_t r = e % p.inner, row = e / p.inner, a1 = row % p.d1, a0 = row / p.d1;
  const int64_t t = p.time_first ? a0 : a1, b = p.time_first ? a1 : a0, steps = p.time_first ? p.d0 : p.d1;
  const int64_t len = min(max(lens[b], int64_t{0}), steps);
  const int64_t from = t < len ? len - 1 - t : t;
  const int64_t src_row = p.time_first ? from * p.d1 + b : b * p.d1 + from;
  dst[e] = src[src_row * p.inner + r];
}

class ReverseSequenceKernel final : public CudaKernel {
 public:
  ReverseSequenceKernel(size_t size, ReverseParams p) : size_(size), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.n == 0) return;
    movement::dispatch_bits(size_, [&](auto bits) {
      using B = decltype(bits);
      reverse_sequence_kernel<B><<<blocks_for(p_.n, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const B*>(in[0].data), static_cast<const int64_t*>(in[1].data),
          static_cast<B*>(out[0].data), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  size_t size_;
  ReverseParams p_;
};

std::optional<ReverseParams> reverse_plan(const LayerDesc& d) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const DType dt = d.inputs[0].dtype;
  const size_t es = dtype_size(dt);
  if (dt == DType::String || d.outputs[0].dtype != dt || d.outputs[0].dims != x || x.size() < 2 ||
      !(es == 1 || es == 2 || es == 4 || es == 8) || d.inputs[1].dtype != DType::Int64)
    return std::nullopt;
  const int64_t t = d.node->attrs.get_int("time_axis", 0), b = d.node->attrs.get_int("batch_axis", 1);
  if (!((t == 0 && b == 1) || (t == 1 && b == 0))) return std::nullopt;
  if (d.inputs[1].dims != std::vector<int64_t>{x[static_cast<size_t>(b)]}) return std::nullopt;
  ReverseParams p{};
  p.n = ops::numel(x);
  p.d0 = x[0];
  p.d1 = x[1];
  p.inner = ops::numel({x.begin() + 2, x.end()});
  p.time_first = t == 0;
  if (p.d1 < 1 || p.inner < 1) p.n = 0;  // empty: nothing to launch (and no division by zero)
  return p;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.reverse_sequence", "ReverseSequence",
    [](const LayerDesc& d) { return reverse_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<ReverseSequenceKernel>(dtype_size(d.inputs[0].dtype), *reverse_plan(d));
    }));

}  // namespace
}  // namespace kiln::cuda::reverse_sequence
