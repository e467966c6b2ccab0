// CUDA Expand, Tile and Split (cuda.expand, cuda.tile, cuda.split) as strided copies through the movement
// engine (movement_strided_cuda.cuh), and Trilu (cuda.trilu). Any 1/2/4/8-byte dtype, moved as bits.
//   Expand: the input's strides with 0 on broadcast axes.
//   Tile:   output axis k seen as [repeats_k, dim_k] with strides [0, stride_k] (out = rep·dim + i).
//   Split:  each output a window of the input along the axis: the input's strides from an offset.
// The shapes come from the layer's static output dims, so the shape / repeats / split inputs are never read
// (when constant, the kernel takes them so they are not uploaded).
#include <memory>
#include <vector>

#include "backends/cuda/movement_strided_cuda.cuh"

namespace kiln::cuda::movement {
namespace {

bool movable(DType t) {
  if (t == DType::Undefined || t == DType::String) return false;
  const size_t s = dtype_size(t);
  return s == 1 || s == 2 || s == 4 || s == 8;
}

// One plan per output, from input 0; input 1 (shape, repeats or split sizes) is taken when constant.
class StridedCopiesKernel final : public CudaKernel {
 public:
  StridedCopiesKernel(std::vector<StridedPlan> plans, size_t elem, bool own_input1)
      : plans_(std::move(plans)), elem_(elem), own_input1_(own_input1) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    for (size_t k = 0; k < plans_.size(); ++k)
      enqueue_strided(plans_[k], elem_, in[0].data, out[k].data, rc.stream);
  }
  bool owns_constant_input(size_t k) const override { return k == 1 && own_input1_; }

 private:
  std::vector<StridedPlan> plans_;
  size_t elem_;
  bool own_input1_;
};

bool input1_constant(const LayerDesc& d) {
  return d.inputs.size() > 1 && d.inputs[1].present && d.inputs[1].constant;
}

// ================================================================================================ Expand
std::optional<StridedPlan> expand_plan(const LayerDesc& d) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return std::nullopt;
  const auto &x = d.inputs[0].dims, &out = d.outputs[0].dims;
  if (!movable(d.inputs[0].dtype) || d.outputs[0].dtype != d.inputs[0].dtype || x.size() > out.size())
    return std::nullopt;
  const size_t lead = out.size() - x.size();
  const auto xs = strides_of(x);
  std::vector<int64_t> strides(out.size(), 0);
  for (size_t k = 0; k < x.size(); ++k) {
    const int64_t o = out[lead + k];
    if (x[k] != o && x[k] != 1) return std::nullopt;
    strides[lead + k] = x[k] == 1 ? 0 : xs[k];
  }
  return plan_strided(out, strides, 0, dtype_size(d.inputs[0].dtype));
}

// ================================================================================================== Tile
std::optional<StridedPlan> tile_plan(const LayerDesc& d) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return std::nullopt;
  const auto &x = d.inputs[0].dims, &out = d.outputs[0].dims;
  if (!movable(d.inputs[0].dtype) || d.outputs[0].dtype != d.inputs[0].dtype || x.size() != out.size())
    return std::nullopt;
  const auto xs = strides_of(x);
  std::vector<int64_t> dims, strides;
  for (size_t k = 0; k < x.size(); ++k) {
    if (x[k] == 0 ? out[k] != 0 : out[k] % x[k] != 0) return std::nullopt;
    dims.push_back(x[k] == 0 ? 0 : out[k] / x[k]);
    strides.push_back(0);
    dims.push_back(x[k]);
    strides.push_back(xs[k]);
  }
  return plan_strided(dims, strides, 0, dtype_size(d.inputs[0].dtype));
}

// ================================================================================================= Split
std::optional<std::vector<StridedPlan>> split_plans(const LayerDesc& d) {
  if (d.inputs.empty() || d.inputs.size() > 2 || !d.inputs[0].present || d.outputs.empty())
    return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const DType t = d.inputs[0].dtype;
  const int64_t r = static_cast<int64_t>(x.size());
  int64_t axis = d.node->attrs.get_int("axis", 0);
  if (r == 0 || axis < -r || axis >= r) return std::nullopt;
  if (axis < 0) axis += r;
  const size_t a = static_cast<size_t>(axis);
  const auto xs = strides_of(x);
  std::vector<StridedPlan> plans;
  int64_t offset = 0;  // along the axis
  for (const auto& o : d.outputs) {
    if (!o.present || o.dtype != t || o.dims.size() != x.size()) return std::nullopt;
    for (size_t k = 0; k < x.size(); ++k)
      if (k != a && o.dims[k] != x[k]) return std::nullopt;
    auto p = plan_strided(o.dims, xs, offset * xs[a], dtype_size(t));
    if (!p) return std::nullopt;
    plans.push_back(*p);
    offset += o.dims[a];
  }
  if (!movable(t) || offset != x[a]) return std::nullopt;
  return plans;
}

