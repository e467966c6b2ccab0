// kiln — CUDA pooling kernels, fp32 / fp16 / bf16:
//   cuda.max_pool             MaxPool 1-D to 3-D, with the optional Indices output (int64, storage_order);
//                             also every integer dtype and float64, compared in the reference's type
//   cuda.average_pool         AveragePool 1-D to 3-D, count_include_pad both ways
//   cuda.lp_pool              LpPool 1-D to 3-D, any integer p >= 1
//   cuda.global_average_pool  GlobalAveragePool, any rank >= 3
//   cuda.global_max_pool      GlobalMaxPool, any rank >= 3
//
// Windowed pools: one thread per output element, walking its window as the reference (src/ops/pool.cpp)
// does — same order, same bounds, same tie and NaN rules — with the geometry of ops/pool.h, so auto_pad,
// ceil_mode, dilations and asymmetric pads resolve exactly as there. Sums in float (the reference: double;
// windows are short). Global pools: one warp per (n, c) plane for small planes, one block for large ones,
// each reducing in float in a fixed order (deterministic, no atomics).
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>

#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/numeric_types_cuda.cuh"
#include "ops/pool.h"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

enum class PoolKind { Max, Average, Lp };

struct PoolParams {
  int64_t in[3], out[3], k[3], stride[3], dil[3], pad[3], pad_end[3];
  int64_t planes, in_size, out_size;
  int spatial;       // real spatial rank: which index is column-major's fastest (Indices)
  bool include_pad;  // AveragePool: divide by the taps in the padded extent
  bool col_major;    // MaxPool Indices with storage_order = 1
  int p;             // LpPool's exponent
};

// |v|^p for integer p >= 1; p = 1, 2 exactly as a product (the reference's pow is exact there too).
__device__ __forceinline__ float abs_pow(float v, int p) {
  const float a = fabsf(v);
  return p == 1 ? a : p == 2 ? a * a : powf(a, static_cast<float>(p));
}

// y (and indices, when not null) for every output element. The window loops are the reference's
// for_each_window: a tap counts toward `padded` when it lies in [-pad, in + pad_end) on every axis, and is
// read when it lies inside the input. Ty is the element type (numeric_types_cuda.cuh): MaxPool compares in
// its compute type (any numeric dtype), AveragePool and LpPool sum in float (float dtypes only).
template <typename Ty, PoolKind K>
__global__ void window_pool_kernel(const typename Ty::storage* __restrict__ x,
                                   typename Ty::storage* __restrict__ y, int64_t* __restrict__ indices,
                                   PoolParams g) {
  using T = typename Ty::storage;
  using C = typename Ty::compute;
  const int64_t total = g.planes * g.out_size;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += step) {
    const int64_t ow = o % g.out[2];
    int64_t t = o / g.out[2];
    const int64_t oh = t % g.out[1];
    t /= g.out[1];
    const int64_t od = t % g.out[0];
    const int64_t plane = t / g.out[0];
    const int64_t d0 = od * g.stride[0] - g.pad[0], h0 = oh * g.stride[1] - g.pad[1],
                  w0 = ow * g.stride[2] - g.pad[2];
    const T* xp = x + plane * g.in_size;
    bool any = false;
    C best = std::numeric_limits<C>::lowest();  // as the reference: what a window of padding only gives
    float sum = 0.f;
    int64_t at = -1, count = 0, padded = 0;
    for (int64_t kd = 0; kd < g.k[0]; ++kd) {
      const int64_t id = d0 + kd * g.dil[0];
      if (id < -g.pad[0] || id >= g.in[0] + g.pad_end[0]) continue;
      for (int64_t kh = 0; kh < g.k[1]; ++kh) {
        const int64_t ih = h0 + kh * g.dil[1];
        if (ih < -g.pad[1] || ih >= g.in[1] + g.pad_end[1]) continue;
        for (int64_t kw = 0; kw < g.k[2]; ++kw) {
          const int64_t iw = w0 + kw * g.dil[2];
          if (iw < -g.pad[2] || iw >= g.in[2] + g.pad_end[2]) continue;
          ++padded;
          if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] || iw < 0 || iw >= g.in[2]) continue;
          const int64_t off = (id * g.in[1] + ih) * g.in[2] + iw;
          if constexpr (K == PoolKind::Max) {
            const C v = Ty::load(xp[off]);
            // The first tap always wins (a NaN there stays), later ones only when larger: as the reference.
            if (!any || v > best) {
              any = true;
              best = v;
              if (indices) {
                const int64_t col = g.spatial == 3   ? id + ih * g.in[0] + iw * g.in[0] * g.in[1]
                                    : g.spatial == 2 ? ih + iw * g.in[1]
                                                     : iw;
                at = plane * g.in_size + (g.col_major ? col : off);
              }
            }
          } else if constexpr (K == PoolKind::Average) {
            sum += static_cast<float>(Ty::load(xp[off]));
            ++count;
          } else {
            sum += abs_pow(static_cast<float>(Ty::load(xp[off])), g.p);
          }
        }
      }
    }
    if constexpr (K == PoolKind::Max)
      y[o] = Ty::store(best);
    else if constexpr (K == PoolKind::Average)
      y[o] =
          Ty::store(sum / static_cast<float>(g.include_pad ? padded : count));  // 0/0 = NaN, as the reference
    else
      y[o] = Ty::store(g.p == 1 ? sum : g.p == 2 ? sqrtf(sum) : powf(sum, 1.f / static_cast<float>(g.p)));
    if (K == PoolKind::Max && indices) indices[o] = at;
  }
}

