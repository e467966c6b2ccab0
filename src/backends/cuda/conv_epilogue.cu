#include "backends/cuda/conv_epilogue.h"
#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

__device__ __forceinline__ float apply_post(float v, const ops::ActivationParams& post) {
  return ops::apply<CudaFastMath>(post, v);
}

template <typename T>
__global__ void bias_activation_kernel(T* y, const float* bias, int64_t c, int64_t spatial, int64_t total,
                                       ops::ActivationParams post) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    float v = to_float(y[i]);
    if (bias) v += bias[(i / spatial) % c];
    y[i] = from_float<T>(apply_post(v, post));
  }
}

// 32x32 tiles through shared memory (padded against bank conflicts): reads and writes both coalesced.
// y[b][col][row] = x[b][row][col] for row < rows, col < cols; rows in [rows, rows_out) are written as zeros
// (channel padding for tensor cores). With the epilogue, col is the channel.
constexpr int kTile = 32, kRows = 8;

struct TransposeArgs {
  int64_t rows, rows_out, cols, x_ld, y_ld, x_batch, y_batch;
  const float* bias;
  ops::ActivationParams post;
  bool epilogue;
};

template <typename T>
__global__ void transpose_kernel(const T* x, T* y, TransposeArgs a) {
  __shared__ float tile[kTile][kTile + 1];
  const T* xb = x + blockIdx.z * a.x_batch;
  T* yb = y + blockIdx.z * a.y_batch;
  const int64_t r0 = int64_t(blockIdx.y) * kTile, c0 = int64_t(blockIdx.x) * kTile;
  for (int i = threadIdx.y; i < kTile; i += kRows) {
    const int64_t r = r0 + i, col = c0 + threadIdx.x;
    if (col < a.cols && r < a.rows_out)
      tile[i][threadIdx.x] = r < a.rows ? to_float(xb[r * a.x_ld + col]) : 0.f;
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += kRows) {
    const int64_t col = c0 + i, r = r0 + threadIdx.x;  // output row = input column
    if (r < a.rows_out && col < a.cols) {
      float v = tile[threadIdx.x][i];
      if (a.epilogue) v = apply_post(a.bias ? v + a.bias[col] : v, a.post);
      yb[col * a.y_ld + r] = from_float<T>(v);
    }
  }
}

template <typename T>
void transpose(const void* x, void* y, int64_t n, const TransposeArgs& a, cudaStream_t stream) {
  dim3 block(kTile, kRows),
      grid(static_cast<unsigned>((a.cols + kTile - 1) / kTile),
           static_cast<unsigned>((a.rows_out + kTile - 1) / kTile), static_cast<unsigned>(n));
  transpose_kernel<T><<<grid, block, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), a);
  KILN_CUDA_CHECK_LAUNCH();
}

template <typename T>
__global__ void im2col_kernel(const T* x, T* col, Im2colShape s, int64_t s0, int64_t cols, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / cols, j = i - row * cols, sp = s0 + j;
    const int64_t oh = sp / s.ow, ow = sp - oh * s.ow;
    const int64_t kw = row % s.kw, kh = (row / s.kw) % s.kh, c = row / (s.kw * s.kh);
    const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dil_h,
                  iw = ow * s.stride_w - s.pad_w + kw * s.dil_w;
    col[i] = (ih >= 0 && ih < s.h && iw >= 0 && iw < s.w) ? x[(c * s.h + ih) * s.w + iw] : from_float<T>(0.f);
  }
}

}  // namespace

void launch_im2col(DType dtype, const void* x_image, void* col, const Im2colShape& s, int64_t s0, int64_t s1,
                   cudaStream_t stream) {
  const int64_t cols = s1 - s0, total = s.c * s.kh * s.kw * cols;
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    im2col_kernel<T><<<std::min<unsigned>(blocks_for(total, 256), 132 * 32), 256, 0, stream>>>(
        static_cast<const T*>(x_image), static_cast<T*>(col), s, s0, cols, total);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

namespace {

struct PadShape {
  int64_t in[3], out[3], begin[3];  // spatial dims, padded at the front to 3 with in = out = 1, begin = 0
};

template <typename T>
__global__ void pad_spatial_kernel(const T* x, T* y, PadShape s, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t o = i, src = 0, plane_in = 1;
    bool inside = true;
    for (int d = 2; d >= 0; --d) {
      const int64_t at = o % s.out[d] - s.begin[d];
      o /= s.out[d];
      inside = inside && at >= 0 && at < s.in[d];
      src += at * plane_in;
      plane_in *= s.in[d];
    }
    y[i] = inside ? x[o * plane_in + src] : from_float<T>(0.f);  // o is the plane index now
  }
}

}  // namespace

void launch_pad_spatial(DType dtype, const void* x, void* y, int64_t planes, const std::vector<int64_t>& in,
                        const std::vector<int64_t>& out, const std::vector<int64_t>& begin, cudaStream_t stream) {
  if (in.empty() || in.size() > 3 || out.size() != in.size() || begin.size() != in.size())
    throw Error("pad_spatial: 1 to 3 spatial dims");
  PadShape s{};
  const size_t skip = 3 - in.size();
  int64_t total = planes;
  for (size_t d = 0; d < 3; ++d) {
    s.in[d] = d < skip ? 1 : in[d - skip];
    s.out[d] = d < skip ? 1 : out[d - skip];
    s.begin[d] = d < skip ? 0 : begin[d - skip];
    total *= s.out[d];
  }
  if (total == 0) return;
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    pad_spatial_kernel<T><<<std::min<unsigned>(blocks_for(total, 256), 132 * 16), 256, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), s, total);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void launch_bias_activation(DType dtype, void* y, const float* bias, int64_t n, int64_t c, int64_t spatial,
                            const ops::ActivationParams& post, cudaStream_t stream) {
  if (!bias && post.act == ops::Activation::None) return;
  const int64_t total = n * c * spatial;
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    bias_activation_kernel<T><<<std::min<unsigned>(blocks_for(total, 256), 132 * 16), 256, 0, stream>>>(
        static_cast<T*>(y), bias, c, spatial, total, post);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void launch_nchw_to_nhwc(DType dtype, const void* x, void* y, int64_t n, int64_t c, int64_t spatial,
                         int64_t c_pad, cudaStream_t stream) {
  const TransposeArgs a{c, c_pad, spatial, spatial, c_pad, c * spatial, c_pad * spatial, nullptr, {}, false};
  dispatch_float_type(dtype, [&](auto tag) { transpose<decltype(tag)>(x, y, n, a, stream); });
}

void launch_nhwc_to_nchw_bias_activation(DType dtype, const void* x, void* y, const float* bias, int64_t n,
                                         int64_t c, int64_t spatial, int64_t c_pad,
                                         const ops::ActivationParams& post, cudaStream_t stream) {
  const TransposeArgs a{spatial, spatial, c, c_pad, spatial, c_pad * spatial, c * spatial, bias, post, true};
  dispatch_float_type(dtype, [&](auto tag) { transpose<decltype(tag)>(x, y, n, a, stream); });
}

}  // namespace kiln::cuda
