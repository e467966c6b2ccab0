// kiln — cuda.conv3d_direct: Conv3d with one input channel (PackNet's packing / unpacking convolution):
// X [N, 1, D, H, W], W [M, 1, kd, kh, kw] constant, optional constant bias [M], group 1, stride 1, dilation
// 1, any explicit pads. Y [N, M, Do, Ho, Wo] in X's dtype; float accumulation.
//
// The layer is store-bound: pack1 writes [1, 8, 256, 96, 320] (126 MB fp16) from a 16 MB input; its 27
// multiply-adds per output (3.4 GFMA) take ~100 us as fp32 FFMA on an H200, three times the store time.
// 3x3x3 kernels, fp16 / bf16 (the fast path): tensor cores, mma.sync m16n8k16 with f32 accumulation — see
// conv3d_333_mma below; 16-byte stores along W.
// 3x3x3 kernels, fp32: a block of 32x8 threads owns an output tile of 4 (d) x 8 (h) x 64 (w) for
// 8 output channels; it stages the zero-padded input tile 6 x 10 x 66 in shared memory as float, and each
// thread computes 2 adjacent w x 4 d x 8 channels (64 accumulators) from 6 planes x 3 rows x 4 values, so
// every shared-memory load feeds up to 48 FMAs. Stores are coalesced along W, 2 elements per thread.
// Both: the weights are a by-value kernel parameter (constant bank: thread-safe across contexts, nothing to
// upload at enqueue); more than 8 output channels: one launch per 8.
// Other kernel sizes: a plain one-thread-per-output kernel with the weights in device memory.
#include <algorithm>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "device/kernel.h"

