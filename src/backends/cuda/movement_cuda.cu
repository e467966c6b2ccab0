// CUDA data movement: Transpose, DepthToSpace/SpaceToDepth, Slice (cuda.transpose, cuda.depth_to_space,
// cuda.slice) share one strided-copy engine; Concat (cuda.concat) copies each input into its rows of the
// output; Pad (cuda.pad), Resize/Upsample (cuda.resize) and a plain byte copy for views the runtime did not
// alias (cuda.copy: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout).
//
// Strided copy: out[i] = in[base + Σ idx_k · stride_k] over the contiguous output's index. Transpose is a
// permutation of the input strides, DepthToSpace/SpaceToDepth a permutation of a 6-D view, Slice the strides
// times the steps plus an offset. On the host, size-1 axes are dropped and adjacent axes that stay adjacent
// are merged; then the copy is one memcpy (contiguous), a 32x32 shared-memory tile transpose (the input's
// innermost axis is not the output's and both are long), or a vector gather: each thread writes up to 16
// bytes of consecutive output with one store, its index split with 32-bit multiply-shift division, its inputs
// loaded as wide contiguous runs when the pattern allows (rows kept contiguous; input rows interleaved, as in
// DepthToSpace; a contiguous input run dealt out to several output channels, as in SpaceToDepth) and element
// by element otherwise. Offsets past 32 bits fall back to a per-element gather with 64-bit offsets.
//
// Resize computes the reference's taps (input index and weight per output coordinate and axis, in double,
// with its coordinate and rounding rules) at create time and uploads them as small tables, so the device
// never re-derives a rounding decision.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "ops/util.h"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;
constexpr int kMaxRank = 8;
constexpr int kTile = 32, kTileRows = 8;

using ops::strides_of;

bool fits32(int64_t n) {
  return n < (int64_t{1} << 31);
}

// Elements moved as bits: the unsigned type of the element's size.
template <typename F>
void dispatch_bits(size_t size, F&& f) {
  switch (size) {
    case 1:
      f(uint8_t{});
      break;
    case 2:
      f(uint16_t{});
      break;
    case 4:
      f(uint32_t{});
      break;
    case 8:
      f(uint64_t{});
      break;
    default:
      throw Error("CUDA movement kernel: unsupported element size " + std::to_string(size));
  }
}

// The float dtypes the movement kernels take (all elements of one layer share it).
bool float_data(const LayerDesc& d, size_t n_inputs) {
  if (d.outputs.size() != 1 || !d.outputs[0].present || !is_cuda_float(d.outputs[0].dtype) ||
      d.inputs.size() < n_inputs)
    return false;
  for (size_t k = 0; k < n_inputs; ++k)
    if (!d.inputs[k].present || d.inputs[k].dtype != d.outputs[0].dtype) return false;
  return true;
}

// Constant int64 values of input k (nullopt if absent); `ok` turns false when present but not a constant.
std::optional<std::vector<int64_t>> const_ints(const LayerDesc& d, size_t k, bool& ok) {
  if (k >= d.inputs.size() || !d.inputs[k].present) return std::nullopt;
  if (!d.inputs[k].constant || !dtype_is_integer(d.inputs[k].constant->dtype())) {
    ok = false;
    return std::nullopt;
  }
  return d.inputs[k].constant->to_int64_vector();
}

// Axes in [-rank, rank) made non-negative; false on out-of-range or repeated axes.
bool normalize_axes(std::vector<int64_t>& axes, int64_t rank) {
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& a : axes) {
    if (a < 0) a += rank;
    if (a < 0 || a >= rank || seen[static_cast<size_t>(a)]) return false;
    seen[static_cast<size_t>(a)] = true;
  }
  return true;
}

// ======================================================================================= strided copy
struct GatherParams {
  int rank;
  int64_t base;
  int64_t dims[kMaxRank], strides[kMaxRank];
};

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

// Unsigned division by a divisor fixed at plan time, for dividends below 2^31: with l = ceil(log2 d) and
// m = floor(2^32 (2^l - d) / d) + 1, n / d = (mulhi(n, m) + n) >> l (Granlund & Montgomery, "Division by
// invariant integers using multiplication", fig. 4.1; the sum cannot overflow 32 bits since n < 2^31).
struct FastDiv {
  uint32_t d, mul, shift;
};

