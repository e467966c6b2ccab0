// kiln — CUDA group / instance normalization: host launchers (usable from host .cpp files, e.g. plugins).
//
// y = act(scale[c] * (x - mean_g) * invstd_g + bias[c]) over X [N, C, spatial] (row-major), statistics per
// (n, group) over C/G channels × spatial (biased variance), computed in float with per-thread shifted sums
// merged by Chan's formula (robust when |mean| >> std). Single pass when the tensor fits on chip (each block
// stages its chunk in shared memory; blocks of one group meet at one grid barrier, cooperative launch);
// otherwise two passes: partial statistics per chunk into the workspace, then merge + normalize + affine +
// activation with 16-byte loads/stores.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kiln/tensor_data.h"
#include "ops/activation.h"

namespace kiln::cuda {

// The activations the kernels are compiled for (one kernel instance each): None, Relu, Elu.
bool group_norm_supports(ops::Activation activation);

// Which kernel(s) launch_group_norm uses. Auto / SinglePass: the single pass when it applies (16-byte aligned
// x and y, spatial a multiple of 16 bytes, chunks fit in shared memory, co-resident blocks, enough
// workspace), else the two passes; TwoPass forces the two passes (A/B benchmarks, tests).
enum class GroupNormPath : int { Auto = 0, TwoPass = 1, SinglePass = 2 };

// Workspace (device memory, any content) launch_group_norm needs for this problem; independent of dtype.
size_t group_norm_workspace_bytes(int64_t n, int64_t c, int64_t spatial, int64_t groups);

// x, y: [n, c, spatial] of `dtype` (Float, Float16, BFloat16); scale, bias: [c] of `param_dtype` (same set).
// activation: one group_norm_supports (alpha: its alpha). Enqueues on `stream` only (no sync, no allocation);
// throws kiln::Error on bad arguments (groups not dividing c, workspace too small, an activation not
// supported) and launch failures.
void launch_group_norm(DType dtype, const void* x, void* y, const void* scale, const void* bias,
                       DType param_dtype, int64_t n, int64_t c, int64_t spatial, int64_t groups, float eps,
                       ops::Activation activation, float alpha, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream);
void launch_group_norm(DType dtype, const void* x, void* y, const void* scale, const void* bias,
                       DType param_dtype, int64_t n, int64_t c, int64_t spatial, int64_t groups, float eps,
                       ops::Activation activation, float alpha, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream, GroupNormPath path);

// The path launch_group_norm takes on the current device for 16-byte aligned x / y and a workspace of
// group_norm_workspace_bytes (TwoPass or SinglePass; host queries only, cached per device).
GroupNormPath group_norm_path(DType dtype, int64_t n, int64_t c, int64_t spatial, int64_t groups,
                              ops::Activation activation = ops::Activation::None,
                              GroupNormPath requested = GroupNormPath::Auto);

}  // namespace kiln::cuda
