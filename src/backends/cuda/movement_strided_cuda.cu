// The strided-copy engine's kernels (movement_strided_cuda.cuh): the per-element gather, the vector gather in
// its load modes, and the 32x32 shared-memory tile transpose; enqueue_strided launches the one a plan chose.
#include <algorithm>
#include <cstring>

#include "backends/cuda/movement_strided_cuda.cuh"

namespace kiln::cuda::movement {
namespace {

// The general fallback (64-bit offsets, or element sizes the vector path does not take): one element per
// thread.
template <typename U, typename I>
__global__ void gather_kernel(const U* src, U* dst, I n, GatherParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    I t = i;
    int64_t off = p.base;
#pragma unroll
    for (int k = kMaxRank - 1; k >= 0; --k) {
      if (k >= p.rank) continue;
      const I d = static_cast<I>(p.dims[k]);
      const I q = t / d;
      off += static_cast<int64_t>(t - q * d) * p.strides[k];
      t = q;
    }
    dst[i] = src[off];
  }
}

__host__ __device__ __forceinline__ uint32_t mulhi32(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

__host__ __device__ __forceinline__ uint32_t fast_div(uint32_t n, const FastDiv& f) {
  return (mulhi32(n, f.mul) + n) >> f.shift;
}

template <int Bytes>
struct ChunkOf;
template <>
struct ChunkOf<2> {
  using T = uint16_t;
};
template <>
struct ChunkOf<4> {
  using T = uint32_t;
};
template <>
struct ChunkOf<8> {
  using T = uint2;
};
template <>
struct ChunkOf<16> {
  using T = uint4;
};

// r = p[0..N); p is aligned to min(N·sizeof(U), 16) bytes.
template <typename U, int N>
__host__ __device__ __forceinline__ void load_run(const U* p, U (&r)[N]) {
  constexpr int kBytes = N * static_cast<int>(sizeof(U)), kChunk = kBytes < 16 ? kBytes : 16;
  constexpr int kPer = kChunk / static_cast<int>(sizeof(U));
  using C = typename ChunkOf<kChunk>::T;
#pragma unroll
  for (int c = 0; c < N / kPer; ++c) {
    const C v = reinterpret_cast<const C*>(p)[c];
    memcpy(&r[c * kPer], &v, kChunk);
  }
}

template <typename U, int N>
__host__ __device__ __forceinline__ void store_run(U* p, const U (&r)[N]) {
  constexpr int kBytes = N * static_cast<int>(sizeof(U)), kChunk = kBytes < 16 ? kBytes : 16;
  constexpr int kPer = kChunk / static_cast<int>(sizeof(U));
  using C = typename ChunkOf<kChunk>::T;
#pragma unroll
  for (int c = 0; c < N / kPer; ++c) {
    C v;
    memcpy(&v, &r[c * kPer], kChunk);
    reinterpret_cast<C*>(p)[c] = v;
  }
}

// Vector i (the i-th item): its V (Split: K·V) elements from src to dst.
template <typename U, int V, int Mode, int K>
__host__ __device__ __forceinline__ void vec_gather_item(const U* src, U* dst, uint32_t i,
                                                         const VecParams& p) {
  static_assert(V >= 1 && V <= kVecMaxElems && (Mode != kVecMerge || (K > 1 && V % K == 0 && V > K)));
  uint32_t t = i;
  int32_t in = p.base, out = 0;
#pragma unroll
  for (int k = kMaxRank - 1; k >= 0; --k) {
    if (k >= p.rank) continue;
    uint32_t idx = t;  // the outermost axis takes what is left
    if (k > 0) {
      const uint32_t q = fast_div(t, p.div[k]);
      idx = t - q * p.div[k].d;
      t = q;
    }
    in += static_cast<int32_t>(idx) * p.src[k];
    if constexpr (Mode == kVecSplit) out += static_cast<int32_t>(idx) * p.dst[k];
  }
  if constexpr (Mode == kVecSplit) {
    U span[K * V];
    load_run(src + in, span);
#pragma unroll
    for (int j = 0; j < K; ++j) {
      U r[V];
#pragma unroll
      for (int e = 0; e < V; ++e) r[e] = span[e * K + j];
      store_run(dst + out + j * p.step, r);
    }
  } else {
    U r[V];
    if constexpr (Mode == kVecContig) {
      load_run(src + in, r);
    } else if constexpr (Mode == kVecMerge) {
      constexpr int kRow = V / K;
#pragma unroll
      for (int j = 0; j < K; ++j) {
        U row[kRow];
        load_run(src + in + j * p.step, row);
#pragma unroll
        for (int m = 0; m < kRow; ++m) r[m * K + j] = row[m];
      }
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) r[e] = src[in + p.delta[e]];
    }
    store_run(dst + static_cast<size_t>(i) * V, r);
  }
}

template <typename U, int V, int Mode, int K>
__global__ void __launch_bounds__(kThreads)
    vec_gather_kernel(const U* src, U* dst, uint32_t items, VecParams p) {
  const uint32_t grid_step = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < items; i += grid_step)
    vec_gather_item<U, V, Mode, K>(src, dst, i, p);
}

