// Transpose, DepthToSpace/SpaceToDepth and Slice on CUDA (cuda.transpose, cuda.depth_to_space, cuda.slice):
// each layer is one strided copy of its input (movement_strided_cuda.cuh), planned at create time.
#include <numeric>

#include "backends/cuda/movement_strided_cuda.cuh"
#include "ops/depth_space.h"

namespace kiln::cuda::movement {
namespace {

// A layer that is one strided copy of input 0; `owned` constant inputs were read at create time.
class StridedKernel final : public CudaKernel {
 public:
  StridedKernel(StridedPlan plan, size_t elem, size_t owned_from)
      : p_(plan), elem_(elem), owned_from_(owned_from) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    enqueue_strided(p_, elem_, in[0].data, out[0].data, rc.stream);
  }
  bool owns_constant_input(size_t k) const override { return k >= owned_from_; }

 private:
  StridedPlan p_;
  size_t elem_;
  size_t owned_from_;  // inputs from here on are attribute-like constants (Slice's starts/ends/axes/steps)
};

// Output axis k reads input axis perm[k] (the reference's Transpose).
std::optional<StridedPlan> permute_plan(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& perm,
                                        size_t elem) {
  const auto is = strides_of(in_dims);
  std::vector<int64_t> dims, strides;
  for (int64_t a : perm) {
    dims.push_back(in_dims[static_cast<size_t>(a)]);
    strides.push_back(is[static_cast<size_t>(a)]);
  }
  return plan_strided(dims, strides, 0, elem);
}

// ------------------------------------------------------------------------------------------ Transpose
std::optional<StridedPlan> transpose_plan(const LayerDesc& d) {
  if (d.inputs.size() != 1 || !float_data(d, 1)) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> perm = d.node->attrs.get_ints("perm");
  if (perm.empty()) {
    perm.resize(static_cast<size_t>(r));
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  if (static_cast<int64_t>(perm.size()) != r || !normalize_axes(perm, r)) return std::nullopt;
  std::vector<int64_t> y;
  for (int64_t p : perm) y.push_back(x[static_cast<size_t>(p)]);
  if (y != d.outputs[0].dims) return std::nullopt;
  return permute_plan(x, perm, dtype_size(d.outputs[0].dtype));
}

// ----------------------------------------------------------------------------- DepthToSpace / SpaceToDepth
// A transpose of a 6-D view of the input (ops/depth_space.h).
std::optional<StridedPlan> depth_space_plan(const LayerDesc& d) {
  if (d.inputs.size() != 1 || !float_data(d, 1) || d.inputs[0].dims.size() != 4) return std::nullopt;
  const int64_t b = d.node->attrs.get_int("blocksize", 0);
  if (b < 1) return std::nullopt;
  std::optional<ops::DepthSpaceTranspose> t;
  if (d.node->op == "DepthToSpace") {
    const std::string mode = d.node->attrs.get_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD") return std::nullopt;
    t = ops::depth_to_space_transpose(d.inputs[0].dims, b, mode == "CRD");
  } else {
    t = ops::space_to_depth_transpose(d.inputs[0].dims, b);
  }
  if (!t || t->out != d.outputs[0].dims) return std::nullopt;
  return permute_plan(t->view, t->perm, dtype_size(d.outputs[0].dtype));
}

// ---------------------------------------------------------------------------------------------- Slice
std::optional<StridedPlan> slice_plan(const LayerDesc& d) {
  if (!float_data(d, 1)) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (d.opset < 10) {
    if (d.inputs.size() != 1) return std::nullopt;
    starts = d.node->attrs.get_ints("starts");
    ends = d.node->attrs.get_ints("ends");
    axes = d.node->attrs.get_ints("axes");
  } else {
    bool ok = true;
    auto s = const_ints(d, 1, ok), e = const_ints(d, 2, ok), a = const_ints(d, 3, ok),
         st = const_ints(d, 4, ok);
    if (!ok || !s || !e || d.inputs.size() > 5) return std::nullopt;
    starts = *s;
    ends = *e;
    if (a) axes = *a;
    if (st) steps = *st;
  }
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size() ||
      !normalize_axes(axes, r))
    return std::nullopt;
  const auto xs = strides_of(x);
  std::vector<int64_t> dims = x, strides = xs;
  int64_t base = 0;
  for (size_t j = 0; j < axes.size(); ++j) {
    if (steps[j] == 0) return std::nullopt;
    const size_t k = static_cast<size_t>(axes[j]);
    const auto [start, len] = ops::slice_range(starts[j], ends[j], steps[j], x[k]);
    dims[k] = len;
    strides[k] = xs[k] * steps[j];
    if (len > 0) base += start * xs[k];
  }
  if (dims != d.outputs[0].dims) return std::nullopt;
  return plan_strided(dims, strides, base, dtype_size(d.outputs[0].dtype));
}

template <std::optional<StridedPlan> (*Plan)(const LayerDesc&)>
KernelFactory strided_factory(const std::string& name, const std::string& op) {
  return {.name = name,
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports =
              [](const LayerDesc& d) {
                try {
                  return Plan(d).has_value();
                } catch (const Error&) {  // an attribute of the wrong type
                  return false;
                }
              },
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<StridedKernel>(*Plan(d), dtype_size(d.outputs[0].dtype), 1);
          }};
}

KILN_REGISTER_KERNEL(strided_factory<transpose_plan>("cuda.transpose", "Transpose"));
KILN_REGISTER_KERNEL(strided_factory<depth_space_plan>("cuda.depth_to_space", "DepthToSpace"));
KILN_REGISTER_KERNEL(strided_factory<depth_space_plan>("cuda.depth_to_space", "SpaceToDepth"));
KILN_REGISTER_KERNEL(strided_factory<slice_plan>("cuda.slice", "Slice"));

}  // namespace
}  // namespace kiln::cuda::movement
