// The strided-copy engine of the CUDA movement kernels (Transpose, DepthToSpace/SpaceToDepth, Slice):
// its plan, made on the host (movement_strided_plan_cuda.cu), and the launch that carries it out
// (movement_strided_cuda.cu).
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
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "backends/cuda/movement_cuda.cuh"

namespace kiln::cuda::movement {

// The tile transpose's tile (kTile x kTile elements) and its block of kTile x kTileRows threads.
constexpr int kTile = 32, kTileRows = 8;

struct GatherParams {
  int rank;
  int64_t base;
  int64_t dims[kMaxRank], strides[kMaxRank];
};

// Unsigned division by a divisor fixed at plan time, for dividends below 2^31: with l = ceil(log2 d) and
// m = floor(2^32 (2^l - d) / d) + 1, n / d = (mulhi(n, m) + n) >> l (Granlund & Montgomery, "Division by
// invariant integers using multiplication", fig. 4.1; the sum cannot overflow 32 bits since n < 2^31).
struct FastDiv {
  uint32_t d, mul, shift;
};

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

// Output axis a (innermost, length na, input stride sa) against the input's innermost axis b (length nb,
// output stride ob); every other axis is a batch axis. One 32x32 tile per block iteration: read rows of b,
// write rows of a, both coalesced.
struct TileParams {
  int64_t na, nb, sa, ob, base;
  int64_t tiles_a, tiles_b, tiles;
  int nbatch;
  int64_t bdims[kMaxRank], bsrc[kMaxRank], bdst[kMaxRank];
};

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

// Plans out[i] = in[base + Σ idx_k · strides_k] for output dims `dims` and `elem`-byte elements; nullopt if
// the simplified rank exceeds kMaxRank.
std::optional<StridedPlan> plan_strided(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                                        int64_t base, size_t elem);

// Enqueues the copy the plan describes from src to dst on `stream`.
void enqueue_strided(const StridedPlan& p, size_t elem, const void* src, void* dst, cudaStream_t stream);

}  // namespace kiln::cuda::movement