namespace kiln::cuda {
namespace {

constexpr int kTW = 64, kTH = 8, kTD = 4;  // output tile (w, h, d)
constexpr int kSW = kTW + 2, kSH = kTH + 2, kSD = kTD + 2;
constexpr int kMB = 8;  // output channels per launch

struct Weights333 {
  float w[kMB][27];
  float b[kMB];
};

struct Geometry {
  int64_t n, d, h, w;     // input
  int64_t m, od, oh, ow;  // output
  int64_t pd, ph, pw;     // begin pads
  int64_t kd, kh, kw;
};

template <typename T>
struct Pair;
template <>
struct Pair<float> {
  using type = float2;
  static __device__ __forceinline__ type make(float a, float b) { return make_float2(a, b); }
};

// grid: x = w tiles, y = h tiles, z = n · d tiles. `mc` channels of this launch are valid (from m0).
template <typename T, bool kPairStores>
__global__ void __launch_bounds__(256, 2)
    conv3d_333(const T* __restrict__ x, T* __restrict__ y, Weights333 wt, Geometry g, int64_t m0, int mc) {
  __shared__ __align__(16) float tile[kSD][kSH][kSW];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 32 + tx;
  const int64_t dtiles = (g.od + kTD - 1) / kTD;
  const int64_t n = blockIdx.z / dtiles;
  const int64_t d0 = (blockIdx.z % dtiles) * kTD, h0 = static_cast<int64_t>(blockIdx.y) * kTH,
                w0 = static_cast<int64_t>(blockIdx.x) * kTW;

  // Stage the input tile (zero outside the volume: the padding).
  const T* xn = x + n * g.d * g.h * g.w;
  const int64_t id0 = d0 - g.pd, ih0 = h0 - g.ph, iw0 = w0 - g.pw;
  for (int e = tid; e < kSD * kSH * kSW; e += 256) {
    const int dz = e / (kSH * kSW), r = e % (kSH * kSW), hy = r / kSW, wx = r % kSW;
    const int64_t id = id0 + dz, ih = ih0 + hy, iw = iw0 + wx;
    float v = 0.f;
    if (id >= 0 && id < g.d && ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
      v = to_float(xn[(id * g.h + ih) * g.w + iw]);
    tile[dz][hy][wx] = v;
  }
  __syncthreads();

  const int64_t oh = h0 + ty, ow = w0 + 2 * tx;
  if (oh >= g.oh || ow >= g.ow) return;

  float acc[kTD][kMB][2];
#pragma unroll
  for (int od = 0; od < kTD; ++od)
#pragma unroll
    for (int m = 0; m < kMB; ++m) acc[od][m][0] = acc[od][m][1] = wt.b[m];

#pragma unroll
  for (int dz = 0; dz < kSD; ++dz) {
    float v[3][4];
#pragma unroll
    for (int r = 0; r < 3; ++r) {
      const float2 a = *reinterpret_cast<const float2*>(&tile[dz][ty + r][2 * tx]);
      const float2 b = *reinterpret_cast<const float2*>(&tile[dz][ty + r][2 * tx + 2]);
      v[r][0] = a.x;
      v[r][1] = a.y;
      v[r][2] = b.x;
      v[r][3] = b.y;
    }
    // Input plane dz feeds output depth od with kernel depth kz = dz - od.
#pragma unroll
    for (int kz = 0; kz < 3; ++kz) {
      const int od = dz - kz;
      if (od < 0 || od >= kTD) continue;
#pragma unroll
      for (int m = 0; m < kMB; ++m)
#pragma unroll
        for (int r = 0; r < 3; ++r)
#pragma unroll
          for (int c = 0; c < 3; ++c) {
            const float wv = wt.w[m][(kz * 3 + r) * 3 + c];
            acc[od][m][0] = fmaf(wv, v[r][c], acc[od][m][0]);
            acc[od][m][1] = fmaf(wv, v[r][c + 1], acc[od][m][1]);
          }
    }
  }

  const int64_t plane = g.oh * g.ow;
  const bool second = ow + 1 < g.ow;
#pragma unroll
  for (int m = 0; m < kMB; ++m) {
    if (m >= mc) break;
#pragma unroll
    for (int od = 0; od < kTD; ++od) {
      const int64_t d = d0 + od;
      if (d >= g.od) break;
      T* p = y + ((n * g.m + m0 + m) * g.od + d) * plane + oh * g.ow + ow;
      if constexpr (kPairStores) {
        *reinterpret_cast<typename Pair<T>::type*>(p) = Pair<T>::make(acc[od][m][0], acc[od][m][1]);
      } else {
        p[0] = from_float<T>(acc[od][m][0]);
        if (second) p[1] = from_float<T>(acc[od][m][1]);
      }
    }
  }
}

// ---- 3x3x3, fp16 / bf16: tensor cores (mma.sync m16n8k16, f32 accumulate).
// For one output row segment of 16 w at (d, h), the contribution of input plane d + kz - 1 is a GEMM
// [16 w] x [16 k] x [8 channels] with k = 4 q + j: the 4 input rows h-1 .. h+2 (q) times 4 columns w-1 .. w+2
// (j); the weights of row q = 3 and column j = 3 are zero, so the 9 taps of a kernel plane kz fill one k16
// step, and three mma (kz = 0, 1, 2) give a plane of outputs. The input tile lives in shared memory as 32-bit
// words word[p] = (x[p], x[p+1]), so each A-fragment register (two consecutive k = two consecutive columns)
// is a single aligned LDS.32 whatever the parity of w; a fragment of input plane dz serves the outputs dz -
// kz of the warp's 8-deep column (3 mma per 4 LDS). A block owns 8 (d) x 8 (h) x 16·MT (w) outputs and 8
// channels; a warp runs strips of 16 w x 1 h x 8 d (32 accumulators), stages them through its shared-memory
// slice to turn the C fragments (one w, two channels per register pair) into rows of 8 w, and writes 16-byte
// vectors along W. The zero-weight slots read finite tile values (zero padding or real neighbours); an Inf /
// NaN input voxel can therefore reach the outputs one column or one row beyond its receptive field (0 x Inf),
// nothing else.
constexpr int kQD = 8, kQH = 8;  // block tile depth, height
constexpr int kQPlanes = kQD + 2,
              kQRows = kQH + 3;  // staged input planes, rows (row q = 3 of the last strip)
constexpr int kQHalf = kQD / 2;  // output depths staged per round
constexpr int kQCS =
    kQHalf * 16 + 8;  // staging channel stride (elements): 16-byte rows, conflict-free writes
constexpr int kQThreads = 256;

// Row stride of the staged tile in words: >= 16·MT + 2 words and = 16 (mod 32), so the two input rows one
// lane group reads (q and q + 1) land in disjoint banks.
template <int MT>
constexpr int q_row_stride() {
  return ((16 * MT + 2 - 16 + 31) / 32) * 32 + 16;
}

template <typename T>
struct Mma;
template <>
struct Mma<__half> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};
template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

template <typename T>
__device__ __forceinline__ unsigned short to_bits(float v) {
  const T h = from_float<T>(v);
  return *reinterpret_cast<const unsigned short*>(&h);
}

// Writes the first min(8, rem) elements of v (8 x 16 bit) to dst, where a 16-byte store does not apply (the
// row's tail, or OW not a multiple of 8); vec (4, 2 or 1) divides OW and dst's alignment allows vec-element
// stores. Kept out of line so the compiler leaves the full rows' 128-bit store alone.
__device__ __noinline__ void store_row8_tail(unsigned short* dst, const uint4 v, int64_t rem, int vec) {
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
  if (vec >= 4) {
#pragma unroll
    for (int e = 0; e < 2; ++e)
      if (4 * e < rem) *reinterpret_cast<uint2*>(dst + 4 * e) = make_uint2(u[2 * e], u[2 * e + 1]);
  } else if (vec == 2) {
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (2 * e < rem) *reinterpret_cast<uint32_t*>(dst + 2 * e) = u[e];
  } else {
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (e < rem) dst[e] = static_cast<unsigned short>(u[e >> 1] >> (16 * (e & 1)));
  }
}

// grid: x = w tiles (16·MT), y = h tiles (8), z = n · d tiles (8). `mc` channels of this launch are valid.
template <typename T, int MT>
__global__ void __launch_bounds__(kQThreads, 4)
    conv3d_333_mma(const T* __restrict__ x, T* __restrict__ y, Weights333 wt, Geometry g, int64_t m0, int mc,
                   int vec) {
  constexpr int TW = 16 * MT, RS = q_row_stride<MT>(), NWORDS = TW + 2, NWARPS = kQThreads / 32;
  __shared__ uint32_t tile[kQPlanes * kQRows * RS];
  __shared__ __align__(16) unsigned short stage[NWARPS][8 * kQCS];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t dtiles = (g.od + kQD - 1) / kQD;
  const int64_t n = blockIdx.z / dtiles;
  const int64_t d0 = (blockIdx.z % dtiles) * kQD, h0 = static_cast<int64_t>(blockIdx.y) * kQH,
                w0 = static_cast<int64_t>(blockIdx.x) * TW;

  // Stage the input tile as pair words (zero outside the volume: the padding). One warp per row.
  const unsigned short* xn = reinterpret_cast<const unsigned short*>(x) + n * g.d * g.h * g.w;
  const int64_t id0 = d0 - g.pd, ih0 = h0 - g.ph, iw0 = w0 - g.pw;
  for (int r = warp; r < kQPlanes * kQRows; r += NWARPS) {
    const int dz = r / kQRows, hy = r % kQRows;
    const int64_t id = id0 + dz, ih = ih0 + hy;
    uint32_t* trow = tile + r * RS;
    if (id >= 0 && id < g.d && ih >= 0 && ih < g.h) {
      const unsigned short* xr = xn + (id * g.h + ih) * g.w;
      for (int p = lane; p < NWORDS; p += 32) {
        const int64_t iw = iw0 + p;
        const uint32_t lo = iw >= 0 && iw < g.w ? xr[iw] : 0u;
        const uint32_t hi = iw + 1 >= 0 && iw + 1 < g.w ? xr[iw + 1] : 0u;
        trow[p] = lo | (hi << 16);
      }
    } else {
      for (int p = lane; p < NWORDS; p += 32) trow[p] = 0u;
    }
  }

  // B fragments (weights, k x channel): lane holds channel lane/4, k = 2(lane%4) + {0,1} (+8 for the second).
  const int gq = lane >> 2, t = lane & 3;
  uint32_t bfr[3][2];
#pragma unroll
  for (int kz = 0; kz < 3; ++kz)
#pragma unroll
    for (int s = 0; s < 2; ++s) {
      const int q = 2 * s + (t >> 1), j = 2 * (t & 1);
      const float lo = q < 3 ? wt.w[gq][kz * 9 + q * 3 + j] : 0.f;
      const float hi = q < 3 && j + 1 < 3 ? wt.w[gq][kz * 9 + q * 3 + j + 1] : 0.f;
      bfr[kz][s] = Mma<T>::pack(lo, hi);
    }
  const float bias0 = wt.b[2 * t], bias1 = wt.b[2 * t + 1];
  __syncthreads();

  unsigned short* st = stage[warp];
  unsigned short* yb = reinterpret_cast<unsigned short*>(y);
  const int64_t plane = g.oh * g.ow;
  for (int s = warp; s < MT * kQH; s += NWARPS) {
    const int mt = s % MT, hr = s / MT;
    const int64_t oh = h0 + hr, wb = w0 + 16 * mt;
    if (oh >= g.oh || wb >= g.ow) continue;  // warp-uniform

    float acc[kQD][4];
#pragma unroll
    for (int od = 0; od < kQD; ++od) {
      acc[od][0] = acc[od][2] = bias0;
      acc[od][1] = acc[od][3] = bias1;
    }
    // A fragment: rows w = gq, gq + 8; k = 2t, 2t + 1 -> q = t/2, j = 2(t%2); k + 8 -> q + 2.
    const uint32_t* base = tile + (hr + (t >> 1)) * RS + 16 * mt + 2 * (t & 1) + gq;
#pragma unroll
    for (int dz = 0; dz < kQPlanes; ++dz) {
      const uint32_t* p = base + dz * kQRows * RS;
      const uint32_t a[4] = {p[0], p[8], p[2 * RS], p[2 * RS + 8]};
#pragma unroll
      for (int kz = 0; kz < 3; ++kz) {
        const int od = dz - kz;
        if (od >= 0 && od < kQD) Mma<T>::run(acc[od], a, bfr[kz][0], bfr[kz][1]);
      }
    }

    // C fragment: c0, c1 = w gq, channels 2t, 2t + 1; c2, c3 = w gq + 8. Two rounds of 4 depths.
#pragma unroll
    for (int round = 0; round < 2; ++round) {
#pragma unroll
      for (int o = 0; o < kQHalf; ++o) {
        const float* c = acc[round * kQHalf + o];
        unsigned short* sp = st + 2 * t * kQCS + o * 16 + gq;
        sp[0] = to_bits<T>(c[0]);
        sp[kQCS] = to_bits<T>(c[1]);
        sp[8] = to_bits<T>(c[2]);
        sp[kQCS + 8] = to_bits<T>(c[3]);
      }
      __syncwarp();
#pragma unroll
      for (int i = lane; i < 8 * kQHalf * 2; i += 32) {  // (channel, depth, half row of 8 w)
        const int ch = i / (2 * kQHalf), o = (i >> 1) % kQHalf, hf = i & 1;
        const int64_t d = d0 + round * kQHalf + o, w = wb + 8 * hf;
        if (ch < mc && d < g.od && w < g.ow) {
          const uint4 v = *reinterpret_cast<const uint4*>(st + ch * kQCS + o * 16 + hf * 8);
          unsigned short* dst = yb + ((n * g.m + m0 + ch) * g.od + d) * plane + oh * g.ow + w;
          if (vec == 8 && w + 8 <= g.ow)
            *reinterpret_cast<uint4*>(dst) = v;
          else
            store_row8_tail(dst, v, g.ow - w, vec);
        }
      }
      __syncwarp();
    }
  }
}

// Any kernel size: one thread per output element; w [M][kd·kh·kw], bias [M] (float, device).
template <typename T>
__global__ void conv3d_generic(const T* __restrict__ x, T* __restrict__ y, const float* __restrict__ w,
                               const float* __restrict__ bias, Geometry g) {
  const int64_t total = g.n * g.m * g.od * g.oh * g.ow;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = i;
    const int64_t ow = r % g.ow;
    r /= g.ow;
    const int64_t oh = r % g.oh;
    r /= g.oh;
    const int64_t od = r % g.od;
    r /= g.od;
    const int64_t m = r % g.m, n = r / g.m;
    const T* xn = x + n * g.d * g.h * g.w;
    const float* wm = w + m * g.kd * g.kh * g.kw;
    float acc = bias ? bias[m] : 0.f;
    for (int64_t a = 0; a < g.kd; ++a) {
      const int64_t id = od - g.pd + a;
      if (id < 0 || id >= g.d) continue;
      for (int64_t b = 0; b < g.kh; ++b) {
        const int64_t ih = oh - g.ph + b;
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t c = 0; c < g.kw; ++c) {
          const int64_t iw = ow - g.pw + c;
          if (iw < 0 || iw >= g.w) continue;
          acc = fmaf(wm[(a * g.kh + b) * g.kw + c], to_float(xn[(id * g.h + ih) * g.w + iw]), acc);
        }
      }
    }
    y[i] = from_float<T>(acc);
  }
}

