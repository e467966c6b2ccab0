// kiln — CUDA normalization kernels:
//   cuda.groupnorm     kiln.GroupNorm (+ Relu / Elu in the same pass), fp32 / fp16 / bf16
//   cuda.instancenorm  InstanceNormalization (GroupNorm with one channel per group)
//
// Statistics per (n, group) over C/G channels × spatial; the host picks one of two paths per launch (single
// pass on chip, or two passes). The family's files are listed in normalization_cuda.cuh; this one holds the
// host API (normalization_cuda.h) and the kernel factories.
#include <algorithm>
#include <memory>
#include <string>

#include "backends/cuda/normalization_cuda.cuh"
#include "device/kernel.h"

namespace kiln::cuda {
namespace {

using group_norm::ApplyArgs;
using group_norm::FusedPlan;
using group_norm::kFusedMinChunkBytes;
using group_norm::launch_fused;
using group_norm::launch_typed;
using group_norm::Plan;
using group_norm::plan_for;
using group_norm::plan_fused_for;

int param_code(DType t) {
  switch (t) {
    case DType::Float:
      return 0;
    case DType::Float16:
      return 1;
    case DType::BFloat16:
      return 2;
    default:
      throw Error(std::string("CUDA GroupNorm: unsupported scale/bias dtype ") + dtype_name(t));
  }
}

void check_args(int64_t c, int64_t groups, ops::Activation activation) {
  if (groups <= 0 || c <= 0 || c % groups != 0)
    throw Error("CUDA GroupNorm: num_groups " + std::to_string(groups) + " does not divide " +
                std::to_string(c) + " channels");
  if (!group_norm_supports(activation))
    throw Error("CUDA GroupNorm: activation " + ops::activation_name(activation) + " is not supported");
}

}  // namespace

bool group_norm_supports(ops::Activation activation) {
  return activation == ops::Activation::None || activation == ops::Activation::Relu ||
         activation == ops::Activation::Elu;
}

size_t group_norm_workspace_bytes(int64_t n, int64_t c, int64_t spatial, int64_t groups) {
  if (n <= 0 || c <= 0 || spatial <= 0 || groups <= 0) return 0;
  const Plan p = plan_for(c, spatial, groups);
  const int64_t ng = n * groups;
  const size_t two_pass = static_cast<size_t>(ng * p.blocks_per_group) * sizeof(float4);
  // Single pass: one partial per block when blocks_per_group > 1 (groups over kFusedMinChunkBytes, or larger
  // than shared memory), ng · bpg <= co-resident blocks <= 1024. Small problems need none beyond two_pass.
  const int64_t group_len = c / groups * spatial;
  const size_t fused = group_len * 4 > kFusedMinChunkBytes ? size_t{1024} * sizeof(float4) : 0;
  return std::max(two_pass, fused);
}

GroupNormPath group_norm_path(DType dtype, int64_t n, int64_t c, int64_t spatial, int64_t groups,
                              ops::Activation activation, GroupNormPath requested) {
  check_args(c, groups, activation);
  if (requested == GroupNormPath::TwoPass || n <= 0 || spatial <= 0) return GroupNormPath::TwoPass;
  bool ok = false;
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = 16 / sizeof(T);
    ok = spatial % V == 0 && plan_fused_for<T>(n, c, spatial, groups, activation,
                                               group_norm_workspace_bytes(n, c, spatial, groups))
                                 .ok;
  });
  return ok ? GroupNormPath::SinglePass : GroupNormPath::TwoPass;
}

void launch_group_norm(DType dtype, const void* x, void* y, const void* scale, const void* bias,
                       DType param_dtype, int64_t n, int64_t c, int64_t spatial, int64_t groups, float eps,
                       ops::Activation activation, float alpha, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream) {
  launch_group_norm(dtype, x, y, scale, bias, param_dtype, n, c, spatial, groups, eps, activation, alpha,
                    workspace, workspace_bytes, stream, GroupNormPath::Auto);
}

