// kiln — CUDA normalization kernels:
//   cuda.groupnorm     kiln.GroupNorm (+ Relu / Elu in the same pass), fp32 / fp16 / bf16
//   cuda.instancenorm  InstanceNormalization (GroupNorm with one channel per group)
//
// A group (C/G channels × spatial, contiguous) is split over many blocks: PackNet has only 16 groups on
// tensors of up to 1x64x192x640, so one block per group would use 16 of 132 SMs.
//   pass 1 (gn_stats): grid of (blocks_per_group × N·G); each block reduces a contiguous chunk of its group to
//     a partial (count, mean − K, M2, K), K = the group's first element. Per thread: sums of (x − Kt) and
//     (x − Kt)² about the thread's own first value Kt (shifted data: no cancellation when |mean| >> std),
//     turned into (count, mean, M2) and merged across the block with Chan's formula, all in float.
//   pass 2 (gn_apply): grid of (chunks_per_plane × N·C); each block merges its group's partials (Chan) and
//     normalizes a chunk of one channel plane with 16-byte loads/stores: y = act((x − K)·a + b'),
//     a = scale[c]·invstd, b' = bias[c] − (mean − K)·a. Working relative to K keeps fp32 results exact to a
//     few ulp even when |mean| >> std. The tensor was just read by pass 1, so pass 2's read mostly hits L2;
//     pass 2 walks the blocks in reverse order (the most recently read data first).
// Pass 2 is launched with programmatic dependent launch (sm_90): its blocks start while pass 1's last wave
// runs, load their x chunk, and only wait (griddepcontrol.wait) before reading the partials. In-place (y == x)
// is safe: K travels in the partials, and every pass-2 element is read and written by the same thread.
// KILN_CUDA_NO_PDL=1 launches pass 2 plainly (A/B check).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/normalization_cuda.h"
#include "backends/kernel.h"

namespace kiln::cuda {
namespace {

constexpr int kStatsThreads = 256;
constexpr int64_t kStatsChunk = 8192;         // elements per pass-1 block (before the cap below)
constexpr int64_t kMaxBlocksPerGroup = 1024;  // pass 2 merges this many partials at most
constexpr int kApplyThreads = 256;

struct Plan {
  int64_t group_len = 0;    // C/G · spatial
  int64_t chunk = 0;        // pass-1 elements per block (multiple of 8)
  int64_t blocks_per_group = 0;
};

Plan plan_for(int64_t c, int64_t spatial, int64_t groups) {
  Plan p;
  p.group_len = c / groups * spatial;
  if (p.group_len <= 0) return p;
  int64_t bpg = std::min<int64_t>((p.group_len + kStatsChunk - 1) / kStatsChunk, kMaxBlocksPerGroup);
  bpg = std::max<int64_t>(bpg, 1);
  int64_t chunk = (p.group_len + bpg - 1) / bpg;
  chunk = (chunk + 7) / 8 * 8;
  p.chunk = chunk;
  p.blocks_per_group = (p.group_len + chunk - 1) / chunk;
  return p;
}

// ---- element access: V consecutive elements of T as floats (V·sizeof(T) = 16 bytes, or V = 1)
template <typename T, int V>
struct VecIO {
  static __device__ __forceinline__ void load(const T* p, float (&v)[V]) {
    if constexpr (V == 1) {
      v[0] = to_float(p[0]);
    } else {
      static_assert(V * sizeof(T) == 16, "16-byte vectors");
      const uint4 raw = *reinterpret_cast<const uint4*>(p);
      if constexpr (sizeof(T) == 4) {
        v[0] = __uint_as_float(raw.x);
        v[1] = __uint_as_float(raw.y);
        v[2] = __uint_as_float(raw.z);
        v[3] = __uint_as_float(raw.w);
      } else {
        const unsigned int words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          if constexpr (std::is_same_v<T, __half>) {
            __half2 h;
            memcpy(&h, &words[k], 4);
            const float2 f = __half22float2(h);
            v[2 * k] = f.x;
            v[2 * k + 1] = f.y;
          } else {
            __nv_bfloat162 h;
            memcpy(&h, &words[k], 4);
            const float2 f = __bfloat1622float2(h);
            v[2 * k] = f.x;
            v[2 * k + 1] = f.y;
          }
        }
      }
    }
  }
  static __device__ __forceinline__ void store(T* p, const float (&v)[V]) {
    if constexpr (V == 1) {
      p[0] = from_float<T>(v[0]);
    } else {
      uint4 raw;
      if constexpr (sizeof(T) == 4) {
        raw = make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3]));
      } else {
        unsigned int words[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          if constexpr (std::is_same_v<T, __half>) {
            const __half2 h = __floats2half2_rn(v[2 * k], v[2 * k + 1]);
            memcpy(&words[k], &h, 4);
          } else {
            const __nv_bfloat162 h = __floats2bfloat162_rn(v[2 * k], v[2 * k + 1]);
            memcpy(&words[k], &h, 4);
          }
        }
        raw = make_uint4(words[0], words[1], words[2], words[3]);
      }
      *reinterpret_cast<uint4*>(p) = raw;
    }
  }
};

