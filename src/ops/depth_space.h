// DepthToSpace and SpaceToDepth as transposes: the geometry the CPU and CUDA kernels share (both run these
// ops as one permutation of a 6-D view of the input). The reference (depth_space.cpp) moves element by
// element instead, on purpose: the kernels are tested against it. C++17 and header-only, for host code and
// nvcc alike.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace kiln::ops {

// The input seen as the 6-D `view`; the output `out` is its transpose by `perm` (output axis k reads view
// axis perm[k]).
struct DepthSpaceTranspose {
  std::vector<int64_t> view, perm, out;
};

// DepthToSpace [N, C·b·b, H, W] → [N, C, H·b, W·b]. DCR (channel (i·b + j)·C + c) views [N, b, b, C, H, W]
// and permutes [0,3,4,1,5,2]; CRD (channel c·b·b + i·b + j) views [N, C, b, b, H, W] and permutes
// [0,1,4,2,5,3]. nullopt unless x is 4-D, b >= 1 and b·b divides C.
inline std::optional<DepthSpaceTranspose> depth_to_space_transpose(const std::vector<int64_t>& x, int64_t b,
                                                                   bool crd) {
  if (x.size() != 4 || b < 1 || x[1] % (b * b) != 0) return std::nullopt;
  const int64_t c = x[1] / (b * b);
  DepthSpaceTranspose t;
  t.out = {x[0], c, x[2] * b, x[3] * b};
  if (crd) {
    t.view = {x[0], c, b, b, x[2], x[3]};
    t.perm = {0, 1, 4, 2, 5, 3};
  } else {
    t.view = {x[0], b, b, c, x[2], x[3]};
    t.perm = {0, 3, 4, 1, 5, 2};
  }
  return t;
}

// SpaceToDepth [N, C, H·b, W·b] → [N, b·b·C, H, W] (DCR order), DepthToSpace's inverse: views
// [N, C, H, b, W, b] and permutes [0,3,5,1,2,4]. nullopt unless x is 4-D, b >= 1 and b divides H and W.
inline std::optional<DepthSpaceTranspose> space_to_depth_transpose(const std::vector<int64_t>& x, int64_t b) {
  if (x.size() != 4 || b < 1 || x[2] % b != 0 || x[3] % b != 0) return std::nullopt;
  DepthSpaceTranspose t;
  t.out = {x[0], x[1] * b * b, x[2] / b, x[3] / b};
  t.view = {x[0], x[1], x[2] / b, b, x[3] / b, b};
  t.perm = {0, 3, 5, 1, 2, 4};
  return t;
}

}  // namespace kiln::ops