// ---- layer description
struct Conv3dSetup {
  bool ok = false;
  Geometry g{};
};

Conv3dSetup read_setup(const backend::LayerDesc& d) {
  Conv3dSetup s;
  if (d.inputs.size() < 2 || d.inputs.size() > 3 || d.outputs.size() != 1) return s;
  const auto& xi = d.inputs[0];
  const auto& wi = d.inputs[1];
  const auto& yo = d.outputs[0];
  if (!xi.present || !wi.present || !wi.constant || !yo.present) return s;
  if (!is_cuda_float(xi.dtype) || yo.dtype != xi.dtype || !is_cuda_float(wi.constant->dtype())) return s;
  if (xi.dims.size() != 5 || xi.dims[1] != 1 || wi.dims.size() != 5 || wi.dims[1] != 1) return s;
  const bool has_bias = d.inputs.size() == 3 && d.inputs[2].present;
  if (has_bias) {
    const auto& bi = d.inputs[2];
    if (!bi.constant || !is_cuda_float(bi.constant->dtype()) || bi.dims != std::vector<int64_t>{wi.dims[0]})
      return s;
  }
  const Attributes& a = d.node->attrs;
  for (const auto& [name, attr] : a.items())
    if (name.rfind("kiln_post", 0) == 0) return s;  // fused activations are not this kernel's
  if (a.get_int("group", 1) != 1) return s;
  const std::string auto_pad = a.get_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return s;
  const auto strides = a.get_ints("strides", std::vector<int64_t>(3, 1));
  const auto dil = a.get_ints("dilations", std::vector<int64_t>(3, 1));
  auto pads = a.get_ints("pads", std::vector<int64_t>(6, 0));
  if (auto_pad == "VALID") pads.assign(6, 0);
  if (strides.size() != 3 || dil.size() != 3 || pads.size() != 6) return s;
  if (a.has("kernel_shape") &&
      a.get_ints("kernel_shape") != std::vector<int64_t>{wi.dims[2], wi.dims[3], wi.dims[4]})
    return s;
  for (int k = 0; k < 3; ++k)
    if (strides[k] != 1 || dil[k] != 1) return s;
  for (int64_t p : pads)
    if (p < 0) return s;
  Geometry g{};
  g.n = xi.dims[0];
  g.d = xi.dims[2];
  g.h = xi.dims[3];
  g.w = xi.dims[4];
  g.m = wi.dims[0];
  g.kd = wi.dims[2];
  g.kh = wi.dims[3];
  g.kw = wi.dims[4];
  g.pd = pads[0];
  g.ph = pads[1];
  g.pw = pads[2];
  g.od = g.d + pads[0] + pads[3] - g.kd + 1;
  g.oh = g.h + pads[1] + pads[4] - g.kh + 1;
  g.ow = g.w + pads[2] + pads[5] - g.kw + 1;
  if (g.n < 1 || g.m < 1 || g.d < 1 || g.h < 1 || g.w < 1 || g.kd < 1 || g.kh < 1 || g.kw < 1) return s;
  if (g.od < 1 || g.oh < 1 || g.ow < 1) return s;
  if (yo.dims != std::vector<int64_t>{g.n, g.m, g.od, g.oh, g.ow}) return s;
  if (g.kd * g.kh * g.kw > 1024) return s;
  s.ok = true;
  s.g = g;
  return s;
}