// ================================================================================================= Trilu
// y = x where the diagonal offset j - i is kept (upper: >= k, lower: <= k), zero bytes elsewhere (0 in every
// numeric dtype, false for bool). k: a constant read at create time, or a device scalar (k_bytes 4 or 8).
template <typename U>
__global__ void trilu_kernel(const U* x, U* y, int64_t n, int64_t rows, int64_t cols, bool upper, int64_t k,
                             const void* k_dev, int k_bytes) {
  if (k_bytes == 8) k = *static_cast<const int64_t*>(k_dev);
  if (k_bytes == 4) k = *static_cast<const int32_t*>(k_dev);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t col = i % cols, row = (i / cols) % rows;
    const bool keep = upper ? col - row >= k : col - row <= k;
    y[i] = keep ? x[i] : U{0};
  }
}

struct TriluPlan {
  int64_t rows = 0, cols = 0, k = 0;
  bool upper = true;
  int k_bytes = 0;  // 0: k is known; 4 or 8: read it from input 1 on the device
  bool own_k = false;
};

std::optional<TriluPlan> trilu_plan(const LayerDesc& d) {
  if (d.inputs.empty() || d.inputs.size() > 2 || d.outputs.size() != 1 || !d.inputs[0].present ||
      !d.outputs[0].present)
    return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const DType t = d.inputs[0].dtype;
  if (!movable(t) || d.outputs[0].dtype != t || d.outputs[0].dims != x || x.size() < 2) return std::nullopt;
  TriluPlan p;
  p.rows = x[x.size() - 2];
  p.cols = x[x.size() - 1];
  p.upper = d.node->attrs.get_int("upper", 1) != 0;
  if (d.inputs.size() == 2 && d.inputs[1].present) {
    const auto& kin = d.inputs[1];
    if ((kin.dtype != DType::Int64 && kin.dtype != DType::Int32) || ops::numel(kin.dims) != 1)
      return std::nullopt;
    if (kin.constant) {
      p.k = kin.constant->as_int64(0);
      p.own_k = true;
    } else {
      p.k_bytes = kin.dtype == DType::Int64 ? 8 : 4;
    }
  }
  return p;
}

class TriluKernel final : public CudaKernel {
 public:
  TriluKernel(TriluPlan p, size_t elem) : p_(p), elem_(elem) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    const void* k_dev = p_.k_bytes ? in[1].data : nullptr;
    dispatch_bits(elem_, [&](auto u) {
      using U = decltype(u);
      trilu_kernel<U><<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const U*>(in[0].data), static_cast<U*>(out[0].data), n, p_.rows, p_.cols, p_.upper,
          p_.k, k_dev, p_.k_bytes);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  bool owns_constant_input(size_t k) const override { return k == 1 && p_.own_k; }

 private:
  TriluPlan p_;
  size_t elem_;
};

// ========================================================================================= registration
KILN_REGISTER_KERNEL(factory(
    "cuda.expand", "Expand", [](const LayerDesc& d) { return expand_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<StridedCopiesKernel>(std::vector<StridedPlan>{*expand_plan(d)},
                                                   dtype_size(d.inputs[0].dtype), input1_constant(d));
    }));
KILN_REGISTER_KERNEL(factory(
    "cuda.tile", "Tile", [](const LayerDesc& d) { return tile_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<StridedCopiesKernel>(std::vector<StridedPlan>{*tile_plan(d)},
                                                   dtype_size(d.inputs[0].dtype), input1_constant(d));
    }));
KILN_REGISTER_KERNEL(factory(
    "cuda.split", "Split", [](const LayerDesc& d) { return split_plans(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<StridedCopiesKernel>(*split_plans(d), dtype_size(d.inputs[0].dtype),
                                                   input1_constant(d));
    }));
KILN_REGISTER_KERNEL(factory(
    "cuda.trilu", "Trilu", [](const LayerDesc& d) { return trilu_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<TriluKernel>(*trilu_plan(d), dtype_size(d.inputs[0].dtype));
    }));

}  // namespace
}  // namespace kiln::cuda::movement