FastDiv make_fast_div(uint32_t d) {
  uint32_t l = 0;
  while ((uint64_t{1} << l) < d) ++l;
  const uint64_t m = (uint64_t{1} << 32) * ((uint64_t{1} << l) - d) / d + 1;
  return {d, static_cast<uint32_t>(m), l};
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

// The vector gather: each thread moves V consecutive output elements ("a vector", whose start is a multiple
// of V) with one store of V elements, from input offsets in + delta[e]. V divides the product of the
// innermost output axes it spans, so delta does not depend on where the vector lies; the vector index is
// split over the remaining ("item") axes with 32-bit fast division. How the V inputs are loaded depends on
// delta:
//   Contig   delta[e] = e: one load of V elements.
//   Merge K  delta[e] = e / K + (e % K) · step (the output interleaves K input rows, e.g. DepthToSpace):
//            K loads of V/K contiguous elements, interleaved in registers.
//   Split K  delta[e] = e · K, and an item axis has input stride 1 (e.g. SpaceToDepth): the thread also takes
//            K consecutive indices j of that axis, loads the K·V contiguous inputs once and writes K vectors
//            (vector j holds inputs j, j+K, ..., `step` output elements apart).
//   Generic  V scalar loads (V = 1 is the per-element gather with cheap index math).
// Offsets are int32: the plan takes this path only when every partial sum of an offset fits.
constexpr int kVecMaxElems = 16;
enum VecMode { kVecGeneric, kVecContig, kVecMerge, kVecSplit };

struct VecParams {
  int rank;  // item axes, outermost first
  int32_t base, step;
  FastDiv div[kMaxRank];
  int32_t src[kMaxRank], dst[kMaxRank];  // input and (Split) output strides per item axis
  int32_t delta[kVecMaxElems];           // Generic: input offset of each element of a vector
};

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

// Output axis a (innermost, length na, input stride sa) against the input's innermost axis b (length nb,
// output stride ob); every other axis is a batch axis. One 32x32 tile per block iteration: read rows of b,
// write rows of a, both coalesced.
struct TileParams {
  int64_t na, nb, sa, ob, base;
  int64_t tiles_a, tiles_b, tiles;
  int nbatch;
  int64_t bdims[kMaxRank], bsrc[kMaxRank], bdst[kMaxRank];
};

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

// The vector gather's choice: V elements per vector, the load mode, K, the item count, and the alignment (in
// elements) its loads assume of the input pointer (its stores assume V elements of the output pointer).
struct VecPlan {
  int v = 1, mode = kVecGeneric, k = 1, align = 1;
  int64_t items = 0;
  VecParams p{};
};

struct StridedPlan {
  enum Kind { Empty, Memcpy, Tile, Vec, Gather } kind = Empty;
  int64_t n = 0, base = 0;
  GatherParams gather{};  // also Vec's fallback when a pointer is less aligned than its loads assume
  TileParams tile{};
  VecPlan vec{};
};

// The item axes (size, input stride, output stride) left when vectors of v elements cover the innermost
// output axes, and each element's input offset within its vector; nullopt when v does not fit the axes (v
// must be a product of whole innermost axes times a divisor of the next one).
struct VecCover {
  std::vector<int64_t> dims, src, dst, delta;
};

std::optional<VecCover> vec_cover(const std::vector<int64_t>& d, const std::vector<int64_t>& s, int64_t v) {
  const int r = static_cast<int>(d.size());
  const auto os = strides_of(d);
  std::vector<std::pair<int64_t, int64_t>> sub;  // covered (size, input stride), innermost first
  int64_t rem = v, partial = 1;
  int top = r - 1;  // the outermost axis not wholly inside a vector
  while (rem > 1) {
    if (top < 0) return std::nullopt;
    const int64_t n = d[static_cast<size_t>(top)];
    if (rem % n == 0) {
      sub.push_back({n, s[static_cast<size_t>(top)]});
      rem /= n;
      --top;
    } else if (n % rem == 0) {
      sub.push_back({rem, s[static_cast<size_t>(top)]});
      partial = rem;
      rem = 1;
    } else {
      return std::nullopt;
    }
  }
  VecCover c;
  for (int k = 0; k <= top; ++k) {
    const size_t u = static_cast<size_t>(k);
    const int64_t f = k == top ? partial : 1;
    if (d[u] / f == 1) continue;
    c.dims.push_back(d[u] / f);
    c.src.push_back(s[u] * f);
    c.dst.push_back(os[u] * f);
  }
  for (int64_t e = 0; e < v; ++e) {
    int64_t t = e, off = 0;
    for (const auto& [n, st] : sub) {
      off += t % n * st;
      t /= n;
    }
    c.delta.push_back(off);
  }
  return c;
}

bool all_multiples(const std::vector<int64_t>& xs, int64_t a) {
  return std::all_of(xs.begin(), xs.end(), [a](int64_t x) { return x % a == 0; });
}

VecPlan make_vec_plan(const VecCover& c, int64_t base, int v, int mode, int k, int64_t step, int align) {
  VecPlan vp;
  vp.v = v;
  vp.mode = mode;
  vp.k = k;
  vp.align = align;
  vp.items = ops::numel(c.dims);
  VecParams& p = vp.p;
  p.rank = static_cast<int>(c.dims.size());
  p.base = static_cast<int32_t>(base);
  p.step = static_cast<int32_t>(step);
  for (size_t a = 0; a < c.dims.size(); ++a) {
    p.div[a] = make_fast_div(static_cast<uint32_t>(c.dims[a]));
    p.src[a] = static_cast<int32_t>(c.src[a]);
    p.dst[a] = static_cast<int32_t>(c.dst[a]);
  }
  for (size_t e = 0; e < c.delta.size(); ++e) p.delta[e] = static_cast<int32_t>(c.delta[e]);
  return vp;
}

// The widest vector with a fast load mode, else the widest with scalar loads (V = 1 at worst); nullopt when
// offsets or counts need 64 bits or the element size is not 2 or 4 bytes (the float dtypes).
std::optional<VecPlan> plan_vec(const std::vector<int64_t>& d, const std::vector<int64_t>& s, int64_t base,
                                size_t elem) {
  if (elem != 2 && elem != 4) return std::nullopt;
  int64_t reach = base;
  for (size_t k = 0; k < d.size(); ++k) reach += (d[k] - 1) * std::abs(s[k]);
  if (!fits32(reach) || !fits32(ops::numel(d))) return std::nullopt;
  const int vmax = static_cast<int>(16 / elem);
  std::optional<VecPlan> generic;
  for (int v = vmax; v >= 1; v /= 2) {
    const auto c = vec_cover(d, s, v);
    if (!c) continue;
    const auto& dl = c->delta;
    auto loads_aligned = [&](int64_t a, int64_t step) {
      return base % a == 0 && step % a == 0 && all_multiples(c->src, a);
    };
    if (v > 1) {
      bool contig = true;
      for (int e = 0; e < v; ++e) contig = contig && dl[static_cast<size_t>(e)] == e;
      if (contig && loads_aligned(v, 0)) return make_vec_plan(*c, base, v, kVecContig, 1, 0, v);
      for (int k : {2, 4}) {
        if (v <= k) continue;
        const int64_t step = dl[1];
        bool merge = true;
        for (int e = 0; e < v; ++e) merge = merge && dl[static_cast<size_t>(e)] == e / k + e % k * step;
        if (merge && loads_aligned(v / k, step)) return make_vec_plan(*c, base, v, kVecMerge, k, step, v / k);
      }
      for (int k : {2, 4}) {
        bool split = true;
        for (int e = 0; e < v; ++e) split = split && dl[static_cast<size_t>(e)] == int64_t{e} * k;
        if (!split) continue;
        for (size_t a = 0; a < c->dims.size(); ++a) {
          if (c->src[a] != 1 || c->dims[a] % k != 0) continue;
          VecCover sc = *c;
          const int64_t step = sc.dst[a];
          sc.dims[a] /= k;
          sc.src[a] = k;
          sc.dst[a] *= k;
          if (sc.dims[a] == 1) {
            sc.dims.erase(sc.dims.begin() + static_cast<std::ptrdiff_t>(a));
            sc.src.erase(sc.src.begin() + static_cast<std::ptrdiff_t>(a));
            sc.dst.erase(sc.dst.begin() + static_cast<std::ptrdiff_t>(a));
          }
          const int align = std::min(vmax, k * v);
          if (base % align == 0 && all_multiples(sc.src, align) && all_multiples(sc.dst, v) && step % v == 0)
            return make_vec_plan(sc, base, v, kVecSplit, k, step, align);
          break;
        }
      }
    }
    if (!generic) generic = make_vec_plan(*c, base, v, kVecGeneric, 1, 0, 1);
  }
  return generic;
}

// Plans out[i] = in[base + Σ idx_k · strides_k] for output dims `dims` and `elem`-byte elements; nullopt if
// the simplified rank exceeds kMaxRank.
std::optional<StridedPlan> plan_strided(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                                        int64_t base, size_t elem) {
  StridedPlan p;
  p.n = ops::numel(dims);
  p.base = base;
  if (p.n == 0) return p;
  std::vector<int64_t> d, s;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] == 1) continue;
    if (!d.empty() && s.back() == strides[k] * dims[k]) {
      d.back() *= dims[k];
      s.back() = strides[k];
    } else {
      d.push_back(dims[k]);
      s.push_back(strides[k]);
    }
  }
  if (d.empty()) d = {1}, s = {1};
  const int r = static_cast<int>(d.size());
  if (r > kMaxRank) return std::nullopt;
  if (r == 1 && s[0] == 1) {
    p.kind = StridedPlan::Memcpy;
    return p;
  }
  int b = -1;  // the input's innermost axis, when it is not the output's
  for (int k = 0; k < r - 1; ++k)
    if (s[static_cast<size_t>(k)] == 1) b = k;
  constexpr int64_t kTileMin =
      16;  // shorter axes waste most of a tile: the gather's reads coalesce well enough
  if (b >= 0 && d[static_cast<size_t>(r - 1)] >= kTileMin && d[static_cast<size_t>(b)] >= kTileMin) {
    const auto os = strides_of(d);
    TileParams& t = p.tile;
    t.na = d[static_cast<size_t>(r - 1)];
    t.sa = s[static_cast<size_t>(r - 1)];
    t.nb = d[static_cast<size_t>(b)];
    t.ob = os[static_cast<size_t>(b)];
    t.base = base;
    t.tiles_a = (t.na + kTile - 1) / kTile;
    t.tiles_b = (t.nb + kTile - 1) / kTile;
    t.tiles = t.tiles_a * t.tiles_b;
    t.nbatch = 0;
    for (int k = 0; k < r - 1; ++k) {
      if (k == b) continue;
      t.bdims[t.nbatch] = d[static_cast<size_t>(k)];
      t.bsrc[t.nbatch] = s[static_cast<size_t>(k)];
      t.bdst[t.nbatch] = os[static_cast<size_t>(k)];
      t.tiles *= d[static_cast<size_t>(k)];
      ++t.nbatch;
    }
    p.kind = StridedPlan::Tile;
    return p;
  }
  p.kind = StridedPlan::Gather;
  p.gather.rank = r;
  p.gather.base = base;
  for (int k = 0; k < r; ++k) {
    p.gather.dims[k] = d[static_cast<size_t>(k)];
    p.gather.strides[k] = s[static_cast<size_t>(k)];
  }
  if (auto v = plan_vec(d, s, base, elem)) {
    p.kind = StridedPlan::Vec;
    p.vec = *v;
  }
  return p;
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

