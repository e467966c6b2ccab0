// kiln — CUDA LayerNormalization, fp32 / fp16 / bf16, statistics in float:
//   cuda.layernorm       ONNX LayerNormalization (opset 17)
//   cuda.layernorm_kiln  kiln.LayerNormalization (what fuse_layernorm writes before opset 17; same contract)
//
// Rows are X[:axis] × X[axis:]: a warp per row when short, a block when long. Two passes in float over x
// shifted by the row's first element (mean, then squared deviations about it: accurate when |mean| >> std),
// then y = (x - mean) · invstd · scale + B.
// Scale and B broadcast to the normalized dims when, leading 1s aside, they are a suffix of them (per-channel
// [D], [S, D], a scalar): entry k % size. The optional outputs Mean and InvStdDev (stash_type float) are
// written per row.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/reduce_cuda.cuh"
#include "device/kernel.h"
#include "ops/internal_ops.h"

namespace kiln::cuda {
namespace {

using namespace rowred;

struct Rows {
  int64_t rows = 1, inner = 1;
  int64_t scale_size = 1, bias_size = 1;  // entries of scale / B (B: 0 when absent)
};

struct Args {
  const void* scale;
  const void* bias;  // null: no B
  float* mean;       // null: output absent
  float* inv_std;    // null: output absent
  Rows r;
  float eps;
};

// Entry of a broadcast parameter of `size` entries for position k of a row of `inner` elements.
__device__ __forceinline__ int64_t param_index(int64_t k, int64_t size, int64_t inner) {
  return size == inner ? k : k % size;
}

template <class T, int LANES>
__global__ void __launch_bounds__(kBlock)
    layer_norm_kernel(const T* __restrict__ x, T* __restrict__ y, Args a) {
  constexpr int kGroups = kBlock / LANES;
  const int group = threadIdx.x / LANES, lane = threadIdx.x % LANES;
  const int64_t inner = a.r.inner;
  const T* scale = static_cast<const T*>(a.scale);
  const T* bias = static_cast<const T*>(a.bias);
  for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * kGroups; r0 < a.r.rows;
       r0 += static_cast<int64_t>(gridDim.x) * kGroups) {  // uniform over the block
    const int64_t row = r0 + group;
    const bool live = row < a.r.rows;
    const int64_t n = live ? inner : 0;
    const T* xr = x + (live ? row : 0) * inner;
    // Everything relative to the row's first element: x - shift is exact for values within a factor 2 of
    // it, and its mean is small, so a large common offset costs no precision (a float mean would).
    const float shift = live ? to_float(xr[0]) : 0.f;
    float sum = 0.f;
    for (int64_t k = lane; k < n; k += LANES) sum += to_float(xr[k]) - shift;
    const float mean = group_reduce<LANES>(sum, SumOp{}) / static_cast<float>(inner);  // of x - shift
    float sq = 0.f;
    for (int64_t k = lane; k < n; k += LANES) {
      const float d = (to_float(xr[k]) - shift) - mean;
      sq += d * d;
    }
    const float var = group_reduce<LANES>(sq, SumOp{}) / static_cast<float>(inner);
    const float inv = 1.f / sqrtf(var + a.eps);
    if (!live) continue;
    T* yr = y + row * inner;
    for (int64_t k = lane; k < n; k += LANES) {
      const float d = (to_float(xr[k]) - shift) - mean;
      float v = d * inv * to_float(scale[param_index(k, a.r.scale_size, inner)]);
      if (bias) v += to_float(bias[param_index(k, a.r.bias_size, inner)]);
      yr[k] = from_float<T>(v);
    }
    if (lane == 0) {
      if (a.mean) a.mean[row] = shift + mean;
      if (a.inv_std) a.inv_std[row] = inv;
    }
  }
}

constexpr int64_t kBlockRow = 2048;  // rows this long get a block each, shorter ones a warp

template <class T>
void launch(const void* x, void* y, const Args& a, cudaStream_t stream) {
  if (a.r.rows <= 0) return;
  const T* xt = static_cast<const T*>(x);
  T* yt = static_cast<T*>(y);
  if (a.r.inner >= kBlockRow) {
    layer_norm_kernel<T, kBlock><<<grid_for_units(a.r.rows), kBlock, 0, stream>>>(xt, yt, a);
  } else {
    constexpr int kGroups = kBlock / 32;
    layer_norm_kernel<T, 32>
        <<<grid_for_units((a.r.rows + kGroups - 1) / kGroups), kBlock, 0, stream>>>(xt, yt, a);
  }
  KILN_CUDA_CHECK_LAUNCH();
}

// Entries of a parameter broadcast to `norm` (X[axis:]): its dims without leading 1s must be a suffix of
// `norm`; nullopt otherwise.
std::optional<int64_t> param_size(const std::vector<int64_t>& dims, const std::vector<int64_t>& norm) {
  if (dims.size() > norm.size()) return std::nullopt;  // the reference's rule: it broadcasts *to* norm
  size_t lead = 0;
  while (lead < dims.size() && dims[lead] == 1) ++lead;
  const size_t rest = dims.size() - lead;
  if (rest > norm.size()) return std::nullopt;
  int64_t n = 1;
  for (size_t i = 0; i < rest; ++i) {
    if (dims[lead + i] != norm[norm.size() - rest + i]) return std::nullopt;
    n *= dims[lead + i];
  }
  return n;
}

// X, Scale[, B] of one float dtype; Y like X; Mean / InvStdDev (if present) float; a valid axis; rows of at
// least one element.
std::optional<Rows> rows_of(const backend::LayerDesc& d) {
  if (d.inputs.size() < 2 || d.inputs.size() > 3 || d.outputs.empty() || d.outputs.size() > 3)
    return std::nullopt;
  const auto& x = d.inputs[0];
  if (!x.present || !is_cuda_float(x.dtype)) return std::nullopt;
  if (!d.outputs[0].present || d.outputs[0].dtype != x.dtype || d.outputs[0].dims != x.dims)
    return std::nullopt;
  for (size_t k = 1; k < d.outputs.size(); ++k)
    if (d.outputs[k].present && d.outputs[k].dtype != DType::Float) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = d.node->attrs.get_int("axis", -1);
  if (rank == 0 || axis < -rank || axis >= rank) return std::nullopt;
  if (axis < 0) axis += rank;
  Rows r;
  for (int64_t k = 0; k < rank; ++k) {
    if (x.dims[k] < 0) return std::nullopt;
    (k < axis ? r.rows : r.inner) *= x.dims[k];
  }
  if (r.inner == 0) return std::nullopt;
  const std::vector<int64_t> norm(x.dims.begin() + axis, x.dims.end());
  for (size_t k = 1; k < d.inputs.size(); ++k) {
    const auto& p = d.inputs[k];
    if (!p.present) {
      if (k == 1) return std::nullopt;  // Scale is required
      r.bias_size = 0;
      continue;
    }
    if (p.dtype != x.dtype) return std::nullopt;
    const auto n = param_size(p.dims, norm);
    if (!n || *n == 0) return std::nullopt;
    (k == 1 ? r.scale_size : r.bias_size) = *n;
  }
  if (d.inputs.size() < 3) r.bias_size = 0;
  return r;
}

class LayerNormKernel final : public CudaKernel {
 public:
  LayerNormKernel(const Rows& r, float eps) : r_(r), eps_(eps) {}
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    Args a{};
    a.scale = in[1].data;
    a.bias = r_.bias_size > 0 ? in[2].data : nullptr;
    a.mean = out.size() > 1 ? static_cast<float*>(out[1].data) : nullptr;
    a.inv_std = out.size() > 2 ? static_cast<float*>(out[2].data) : nullptr;
    a.r = r_;
    a.eps = eps_;
    dispatch_float_type(in[0].dtype,
                        [&](auto tag) { launch<decltype(tag)>(in[0].data, out[0].data, a, rc.stream); });
  }
  std::string describe() const override { return r_.inner >= kBlockRow ? "block per row" : "warp per row"; }

 private:
  Rows r_;
  float eps_;
};

backend::KernelFactory factory(const char* domain, const char* name) {
  return {.name = name,
          .device = "cuda",
          .op = "LayerNormalization",
          .domain = domain,
          .priority = 10,
          .supports = [](const backend::LayerDesc& d) { return rows_of(d).has_value(); },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            const auto r = rows_of(d);
            if (!r) throw Error("cuda.layernorm: layer not supported");
            return std::make_unique<LayerNormKernel>(*r, d.node->attrs.get_float("epsilon", 1e-5f));
          }};
}

KILN_REGISTER_KERNEL(factory("", "cuda.layernorm"));
KILN_REGISTER_KERNEL(factory(internal_ops::kDomain, "cuda.layernorm_kiln"));

}  // namespace
}  // namespace kiln::cuda
