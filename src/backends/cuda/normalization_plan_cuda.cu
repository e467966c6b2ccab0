// kiln — CUDA GroupNorm, single-pass planning: how many blocks per group, chunk sizes, shared memory. Device
// properties are queried once per device (host queries only, no allocation, no stream work) and cached.
#include <algorithm>
#include <climits>
#include <map>
#include <mutex>

#include "backends/cuda/normalization_cuda.cuh"

namespace kiln::cuda::group_norm {

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

namespace {

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

}  // namespace

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

}  // namespace kiln::cuda::group_norm