// A layer that is one strided copy of input 0; `owned` constant inputs were read at create time.
class StridedKernel final : public CudaKernel {
 public:
  StridedKernel(StridedPlan plan, size_t elem, size_t owned_from)
      : p_(plan), elem_(elem), owned_from_(owned_from) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    enqueue_strided(p_, elem_, in[0].data, out[0].data, rc.stream);
  }
  bool owns_constant_input(size_t k) const override { return k >= owned_from_; }

 private:
  StridedPlan p_;
  size_t elem_;
  size_t owned_from_;  // inputs from here on are attribute-like constants (Slice's starts/ends/axes/steps)
};

// Output axis k reads input axis perm[k] (the reference's Transpose).
std::optional<StridedPlan> permute_plan(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& perm,
                                        size_t elem) {
  const auto is = strides_of(in_dims);
  std::vector<int64_t> dims, strides;
  for (int64_t a : perm) {
    dims.push_back(in_dims[static_cast<size_t>(a)]);
    strides.push_back(is[static_cast<size_t>(a)]);
  }
  return plan_strided(dims, strides, 0, elem);
}

// ------------------------------------------------------------------------------------------ Transpose
std::optional<StridedPlan> transpose_plan(const LayerDesc& d) {
  if (d.inputs.size() != 1 || !float_data(d, 1)) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> perm = d.node->attrs.get_ints("perm");
  if (perm.empty()) {
    perm.resize(static_cast<size_t>(r));
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  if (static_cast<int64_t>(perm.size()) != r || !normalize_axes(perm, r)) return std::nullopt;
  std::vector<int64_t> y;
  for (int64_t p : perm) y.push_back(x[static_cast<size_t>(p)]);
  if (y != d.outputs[0].dims) return std::nullopt;
  return permute_plan(x, perm, dtype_size(d.outputs[0].dtype));
}

// ----------------------------------------------------------------------------- DepthToSpace / SpaceToDepth
// DepthToSpace [N, C·b·b, H, W] → [N, C, H·b, W·b] is a transpose of a 6-D view of the input:
// DCR (channel (i·b + j)·C + c) views [N, b, b, C, H, W] and permutes [0,3,4,1,5,2];
// CRD (channel c·b·b + i·b + j) views [N, C, b, b, H, W] and permutes [0,1,4,2,5,3].
// SpaceToDepth (DCR order) views [N, C, H, b, W, b] and permutes [0,3,5,1,2,4].
std::optional<StridedPlan> depth_space_plan(const LayerDesc& d) {
  if (d.inputs.size() != 1 || !float_data(d, 1) || d.inputs[0].dims.size() != 4) return std::nullopt;
  const int64_t b = d.node->attrs.get_int("blocksize", 0);
  const auto& x = d.inputs[0].dims;
  if (b < 1) return std::nullopt;
  std::vector<int64_t> view, perm, y;
  if (d.node->op == "DepthToSpace") {
    const std::string mode = d.node->attrs.get_string("mode", "DCR");
    if ((mode != "DCR" && mode != "CRD") || x[1] % (b * b) != 0) return std::nullopt;
    const int64_t c = x[1] / (b * b);
    y = {x[0], c, x[2] * b, x[3] * b};
    if (mode == "DCR") {
      view = {x[0], b, b, c, x[2], x[3]};
      perm = {0, 3, 4, 1, 5, 2};
    } else {
      view = {x[0], c, b, b, x[2], x[3]};
      perm = {0, 1, 4, 2, 5, 3};
    }
  } else {
    if (x[2] % b != 0 || x[3] % b != 0) return std::nullopt;
    y = {x[0], x[1] * b * b, x[2] / b, x[3] / b};
    view = {x[0], x[1], x[2] / b, b, x[3] / b, b};
    perm = {0, 3, 5, 1, 2, 4};
  }
  if (y != d.outputs[0].dims) return std::nullopt;
  return permute_plan(view, perm, dtype_size(d.outputs[0].dtype));
}

// ---------------------------------------------------------------------------------------------- Slice
std::optional<StridedPlan> slice_plan(const LayerDesc& d) {
  if (!float_data(d, 1)) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const int64_t r = static_cast<int64_t>(x.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (d.opset < 10) {
    if (d.inputs.size() != 1) return std::nullopt;
    starts = d.node->attrs.get_ints("starts");
    ends = d.node->attrs.get_ints("ends");
    axes = d.node->attrs.get_ints("axes");
  } else {
    bool ok = true;
    auto s = const_ints(d, 1, ok), e = const_ints(d, 2, ok), a = const_ints(d, 3, ok),
         st = const_ints(d, 4, ok);
    if (!ok || !s || !e || d.inputs.size() > 5) return std::nullopt;
    starts = *s;
    ends = *e;
    if (a) axes = *a;
    if (st) steps = *st;
  }
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size() ||
      !normalize_axes(axes, r))
    return std::nullopt;
  const auto xs = strides_of(x);
  std::vector<int64_t> dims = x, strides = xs;
  int64_t base = 0;
  for (size_t j = 0; j < axes.size(); ++j) {
    if (steps[j] == 0) return std::nullopt;
    const size_t k = static_cast<size_t>(axes[j]);
    const auto [start, len] = ops::slice_range(starts[j], ends[j], steps[j], x[k]);
    dims[k] = len;
    strides[k] = xs[k] * steps[j];
    if (len > 0) base += start * xs[k];
  }
  if (dims != d.outputs[0].dims) return std::nullopt;
  return plan_strided(dims, strides, base, dtype_size(d.outputs[0].dtype));
}

template <std::optional<StridedPlan> (*Plan)(const LayerDesc&)>
KernelFactory strided_factory(const std::string& name, const std::string& op) {
  return {.name = name,
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports =
              [](const LayerDesc& d) {
                try {
                  return Plan(d).has_value();
                } catch (const Error&) {  // an attribute of the wrong type
                  return false;
                }
              },
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<StridedKernel>(*Plan(d), dtype_size(d.outputs[0].dtype), 1);
          }};
}