class WindowPoolKernel final : public CudaKernel {
 public:
  WindowPoolKernel(PoolKind kind, DType dtype, const PoolParams& p) : kind_(kind), dtype_(dtype), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t total = p_.planes * p_.out_size;
    if (total == 0) return;
    int64_t* indices = out.size() > 1 ? static_cast<int64_t*>(out[1].data) : nullptr;
    numeric::dispatch(dtype_, [&](auto tag) {
      using Ty = decltype(tag);
      using T = typename Ty::storage;
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      const unsigned int blocks = blocks_for(total, kThreads);
      if constexpr (Ty::is_bool) {
        throw Error("CUDA pooling: bool is not supported");  // window_params refuses it
      } else {
        launch<Ty>(x, y, indices, blocks, rc.stream);
      }
    });
  }

 private:
  template <typename Ty>
  void launch(const typename Ty::storage* x, typename Ty::storage* y, int64_t* indices, unsigned int blocks,
              cudaStream_t stream) const {
    if constexpr (!Ty::is_float || Ty::dtype == DType::Double) {
      if (kind_ != PoolKind::Max) throw Error("CUDA pooling: only MaxPool takes integers and float64");
      window_pool_kernel<Ty, PoolKind::Max><<<blocks, kThreads, 0, stream>>>(x, y, indices, p_);
    } else {
      switch (kind_) {
        case PoolKind::Max:
          window_pool_kernel<Ty, PoolKind::Max><<<blocks, kThreads, 0, stream>>>(x, y, indices, p_);
          break;
        case PoolKind::Average:
          window_pool_kernel<Ty, PoolKind::Average><<<blocks, kThreads, 0, stream>>>(x, y, nullptr, p_);
          break;
        case PoolKind::Lp:
          window_pool_kernel<Ty, PoolKind::Lp><<<blocks, kThreads, 0, stream>>>(x, y, nullptr, p_);
          break;
      }
    }
    KILN_CUDA_CHECK_LAUNCH();
  }

  PoolKind kind_;
  DType dtype_;
  PoolParams p_;
};

