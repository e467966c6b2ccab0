// CUDA data movement: Transpose, DepthToSpace/SpaceToDepth, Slice (cuda.transpose, cuda.depth_to_space,
// cuda.slice) share one strided-copy engine; Concat (cuda.concat) copies each input into its rows of the
// output; Pad (cuda.pad), Resize/Upsample (cuda.resize) and a plain byte copy for views the runtime did not
// alias (cuda.copy: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout).
//
// This header is internal to those kernels (movement_*_cuda.cu): what reading their layers and launching
// their kernels shares. The strided-copy engine's interface is movement_strided_cuda.cuh.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "ops/util.h"

namespace kiln::cuda::movement {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;
constexpr int kMaxRank = 8;

using ops::strides_of;

inline bool fits32(int64_t n) {
  return n < (int64_t{1} << 31);
}

using cuda::dispatch_bits;

// The float dtypes the movement kernels take (all elements of one layer share it).
inline bool float_data(const LayerDesc& d, size_t n_inputs) {
  if (d.outputs.size() != 1 || !d.outputs[0].present || !is_cuda_float(d.outputs[0].dtype) ||
      d.inputs.size() < n_inputs)
    return false;
  for (size_t k = 0; k < n_inputs; ++k)
    if (!d.inputs[k].present || d.inputs[k].dtype != d.outputs[0].dtype) return false;
  return true;
}

// Constant int64 values of input k (nullopt if absent); `ok` turns false when present but not a constant.
inline std::optional<std::vector<int64_t>> const_ints(const LayerDesc& d, size_t k, bool& ok) {
  if (k >= d.inputs.size() || !d.inputs[k].present) return std::nullopt;
  if (!d.inputs[k].constant || !dtype_is_integer(d.inputs[k].constant->dtype())) {
    ok = false;
    return std::nullopt;
  }
  return d.inputs[k].constant->to_int64_vector();
}

// Axes in [-rank, rank) made non-negative; false on out-of-range or repeated axes.
inline bool normalize_axes(std::vector<int64_t>& axes, int64_t rank) {
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& a : axes) {
    if (a < 0) a += rank;
    if (a < 0 || a >= rank || seen[static_cast<size_t>(a)]) return false;
    seen[static_cast<size_t>(a)] = true;
  }
  return true;
}

// A factory of this file family: a `supports` that treats an attribute of the wrong type as unsupported.
inline KernelFactory factory(const std::string& name, const std::string& op,
                             std::function<bool(const LayerDesc&)> supports,
                             std::function<std::unique_ptr<backend::Kernel>(const LayerDesc&)> create) {
  return {.name = name,
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports =
              [supports = std::move(supports)](const LayerDesc& d) {
                try {
                  return supports(d);
                } catch (const Error&) {  // an attribute of the wrong type
                  return false;
                }
              },
          .create = std::move(create)};
}

}  // namespace kiln::cuda::movement