// ============================================================================================= Concat
// dst[r * pitch + c] = src[r * width + c] for r < rows, c < width, in units of U.
template <typename U, typename I>
__global__ void copy_rows_kernel(const U* src, U* dst, I rows, I width, I pitch) {
  const I n = rows * width;
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const I r = i / width;
    dst[r * pitch + (i - r * width)] = src[i];
  }
}

// Copies `rows` rows of `width` bytes, contiguous in src, `pitch` bytes apart in dst; the widest unit (up to
// 16 bytes) that divides the sizes and both addresses.
void copy_rows(const void* src, void* dst, int64_t rows, int64_t width, int64_t pitch, cudaStream_t stream) {
  if (rows == 0 || width == 0) return;
  if (rows == 1 || width == pitch) {
    KILN_CUDA_CHECK(
        cudaMemcpyAsync(dst, src, static_cast<size_t>(rows * width), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  const uint64_t bits = static_cast<uint64_t>(width) | static_cast<uint64_t>(pitch) |
                        reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst);
  int64_t unit = 16;
  while (unit > 1 && (bits & static_cast<uint64_t>(unit - 1))) unit /= 2;
  auto launch = [&](auto u) {
    using U = decltype(u);
    const int64_t w = width / unit, p = pitch / unit, n = rows * w;
    const unsigned int grid = blocks_for(n, kThreads);
    if (fits32(rows * p))
      copy_rows_kernel<U, uint32_t><<<grid, kThreads, 0, stream>>>(
          static_cast<const U*>(src), static_cast<U*>(dst), static_cast<uint32_t>(rows),
          static_cast<uint32_t>(w), static_cast<uint32_t>(p));
    else
      copy_rows_kernel<U, int64_t>
          <<<grid, kThreads, 0, stream>>>(static_cast<const U*>(src), static_cast<U*>(dst), rows, w, p);
    KILN_CUDA_CHECK_LAUNCH();
  };
  switch (unit) {
    case 16:
      launch(uint4{});
      break;
    case 8:
      launch(uint2{});
      break;
    case 4:
      launch(uint32_t{});
      break;
    case 2:
      launch(uint16_t{});
      break;
    default:
      launch(uint8_t{});
      break;
  }
}

// The output is [outer, Σ chunk_k]: input k fills `chunk_k` bytes at byte `offset_k` of every output row.
class ConcatKernel final : public CudaKernel {
 public:
  ConcatKernel(int64_t outer, std::vector<int64_t> chunks) : outer_(outer), chunks_(std::move(chunks)) {
    row_ = std::accumulate(chunks_.begin(), chunks_.end(), int64_t{0});
  }
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    auto* dst = static_cast<unsigned char*>(out[0].data);
    int64_t offset = 0;
    for (size_t k = 0; k < chunks_.size(); ++k) {
      copy_rows(in[k].data, dst + offset, outer_, chunks_[k], row_, rc.stream);
      offset += chunks_[k];
    }
  }

 private:
  int64_t outer_, row_ = 0;
  std::vector<int64_t> chunks_;  // bytes per output row, per input
};

bool concat_plan(const LayerDesc& d, int64_t& outer, std::vector<int64_t>& chunks) {
  if (d.inputs.empty() || !float_data(d, d.inputs.size())) return false;
  const auto& y = d.outputs[0].dims;
  const int64_t r = static_cast<int64_t>(y.size());
  int64_t axis = d.node->attrs.get_int("axis", 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return false;
  outer = ops::numel({y.begin(), y.begin() + axis});
  const int64_t inner = ops::numel({y.begin() + axis + 1, y.end()});
  const int64_t es = static_cast<int64_t>(dtype_size(d.outputs[0].dtype));
  int64_t sum = 0;
  chunks.clear();
  for (const auto& o : d.inputs) {
    if (static_cast<int64_t>(o.dims.size()) != r) return false;
    for (int64_t k = 0; k < r; ++k)
      if (k != axis && o.dims[static_cast<size_t>(k)] != y[static_cast<size_t>(k)]) return false;
    chunks.push_back(o.dims[static_cast<size_t>(axis)] * inner * es);
    sum += o.dims[static_cast<size_t>(axis)];
  }
  return sum == y[static_cast<size_t>(axis)];
}

// ================================================================================================ Pad
enum class PadMode { Constant, Reflect, Edge, Wrap };

struct PadParams {
  int rank;
  PadMode mode;
  float value;
  int64_t out_dims[kMaxRank], in_dims[kMaxRank], in_strides[kMaxRank], begin[kMaxRank];
};

// Each output element finds its source index per axis by the reference's rules (reflect without repeating the
// edge, period 2(n-1); a single element reflects onto itself), or takes the constant.
template <typename T, typename I>
__global__ void pad_kernel(const T* src, T* dst, I n, PadParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  const T fill = from_float<T>(p.value);
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    I t = i;
    int64_t off = 0;
    bool inside = true;
#pragma unroll
    for (int k = kMaxRank - 1; k >= 0; --k) {
      if (k >= p.rank) continue;
      const I od = static_cast<I>(p.out_dims[k]);
      const I q = t / od;
      int64_t j = static_cast<int64_t>(t - q * od) - p.begin[k];
      t = q;
      const int64_t nk = p.in_dims[k];
      if (j < 0 || j >= nk) {
        if (p.mode == PadMode::Constant) {
          inside = false;
        } else if (p.mode == PadMode::Edge) {
          j = j < 0 ? 0 : nk - 1;
        } else if (p.mode == PadMode::Wrap) {
          j = ((j % nk) + nk) % nk;
        } else if (nk == 1) {
          j = 0;
        } else {
          const int64_t period = 2 * (nk - 1);
          j = ((j % period) + period) % period;
          if (j >= nk) j = period - j;
        }
      }
      off += j * p.in_strides[k];
    }
    dst[i] = inside ? src[off] : fill;
  }
}

class PadKernel final : public CudaKernel {
 public:
  PadKernel(PadParams p, DType dtype, int64_t n) : p_(p), dtype_(dtype), n_(n) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    dispatch_float_type(dtype_, [&](auto t) {
      using T = decltype(t);
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      if (fits32(n_))
        pad_kernel<T, uint32_t>
            <<<blocks_for(n_, kThreads), kThreads, 0, rc.stream>>>(x, y, static_cast<uint32_t>(n_), p_);
      else
        pad_kernel<T, int64_t><<<blocks_for(n_, kThreads), kThreads, 0, rc.stream>>>(x, y, n_, p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  bool owns_constant_input(size_t k) const override { return k >= 1; }  // pads, constant_value, axes

 private:
  PadParams p_;
  DType dtype_;
  int64_t n_;
};

std::optional<PadParams> pad_plan(const LayerDesc& d) {
  if (!float_data(d, 1) || d.inputs.size() > 4) return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0 || r > kMaxRank || y.size() != x.size()) return std::nullopt;
  PadParams p{};
  p.rank = static_cast<int>(r);
  const std::string mode = d.node->attrs.get_string("mode", "constant");
  if (mode == "constant")
    p.mode = PadMode::Constant;
  else if (mode == "reflect")
    p.mode = PadMode::Reflect;
  else if (mode == "edge")
    p.mode = PadMode::Edge;
  else if (mode == "wrap")
    p.mode = PadMode::Wrap;
  else
    return std::nullopt;
  std::vector<int64_t> pads;
  p.value = 0.f;
  if (d.opset < 11) {
    if (d.inputs.size() != 1) return std::nullopt;
    pads = d.node->attrs.get_ints("pads");
    p.value = d.node->attrs.get_float("value", 0.0f);
  } else {
    bool ok = true;
    auto given = const_ints(d, 1, ok);
    auto axes = const_ints(d, 3, ok);
    if (!ok || !given) return std::nullopt;
    pads = *given;
    if (d.inputs.size() > 2 && d.inputs[2].present) {
      const TensorData* v = d.inputs[2].constant;
      if (!v || v->numel() != 1 || !dtype_is_float(v->dtype())) return std::nullopt;
      p.value = static_cast<float>(v->as_double(0));
    }
    if (axes) {  // opset 18: pads for the listed axes only
      if (!normalize_axes(*axes, r) || pads.size() != 2 * axes->size()) return std::nullopt;
      std::vector<int64_t> full(static_cast<size_t>(2 * r), 0);
      for (size_t j = 0; j < axes->size(); ++j) {
        full[static_cast<size_t>((*axes)[j])] = pads[j];
        full[static_cast<size_t>((*axes)[j] + r)] = pads[j + axes->size()];
      }
      pads = full;
    }
  }
  if (static_cast<int64_t>(pads.size()) != 2 * r) return std::nullopt;
  const auto xs = strides_of(x);
  for (int64_t k = 0; k < r; ++k) {
    const size_t u = static_cast<size_t>(k);
    const int64_t b = pads[u], e = pads[static_cast<size_t>(k + r)];
    if (b < 0 || e < 0 || x[u] + b + e != y[u])
      return std::nullopt;  // negative pads (crops) are left to others
    if (p.mode != PadMode::Constant && x[u] == 0 && y[u] > 0) return std::nullopt;
    p.out_dims[k] = y[u];
    p.in_dims[k] = x[u];
    p.in_strides[k] = xs[u];
    p.begin[k] = b;
  }
  return p;
}

// ============================================================================================= Resize
// Reference taps of one output coordinate along one axis: nearest uses (i0, w0 = 1); linear adds (i1, w1).
struct AxisTaps {
  std::vector<int64_t> i0, i1;
  std::vector<double> w0, w1;
};

struct ResizeSetup {
  bool linear = false;
  std::vector<AxisTaps> taps;  // per axis
};

bool known_coord_mode(const std::string& m) {
  return m == "half_pixel" || m == "half_pixel_symmetric" || m == "pytorch_half_pixel" ||
         m == "align_corners" || m == "asymmetric" || m == "tf_half_pixel_for_nn";
}

std::optional<ResizeSetup> resize_setup(const LayerDesc& d) {
  if (!float_data(d, 1)) return std::nullopt;
  const auto& a = d.node->attrs;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  const size_t r = x.size();
  if (r == 0 || r > kMaxRank || y.size() != r) return std::nullopt;
  const bool upsample = d.node->op == "Upsample";
  const bool legacy = upsample || d.opset < 11;
  if (d.inputs.size() > (legacy ? 2u : 4u)) return std::nullopt;
  std::string mode = a.get_string("mode", "nearest");
  if (mode == "bilinear" || mode == "trilinear") mode = "linear";
  if ((mode != "nearest" && mode != "linear") || a.get_int("antialias", 0) != 0 || a.has("axes") ||
      a.get_int("exclude_outside", 0) != 0)
    return std::nullopt;
  const std::string coord =
      legacy ? "asymmetric" : a.get_string("coordinate_transformation_mode", "half_pixel");
  const std::string nmode = legacy ? "simple" : a.get_string("nearest_mode", "round_prefer_floor");
  if (!known_coord_mode(coord)) return std::nullopt;
  if (nmode != "simple" && nmode != "round_prefer_floor" && nmode != "round_prefer_ceil" &&
      nmode != "floor" && nmode != "ceil")
    return std::nullopt;

  // A present input must be a constant to be read; an empty one counts as absent (roi/scales of Resize-11+).
  auto constant = [&](size_t k, bool& ok) -> const TensorData* {
    if (k >= d.inputs.size() || !d.inputs[k].present) return nullptr;
    if (!d.inputs[k].constant) {
      ok = false;
      return nullptr;
    }
    return d.inputs[k].constant->numel() > 0 ? d.inputs[k].constant : nullptr;
  };
  // Scale per axis, as the reference: given scales as float32, or sizes / in (one shared scale for the
  // keep-aspect policies).
  std::vector<double> scale(r, 1.0);
  bool ok = true;
  std::vector<double> given;
  if (upsample && d.opset < 9) {
    for (float f : a.get_floats("scales")) given.push_back(f);
  } else if (const TensorData* s = constant(legacy ? 1 : 2, ok)) {
    if (!dtype_is_float(s->dtype())) return std::nullopt;
    for (int64_t i = 0; i < s->numel(); ++i) given.push_back(s->as_double(i));
  }
  if (!ok) return std::nullopt;
  if (!given.empty()) {
    if (given.size() != r) return std::nullopt;
    for (size_t k = 0; k < r; ++k) scale[k] = static_cast<float>(given[k]);
  } else {
    const TensorData* sz = legacy ? nullptr : constant(3, ok);
    if (!ok || !sz || !dtype_is_integer(sz->dtype())) return std::nullopt;
    const auto sizes = sz->to_int64_vector();
    if (sizes.size() != r) return std::nullopt;
    const std::string policy = a.get_string("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller") return std::nullopt;
    double shared = policy == "not_larger" ? 1e300 : 0;
    for (size_t k = 0; k < r; ++k) {
      if (x[k] <= 0) return std::nullopt;
      scale[k] = static_cast<double>(sizes[k]) / static_cast<double>(x[k]);
      shared = policy == "not_larger" ? std::min(shared, scale[k]) : std::max(shared, scale[k]);
    }
    if (policy != "stretch") std::fill(scale.begin(), scale.end(), shared);
  }

  ResizeSetup setup;
  setup.linear = mode == "linear";
  setup.taps.resize(r);
  for (size_t k = 0; k < r; ++k) {
    const int64_t in = x[k], out = y[k];
    if (out > 0 && (in <= 0 || !(scale[k] > 0))) return std::nullopt;
    AxisTaps& t = setup.taps[k];
    auto clamp = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
    for (int64_t o = 0; o < out; ++o) {
      const double c = *ops::resize_source_coord(coord, static_cast<double>(o), in, out, scale[k]);
      if (!setup.linear) {
        t.i0.push_back(clamp(*ops::resize_nearest_index(nmode, c, scale[k] < 1)));
        t.w0.push_back(1.0);
        t.i1.push_back(0);
        t.w1.push_back(0.0);
      } else {
        const double f = std::floor(c);
        t.i0.push_back(clamp(static_cast<int64_t>(f)));
        t.w0.push_back(1 - (c - f));
        t.i1.push_back(clamp(static_cast<int64_t>(f) + 1));
        t.w1.push_back(c - f);
      }
    }
  }
  if (setup.linear) {
    // Linear is interpolated along the last two axes only; every other axis must map each output index to
    // the same input index with weight 1 (the usual N, C).
    for (size_t k = 0; k + 2 < r; ++k) {
      const AxisTaps& t = setup.taps[k];
      if (x[k] != y[k]) return std::nullopt;
      for (int64_t o = 0; o < y[k]; ++o)
        if (t.i0[static_cast<size_t>(o)] != o || t.w0[static_cast<size_t>(o)] != 1.0 ||
            t.w1[static_cast<size_t>(o)] != 0.0)
          return std::nullopt;
    }
  }
  return setup;
}

struct NearestParams {
  int rank;
  int64_t dims[kMaxRank], table_at[kMaxRank];
};

// table[table_at[k] + idx_k]: the input offset (index × input stride) of output index idx_k along axis k.
template <typename U, typename I>
__global__ void resize_nearest_kernel(const U* src, U* dst, I n, const int64_t* table, NearestParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    I t = i;
    int64_t off = 0;
#pragma unroll
    for (int k = kMaxRank - 1; k >= 0; --k) {
      if (k >= p.rank) continue;
      const I d = static_cast<I>(p.dims[k]);
      const I q = t / d;
      off += table[p.table_at[k] + static_cast<int64_t>(t - q * d)];
      t = q;
    }
    dst[i] = src[off];
  }
}

// Two taps along one axis: input offsets and weights (a zero weight's tap is skipped, as the reference does).
struct Tap2 {
  int64_t o0, o1;
  float w0, w1;
};

struct LinearParams {
  int64_t oh, ow, in_plane;  // output rows and columns; input elements per [H, W] plane
};

template <typename T, typename I>
__global__ void resize_linear_kernel(const T* src, T* dst, I n, const Tap2* th, const Tap2* tw,
                                     LinearParams p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  const I ow = static_cast<I>(p.ow), oh = static_cast<I>(p.oh);
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const I t = i / ow, w = i - t * ow;
    const I plane = t / oh, h = t - plane * oh;
    const T* s = src + static_cast<int64_t>(plane) * p.in_plane;
    const Tap2 a = th[h], b = tw[w];
    auto row = [&](int64_t ro) {
      float acc = 0.f;
      if (b.w0 != 0.f) acc += b.w0 * to_float(s[ro + b.o0]);
      if (b.w1 != 0.f) acc += b.w1 * to_float(s[ro + b.o1]);
      return acc;
    };
    float v = 0.f;
    if (a.w0 != 0.f) v += a.w0 * row(a.o0);
    if (a.w1 != 0.f) v += a.w1 * row(a.o1);
    dst[i] = from_float<T>(v);
  }
}

class ResizeKernel final : public CudaKernel {
 public:
  ResizeKernel(const ResizeSetup& s, const std::vector<int64_t>& x, const std::vector<int64_t>& y,
               DType dtype)
      : linear_(s.linear), dtype_(dtype), n_(ops::numel(y)) {
    const size_t r = x.size();
    if (!linear_) {
      const auto xs = strides_of(x);
      std::vector<int64_t> table;
      np_.rank = static_cast<int>(r);
      for (size_t k = 0; k < r; ++k) {
        np_.dims[k] = y[k];
        np_.table_at[k] = static_cast<int64_t>(table.size());
        for (int64_t i : s.taps[k].i0) table.push_back(i * xs[k]);
      }
      table_ = DeviceBuffer(table.data(), table.size() * sizeof(int64_t));
      return;
    }
    // Linear: rows (axis r-2, or a single row for 1-D) and columns (axis r-1).
    const int64_t iw = x[r - 1];
    std::vector<Tap2> taps;
    if (r >= 2) {
      const AxisTaps& t = s.taps[r - 2];
      for (size_t o = 0; o < t.i0.size(); ++o)
        taps.push_back(
            {t.i0[o] * iw, t.i1[o] * iw, static_cast<float>(t.w0[o]), static_cast<float>(t.w1[o])});
      lp_.oh = y[r - 2];
      lp_.in_plane = x[r - 2] * iw;
    } else {
      taps.push_back({0, 0, 1.f, 0.f});
      lp_.oh = 1;
      lp_.in_plane = iw;
    }
    rows_ = static_cast<int64_t>(taps.size());
    const AxisTaps& t = s.taps[r - 1];
    for (size_t o = 0; o < t.i0.size(); ++o)
      taps.push_back({t.i0[o], t.i1[o], static_cast<float>(t.w0[o]), static_cast<float>(t.w1[o])});
    lp_.ow = y[r - 1];
    table_ = DeviceBuffer(taps.data(), taps.size() * sizeof(Tap2));
  }

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    const unsigned int grid = blocks_for(n_, kThreads);
    if (!linear_) {
      dispatch_bits(dtype_size(dtype_), [&](auto u) {
        using U = decltype(u);
        const U* x = static_cast<const U*>(in[0].data);
        U* y = static_cast<U*>(out[0].data);
        const int64_t* table = table_.as<int64_t>();
        if (fits32(n_))
          resize_nearest_kernel<U, uint32_t>
              <<<grid, kThreads, 0, rc.stream>>>(x, y, static_cast<uint32_t>(n_), table, np_);
        else
          resize_nearest_kernel<U, int64_t><<<grid, kThreads, 0, rc.stream>>>(x, y, n_, table, np_);
        KILN_CUDA_CHECK_LAUNCH();
      });
      return;
    }
    dispatch_float_type(dtype_, [&](auto t) {
      using T = decltype(t);
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      const Tap2* th = table_.as<Tap2>();
      const Tap2* tw = th + rows_;
      if (fits32(n_))
        resize_linear_kernel<T, uint32_t>
            <<<grid, kThreads, 0, rc.stream>>>(x, y, static_cast<uint32_t>(n_), th, tw, lp_);
      else
        resize_linear_kernel<T, int64_t><<<grid, kThreads, 0, rc.stream>>>(x, y, n_, th, tw, lp_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  bool owns_constant_input(size_t k) const override { return k >= 1; }  // roi, scales, sizes

 private:
  bool linear_;
  DType dtype_;
  int64_t n_;
  DeviceBuffer table_;
  NearestParams np_{};
  LinearParams lp_{};
  int64_t rows_ = 0;
};

// ================================================================================================ copy
// A view op the runtime did not alias (its input is a constant, or its output is a graph output): copy the
// bytes of input 0. Any dtype: nothing is interpreted.
class CopyKernel final : public CudaKernel {
 public:
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (in[0].data != out[0].data && out[0].nbytes() > 0)
      KILN_CUDA_CHECK(
          cudaMemcpyAsync(out[0].data, in[0].data, out[0].nbytes(), cudaMemcpyDeviceToDevice, rc.stream));
  }
  bool owns_constant_input(size_t k) const override { return k >= 1; }  // shapes, axes, Dropout's ratio/mode
};

bool copy_supported(const LayerDesc& d) {
  if (d.inputs.empty() || d.outputs.empty() || !d.inputs[0].present || !d.outputs[0].present) return false;
  const DType t = d.inputs[0].dtype;
  if (t == DType::Undefined || t == DType::String || d.outputs[0].dtype != t) return false;
  if (ops::numel(d.inputs[0].dims) != ops::numel(d.outputs[0].dims)) return false;
  for (size_t k = 1; k < d.outputs.size(); ++k)
    if (d.outputs[k].present) return false;  // Dropout's mask
  if (d.node->op == "Dropout" && d.inputs.size() > 2 && d.inputs[2].present) {
    // Only an explicitly false training_mode is a copy (training with a non-zero ratio is random).
    const TensorData* m = d.inputs[2].constant;
    if (!m || m->numel() != 1 || m->as_int64(0) != 0) return false;
  }
  return true;
}

// ======================================================================================== registration
KernelFactory factory(const std::string& name, const std::string& op,
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

KILN_REGISTER_KERNEL(strided_factory<transpose_plan>("cuda.transpose", "Transpose"));
KILN_REGISTER_KERNEL(strided_factory<depth_space_plan>("cuda.depth_to_space", "DepthToSpace"));
KILN_REGISTER_KERNEL(strided_factory<depth_space_plan>("cuda.depth_to_space", "SpaceToDepth"));
KILN_REGISTER_KERNEL(strided_factory<slice_plan>("cuda.slice", "Slice"));

KILN_REGISTER_KERNEL(factory(
    "cuda.concat", "Concat",
    [](const LayerDesc& d) {
      int64_t outer;
      std::vector<int64_t> chunks;
      return concat_plan(d, outer, chunks);
    },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      int64_t outer = 1;
      std::vector<int64_t> chunks;
      concat_plan(d, outer, chunks);
      return std::make_unique<ConcatKernel>(outer, std::move(chunks));
    }));

KILN_REGISTER_KERNEL(factory(
    "cuda.pad", "Pad", [](const LayerDesc& d) { return pad_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<PadKernel>(*pad_plan(d), d.outputs[0].dtype, ops::numel(d.outputs[0].dims));
    }));

std::unique_ptr<backend::Kernel> create_resize(const LayerDesc& d) {
  return std::make_unique<ResizeKernel>(*resize_setup(d), d.inputs[0].dims, d.outputs[0].dims,
                                        d.outputs[0].dtype);
}
KILN_REGISTER_KERNEL(factory(
    "cuda.resize", "Resize", [](const LayerDesc& d) { return resize_setup(d).has_value(); }, create_resize));
KILN_REGISTER_KERNEL(factory(
    "cuda.resize", "Upsample", [](const LayerDesc& d) { return resize_setup(d).has_value(); },
    create_resize));

std::unique_ptr<backend::Kernel> create_copy(const LayerDesc&) {
  return std::make_unique<CopyKernel>();
}
KILN_REGISTER_KERNEL(factory("cuda.copy", "Reshape", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Flatten", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Squeeze", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Unsqueeze", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Identity", copy_supported, create_copy));
KILN_REGISTER_KERNEL(factory("cuda.copy", "Dropout", copy_supported, create_copy));

}  // namespace
}  // namespace kiln::cuda