// The layer as window_pool_kernel runs it, or nullopt: X and Y of one CUDA float dtype (MaxPool: any
// numeric dtype but bool, as the reference), 1-D to 3-D, valid geometry; Indices (MaxPool only) int64 of Y's
// dims; LpPool's p >= 1. Attributes of the wrong type refuse.
std::optional<PoolParams> window_params(const LayerDesc& d, PoolKind kind) {
  if (d.inputs.size() != 1 || d.outputs.empty() || !d.inputs[0].present || !d.outputs[0].present)
    return std::nullopt;
  const DType t = d.inputs[0].dtype;
  const auto& xd = d.inputs[0].dims;
  const auto& yd = d.outputs[0].dims;
  const bool dtype_ok = kind == PoolKind::Max ? numeric::is_numeric(t) && t != DType::Bool : is_cuda_float(t);
  if (!dtype_ok || d.outputs[0].dtype != t) return std::nullopt;
  for (int64_t v : xd)
    if (v < 0) return std::nullopt;
  const bool want_indices = d.outputs.size() > 1 && d.outputs[1].present;
  if (d.outputs.size() > 2 || (want_indices && (kind != PoolKind::Max || d.outputs[1].dtype != DType::Int64 ||
                                                d.outputs[1].dims != yd)))
    return std::nullopt;
  PoolParams p{};
  try {
    const auto w = ops::pool_window(d.node->attrs, xd, yd);
    if (!w) return std::nullopt;
    for (int i = 0; i < 3; ++i) {
      p.in[i] = w->in[i], p.out[i] = w->out[i], p.k[i] = w->k[i];
      p.stride[i] = w->stride[i], p.dil[i] = w->dil[i], p.pad[i] = w->pad[i], p.pad_end[i] = w->pad_end[i];
      if (p.in[i] < 0 || p.out[i] < 0 || p.k[i] < 1 || p.stride[i] < 1 || p.dil[i] < 1) return std::nullopt;
    }
    p.planes = w->planes;
    p.spatial = static_cast<int>(w->spatial);
    p.include_pad = d.node->attrs.get_int("count_include_pad", 0) != 0;
    p.col_major = d.node->attrs.get_int("storage_order", 0) != 0;
    const int64_t lp = kind == PoolKind::Lp ? d.node->attrs.get_int("p", 2) : 1;
    if (lp < 1 || lp > (1 << 20)) return std::nullopt;
    p.p = static_cast<int>(lp);
  } catch (const Error&) {
    return std::nullopt;
  }
  p.in_size = p.in[0] * p.in[1] * p.in[2];
  p.out_size = p.out[0] * p.out[1] * p.out[2];
  return p;
}

KernelFactory window_factory(const char* name, const char* op, PoolKind kind) {
  return {.name = name,
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = [kind](const LayerDesc& d) { return window_params(d, kind).has_value(); },
          .create = [kind](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<WindowPoolKernel>(kind, d.inputs[0].dtype, *window_params(d, kind));
          }};
}

// ------------------------------------------------------------------------------------------- global pools
// Planes of at most this many elements are reduced by one warp, larger ones by a block.
constexpr int64_t kWarpPlaneMax = 2048;

template <bool is_max>
__device__ __forceinline__ float combine(float a, float b) {
  return is_max ? fmaxf(a, b) : a + b;  // fmaxf skips a NaN, as the reference's std::max(acc, v) does
}

template <bool is_max>
__device__ __forceinline__ float warp_reduce(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = combine<is_max>(v, __shfl_down_sync(0xffffffffu, v, off));
  return v;
}

template <bool is_max>
__device__ __forceinline__ float finish(float acc, int64_t inner) {
  return is_max ? acc : acc / static_cast<float>(inner);
}

// One warp per plane; kThreads / 32 planes per block.
template <typename T, bool is_max>
__global__ void global_pool_warp_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t planes,
                                        int64_t inner) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; p < planes;
       p += warps) {
    const T* xp = x + p * inner;
    float acc = is_max ? -INFINITY : 0.f;
    for (int64_t i = lane; i < inner; i += 32) acc = combine<is_max>(acc, to_float(xp[i]));
    acc = warp_reduce<is_max>(acc);
    if (lane == 0) y[p] = from_float<T>(finish<is_max>(acc, inner));
  }
}

