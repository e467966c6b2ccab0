// Window geometry of MaxPool / AveragePool / LpPool, shared by the reference (pool.cpp) and the backend
// kernels so they resolve the attributes the same way (auto_pad SAME_* turned into explicit pads from the
// inferred output size). Header-only, for host code and nvcc alike.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/graph.h"

namespace kiln::ops {

// Spatial lists padded to 3 entries: 1-D and 2-D pools are 3-D with leading spatial dims of size 1.
struct PoolWindow {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1};
  int64_t pad[3] = {0, 0, 0}, pad_end[3] = {0, 0, 0};
  int64_t planes = 0;  // N * C
  size_t spatial = 0;  // the real number of spatial dims (1 to 3)
};

// The window of a pool node with input dims x and inferred output dims y; nullopt unless x is 3-D to 5-D,
// y has its rank and the attribute lists have their lengths (inference checked their values).
inline std::optional<PoolWindow> pool_window(const Attributes& a, const std::vector<int64_t>& x,
                                             const std::vector<int64_t>& y) {
  if (x.size() < 3 || x.size() > 5 || y.size() != x.size()) return std::nullopt;
  const size_t n = x.size() - 2, o = 3 - n;
  const auto kernel = a.get_ints("kernel_shape"), strides = a.get_ints("strides", std::vector<int64_t>(n, 1));
  const auto dil = a.get_ints("dilations", std::vector<int64_t>(n, 1)),
             pads = a.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  const std::string auto_pad = a.get_string("auto_pad", "NOTSET");
  if (kernel.size() != n || strides.size() != n || dil.size() != n || pads.size() != 2 * n)
    return std::nullopt;
  PoolWindow g;
  g.planes = x[0] * x[1];
  g.spatial = n;
  for (size_t i = 0; i < n; ++i) {
    g.in[o + i] = x[i + 2], g.out[o + i] = y[i + 2], g.k[o + i] = kernel[i];
    g.stride[o + i] = strides[i], g.dil[o + i] = dil[i];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t total =
          std::max<int64_t>(0, (y[i + 2] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - x[i + 2]);
      g.pad[o + i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_end[o + i] = total - g.pad[o + i];
    } else if (auto_pad != "VALID") {
      g.pad[o + i] = pads[i], g.pad_end[o + i] = pads[i + n];
    }
  }
  return g;
}

}  // namespace kiln::ops