template <typename U>
__global__ void tile_kernel(const U* src, U* dst, TileParams p) {
  // Padding so a column of the tile falls in distinct banks (two 2-byte elements share a 4-byte bank).
  constexpr int kPad = sizeof(U) == 2 ? 2 : (sizeof(U) == 1 ? 4 : 1);
  __shared__ U tile[kTile][kTile + kPad];
  const int64_t per_batch = p.tiles_a * p.tiles_b;
  for (int64_t t = blockIdx.x; t < p.tiles; t += gridDim.x) {
    int64_t bt = t / per_batch;
    const int64_t r = t - bt * per_batch;
    const int64_t i0 = r / p.tiles_b * kTile, j0 = r % p.tiles_b * kTile;
    int64_t so = p.base, doff = 0;
    for (int k = p.nbatch - 1; k >= 0; --k) {
      const int64_t q = bt / p.bdims[k], idx = bt - q * p.bdims[k];
      so += idx * p.bsrc[k];
      doff += idx * p.bdst[k];
      bt = q;
    }
    for (int y = threadIdx.y; y < kTile; y += kTileRows) {
      const int64_t i = i0 + y, j = j0 + threadIdx.x;
      if (i < p.na && j < p.nb) tile[y][threadIdx.x] = src[so + i * p.sa + j];
    }
    __syncthreads();
    for (int y = threadIdx.y; y < kTile; y += kTileRows) {
      const int64_t j = j0 + y, i = i0 + threadIdx.x;
      if (i < p.na && j < p.nb) dst[doff + j * p.ob + i] = tile[threadIdx.x][y];
    }
    __syncthreads();
  }
}

template <typename U, int V, int Mode, int K>
void launch_vec(const VecPlan& v, const void* src, void* dst, cudaStream_t stream) {
  vec_gather_kernel<U, V, Mode, K><<<blocks_for(v.items, kThreads), kThreads, 0, stream>>>(
      static_cast<const U*>(src), static_cast<U*>(dst), static_cast<uint32_t>(v.items), v.p);
  KILN_CUDA_CHECK_LAUNCH();
}

template <typename U, int V>
void launch_vec_mode(const VecPlan& v, const void* src, void* dst, cudaStream_t stream) {
  if constexpr (V > 1) {
    if (v.mode == kVecContig) return launch_vec<U, V, kVecContig, 1>(v, src, dst, stream);
    if (v.mode == kVecSplit && v.k == 2) return launch_vec<U, V, kVecSplit, 2>(v, src, dst, stream);
    if (v.mode == kVecSplit && v.k == 4) return launch_vec<U, V, kVecSplit, 4>(v, src, dst, stream);
  }
  if constexpr (V > 2)
    if (v.mode == kVecMerge && v.k == 2) return launch_vec<U, V, kVecMerge, 2>(v, src, dst, stream);
  if constexpr (V > 4)
    if (v.mode == kVecMerge && v.k == 4) return launch_vec<U, V, kVecMerge, 4>(v, src, dst, stream);
  if (v.mode != kVecGeneric) throw Error("CUDA strided copy: bad vector plan");
  launch_vec<U, V, kVecGeneric, 1>(v, src, dst, stream);
}

// False (nothing launched) when the element size or a pointer's alignment does not suit the plan.
bool enqueue_vec(const VecPlan& v, size_t elem, const void* src, void* dst, cudaStream_t stream) {
  const auto misaligned = [](const void* ptr, size_t bytes) {
    return reinterpret_cast<uintptr_t>(ptr) % bytes != 0;
  };
  if (misaligned(src, static_cast<size_t>(v.align) * elem) ||
      misaligned(dst, static_cast<size_t>(v.v) * elem))
    return false;
  auto go = [&](auto u) {
    using U = decltype(u);
    switch (v.v) {
      case 1:
        launch_vec_mode<U, 1>(v, src, dst, stream);
        break;
      case 2:
        launch_vec_mode<U, 2>(v, src, dst, stream);
        break;
      case 4:
        launch_vec_mode<U, 4>(v, src, dst, stream);
        break;
      case 8:
        if constexpr (sizeof(U) == 2) {
          launch_vec_mode<U, 8>(v, src, dst, stream);
          break;
        }
        [[fallthrough]];
      default:
        throw Error("CUDA strided copy: bad vector width " + std::to_string(v.v));
    }
  };
  if (elem == 2)
    go(uint16_t{});
  else if (elem == 4)
    go(uint32_t{});
  else
    return false;
  return true;
}

}  // namespace

void enqueue_strided(const StridedPlan& p, size_t elem, const void* src, void* dst, cudaStream_t stream) {
  switch (p.kind) {
    case StridedPlan::Empty:
      return;
    case StridedPlan::Memcpy:
      KILN_CUDA_CHECK(
          cudaMemcpyAsync(dst, static_cast<const unsigned char*>(src) + p.base * static_cast<int64_t>(elem),
                          static_cast<size_t>(p.n) * elem, cudaMemcpyDeviceToDevice, stream));
      return;
    case StridedPlan::Tile:
      dispatch_bits(elem, [&](auto u) {
        using U = decltype(u);
        const unsigned int grid =
            static_cast<unsigned int>(std::min<int64_t>(p.tile.tiles, int64_t{1} << 20));
        tile_kernel<U><<<grid, dim3(kTile, kTileRows), 0, stream>>>(static_cast<const U*>(src),
                                                                    static_cast<U*>(dst), p.tile);
        KILN_CUDA_CHECK_LAUNCH();
      });
      return;
    case StridedPlan::Vec:
      if (enqueue_vec(p.vec, elem, src, dst, stream)) return;
      [[fallthrough]];
    case StridedPlan::Gather:
      dispatch_bits(elem, [&](auto u) {
        using U = decltype(u);
        const unsigned int grid = blocks_for(p.n, kThreads);
        if (fits32(p.n))
          gather_kernel<U, uint32_t><<<grid, kThreads, 0, stream>>>(
              static_cast<const U*>(src), static_cast<U*>(dst), static_cast<uint32_t>(p.n), p.gather);
        else
          gather_kernel<U, int64_t><<<grid, kThreads, 0, stream>>>(static_cast<const U*>(src),
                                                                   static_cast<U*>(dst), p.n, p.gather);
        KILN_CUDA_CHECK_LAUNCH();
      });
      return;
  }
}

}  // namespace kiln::cuda::movement
