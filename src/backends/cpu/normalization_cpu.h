// CPU normalization shared by the normalization kernels and by plugins (GroupNormalizationPlugin).
#pragma once
#include <cstdint>
#include <vector>

#include "ops/activation.h"

namespace kiln::backend {

// fp32 x [N, C, spatial...] → y: statistics over each plane of `channels_per_plane` consecutive channels and
// all spatial positions (1 = InstanceNorm, C/G = GroupNorm), then y = act((x - mean) * invstd * scale[c] +
// bias[c]). Splits large tensors over `threads`; deterministic.
void plane_norm(const float* x, float* y, const std::vector<int64_t>& dims, int64_t channels_per_plane,
                const float* scale, const float* bias, double eps, const ops::ActivationParams& act,
                int threads);

}  // namespace kiln::backend