// Chan's parallel merge of (n, mean, M2) with (nb, mb, M2b).
__device__ __forceinline__ void chan_merge(float& n, float& m, float& m2, float nb, float mb, float m2b) {
  const float nn = n + nb;
  if (nb == 0.f) return;
  const float delta = mb - m, r = nb / nn;
  m = fmaf(delta, r, m);
  m2 = m2 + m2b + delta * delta * n * r;
  n = nn;
}

__device__ __forceinline__ void warp_merge(float& n, float& m, float& m2) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const float nb = __shfl_down_sync(0xffffffffu, n, off);
    const float mb = __shfl_down_sync(0xffffffffu, m, off);
    const float m2b = __shfl_down_sync(0xffffffffu, m2, off);
    chan_merge(n, m, m2, nb, mb, m2b);
  }
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Pass 1. Block b: group b / bpg, elements [chunk·(b % bpg), +chunk) of it. part[b] = (count, mean − K, M2, K).
template <typename T, int V, int U>
__global__ void __launch_bounds__(kStatsThreads) gn_stats(const T* __restrict__ x, float4* __restrict__ part,
                                                          int64_t group_len, int64_t chunk, int bpg) {
  pdl_trigger();  // the dependent pass 2 may start once every block of this grid runs
  const int64_t grp = blockIdx.x / bpg;
  const int64_t begin = static_cast<int64_t>(blockIdx.x % bpg) * chunk;
  const int64_t end = min(begin + chunk, group_len);
  const T* xg = x + grp * group_len;
  const float k_group = to_float(xg[0]);

  float cnt = 0.f, s = 0.f, q = 0.f, kt = 0.f;
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
  const int64_t i0 = begin + static_cast<int64_t>(threadIdx.x) * V;
  for (int64_t i = i0; i < end; i += step * U) {
    float v[U][V];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = i + u * step;
      if (j < end) VecIO<T, V>::load(xg + j, v[u]);
    }
    if (i == i0) kt = v[0][0];  // this thread's shift: its first value
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (i + u * step < end) {
#pragma unroll
        for (int k = 0; k < V; ++k) {
          const float d = v[u][k] - kt;
          s += d;
          q = fmaf(d, d, q);
        }
        cnt += static_cast<float>(V);
      }
    }
  }
  float mean = 0.f, m2 = 0.f;
  if (cnt > 0.f) {
    const float ds = s / cnt;
    mean = (kt - k_group) + ds;
    m2 = fmaxf(q - s * ds, 0.f);
  }
  warp_merge(cnt, mean, m2);
  __shared__ float sh[3][kStatsThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) {
    sh[0][warp] = cnt;
    sh[1][warp] = mean;
    sh[2][warp] = m2;
  }
  __syncthreads();
  if (warp == 0) {
    cnt = lane < warps ? sh[0][lane] : 0.f;
    mean = lane < warps ? sh[1][lane] : 0.f;
    m2 = lane < warps ? sh[2][lane] : 0.f;
    warp_merge(cnt, mean, m2);
    if (lane == 0) part[blockIdx.x] = make_float4(cnt, mean, m2, k_group);
  }
}

__device__ __forceinline__ float load_param(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case 1: return __half2float(static_cast<const __half*>(p)[i]);
    case 2: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}

template <int ACT>
__device__ __forceinline__ float activate(float v, float alpha) {
  if constexpr (ACT == 1) return fmaxf(v, 0.f);
  if constexpr (ACT == 2) return v > 0.f ? v : alpha * expm1f(v);
  return v;
}

struct ApplyArgs {
  const void* scale;
  const void* bias;
  const float4* part;
  int64_t c, channels_per_group, spatial, chunk;  // chunk: elements per block = blockDim·V·U
  int chunks_per_plane, bpg, param_dtype;
  float eps, alpha;
};

