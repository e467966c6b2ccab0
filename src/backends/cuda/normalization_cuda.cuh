// kiln — CUDA group / instance normalization: what its files share (device helpers, launch arguments, the
// plans and the functions one file calls in another). The family:
//   normalization_cuda.cu              host API (normalization_cuda.h), cuda.groupnorm / cuda.instancenorm
//   normalization_two_pass_cuda.cu     pass 1 (partial statistics) + pass 2 (merge, normalize): any size
//   normalization_single_pass_cuda.cu  one launch when the tensor fits on chip
//   normalization_plan_cuda.cu         single-pass planning: device queries, chunking
//
// Working relative to K keeps fp32 results exact to a few ulp even when |mean| >> std. In-place (y == x) is
// safe on both paths: every element is read (and K captured) before any element of its chunk is written, and
// each chunk is written only by the block (thread) that read it. ELU uses ex2.approx (__expf(v) − 1).
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <type_traits>

#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/normalization_cuda.h"

namespace kiln::cuda::group_norm {

constexpr int kStatsThreads = 256;
constexpr int64_t kStatsChunk = 8192;         // elements per pass-1 block (before the cap below)
constexpr int64_t kMaxBlocksPerGroup = 1024;  // pass 2 merges this many partials at most
constexpr int kApplyThreads = 256;

// single pass
constexpr int kFusedThreads = 1024;  // co-residency is computed for this block size (1 block per SM)
constexpr int kFusedRegVecs = 2;     // 16-byte vectors per thread a chunk may keep in registers
constexpr int64_t kFusedMinChunkBytes = 32 << 10;  // split a group over blocks only down to this

struct Plan {
  int64_t group_len = 0;  // C/G · spatial
  int64_t chunk = 0;      // pass-1 elements per block (multiple of 8)
  int64_t blocks_per_group = 0;
};

inline Plan plan_for(int64_t c, int64_t spatial, int64_t groups) {
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

// ELU's exp is ex2.approx (__expf): ~1e-7 absolute.
template <ops::Activation ACT>
__device__ __forceinline__ float activate(float v, float alpha) {
  return ops::activate<ACT, CudaFastMath>(v, alpha, 0.f);
}

struct ApplyArgs {
  const void* scale;
  const void* bias;
  const float4* part;
  int64_t c, channels_per_group, spatial, chunk;  // chunk: elements per block = blockDim·V·U
  int chunks_per_plane, bpg, param_dtype;
  float eps, alpha;
};

struct FusedPlan {
  bool ok = false;
  bool sync = false;  // bpg > 1: cooperative launch with a grid barrier
  int bpg = 0, chunk = 0, threads = 0, smem_vecs = 0, table_off = 0;
  int64_t grid = 0;
  size_t smem = 0;
};

// Launches the two passes (normalization_two_pass_cuda.cu); V: elements per 16-byte vector, or 1
// (misaligned).
template <typename T, int V>
void launch_typed(const T* x, T* y, const Plan& plan, int64_t n, int64_t c, int64_t spatial, int64_t groups,
                  const ApplyArgs& base, ops::Activation activation, float4* part, cudaStream_t stream);

// The single pass (normalization_single_pass_cuda.cu): its plan for this problem on the current device, or
// !ok (then the two-pass path runs).
template <typename T>
FusedPlan plan_fused_for(int64_t n, int64_t c, int64_t spatial, int64_t groups, ops::Activation activation,
                         size_t workspace_bytes);
// Launches the single pass; false (nothing enqueued) when cooperative launch is refused.
template <typename T>
bool launch_fused(const T* x, T* y, const FusedPlan& p, int64_t c, int64_t spatial, int64_t groups,
                  const ApplyArgs& base, ops::Activation activation, void* workspace, cudaStream_t stream);

// ---- single-pass planning. Device properties and per-kernel attributes are queried once per device (host
// queries only, no allocation, no stream work) and cached.
struct DevInfo {
  bool ok = false;
  int sms = 0;
  int smem_optin = 0;  // max shared memory per block (opt-in), bytes
  bool coop = false;   // cooperative launch supported
};

// The current device, or -1 (no CUDA device).
int current_device();
// Guards the per-device caches.
std::mutex& cache_mutex();
DevInfo device_info(int dev);

// The single-pass plan for this problem on a device, or !ok (then the two-pass path runs).
FusedPlan plan_fused(int64_t esize, int64_t n, int64_t c, int64_t spatial, int64_t groups, int max_dyn,
                     int64_t coop_blocks, size_t workspace_bytes);

}  // namespace kiln::cuda::group_norm
