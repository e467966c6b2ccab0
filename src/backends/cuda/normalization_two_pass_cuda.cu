// kiln — CUDA GroupNorm, two passes (the fallback: chunks too large for shared memory with every block
// resident, misaligned pointers, no cooperative launch). A group is split over many blocks: PackNet has only
// 16 groups.
//   pass 1 (gn_stats): grid of (blocks_per_group × N·G); each block reduces a contiguous chunk of its group
//     to a partial (count, mean − K, M2, K): per-thread sums shifted by the thread's first value, merged by
//     Chan's formula, K = the group's first element.
//   pass 2 (gn_apply): grid of (chunks_per_plane × N·C); each block merges its group's partials (Chan) and
//     normalizes a chunk of one channel plane with 16-byte loads/stores. The tensor was just read by pass 1,
//     so pass 2's read mostly hits L2; pass 2 walks the blocks in reverse order (most recently read first).
//   Pass 2 is launched with programmatic dependent launch (sm_90): its blocks start while pass 1's last wave
//   runs, load their x chunk, and only wait (griddepcontrol.wait) before reading the partials.
//   KILN_CUDA_NO_PDL=1 launches pass 2 plainly (A/B check).
#include <algorithm>
#include <cstdlib>
#include <string>

#include "backends/cuda/normalization_cuda.cuh"

namespace kiln::cuda::group_norm {
namespace {

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

// Pass 1. Block b: group b / bpg, elements [chunk·(b % bpg), +chunk) of it. part[b] = (count, mean − K, M2,
// K).
template <typename T, int V, int U>
__global__ void __launch_bounds__(kStatsThreads)
    gn_stats(const T* __restrict__ x, float4* __restrict__ part, int64_t group_len, int64_t chunk, int bpg) {
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

// Pass 2. Block (reversed order) -> plane (n, c) and a chunk of its spatial elements; each thread owns U
// vectors at chunk_begin + (u·blockDim + tid)·V.
template <typename T, int V, int U, ops::Activation ACT>
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

  pdl_wait();                 // pass 1 complete, its partials visible
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
void launch(Kernel kernel, unsigned int grid, unsigned int block, cudaStream_t stream, bool pdl,
            Args... args) {
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

}  // namespace

template <typename T, int V>
void launch_typed(const T* x, T* y, const Plan& plan, int64_t n, int64_t c, int64_t spatial, int64_t groups,
                  const ApplyArgs& base, ops::Activation activation, float4* part, cudaStream_t stream) {
  constexpr int kStatsU = V == 1 ? 8 : static_cast<int>(kStatsChunk / (kStatsThreads * V));
  const int64_t stats_blocks = n * groups * plan.blocks_per_group;
  if (stats_blocks > (int64_t{1} << 31) - 1) throw Error("CUDA GroupNorm: tensor too large");
  launch(gn_stats<T, V, kStatsU>, static_cast<unsigned int>(stats_blocks), kStatsThreads, stream, false, x,
         part, plan.group_len, plan.chunk, static_cast<int>(plan.blocks_per_group));

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
  switch (activation) {  // group_norm_supports
    case ops::Activation::Relu:
      launch(gn_apply<T, V, kApplyU, ops::Activation::Relu>, g, threads, stream, pdl, x, y, a);
      break;
    case ops::Activation::Elu:
      launch(gn_apply<T, V, kApplyU, ops::Activation::Elu>, g, threads, stream, pdl, x, y, a);
      break;
    default:
      launch(gn_apply<T, V, kApplyU, ops::Activation::None>, g, threads, stream, pdl, x, y, a);
      break;
  }
}

#define KILN_GROUP_NORM_TWO_PASS(T, V)                                                            \
  template void launch_typed<T, V>(const T*, T*, const Plan&, int64_t, int64_t, int64_t, int64_t, \
                                   const ApplyArgs&, ops::Activation, float4*, cudaStream_t);
KILN_GROUP_NORM_TWO_PASS(float, 4)
KILN_GROUP_NORM_TWO_PASS(float, 1)
KILN_GROUP_NORM_TWO_PASS(__half, 8)
KILN_GROUP_NORM_TWO_PASS(__half, 1)
KILN_GROUP_NORM_TWO_PASS(__nv_bfloat16, 8)
KILN_GROUP_NORM_TWO_PASS(__nv_bfloat16, 1)
#undef KILN_GROUP_NORM_TWO_PASS

}  // namespace kiln::cuda::group_norm