// Pass 2. Block (reversed order) -> plane (n, c) and a chunk of its spatial elements; each thread owns U
// vectors at chunk_begin + (u·blockDim + tid)·V.
template <typename T, int V, int U, int ACT>
__global__ void __launch_bounds__(kApplyThreads) gn_apply(const T* x, T* y, ApplyArgs a) {
  const int64_t bid = static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x;
  const int64_t plane = bid / a.chunks_per_plane;
  const int64_t begin = (bid % a.chunks_per_plane) * a.chunk;
  const int64_t end = min(begin + a.chunk, a.spatial);
  const int64_t ch = plane % a.c, grp = plane / a.channels_per_group;
  const T* xp = x + plane * a.spatial;
  T* yp = y + plane * a.spatial;
  const float sc = load_param(a.scale, a.param_dtype, ch), bi = load_param(a.bias, a.param_dtype, ch);

  // Independent of pass 1: load this thread's data first.
  float v[U][V];
  const int64_t step = static_cast<int64_t>(blockDim.x) * V;
  const int64_t i0 = begin + static_cast<int64_t>(threadIdx.x) * V;
#pragma unroll
  for (int u = 0; u < U; ++u)
    if (i0 + u * step < end) VecIO<T, V>::load(xp + i0 + u * step, v[u]);

  pdl_wait();  // pass 1 complete, its partials visible
  __shared__ float stats[3];  // K, mean - K, invstd
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    float n = 0.f, m = 0.f, m2 = 0.f, k = 0.f;
    const float4* p = a.part + grp * a.bpg;
    for (int j = lane; j < a.bpg; j += 32) {
      const float4 pj = p[j];
      chan_merge(n, m, m2, pj.x, pj.y, pj.z);
      k = pj.w;
    }
    warp_merge(n, m, m2);
    k = __shfl_sync(0xffffffffu, k, 0);
    if (lane == 0) {
      stats[0] = k;
      stats[1] = m;
      stats[2] = 1.f / sqrtf(fmaxf(m2 / n, 0.f) + a.eps);
    }
  }
  __syncthreads();
  const float k = stats[0], mul = sc * stats[2], add = fmaf(-stats[1], mul, bi);
#pragma unroll
  for (int u = 0; u < U; ++u) {
    if (i0 + u * step < end) {
      float o[V];
#pragma unroll
      for (int e = 0; e < V; ++e) o[e] = activate<ACT>(fmaf(v[u][e] - k, mul, add), a.alpha);
      VecIO<T, V>::store(yp + i0 + u * step, o);
    }
  }
}

bool pdl_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("KILN_CUDA_NO_PDL");
    return !(e && *e && std::string(e) != "0");
  }();
  return on;
}

template <typename Kernel, typename... Args>
void launch(Kernel kernel, unsigned int grid, unsigned int block, cudaStream_t stream, bool pdl, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(block);
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  KILN_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, args...));
}

int param_code(DType t) {
  switch (t) {
    case DType::Float: return 0;
    case DType::Float16: return 1;
    case DType::BFloat16: return 2;
    default: throw Error(std::string("CUDA GroupNorm: unsupported scale/bias dtype ") + dtype_name(t));
  }
}

template <typename T, int V>
void launch_typed(const T* x, T* y, const Plan& plan, int64_t n, int64_t c, int64_t spatial, int64_t groups,
                  const ApplyArgs& base, int activation, float4* part, cudaStream_t stream) {
  constexpr int kStatsU = V == 1 ? 8 : static_cast<int>(kStatsChunk / (kStatsThreads * V));
  const int64_t stats_blocks = n * groups * plan.blocks_per_group;
  if (stats_blocks > (int64_t{1} << 31) - 1) throw Error("CUDA GroupNorm: tensor too large");
  launch(gn_stats<T, V, kStatsU>, static_cast<unsigned int>(stats_blocks), kStatsThreads, stream, false, x, part,
         plan.group_len, plan.chunk, static_cast<int>(plan.blocks_per_group));

  // Pass 2: 8192 elements (fp16) / 4096 (fp32) per block of 256 threads; small planes get smaller blocks.
  constexpr int kApplyU = V == 1 ? 8 : 4;
  const int64_t vecs = (spatial + V - 1) / V;
  int threads = static_cast<int>(std::min<int64_t>(kApplyThreads, (vecs + kApplyU - 1) / kApplyU));
  threads = std::max(32, (threads + 31) / 32 * 32);
  ApplyArgs a = base;
  a.chunk = static_cast<int64_t>(threads) * V * kApplyU;
  a.chunks_per_plane = static_cast<int>((spatial + a.chunk - 1) / a.chunk);
  const int64_t apply_blocks = n * c * a.chunks_per_plane;
  if (apply_blocks > (int64_t{1} << 31) - 1) throw Error("CUDA GroupNorm: tensor too large");
  const bool pdl = pdl_enabled();
  const unsigned int g = static_cast<unsigned int>(apply_blocks);
  switch (activation) {
    case 1: launch(gn_apply<T, V, kApplyU, 1>, g, threads, stream, pdl, x, y, a); break;
    case 2: launch(gn_apply<T, V, kApplyU, 2>, g, threads, stream, pdl, x, y, a); break;
    default: launch(gn_apply<T, V, kApplyU, 0>, g, threads, stream, pdl, x, y, a); break;
  }
}

}  // namespace

