// kiln — CUDA normalization kernels:
//   cuda.groupnorm     kiln.GroupNorm (+ Relu / Elu in the same pass), fp32 / fp16 / bf16
//   cuda.instancenorm  InstanceNormalization (GroupNorm with one channel per group)
//
// Statistics per (n, group) over C/G channels × spatial; the host picks one of two paths per launch.
//
// Single pass (gn_fused), when the tensor fits on chip: each block owns a contiguous chunk of one group
// (blocks_per_group chunks per group) and copies it into shared memory with cp.async (16-byte, every copy in
// flight at once; a chunk a little larger than shared memory keeps its last ≤ 2 vectors per thread in
// registers). It reduces the chunk to a partial (count, mean − K, M2) — per-thread sums shifted by the
// thread's first value, merged by Chan's formula, K = the group's first element — then:
//   blocks_per_group == 1: the block has the group's statistics (plain launch, any grid size);
//   blocks_per_group > 1: the partials go to the workspace, one grid-wide barrier (cooperative launch, at
//     most one 1024-thread block per SM so co-residency is guaranteed), each block merges its group's few
//     partials.
// It then builds a per-channel table y = act((x − K)·a + b), a = scale·invstd, b = bias − (mean − K)·a, and
// writes Y from shared memory. X is read from DRAM once and Y written once; one launch.
//
// Two passes (fallback: chunks too large for shared memory with every block resident, misaligned pointers,
// no cooperative launch). A group is split over many blocks: PackNet has only 16 groups.
//   pass 1 (gn_stats): grid of (blocks_per_group × N·G); each block reduces a contiguous chunk of its group
//   to
//     a partial (count, mean − K, M2, K) as above.
//   pass 2 (gn_apply): grid of (chunks_per_plane × N·C); each block merges its group's partials (Chan) and
//     normalizes a chunk of one channel plane with 16-byte loads/stores. The tensor was just read by pass 1,
//     so pass 2's read mostly hits L2; pass 2 walks the blocks in reverse order (most recently read first).
//   Pass 2 is launched with programmatic dependent launch (sm_90): its blocks start while pass 1's last wave
//   runs, load their x chunk, and only wait (griddepcontrol.wait) before reading the partials.
//   KILN_CUDA_NO_PDL=1 launches pass 2 plainly (A/B check).
// Working relative to K keeps fp32 results exact to a few ulp even when |mean| >> std. In-place (y == x) is
// safe on both paths: every element is read (and K captured) before any element of its chunk is written, and
// each chunk is written only by the block (thread) that read it. ELU uses ex2.approx (__expf(v) − 1).
#include <cooperative_groups.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/normalization_cuda.h"
#include "device/kernel.h"

