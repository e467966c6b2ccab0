// kiln — CUDA Softmax / LogSoftmax / Hardmax (cuda.softmax), fp32 / fp16 / bf16, float math, rounded once.
//
// The input is viewed as [outer, n, inner]: before opset 13 every dim from `axis` on is one row (inner = 1),
// from 13 on the op works along `axis` alone. Contiguous rows (inner == 1) get a warp each when short and a
// block each when long; otherwise each thread column owns one (outer, inner) position and BY threads split
// its n elements. The first pass keeps a running (max, sum of exp(x - max)) (Hardmax: the first maximum and
// its index), so a row is read twice in all: once for the statistics, once to write.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/reduce_cuda.cuh"
#include "device/kernel.h"

namespace kiln::cuda {
namespace {

using namespace rowred;

enum class Mode : int { Softmax, LogSoftmax, Hardmax };

struct Shape3 {
  int64_t outer = 1, n = 1, inner = 1;
};

template <Mode M>
struct RowState {
  using type = MaxExpSum;
};
template <>
struct RowState<Mode::Hardmax> {
  using type = ArgBest;
};

// The statistics of the n elements base[k * stride] this thread visits (k = first, first + step, ...),
// before they are combined over the threads that share the row.
template <Mode M, class T>
__device__ __forceinline__ typename RowState<M>::type partial_stats(const T* base, int64_t n, int64_t stride,
                                                                    int64_t first, int step) {
  if constexpr (M == Mode::Hardmax) {
    const ArgBestOp op{true, false};
    ArgBest s = op.init();
    for (int64_t k = first; k < n; k += step) op.add(s, to_float(base[k * stride]), k);
    return s;
  } else {
    MaxExpSum s = max_exp_sum_init();
    for (int64_t k = first; k < n; k += step) max_exp_sum_add(s, to_float(base[k * stride]));
    return s;
  }
}

template <Mode M>
__device__ __forceinline__ auto stats_op() {
  if constexpr (M == Mode::Hardmax)
    return ArgBestOp{true, false};
  else
    return MaxExpSumOp{};
}

template <Mode M, class T>
__device__ __forceinline__ void write_row(const T* base, T* out, int64_t n, int64_t stride, int64_t first,
                                          int step, const typename RowState<M>::type& s) {
  for (int64_t k = first; k < n; k += step) {
    float v;
    if constexpr (M == Mode::Hardmax) {
      v = k == s.i ? 1.f : 0.f;
    } else {
      const float d = to_float(base[k * stride]) - s.m;
      v = M == Mode::LogSoftmax ? d - logf(s.s) : expf(d) / s.s;
    }
    out[k * stride] = from_float<T>(v);
  }
}

// inner == 1: a group of LANES threads per row.
template <Mode M, class T, int LANES>
__global__ void __launch_bounds__(kBlock)
    softmax_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t n) {
  constexpr int kGroups = kBlock / LANES;
  const int group = threadIdx.x / LANES, lane = threadIdx.x % LANES;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * kGroups; r0 < rows;
       r0 += static_cast<int64_t>(gridDim.x) * kGroups) {  // uniform over the block
    const int64_t r = r0 + group;
    const bool live = r < rows;
    const T* base = x + (live ? r : 0) * n;
    auto s = partial_stats<M>(base, live ? n : 0, 1, lane, LANES);
    s = group_reduce<LANES>(s, stats_op<M>());
    if (live) write_row<M>(base, y + r * n, n, 1, lane, LANES, s);
  }
}

// inner > 1: BX adjacent (outer, inner) columns per block, BY threads along each column's n elements.
template <Mode M, class T, int BY>
__global__ void __launch_bounds__(kBlock)
    softmax_columns_kernel(const T* __restrict__ x, T* __restrict__ y, Shape3 s3) {
  constexpr int BX = kBlock / BY;
  const int64_t columns = s3.outer * s3.inner;
  for (int64_t t = blockIdx.x; t * BX < columns; t += gridDim.x) {  // uniform over the block
    const int64_t c = t * BX + threadIdx.x;
    const bool live = c < columns;
    const int64_t offset = live ? (c / s3.inner) * s3.n * s3.inner + c % s3.inner : 0;
    auto s = partial_stats<M>(x + offset, live ? s3.n : 0, s3.inner, threadIdx.y, BY);
    s = column_reduce<BY>(s, stats_op<M>());
    if (live) write_row<M>(x + offset, y + offset, s3.n, s3.inner, threadIdx.y, BY, s);
  }
}

