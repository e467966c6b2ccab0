// kiln — CUDA kiln.Attention (cuda.attention), fp32 / fp16 / bf16: softmax(scale * Q @ Kt + mask) @ V in
// one flash-attention-style kernel, float math, each output rounded once; no S x Skv matrix in memory.
//
// A block takes kRows query rows of one (batch) slice: 4 warps, kRowsPerWarp rows each. It streams the keys
// in tiles of kKeys = 32 through shared memory (Kt's tile transposed to [key][d], V's tile [key][d]) and
// keeps per row a running max m, a running sum l of exp(score - m) and the unnormalized output, rescaled by
// exp(m_old - m_new) whenever the max grows (the online softmax). In a tile, lane j scores key j; the warp
// reduces max and sum by shuffles, then each lane accumulates output columns lane, lane + 32, ... Head dims
// up to 128 (the accumulators and shared tiles are sized for it); supports() refuses larger.
//
// Exactness at the edges, as the reference: a row whose scores are all -inf (fully masked) comes out NaN,
// as Softmax gives; Skv == 0 gives zeros (P @ V sums nothing). Keys past Skv (the last tile's tail) score
// -inf and their V rows are zero, so they add nothing; rows past S are computed by no warp and never stored.
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "device/kernel.h"
#include "ops/internal_ops.h"

