// kiln — CUDA GroupNorm, single pass (gn_fused), when the tensor fits on chip: each block owns a contiguous
// chunk of one group (blocks_per_group chunks per group) and copies it into shared memory with cp.async
// (16-byte, every copy in flight at once; a chunk a little larger than shared memory keeps its last ≤ 2
// vectors per thread in registers). It reduces the chunk to a partial (count, mean − K, M2) — per-thread sums
// shifted by the thread's first value, merged by Chan's formula, K = the group's first element — then:
//   blocks_per_group == 1: the block has the group's statistics (plain launch, any grid size);
//   blocks_per_group > 1: the partials go to the workspace, one grid-wide barrier (cooperative launch, at
//     most one 1024-thread block per SM so co-residency is guaranteed), each block merges its group's few
//     partials.
// It then builds a per-channel table y = act((x − K)·a + b), a = scale·invstd, b = bias − (mean − K)·a, and
// writes Y from shared memory. X is read from DRAM once and Y written once; one launch.
#include <cooperative_groups.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "backends/cuda/normalization_cuda.cuh"

namespace kiln::cuda::group_norm {
namespace {

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
template <typename T, ops::Activation ACT, bool SYNC>
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

struct FusedKernelInfo {
  bool ok = false;
  int max_dyn = 0;          // dynamic shared memory the kernel may use (attribute set to this)
  int64_t coop_blocks = 0;  // blocks of kFusedThreads guaranteed co-resident at max_dyn (0: no cooperative)
};

template <typename T, bool SYNC>
using FusedKernel = void (*)(const T*, T*, FusedArgs);

template <typename T, bool SYNC>
FusedKernel<T, SYNC> fused_kernel(ops::Activation activation) {
  switch (activation) {  // group_norm_supports
    case ops::Activation::Relu:
      return gn_fused<T, ops::Activation::Relu, SYNC>;
    case ops::Activation::Elu:
      return gn_fused<T, ops::Activation::Elu, SYNC>;
    default:
      return gn_fused<T, ops::Activation::None, SYNC>;
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

}  // namespace

template <typename T>
FusedPlan plan_fused_for(int64_t n, int64_t c, int64_t spatial, int64_t groups, ops::Activation activation,
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
                  const ApplyArgs& base, ops::Activation activation, void* workspace, cudaStream_t stream) {
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

#define KILN_GROUP_NORM_SINGLE_PASS(T)                                                                       \
  template FusedPlan plan_fused_for<T>(int64_t, int64_t, int64_t, int64_t, ops::Activation, size_t);         \
  template bool launch_fused<T>(const T*, T*, const FusedPlan&, int64_t, int64_t, int64_t, const ApplyArgs&, \
                                ops::Activation, void*, cudaStream_t);
KILN_GROUP_NORM_SINGLE_PASS(float)
KILN_GROUP_NORM_SINGLE_PASS(__half)
KILN_GROUP_NORM_SINGLE_PASS(__nv_bfloat16)
#undef KILN_GROUP_NORM_SINGLE_PASS

}  // namespace kiln::cuda::group_norm