class Conv3dDirect final : public CudaKernel {
 public:
  explicit Conv3dDirect(const backend::LayerDesc& d) {
    const Conv3dSetup s = read_setup(d);
    if (!s.ok) throw Error("node " + d.node->label() + ": cuda.conv3d_direct does not support this layer");
    g_ = s.g;
    const int64_t taps = g_.kd * g_.kh * g_.kw;
    const TensorData w = convert_float(*d.inputs[1].constant, DType::Float);
    std::vector<float> wf(w.data<float>(), w.data<float>() + g_.m * taps);
    std::vector<float> bf(static_cast<size_t>(g_.m), 0.f);
    has_bias_ = d.inputs.size() == 3 && d.inputs[2].present;
    if (has_bias_) {
      const TensorData b = convert_float(*d.inputs[2].constant, DType::Float);
      std::copy_n(b.data<float>(), g_.m, bf.begin());
    }
    fast_ = g_.kd == 3 && g_.kh == 3 && g_.kw == 3;
    if (fast_) {
      for (int64_t m0 = 0; m0 < g_.m; m0 += kMB) {
        Weights333 p{};
        for (int64_t m = m0; m < std::min(g_.m, m0 + kMB); ++m) {
          for (int k = 0; k < 27; ++k) p.w[m - m0][k] = wf[static_cast<size_t>(m * 27 + k)];
          p.b[m - m0] = bf[static_cast<size_t>(m)];
        }
        blocks_.push_back(p);
      }
    } else {
      w_ = DeviceBuffer(wf.data(), wf.size() * sizeof(float));
      b_ = DeviceBuffer(bf.data(), bf.size() * sizeof(float));
    }
  }

