// Concat on CUDA (cuda.concat): each input copied into its rows of the output.
#include <numeric>

#include "backends/cuda/movement_cuda.cuh"

namespace kiln::cuda::movement {
namespace {

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

}  // namespace
}  // namespace kiln::cuda::movement