namespace kiln::cuda {
namespace {

constexpr int kWarps = 4, kThreads = kWarps * 32;
constexpr int kRowsPerWarp = 4, kRows = kWarps * kRowsPerWarp;
constexpr int kKeys = 32;  // one key per lane
constexpr int kMaxHead = 128;
constexpr int kMaxBatchDims = 8;

// Where the mask element of (batch slice b, row i, key j) is: the batch dims' sizes and the mask's strides
// along them (0 where it broadcasts), then its row and key strides.
struct MaskIndex {
  int dims = 0;
  int64_t size[kMaxBatchDims] = {};
  int64_t stride[kMaxBatchDims] = {};
  int64_t row_stride = 0, key_stride = 0;
};

struct Geometry {
  int64_t batch = 0, s = 0, skv = 0;
  int dh = 0, dv = 0;
  float scale = 1.f;
  bool has_mask = false;
  MaskIndex mask;
};

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// HEAD: the padded head size (32, 64 or 128) covering both Dh and Dv.
template <class T, int HEAD>
__global__ void __launch_bounds__(kThreads)
    attention_kernel(const T* __restrict__ q, const T* __restrict__ kt, const T* __restrict__ v,
                     const T* __restrict__ mask, T* __restrict__ y, Geometry g) {
  constexpr int kCols = HEAD / 32;  // output columns per lane
  __shared__ float sq[kRows][HEAD];
  __shared__ float sk[kKeys][HEAD + 1];  // +1: lanes reading key j, dim d hit distinct banks
  __shared__ float sv[kKeys][HEAD];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row_tiles = (g.s + kRows - 1) / kRows;
  for (int64_t unit = blockIdx.x; unit < g.batch * row_tiles; unit += gridDim.x) {  // uniform over the block
    const int64_t b = unit / row_tiles, i0 = (unit % row_tiles) * kRows;
    const T* qb = q + b * g.s * g.dh;
    const T* kb = kt + b * g.dh * g.skv;
    const T* vb = v + b * g.skv * g.dv;
    int64_t mask_base = 0;
    if (g.has_mask)
      for (int64_t d = g.mask.dims - 1, rest = b; d >= 0; --d) {
        mask_base += rest % g.mask.size[d] * g.mask.stride[d];
        rest /= g.mask.size[d];
      }
    __syncthreads();  // the previous unit's last tile is consumed before sq is overwritten
    for (int idx = threadIdx.x; idx < kRows * HEAD; idx += kThreads) {
      const int r = idx / HEAD, d = idx % HEAD;
      const bool in = i0 + r < g.s && d < g.dh;
      sq[r][d] = in ? to_float(qb[(i0 + r) * g.dh + d]) * g.scale : 0.f;
    }
    float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kCols];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      m[r] = -INFINITY;
      l[r] = 0.f;
      for (int c = 0; c < kCols; ++c) acc[r][c] = 0.f;
    }
    for (int64_t kv0 = 0; kv0 < g.skv; kv0 += kKeys) {
      __syncthreads();  // every warp is done with the previous tile
      for (int idx = threadIdx.x; idx < HEAD * kKeys; idx += kThreads) {  // Kt rows: keys contiguous
        const int d = idx / kKeys, j = idx % kKeys;
        sk[j][d] = d < g.dh && kv0 + j < g.skv ? to_float(kb[d * g.skv + kv0 + j]) : 0.f;
      }
      for (int idx = threadIdx.x; idx < kKeys * HEAD; idx += kThreads) {
        const int j = idx / HEAD, d = idx % HEAD;
        sv[j][d] = d < g.dv && kv0 + j < g.skv ? to_float(vb[(kv0 + j) * g.dv + d]) : 0.f;
      }
      __syncthreads();
      const int64_t key = kv0 + lane;
      const int keys = static_cast<int>(g.skv - kv0 < kKeys ? g.skv - kv0 : kKeys);
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {  // unrolled: m, l and acc stay in registers
        const int row = warp * kRowsPerWarp + r;
        if (i0 + row >= g.s) continue;  // uniform over the warp
        float s = -INFINITY;
        if (key < g.skv) {
          float dot = 0.f;
          for (int d = 0; d < g.dh; ++d) dot = fmaf(sq[row][d], sk[lane][d], dot);
          s = dot;
          if (g.has_mask)
            s += to_float(mask[mask_base + (i0 + row) * g.mask.row_stride + key * g.mask.key_stride]);
        }
        const float m_new = fmaxf(m[r], warp_max(s));
        const float m_use = m_new == -INFINITY ? 0.f : m_new;  // all -inf so far: every p is 0, no NaN
        const float p = expf(s - m_use), correction = expf(m[r] - m_use);
        l[r] = l[r] * correction + warp_sum(p);
        m[r] = m_new;
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[r][c] *= correction;
        for (int j = 0; j < keys; ++j) {
          const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
          for (int c = 0; c < kCols; ++c) acc[r][c] = fmaf(pj, sv[j][lane + 32 * c], acc[r][c]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int64_t i = i0 + warp * kRowsPerWarp + r;
      if (i >= g.s) continue;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const int col = lane + 32 * c;
        // l == 0 only when every score was -inf: 0 / 0 = NaN, as the reference.
        if (col < g.dv) y[(b * g.s + i) * g.dv + col] = from_float<T>(g.skv ? acc[r][c] / l[r] : 0.f);
      }
    }
  }
}

template <class T>
void launch(const Geometry& g, const void* q, const void* kt, const void* v, const void* mask, void* y,
            cudaStream_t stream) {
  const int64_t units = g.batch * ((g.s + kRows - 1) / kRows);
  if (units <= 0 || g.dv <= 0) return;
  const unsigned blocks = blocks_for(units, 1);
  auto args = [&](auto kernel) {
    kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(q), static_cast<const T*>(kt),
                                            static_cast<const T*>(v), static_cast<const T*>(mask),
                                            static_cast<T*>(y), g);
  };
  const int head = g.dh > g.dv ? g.dh : g.dv;
  if (head <= 32)
    args(attention_kernel<T, 32>);
  else if (head <= 64)
    args(attention_kernel<T, 64>);
  else
    args(attention_kernel<T, 128>);
  KILN_CUDA_CHECK_LAUNCH();
}

// The layer's geometry, or nullopt when the kernel cannot run it.
std::optional<Geometry> geometry_of(const backend::LayerDesc& d) {
  if (d.inputs.size() < 3 || d.inputs.size() > 4 || d.outputs.size() != 1) return std::nullopt;
  const auto &q = d.inputs[0], &kt = d.inputs[1], &v = d.inputs[2], &y = d.outputs[0];
  for (const auto* o : {&q, &kt, &v, &y})
    if (!o->present || o->dtype != q.dtype) return std::nullopt;
  if (!is_cuda_float(q.dtype)) return std::nullopt;
  const size_t r = q.dims.size();
  if (r < 2 || kt.dims.size() != r || v.dims.size() != r || y.dims.size() != r) return std::nullopt;
  Geometry g;
  g.s = q.dims[r - 2];
  g.skv = kt.dims[r - 1];
  const int64_t dh = q.dims[r - 1], dv = v.dims[r - 1];
  if (dh > kMaxHead || dv > kMaxHead || kt.dims[r - 2] != dh || v.dims[r - 2] != g.skv) return std::nullopt;
  g.dh = static_cast<int>(dh);
  g.dv = static_cast<int>(dv);
  g.batch = 1;
  for (size_t k = 0; k + 2 < r; ++k) {
    if (kt.dims[k] != q.dims[k] || v.dims[k] != q.dims[k] || y.dims[k] != q.dims[k]) return std::nullopt;
    g.batch *= q.dims[k];
  }
  if (y.dims[r - 2] != g.s || y.dims[r - 1] != dv) return std::nullopt;
  g.scale = d.node->attrs.get_float(internal_ops::attention::kScale, 1.f);
  if (d.inputs.size() == 4 && d.inputs[3].present) {
    const auto& mk = d.inputs[3];
    if (mk.dtype != q.dtype || mk.dims.size() > r || r - 2 > size_t{kMaxBatchDims}) return std::nullopt;
    std::vector<int64_t> scores(q.dims);
    scores[r - 1] = g.skv;
    std::vector<int64_t> stride(r, 0);  // the mask's strides against the scores' dims (0: broadcast)
    int64_t run = 1;
    for (size_t k = mk.dims.size(); k-- > 0;) {
      const size_t sk = k + r - mk.dims.size();
      if (mk.dims[k] != 1 && mk.dims[k] != scores[sk]) return std::nullopt;
      stride[sk] = mk.dims[k] == 1 ? 0 : run;
      run *= mk.dims[k];
    }
    g.has_mask = true;
    g.mask.dims = static_cast<int>(r - 2);
    for (size_t k = 0; k + 2 < r; ++k) {
      g.mask.size[k] = scores[k];
      g.mask.stride[k] = stride[k];
    }
    g.mask.row_stride = stride[r - 2];
    g.mask.key_stride = stride[r - 1];
  }
  return g;
}

class AttentionKernel final : public CudaKernel {
 public:
  explicit AttentionKernel(const Geometry& g) : g_(g) {}
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    const void* mask = g_.has_mask ? in[3].data : nullptr;
    dispatch_float_type(in[0].dtype, [&](auto tag) {
      launch<decltype(tag)>(g_, in[0].data, in[1].data, in[2].data, mask, out[0].data, rc.stream);
    });
  }
  std::string describe() const override {
    return std::string("cuda cores, online softmax") + (g_.has_mask ? ", mask" : "");
  }

 private:
  Geometry g_;
};

KILN_REGISTER_KERNEL({.name = "cuda.attention",
                      .device = "cuda",
                      .op = internal_ops::attention::kOp,
                      .domain = internal_ops::kDomain,
                      .priority = 10,
                      .supports = [](const backend::LayerDesc& d) { return geometry_of(d).has_value(); },
                      .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
                        const auto g = geometry_of(d);
                        if (!g) throw Error("cuda.attention: layer not supported");
                        return std::make_unique<AttentionKernel>(*g);
                      }});

}  // namespace
}  // namespace kiln::cuda