  // fp16 / bf16 3x3x3: the tensor-core kernel; the block width (16, 32 or 64 w) that pads OW least, the
  // widest on ties.
  template <typename T>
  void launch_mma(const T* x, T* y, cudaStream_t stream) const {
    int mt = 4;
    int64_t best = (g_.ow + 63) / 64 * 64;
    for (int c : {2, 1}) {
      const int64_t padded = (g_.ow + 16 * c - 1) / (16 * c) * (16 * c);
      if (padded < best) best = padded, mt = c;
    }
    const int64_t dtiles = (g_.od + kQD - 1) / kQD;
    const int64_t z = g_.n * dtiles;
    if (z > 65535) throw Error("cuda.conv3d_direct: N x depth tiles exceeds the grid");
    int vec = 8;
    while (vec > 1 && (g_.ow % vec != 0 || reinterpret_cast<uintptr_t>(y) % (vec * sizeof(T)) != 0)) vec /= 2;
    const dim3 grid(static_cast<unsigned>((g_.ow + 16 * mt - 1) / (16 * mt)),
                    static_cast<unsigned>((g_.oh + kQH - 1) / kQH), static_cast<unsigned>(z));
    for (size_t k = 0; k < blocks_.size(); ++k) {
      const int64_t m0 = static_cast<int64_t>(k) * kMB;
      const int mc = static_cast<int>(std::min<int64_t>(kMB, g_.m - m0));
      if (mt == 4)
        conv3d_333_mma<T, 4><<<grid, kQThreads, 0, stream>>>(x, y, blocks_[k], g_, m0, mc, vec);
      else if (mt == 2)
        conv3d_333_mma<T, 2><<<grid, kQThreads, 0, stream>>>(x, y, blocks_[k], g_, m0, mc, vec);
      else
        conv3d_333_mma<T, 1><<<grid, kQThreads, 0, stream>>>(x, y, blocks_[k], g_, m0, mc, vec);
      KILN_CUDA_CHECK_LAUNCH();
    }
  }