// One block of kThreads per plane: per-thread strided partials, then each warp, then warp 0 over the warps.
template <typename T, bool is_max>
__global__ void global_pool_block_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t planes,
                                         int64_t inner) {
  __shared__ float partial[kThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const T* xp = x + p * inner;
    float acc = is_max ? -INFINITY : 0.f;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) acc = combine<is_max>(acc, to_float(xp[i]));
    acc = warp_reduce<is_max>(acc);
    if (lane == 0) partial[warp] = acc;
    __syncthreads();
    if (warp == 0) {
      acc = lane < kThreads / 32 ? partial[lane] : (is_max ? -INFINITY : 0.f);
      acc = warp_reduce<is_max>(acc);
      if (lane == 0) y[p] = from_float<T>(finish<is_max>(acc, inner));
    }
    __syncthreads();  // partial is rewritten by the next plane
  }
}

class GlobalPoolKernel final : public CudaKernel {
 public:
  GlobalPoolKernel(bool is_max, DType dtype, int64_t planes, int64_t inner)
      : is_max_(is_max), dtype_(dtype), planes_(planes), inner_(inner) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (planes_ == 0) return;
    dispatch_float_type(dtype_, [&](auto tag) {
      using T = decltype(tag);
      is_max_ ? launch<T, true>(in[0].data, out[0].data, rc.stream)
              : launch<T, false>(in[0].data, out[0].data, rc.stream);
    });
  }
  std::string describe() const override {
    return inner_ <= kWarpPlaneMax ? "warp per plane" : "block per plane";
  }

 private:
  template <typename T, bool is_max>
  void launch(const void* x, void* y, cudaStream_t s) const {
    const T* xt = static_cast<const T*>(x);
    T* yt = static_cast<T*>(y);
    if (inner_ <= kWarpPlaneMax)
      global_pool_warp_kernel<T, is_max>
          <<<blocks_for(planes_, kThreads / 32), kThreads, 0, s>>>(xt, yt, planes_, inner_);
    else
      global_pool_block_kernel<T, is_max>
          <<<blocks_for(planes_, 1), kThreads, 0, s>>>(xt, yt, planes_, inner_);
    KILN_CUDA_CHECK_LAUNCH();
  }

  bool is_max_;
  DType dtype_;
  int64_t planes_, inner_;
};

// X [N, C, spatial...] of a CUDA float dtype, Y [N, C, 1, ...] of the same dtype.
bool global_supported(const LayerDesc& d) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return false;
  const auto& xd = d.inputs[0].dims;
  const DType t = d.inputs[0].dtype;
  if (!is_cuda_float(t) || d.outputs[0].dtype != t || xd.size() < 3) return false;
  for (int64_t v : xd)
    if (v < 0) return false;
  std::vector<int64_t> yd = xd;
  std::fill(yd.begin() + 2, yd.end(), 1);
  return d.outputs[0].dims == yd;
}

KernelFactory global_factory(const char* name, const char* op, bool is_max) {
  return {.name = name,
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = global_supported,
          .create = [is_max](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            const auto& xd = d.inputs[0].dims;
            int64_t inner = 1;
            for (size_t k = 2; k < xd.size(); ++k) inner *= xd[k];
            return std::make_unique<GlobalPoolKernel>(is_max, d.inputs[0].dtype, xd[0] * xd[1], inner);
          }};
}

KILN_REGISTER_KERNEL(window_factory("cuda.max_pool", "MaxPool", PoolKind::Max));
KILN_REGISTER_KERNEL(window_factory("cuda.average_pool", "AveragePool", PoolKind::Average));
KILN_REGISTER_KERNEL(window_factory("cuda.lp_pool", "LpPool", PoolKind::Lp));
KILN_REGISTER_KERNEL(global_factory("cuda.global_average_pool", "GlobalAveragePool", false));
KILN_REGISTER_KERNEL(global_factory("cuda.global_max_pool", "GlobalMaxPool", true));

}  // namespace
}  // namespace kiln::cuda