constexpr int64_t kBlockRow = 1024;   // rows this long get a block each, shorter ones a warp
constexpr int64_t kSplitColumn = 32;  // columns this long are split over 8 threads

template <Mode M, class T>
void launch(const Shape3& s3, const void* xv, void* yv, cudaStream_t stream) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  const int64_t rows = s3.outer * s3.inner;
  if (rows <= 0 || s3.n <= 0) return;
  if (s3.inner == 1 && s3.n >= kBlockRow) {
    softmax_rows_kernel<M, T, kBlock><<<grid_for_units(rows), kBlock, 0, stream>>>(x, y, rows, s3.n);
  } else if (s3.inner == 1) {
    constexpr int kGroups = kBlock / 32;
    softmax_rows_kernel<M, T, 32>
        <<<grid_for_units((rows + kGroups - 1) / kGroups), kBlock, 0, stream>>>(x, y, rows, s3.n);
  } else if (s3.n >= kSplitColumn) {
    constexpr int BY = 8, BX = kBlock / BY;
    softmax_columns_kernel<M, T, BY>
        <<<grid_for_units((rows + BX - 1) / BX), dim3(BX, BY), 0, stream>>>(x, y, s3);
  } else {
    softmax_columns_kernel<M, T, 1>
        <<<grid_for_units((rows + kBlock - 1) / kBlock), dim3(kBlock, 1), 0, stream>>>(x, y, s3);
  }
  KILN_CUDA_CHECK_LAUNCH();
}

// [outer, n, inner] of a float layer with a valid axis; nullopt otherwise.
std::optional<Shape3> shape_of(const backend::LayerDesc& d) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1) return std::nullopt;
  const auto& x = d.inputs[0];
  const auto& y = d.outputs[0];
  if (!x.present || !is_cuda_float(x.dtype) || !y.present || y.dtype != x.dtype || y.dims != x.dims)
    return std::nullopt;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  const bool per_axis = d.opset >= 13;
  int64_t axis = d.node->attrs.get_int("axis", per_axis ? -1 : 1);
  if (rank == 0 || axis < -rank || axis >= rank) return std::nullopt;
  if (axis < 0) axis += rank;
  Shape3 s;
  for (int64_t k = 0; k < rank; ++k) {
    const int64_t v = x.dims[k];
    if (v < 0) return std::nullopt;
    if (k < axis)
      s.outer *= v;
    else if (k == axis || !per_axis)
      s.n *= v;
    else
      s.inner *= v;
  }
  return s;
}

class SoftmaxKernel final : public CudaKernel {
 public:
  SoftmaxKernel(Mode mode, const Shape3& s3) : mode_(mode), s3_(s3) {}
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    dispatch_float_type(in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      switch (mode_) {
        case Mode::Softmax:
          return launch<Mode::Softmax, T>(s3_, in[0].data, out[0].data, rc.stream);
        case Mode::LogSoftmax:
          return launch<Mode::LogSoftmax, T>(s3_, in[0].data, out[0].data, rc.stream);
        case Mode::Hardmax:
          return launch<Mode::Hardmax, T>(s3_, in[0].data, out[0].data, rc.stream);
      }
    });
  }
  std::string describe() const override { return s3_.inner == 1 ? "rows" : "columns"; }

 private:
  Mode mode_;
  Shape3 s3_;
};

backend::KernelFactory softmax_factory(const char* op, Mode mode) {
  return {.name = "cuda.softmax",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = [](const backend::LayerDesc& d) { return shape_of(d).has_value(); },
          .create = [mode](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            const auto s = shape_of(d);
            if (!s) throw Error("cuda.softmax: layer not supported");
            return std::make_unique<SoftmaxKernel>(mode, *s);
          }};
}

KILN_REGISTER_KERNEL(softmax_factory("Softmax", Mode::Softmax));
KILN_REGISTER_KERNEL(softmax_factory("LogSoftmax", Mode::LogSoftmax));
KILN_REGISTER_KERNEL(softmax_factory("Hardmax", Mode::Hardmax));

}  // namespace
}  // namespace kiln::cuda