  // fp32 3x3x3: the FFMA kernel.
  void launch_ffma(const float* x, float* y, cudaStream_t stream) const {
    const int64_t dtiles = (g_.od + kTD - 1) / kTD;
    const int64_t z = g_.n * dtiles;
    if (z > 65535) throw Error("cuda.conv3d_direct: N x depth tiles exceeds the grid");
    const dim3 grid(static_cast<unsigned>((g_.ow + kTW - 1) / kTW),
                    static_cast<unsigned>((g_.oh + kTH - 1) / kTH), static_cast<unsigned>(z));
    const bool pairs = g_.ow % 2 == 0 && reinterpret_cast<uintptr_t>(y) % (2 * sizeof(float)) == 0;
    for (size_t k = 0; k < blocks_.size(); ++k) {
      const int64_t m0 = static_cast<int64_t>(k) * kMB;
      const int mc = static_cast<int>(std::min<int64_t>(kMB, g_.m - m0));
      if (pairs)
        conv3d_333<float, true><<<grid, dim3(32, 8), 0, stream>>>(x, y, blocks_[k], g_, m0, mc);
      else
        conv3d_333<float, false><<<grid, dim3(32, 8), 0, stream>>>(x, y, blocks_[k], g_, m0, mc);
      KILN_CUDA_CHECK_LAUNCH();
    }
  }