void launch_group_norm(DType dtype, const void* x, void* y, const void* scale, const void* bias,
                       DType param_dtype, int64_t n, int64_t c, int64_t spatial, int64_t groups, float eps,
                       ops::Activation activation, float alpha, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream, GroupNormPath path) {
  check_args(c, groups, activation);
  if (n <= 0 || spatial <= 0) return;
  const size_t need = group_norm_workspace_bytes(n, c, spatial, groups);
  if (workspace_bytes < need || (need && !workspace))
    throw Error("CUDA GroupNorm: workspace of " + std::to_string(workspace_bytes) + " bytes, needs " +
                std::to_string(need));
  if (reinterpret_cast<uintptr_t>(workspace) % 16 != 0)
    throw Error("CUDA GroupNorm: workspace not 16-byte aligned");
  const Plan plan = plan_for(c, spatial, groups);
  ApplyArgs a{};
  a.scale = scale;
  a.bias = bias;
  a.part = static_cast<const float4*>(workspace);
  a.c = c;
  a.channels_per_group = c / groups;
  a.spatial = spatial;
  a.bpg = static_cast<int>(plan.blocks_per_group);
  a.param_dtype = param_code(param_dtype);
  a.eps = eps;
  a.alpha = alpha;
  float4* part = static_cast<float4*>(workspace);
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = 16 / sizeof(T);
    const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                         reinterpret_cast<uintptr_t>(y) % 16 == 0 &&
                         spatial % V == 0;  // then every plane, group and chunk starts 16-byte aligned
    if (aligned && path != GroupNormPath::TwoPass) {
      const FusedPlan fp = plan_fused_for<T>(n, c, spatial, groups, activation, workspace_bytes);
      if (fp.ok && launch_fused<T>(static_cast<const T*>(x), static_cast<T*>(y), fp, c, spatial, groups, a,
                                   activation, workspace, stream))
        return;
    }
    if (aligned)
      launch_typed<T, V>(static_cast<const T*>(x), static_cast<T*>(y), plan, n, c, spatial, groups, a,
                         activation, part, stream);
    else
      launch_typed<T, 1>(static_cast<const T*>(x), static_cast<T*>(y), plan, n, c, spatial, groups, a,
                         activation, part, stream);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Kernel factories
namespace {

class GroupNormKernel final : public CudaKernel {
 public:
  GroupNormKernel(int64_t groups, float eps, ops::Activation activation, float alpha,
                  const std::vector<int64_t>& dims)
      : groups_(groups), eps_(eps), activation_(activation), alpha_(alpha) {
    n_ = dims[0];
    c_ = dims[1];
    spatial_ = 1;
    for (size_t k = 2; k < dims.size(); ++k) spatial_ *= dims[k];
  }
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    launch_group_norm(in[0].dtype, in[0].data, out[0].data, in[1].data, in[2].data, in[1].dtype, n_, c_,
                      spatial_, groups_, eps_, activation_, alpha_, rc.workspace, rc.workspace_bytes,
                      rc.stream);
  }
  size_t workspace_bytes() const override { return group_norm_workspace_bytes(n_, c_, spatial_, groups_); }

 private:
  int64_t groups_;
  float eps_;
  ops::Activation activation_;
  float alpha_;
  int64_t n_ = 0, c_ = 0, spatial_ = 1;
};

// X [N, C, ...] rank >= min_rank, scale/bias [C] (constants or not) of one float dtype, Y like X.
bool supported(const backend::LayerDesc& d, size_t min_rank) {
  if (d.inputs.size() != 3 || d.outputs.size() != 1) return false;
  for (const auto& o : d.inputs)
    if (!o.present || !is_cuda_float(o.dtype)) return false;
  const auto& out = d.outputs[0];
  if (!out.present || out.dtype != d.inputs[0].dtype) return false;
  if (d.inputs[1].dtype != d.inputs[2].dtype) return false;
  const auto& xd = d.inputs[0].dims;
  if (xd.size() < min_rank || out.dims != xd) return false;
  for (int64_t v : xd)
    if (v < 0) return false;
  if (xd[1] <= 0) return false;
  for (size_t k = 1; k < 3; ++k) {
    const auto& o = d.inputs[k];
    if (o.dims != std::vector<int64_t>{xd[1]}) return false;
    if (o.constant && (o.constant->numel() != xd[1] || !is_cuda_float(o.constant->dtype()))) return false;
  }
  return true;
}

backend::KernelFactory groupnorm_factory() {
  return {.name = "cuda.groupnorm",
          .device = "cuda",
          .op = internal_ops::group_norm::kOp,
          .domain = internal_ops::kDomain,
          .priority = 10,
          .supports =
              [](const backend::LayerDesc& d) {
                const int64_t groups = d.node->attrs.get_int("num_groups", 0);
                const auto act = ops::fused_activation(d.node->attrs, ops::kGroupNormActivation);
                return supported(d, 2) && groups > 0 && d.inputs[0].dims[1] % groups == 0 && act &&
                       group_norm_supports(act->act);
              },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            const ops::ActivationParams act =
                *ops::fused_activation(d.node->attrs, ops::kGroupNormActivation);
            return std::make_unique<GroupNormKernel>(d.node->attrs.get_int("num_groups", 1),
                                                     d.node->attrs.get_float("epsilon", 1e-5f), act.act,
                                                     act.alpha, d.inputs[0].dims);
          }};
}

backend::KernelFactory instancenorm_factory() {
  return {.name = "cuda.instancenorm",
          .device = "cuda",
          .op = "InstanceNormalization",
          .domain = "",
          .priority = 10,
          .supports = [](const backend::LayerDesc& d) { return supported(d, 3); },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<GroupNormKernel>(d.inputs[0].dims[1],
                                                     d.node->attrs.get_float("epsilon", 1e-5f),
                                                     ops::Activation::None, 1.f, d.inputs[0].dims);
          }};
}

KILN_REGISTER_KERNEL(groupnorm_factory());
KILN_REGISTER_KERNEL(instancenorm_factory());

}  // namespace
}  // namespace kiln::cuda