namespace kiln::cuda {
namespace {

constexpr int kStatsThreads = 256;
constexpr int64_t kStatsChunk = 8192;         // elements per pass-1 block (before the cap below)
constexpr int64_t kMaxBlocksPerGroup = 1024;  // pass 2 merges this many partials at most
constexpr int kApplyThreads = 256;

struct Plan {
  int64_t group_len = 0;  // C/G · spatial
  int64_t chunk = 0;      // pass-1 elements per block (multiple of 8)
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

// ---- element access: 16 bytes <-> 16 / sizeof(T) floats
template <typename T>
__device__ __forceinline__ void unpack16(const uint4& raw, float (&v)[16 / sizeof(T)]) {
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

template <typename T>
__device__ __forceinline__ uint4 pack16(const float (&v)[16 / sizeof(T)]) {
  if constexpr (sizeof(T) == 4) {
    return make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]),
                      __float_as_uint(v[3]));
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
    return make_uint4(words[0], words[1], words[2], words[3]);
  }
}

// V consecutive elements of T as floats (V·sizeof(T) = 16 bytes, or V = 1)
template <typename T, int V>
struct VecIO {
  static __device__ __forceinline__ void load(const T* p, float (&v)[V]) {
    if constexpr (V == 1) {
      v[0] = to_float(p[0]);
    } else {
      static_assert(V * sizeof(T) == 16, "16-byte vectors");
      unpack16<T>(*reinterpret_cast<const uint4*>(p), v);
    }
  }
  static __device__ __forceinline__ void store(T* p, const float (&v)[V]) {
    if constexpr (V == 1) {
      p[0] = from_float<T>(v[0]);
    } else {
      *reinterpret_cast<uint4*>(p) = pack16<T>(v);
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

__device__ __forceinline__ float load_param(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case 1:
      return __half2float(static_cast<const __half*>(p)[i]);
    case 2:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

template <int ACT>
__device__ __forceinline__ float activate(float v, float alpha) {
  if constexpr (ACT == 1) return fmaxf(v, 0.f);
  if constexpr (ACT == 2) return v > 0.f ? v : alpha * (__expf(v) - 1.f);  // ex2.approx: ~1e-7 absolute
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

// ---- single pass
constexpr int kFusedThreads = 1024;  // co-residency is computed for this block size (1 block per SM)
constexpr int kFusedRegVecs = 2;     // 16-byte vectors per thread a chunk may keep in registers
constexpr int64_t kFusedMinChunkBytes = 32 << 10;  // split a group over blocks only down to this

// Quotient n / d for 0 <= n < 2^31, 1 <= d < 2^31: (umulhi(n, m) + n) >> l (Granlund-Montgomery).
struct FastDiv {
  unsigned int mul = 0;
  int shift = 0;
};
FastDiv make_fastdiv(int64_t d) {
  FastDiv f;
  int l = 0;
  while ((int64_t{1} << l) < d) ++l;
  f.shift = l;
  f.mul = static_cast<unsigned int>(
      ((uint64_t{1} << 32) * ((uint64_t{1} << l) - static_cast<uint64_t>(d))) / static_cast<uint64_t>(d) + 1);
  return f;
}
__device__ __forceinline__ int fastdiv(int n, unsigned int mul, int shift) {
  return static_cast<int>((__umulhi(static_cast<unsigned int>(n), mul) + static_cast<unsigned int>(n)) >>
                          shift);
}

__device__ __forceinline__ void cp_async16(void* smem_dst, const void* gmem_src) {
  const unsigned int s = static_cast<unsigned int>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem_src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;" ::: "memory");
}
// Wait until at most `pending` of this thread's cp.async groups are still in flight (more waits longer).
__device__ __forceinline__ void cp_async_wait_pending(int pending) {
  switch (pending) {
    case 0:
      asm volatile("cp.async.wait_group 0;" ::: "memory");
      break;
    case 1:
      asm volatile("cp.async.wait_group 1;" ::: "memory");
      break;
    case 2:
      asm volatile("cp.async.wait_group 2;" ::: "memory");
      break;
    case 3:
      asm volatile("cp.async.wait_group 3;" ::: "memory");
      break;
    case 4:
      asm volatile("cp.async.wait_group 4;" ::: "memory");
      break;
    case 5:
      asm volatile("cp.async.wait_group 5;" ::: "memory");
      break;
    case 6:
      asm volatile("cp.async.wait_group 6;" ::: "memory");
      break;
    default:
      asm volatile("cp.async.wait_group 7;" ::: "memory");
      break;
  }
}

struct FusedArgs {
  const void* scale;
  const void* bias;
  float4* part;               // [grid] partials (blocks_per_group > 1 only)
  int group_len, chunk, bpg;  // elements per group / per block (multiple of V); blocks per group
  int spatial, cpg, groups;
  unsigned int sp_mul;  // fastdiv by spatial
  int sp_shift;
  int smem_vecs;  // vectors of a chunk staged in shared memory; the rest (<= kFusedRegVecs·blockDim) in
                  // registers
  int table_off;  // byte offset of the per-channel (a, b) table in dynamic shared memory
  int param_dtype;
  float eps, alpha;
};

// Block b: group b / bpg, elements [chunk·(b % bpg), +chunk) of it. Thread t owns the chunk's vectors
// t, t + blockDim, ... (shared memory up to smem_vecs, registers after). SYNC: bpg > 1, cooperative launch.
template <typename T, int ACT, bool SYNC>
__global__ void __launch_bounds__(kFusedThreads, 1) gn_fused(const T* x, T* y, FusedArgs a) {
  constexpr int V = 16 / sizeof(T);
  extern __shared__ __align__(16) unsigned char gn_smem[];
  uint4* buf = reinterpret_cast<uint4*>(gn_smem);
  float2* table = reinterpret_cast<float2*>(gn_smem + a.table_off);
  __shared__ float red[3][32];
  __shared__ float stats[2];  // mean − K, invstd

  const int tid = threadIdx.x, nt = blockDim.x;
  const int grp = blockIdx.x / a.bpg;
  const int begin = (blockIdx.x - grp * a.bpg) * a.chunk;
  const int len = min(a.chunk, a.group_len - begin);
  const int nvec = len / V;
  const int64_t gbase = static_cast<int64_t>(grp) * a.group_len;
  const uint4* src = reinterpret_cast<const uint4*>(x + gbase + begin);
  const int nsm = min(nvec, a.smem_vecs);

  // Every load in flight at once: one cp.async group per vector, then the register tail.
  int rounds = 0;
  for (int j = tid; j < nsm; j += nt, ++rounds) {
    cp_async16(buf + j, src + j);
    cp_async_commit();
  }
  uint4 reg[kFusedRegVecs];
#pragma unroll
  for (int r = 0; r < kFusedRegVecs; ++r) {
    const int j = nsm + r * nt + tid;
    reg[r] = j < nvec ? __ldcg(src + j) : make_uint4(0u, 0u, 0u, 0u);
  }
  const float k_group = to_float(x[gbase]);
  const int ch0 = begin / a.spatial, nch = (begin + len - 1) / a.spatial - ch0 + 1;
  for (int t = tid; t < nch; t += nt) {  // raw (scale, bias) now, turned into (a, b) by the same thread later
    const int ch = (grp % a.groups) * a.cpg + ch0 + t;
    table[t] = make_float2(load_param(a.scale, a.param_dtype, ch), load_param(a.bias, a.param_dtype, ch));
  }

  // Partial statistics, each vector as soon as its copy lands.
  float cnt = 0.f, s = 0.f, q = 0.f, kt = 0.f;
  auto accumulate = [&](const uint4& raw) {
    float v[V];
    unpack16<T>(raw, v);
    if (cnt == 0.f) kt = v[0];  // this thread's shift: its first value
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float d = v[k] - kt;
      s += d;
      q = fmaf(d, d, q);
    }
    cnt += static_cast<float>(V);
  };
  {
    int r = 0;
    for (int j = tid; j < nsm; j += nt, ++r) {
      cp_async_wait_pending(rounds - 1 - r);
      accumulate(buf[j]);
    }
  }
#pragma unroll
  for (int r = 0; r < kFusedRegVecs; ++r)
    if (nsm + r * nt + tid < nvec) accumulate(reg[r]);
  float mean = 0.f, m2 = 0.f;
  if (cnt > 0.f) {
    const float ds = s / cnt;
    mean = (kt - k_group) + ds;
    m2 = fmaxf(q - s * ds, 0.f);
  }
  warp_merge(cnt, mean, m2);
  const int warp = tid >> 5, lane = tid & 31, warps = (nt + 31) >> 5;
  if (lane == 0) {
    red[0][warp] = cnt;
    red[1][warp] = mean;
    red[2][warp] = m2;
  }
  __syncthreads();
  if (warp == 0) {
    cnt = lane < warps ? red[0][lane] : 0.f;
    mean = lane < warps ? red[1][lane] : 0.f;
    m2 = lane < warps ? red[2][lane] : 0.f;
    warp_merge(cnt, mean, m2);
  }
  if constexpr (SYNC) {
    if (tid == 0) a.part[blockIdx.x] = make_float4(cnt, mean, m2, 0.f);
    cooperative_groups::this_grid().sync();  // every partial written and visible
    if (warp == 0) {
      cnt = mean = m2 = 0.f;
      const float4* p = a.part + static_cast<int64_t>(grp) * a.bpg;
      for (int j = lane; j < a.bpg; j += 32) {
        const float4 pj = __ldcg(p + j);
        chan_merge(cnt, mean, m2, pj.x, pj.y, pj.z);
      }
      warp_merge(cnt, mean, m2);
    }
  }
  if (tid == 0) {
    stats[0] = mean;
    stats[1] = 1.f / sqrtf(fmaxf(m2 / cnt, 0.f) + a.eps);
  }
  __syncthreads();
  const float mk = stats[0], inv = stats[1];
  for (int t = tid; t < nch; t += nt) {
    const float2 p = table[t];
    const float mul = p.x * inv;
    table[t] = make_float2(mul, fmaf(-mk, mul, p.y));
  }
  __syncthreads();

  uint4* dst = reinterpret_cast<uint4*>(y + gbase + begin);
  auto emit = [&](int j, const uint4& raw) {
    float v[V];
    unpack16<T>(raw, v);
    const float2 p = table[fastdiv(begin + j * V, a.sp_mul, a.sp_shift) - ch0];
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = activate<ACT>(fmaf(v[k] - k_group, p.x, p.y), a.alpha);
    dst[j] = pack16<T>(v);
  };
  for (int j = tid; j < nsm; j += nt) emit(j, buf[j]);
#pragma unroll
  for (int r = 0; r < kFusedRegVecs; ++r) {
    const int j = nsm + r * nt + tid;
    if (j < nvec) emit(j, reg[r]);
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

template <typename T, int V>
void launch_typed(const T* x, T* y, const Plan& plan, int64_t n, int64_t c, int64_t spatial, int64_t groups,
                  const ApplyArgs& base, int activation, float4* part, cudaStream_t stream) {
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
  switch (activation) {
    case 1:
      launch(gn_apply<T, V, kApplyU, 1>, g, threads, stream, pdl, x, y, a);
      break;
    case 2:
      launch(gn_apply<T, V, kApplyU, 2>, g, threads, stream, pdl, x, y, a);
      break;
    default:
      launch(gn_apply<T, V, kApplyU, 0>, g, threads, stream, pdl, x, y, a);
      break;
  }
}

// ---- single-pass planning. Device properties and per-kernel attributes are queried once per device (host
// queries only, no allocation, no stream work) and cached.
struct DevInfo {
  bool ok = false;
  int sms = 0;
  int smem_optin = 0;  // max shared memory per block (opt-in), bytes
  bool coop = false;   // cooperative launch supported
};

int current_device() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return -1;
  }
  return dev;
}

std::mutex& cache_mutex() {
  static std::mutex mu;
  return mu;
}

DevInfo device_info(int dev) {
  static std::map<int, DevInfo> cache;
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto it = cache.find(dev);
  if (it != cache.end()) return it->second;
  DevInfo d;
  int coop = 0;
  if (dev >= 0 && cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
      cudaDeviceGetAttribute(&d.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess &&
      cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) == cudaSuccess) {
    d.ok = d.sms > 0 && d.smem_optin > 0;
    d.coop = coop != 0;
  } else {
    (void)cudaGetLastError();
  }
  cache.emplace(dev, d);
  return d;
}

struct FusedKernelInfo {
  bool ok = false;
  int max_dyn = 0;          // dynamic shared memory the kernel may use (attribute set to this)
  int64_t coop_blocks = 0;  // blocks of kFusedThreads guaranteed co-resident at max_dyn (0: no cooperative)
};

template <typename T, bool SYNC>
using FusedKernel = void (*)(const T*, T*, FusedArgs);

template <typename T, bool SYNC>
FusedKernel<T, SYNC> fused_kernel(int activation) {
  switch (activation) {
    case 1:
      return gn_fused<T, 1, SYNC>;
    case 2:
      return gn_fused<T, 2, SYNC>;
    default:
      return gn_fused<T, 0, SYNC>;
  }
}

FusedKernelInfo fused_kernel_info(const void* kernel, int dev, const DevInfo& d) {
  static std::map<std::pair<const void*, int>, FusedKernelInfo> cache;
  std::lock_guard<std::mutex> lock(cache_mutex());
  const auto key = std::make_pair(kernel, dev);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  FusedKernelInfo k;
  cudaFuncAttributes fa{};
  int per_sm = 0;
  if (d.ok && cudaFuncGetAttributes(&fa, kernel) == cudaSuccess && fa.maxThreadsPerBlock >= kFusedThreads) {
    k.max_dyn = d.smem_optin - static_cast<int>(fa.sharedSizeBytes);
    if (k.max_dyn > 0 &&
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, k.max_dyn) == cudaSuccess) {
      k.ok = true;
      if (d.coop && cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                        &per_sm, kernel, kFusedThreads, static_cast<size_t>(k.max_dyn)) == cudaSuccess)
        k.coop_blocks = std::min<int64_t>(int64_t{per_sm} * d.sms, 1024);
    }
  }
  if (!k.ok) k = FusedKernelInfo{};
  (void)
      cudaGetLastError();  // a failed query leaves no sticky state behind; the two-pass path is used instead
  cache.emplace(key, k);
  return k;
}

struct FusedPlan {
  bool ok = false;
  bool sync = false;  // bpg > 1: cooperative launch with a grid barrier
  int bpg = 0, chunk = 0, threads = 0, smem_vecs = 0, table_off = 0;
  int64_t grid = 0;
  size_t smem = 0;
};

// Chunking of each group into `bpg` blocks, if a chunk fits (shared memory + kFusedRegVecs per thread).
FusedPlan fused_chunking(int64_t esize, int64_t group_len, int64_t spatial, int64_t cpg, int64_t ng,
                         int64_t bpg, int max_dyn) {
  FusedPlan p;
  const int64_t v = 16 / esize;
  int64_t chunk = (group_len + bpg - 1) / bpg;
  chunk = (chunk + v - 1) / v * v;
  bpg = (group_len + chunk - 1) / chunk;  // no empty blocks
  const int64_t vecs = chunk / v;
  const int64_t threads = std::min<int64_t>(kFusedThreads, (vecs + 31) / 32 * 32);
  const int64_t nch = std::min<int64_t>(cpg, (chunk - 1) / spatial + 2);  // channels one chunk can touch
  const int64_t table = nch * static_cast<int64_t>(sizeof(float2));
  const int64_t smem_vecs = std::min<int64_t>(vecs, (max_dyn - table) / 16);
  if (smem_vecs <= 0 || vecs - smem_vecs > kFusedRegVecs * threads) return p;
  p.ok = true;
  p.bpg = static_cast<int>(bpg);
  p.chunk = static_cast<int>(chunk);
  p.threads = static_cast<int>(threads);
  p.smem_vecs = static_cast<int>(smem_vecs);
  p.table_off = static_cast<int>(smem_vecs * 16);
  p.smem = static_cast<size_t>(smem_vecs * 16 + table);
  p.grid = ng * bpg;
  p.sync = bpg > 1;
  return p;
}

// The single-pass plan for this problem on a device, or !ok (then the two-pass path runs).
FusedPlan plan_fused(int64_t esize, int64_t n, int64_t c, int64_t spatial, int64_t groups, int max_dyn,
                     int64_t coop_blocks, size_t workspace_bytes) {
  const int64_t cpg = c / groups, group_len = cpg * spatial, ng = n * groups;
  if (group_len <= 0 || group_len > INT_MAX - 64 || ng > INT_MAX || max_dyn <= 0) return {};
  // Fewest blocks per group that fit (1 needs no barrier and no co-residency).
  const int64_t max_bpg = std::max<int64_t>(1, coop_blocks / ng);
  FusedPlan fit;
  for (int64_t b = 1; b <= max_bpg && !fit.ok; ++b) {
    fit = fused_chunking(esize, group_len, spatial, cpg, ng, b, max_dyn);
    if (b > 1 && fit.ok && fit.grid > coop_blocks) fit.ok = false;
  }
  if (!fit.ok) return {};
  // More blocks per group for bandwidth, down to kFusedMinChunkBytes per block, while all stay co-resident.
  const int64_t group_bytes = group_len * esize;
  int64_t want =
      std::min<int64_t>((group_bytes + kFusedMinChunkBytes - 1) / kFusedMinChunkBytes, coop_blocks / ng);
  FusedPlan p = fit;
  if (want > fit.bpg) {
    FusedPlan q = fused_chunking(esize, group_len, spatial, cpg, ng, want, max_dyn);
    if (q.ok && q.grid <= coop_blocks) p = q;
  }
  if (p.sync && (coop_blocks <= 0 || p.grid > coop_blocks ||
                 static_cast<size_t>(p.grid) * sizeof(float4) > workspace_bytes))
    return {};
  return p;
}

template <typename T>
FusedPlan plan_fused_for(int64_t n, int64_t c, int64_t spatial, int64_t groups, int activation,
                         size_t workspace_bytes) {
  const int dev = current_device();
  if (dev < 0) return {};
  const DevInfo d = device_info(dev);
  if (!d.ok) return {};
  const FusedKernelInfo ks =
      fused_kernel_info(reinterpret_cast<const void*>(fused_kernel<T, true>(activation)), dev, d);
  const FusedKernelInfo kp =
      fused_kernel_info(reinterpret_cast<const void*>(fused_kernel<T, false>(activation)), dev, d);
  if (!kp.ok) return {};
  const int max_dyn = ks.ok ? std::min(ks.max_dyn, kp.max_dyn) : kp.max_dyn;
  return plan_fused(sizeof(T), n, c, spatial, groups, max_dyn, ks.ok ? ks.coop_blocks : 0, workspace_bytes);
}

// Launches the single pass; false (nothing enqueued) when cooperative launch is refused.
template <typename T>
bool launch_fused(const T* x, T* y, const FusedPlan& p, int64_t c, int64_t spatial, int64_t groups,
                  const ApplyArgs& base, int activation, void* workspace, cudaStream_t stream) {
  FusedArgs a{};
  a.scale = base.scale;
  a.bias = base.bias;
  a.part = static_cast<float4*>(workspace);
  a.group_len = static_cast<int>(c / groups * spatial);
  a.chunk = p.chunk;
  a.bpg = p.bpg;
  a.spatial = static_cast<int>(spatial);
  a.cpg = static_cast<int>(c / groups);
  a.groups = static_cast<int>(groups);
  const FastDiv fd = make_fastdiv(spatial);
  a.sp_mul = fd.mul;
  a.sp_shift = fd.shift;
  a.smem_vecs = p.smem_vecs;
  a.table_off = p.table_off;
  a.param_dtype = base.param_dtype;
  a.eps = base.eps;
  a.alpha = base.alpha;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned int>(p.grid));
  cfg.blockDim = dim3(static_cast<unsigned int>(p.threads));
  cfg.dynamicSmemBytes = p.smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = p.sync ? 1 : 0;
  cudaError_t e;
  if (p.sync)
    e = cudaLaunchKernelEx(&cfg, fused_kernel<T, true>(activation), x, y, a);
  else
    e = cudaLaunchKernelEx(&cfg, fused_kernel<T, false>(activation), x, y, a);
  if (e == cudaErrorCooperativeLaunchTooLarge) {  // fewer SMs than the device reports (MPS, green contexts)
    (void)cudaGetLastError();
    return false;
  }
  KILN_CUDA_CHECK(e);
  return true;
}

void check_args(int64_t c, int64_t groups) {
  if (groups <= 0 || c <= 0 || c % groups != 0)
    throw Error("CUDA GroupNorm: num_groups " + std::to_string(groups) + " does not divide " +
                std::to_string(c) + " channels");
}

}  // namespace

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
                              int activation, GroupNormPath requested) {
  check_args(c, groups);
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
                       int activation, float alpha, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream) {
  launch_group_norm(dtype, x, y, scale, bias, param_dtype, n, c, spatial, groups, eps, activation, alpha,
                    workspace, workspace_bytes, stream, GroupNormPath::Auto);
}

void launch_group_norm(DType dtype, const void* x, void* y, const void* scale, const void* bias,
                       DType param_dtype, int64_t n, int64_t c, int64_t spatial, int64_t groups, float eps,
                       int activation, float alpha, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream, GroupNormPath path) {
  check_args(c, groups);
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
  GroupNormKernel(int64_t groups, float eps, int activation, float alpha, const std::vector<int64_t>& dims)
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

int activation_code(const std::string& act) {
  return act == "Elu" ? 2 : act == "Relu" ? 1 : 0;
}

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
                activation_code(d.node->attrs.get_string("activation", "")),
                d.node->attrs.get_float("alpha", 1.0f), d.inputs[0].dims);
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
            return std::make_unique<GroupNormKernel>(
                d.inputs[0].dims[1], d.node->attrs.get_float("epsilon", 1e-5f), 0, 1.f, d.inputs[0].dims);
          }};
}

KILN_REGISTER_KERNEL(groupnorm_factory());
KILN_REGISTER_KERNEL(instancenorm_factory());

}  // namespace
}  // namespace kiln::cuda