  bool owns_constant_input(size_t index) const override { return index == 1 || index == 2; }

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    dispatch_float_type(in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* x = static_cast<const T*>(in[0].data);
      T* y = static_cast<T*>(out[0].data);
      if (fast_) {
        if constexpr (std::is_same_v<T, float>)
          launch_ffma(x, y, rc.stream);
        else
          launch_mma(x, y, rc.stream);
      } else {
        const int64_t total = g_.n * g_.m * g_.od * g_.oh * g_.ow;
        conv3d_generic<T><<<std::min(blocks_for(total, 256), 1u << 20), 256, 0, rc.stream>>>(
            x, y, w_.as<float>(), b_.as<float>(), g_);
        KILN_CUDA_CHECK_LAUNCH();
      }
    });
  }

 private:
  Geometry g_{};
  bool fast_ = false, has_bias_ = false;
  std::vector<Weights333> blocks_;
  DeviceBuffer w_, b_;
};

backend::KernelFactory conv3d_factory() {
  return {.name = "cuda.conv3d_direct",
          .device = "cuda",
          .op = "Conv",
          .domain = "",
          .priority = 20,
          .supports = [](const backend::LayerDesc& d) { return read_setup(d).ok; },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<Conv3dDirect>(d);
          }};
}

KILN_REGISTER_KERNEL(conv3d_factory());

}  // namespace
}  // namespace kiln::cuda