size_t group_norm_workspace_bytes(int64_t n, int64_t c, int64_t spatial, int64_t groups) {
  if (n <= 0 || c <= 0 || spatial <= 0 || groups <= 0) return 0;
  const Plan p = plan_for(c, spatial, groups);
  return static_cast<size_t>(n * groups * p.blocks_per_group) * sizeof(float4);
}

void launch_group_norm(DType dtype, const void* x, void* y, const void* scale, const void* bias, DType param_dtype,
                       int64_t n, int64_t c, int64_t spatial, int64_t groups, float eps, int activation, float alpha,
                       void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (groups <= 0 || c <= 0 || c % groups != 0)
    throw Error("CUDA GroupNorm: num_groups " + std::to_string(groups) + " does not divide " + std::to_string(c) +
                " channels");
  if (n <= 0 || spatial <= 0) return;
  const size_t need = group_norm_workspace_bytes(n, c, spatial, groups);
  if (workspace_bytes < need || (need && !workspace))
    throw Error("CUDA GroupNorm: workspace of " + std::to_string(workspace_bytes) + " bytes, needs " +
                std::to_string(need));
  if (reinterpret_cast<uintptr_t>(workspace) % 16 != 0) throw Error("CUDA GroupNorm: workspace not 16-byte aligned");
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
    const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0 &&
                         spatial % V == 0;  // then every plane, group and pass-1 chunk starts 16-byte aligned
    if (aligned)
      launch_typed<T, V>(static_cast<const T*>(x), static_cast<T*>(y), plan, n, c, spatial, groups, a, activation,
                         part, stream);
    else
      launch_typed<T, 1>(static_cast<const T*>(x), static_cast<T*>(y), plan, n, c, spatial, groups, a, activation,
                         part, stream);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Kernel factories
namespace {

class GroupNormKernel final : public CudaKernel {
 public:
  GroupNormKernel(int64_t groups, float eps, int activation, float alpha, const std::vector<int64_t>& dims)
      : groups_(groups), eps_(eps), activation_(activation), alpha_(alpha) {
    n_ = dims[0];
    c_ = dims[1];
    spatial_ = 1;
    for (size_t k = 2; k < dims.size(); ++k) spatial_ *= dims[k];
  }
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    launch_group_norm(in[0].dtype, in[0].data, out[0].data, in[1].data, in[2].data, in[1].dtype, n_, c_, spatial_,
                      groups_, eps_, activation_, alpha_, rc.workspace, rc.workspace_bytes, rc.stream);
  }
  size_t workspace_bytes() const override { return group_norm_workspace_bytes(n_, c_, spatial_, groups_); }

 private:
  int64_t groups_;
  float eps_;
  int activation_;
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

int activation_code(const std::string& act) { return act == "Elu" ? 2 : act == "Relu" ? 1 : 0; }

backend::KernelFactory groupnorm_factory() {
  return {.name = "cuda.groupnorm",
          .device = "cuda",
          .op = "GroupNorm",
          .domain = "kiln",
          .priority = 10,
          .supports =
              [](const backend::LayerDesc& d) {
                const int64_t groups = d.node->attrs.get_int("num_groups", 0);
                const std::string act = d.node->attrs.get_string("activation", "");
                return supported(d, 2) && groups > 0 && d.inputs[0].dims[1] % groups == 0 &&
                       (act.empty() || act == "Relu" || act == "Elu");
              },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<GroupNormKernel>(
                d.node->attrs.get_int("num_groups", 1), d.node->attrs.get_float("epsilon", 1e-5f),
                activation_code(d.node->attrs.get_string("activation", "")), d.node->attrs.get_float("alpha", 1.0f),
                d.inputs[0].dims);
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
            return std::make_unique<GroupNormKernel>(d.inputs[0].dims[1], d.node->attrs.get_float("epsilon", 1e-5f),
                                                     0, 1.f, d.inputs[0].dims);
          }};
}

KILN_REGISTER_KERNEL(groupnorm_factory());
KILN_REGISTER_KERNEL(instancenorm_factory());

}  // namespace
}  // namespace kiln::cuda
