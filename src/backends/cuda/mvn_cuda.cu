// cuda.mvn: MeanVarianceNormalization (src/ops/norm.cpp is the oracle) over float / float16 / bfloat16 of
// rank <= 8: Y = (X - mean) / (sqrt(var) + 1e-9), the statistics (biased variance) over `axes` (default
// N, H, W), epsilon added to the standard deviation as the ONNX function body does.
//
// The axes split X's dims into kept ones (one statistics group per combination) and reduced ones (the
// elements of a group). One block per group (grid-stride over groups) walks the group's elements in
// row-major order of the reduced dims, three passes: the sum about the group's first element (mean), the
// squared deviations from the mean (variance, two-pass for accuracy) and the normalized values. Sums in float
// through a fixed block tree (deterministic, no atomics).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/reduce_cuda.cuh"
#include "ops/util.h"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kMaxRank = 8;
constexpr int kThreads = rowred::kBlock;

// A subset of X's dims: sizes (row-major order) and X's element strides for them.
struct DimSet {
  int rank = 0;
  int64_t size[kMaxRank] = {};
  int64_t stride[kMaxRank] = {};
};

// X's offset of the k-th combination of `s`'s dims (the last dim varies fastest).
__device__ __forceinline__ int64_t offset_of(const DimSet& s, int64_t k) {
  int64_t off = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    off += (k % s.size[d]) * s.stride[d];
    k /= s.size[d];
  }
  return off;
}

template <typename T>
__global__ void mvn_kernel(const T* x, T* y, DimSet kept, DimSet reduced, int64_t groups, int64_t count) {
  const rowred::SumOp sum;
  const float inv_count = 1.f / static_cast<float>(count);
  for (int64_t g = blockIdx.x; g < groups; g += gridDim.x) {  // uniform per block: every thread reduces
    const int64_t base = offset_of(kept, g);
    // Sums of x - pivot (the group's first element): a mean far from 0 costs no precision.
    const float pivot = to_float(x[base]);
    float s = 0;
    for (int64_t r = threadIdx.x; r < count; r += blockDim.x)
      s += to_float(x[base + offset_of(reduced, r)]) - pivot;
    const float mean = pivot + rowred::group_reduce<kThreads>(s, sum) * inv_count;
    float sq = 0;
    for (int64_t r = threadIdx.x; r < count; r += blockDim.x) {
      const float dev = to_float(x[base + offset_of(reduced, r)]) - mean;
      sq += dev * dev;
    }
    const float denom = sqrtf(rowred::group_reduce<kThreads>(sq, sum) * inv_count) + 1e-9f;
    for (int64_t r = threadIdx.x; r < count; r += blockDim.x) {
      const int64_t off = base + offset_of(reduced, r);
      y[off] = from_float<T>((to_float(x[off]) - mean) / denom);
    }
  }
}

struct Plan {
  DType dtype = DType::Undefined;
  DimSet kept, reduced;
  int64_t groups = 1, count = 1;
};

// The plan, or false when this kernel cannot run the layer (or the reference would refuse its axes).
bool plan_mvn(const LayerDesc& d, Plan& p) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return false;
  const auto& x = d.inputs[0];
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (!is_cuda_float(x.dtype) || rank > kMaxRank || d.outputs[0].dtype != x.dtype ||
      d.outputs[0].dims != x.dims)
    return false;
  std::vector<bool> reduce(static_cast<size_t>(rank), false);
  for (int64_t a : d.node->attrs.get_ints("axes", {0, 2, 3})) {
    if (a < -rank || a >= rank) return false;
    if (a < 0) a += rank;
    if (reduce[static_cast<size_t>(a)]) return false;  // the reference refuses repeated axes
    reduce[static_cast<size_t>(a)] = true;
  }
  p.dtype = x.dtype;
  int64_t stride = 1;
  std::vector<int64_t> strides(static_cast<size_t>(rank));
  for (int64_t k = rank - 1; k >= 0; --k) {
    strides[static_cast<size_t>(k)] = stride;
    stride *= x.dims[static_cast<size_t>(k)];
  }
  for (int64_t k = 0; k < rank; ++k) {
    DimSet& s = reduce[static_cast<size_t>(k)] ? p.reduced : p.kept;
    s.size[s.rank] = x.dims[static_cast<size_t>(k)];
    s.stride[s.rank] = strides[static_cast<size_t>(k)];
    ++s.rank;
    (reduce[static_cast<size_t>(k)] ? p.count : p.groups) *= x.dims[static_cast<size_t>(k)];
  }
  return true;
}

class MvnKernel final : public CudaKernel {
 public:
  explicit MvnKernel(Plan p) : p_(p) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.groups == 0 || p_.count == 0) return;  // no elements
    dispatch_float_type(p_.dtype, [&](auto tag) {
      using T = decltype(tag);
      mvn_kernel<T><<<rowred::grid_for_units(p_.groups), kThreads, 0, rc.stream>>>(
          static_cast<const T*>(in[0].data), static_cast<T*>(out[0].data), p_.kept, p_.reduced, p_.groups,
          p_.count);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  std::string describe() const override { return "one block per statistics group, three passes"; }

 private:
  Plan p_;
};

KILN_REGISTER_KERNEL((planned_factory<Plan, MvnKernel>("cuda.mvn", "MeanVarianceNormalization", plan_mvn)));

}  // namespace
}  // namespace kiln::cuda
