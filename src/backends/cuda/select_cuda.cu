// kiln — CUDA kernels for ops that select elements by value, into an output whose count the plan fixed
// (data_count_cuda.h reports a different count found in the data):
//   cuda.nonzero   NonZero: int64 [rank, count], the coordinates of the non-zero elements in row-major order
//                  (a scalar counts as a one-element vector); bool and every integer and float type.
//   cuda.compress  Compress: the slices along `axis` (of the flattened input without one) whose condition
//                  entry is true; the condition may be shorter than the axis. Any element type of 1/2/4/8
//                  bytes.
// Both find positions with one block of 1024 threads walking the data in chunks, each chunk a block-wide
// prefix sum of the flags: O(n) work, n / 1024 sequential steps, so the output order is the input order
// without sorting or atomics. Compress then copies the selected slices with one thread per output element.
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/data_count_cuda.h"
#include "device/kernel.h"

namespace kiln::cuda {
namespace {

constexpr int kScanThreads = 1024;  // the scan kernels' block: 32 warps, one warp sum per lane of warp 0
constexpr int kCopyThreads = 256;
constexpr int kMaxRank = 8;
constexpr unsigned kFull = 0xffffffffu;

// Exclusive prefix sum of `flag` over a block of kScanThreads; `total` gets the block's sum. Every thread
// of the block must call it.
__device__ int block_exclusive_scan(int flag, int& total) {
  __shared__ int warp_sums[kScanThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int incl = flag;
  for (int off = 1; off < 32; off <<= 1) {
    const int v = __shfl_up_sync(kFull, incl, off);
    if (lane >= off) incl += v;
  }
  if (lane == 31) warp_sums[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int w = warp_sums[lane];
    for (int off = 1; off < 32; off <<= 1) {
      const int v = __shfl_up_sync(kFull, w, off);
      if (lane >= off) w += v;
    }
    warp_sums[lane] = w;  // inclusive over the warps
  }
  __syncthreads();
  const int before = warp == 0 ? 0 : warp_sums[warp - 1];
  total = warp_sums[kScanThreads / 32 - 1];
  __syncthreads();  // warp_sums is rewritten by the next call
  return before + incl - flag;
}

// ------------------------------------------------------------------------------------ NonZero
struct Dims {
  int rank = 0;
  int64_t d[kMaxRank] = {};
};

// U: an unsigned integer of the element's size; an element is non-zero when its bits under `mask` are
// (the mask drops a float's sign bit, so -0.0 counts as zero and NaN as non-zero, as in the reference).
template <class U>
__global__ void __launch_bounds__(kScanThreads)
    nonzero_kernel(const U* __restrict__ x, int64_t n, U mask, Dims dims, long long* __restrict__ y,
                   int64_t planned, DataCountReport* report) {
  int64_t found = 0;  // uniform over the block
  for (int64_t base = 0; base < n; base += kScanThreads) {
    const int64_t i = base + threadIdx.x;
    const int flag = i < n && (x[i] & mask) != 0;
    int total;
    const int before = block_exclusive_scan(flag, total);
    const int64_t j = found + before;
    if (flag && j < planned) {
      int64_t rest = i;
      for (int k = dims.rank - 1; k >= 0; --k) {
        y[k * planned + j] = rest % dims.d[k];
        rest /= dims.d[k];
      }
    }
    found += total;
  }
  if (threadIdx.x == 0) *report = {found, -1};
}

// The element's bits that make it non-zero; 0: a dtype NonZero does not take here.
unsigned long long nonzero_mask(DType t) {
  switch (t) {
    case DType::Bool:
    case DType::Int8:
    case DType::UInt8:
      return 0xFFull;
    case DType::Int16:
    case DType::UInt16:
      return 0xFFFFull;
    case DType::Float16:
    case DType::BFloat16:
      return 0x7FFFull;
    case DType::Int32:
    case DType::UInt32:
      return 0xFFFFFFFFull;
    case DType::Float:
      return 0x7FFFFFFFull;
    case DType::Int64:
    case DType::UInt64:
      return ~0ull;
    case DType::Double:
      return ~0ull >> 1;
    default:
      return 0;
  }
}

// The input's dims as NonZero sees them (a scalar is [1]), and the planned count; false when not taken.
bool nonzero_plan(const backend::LayerDesc& d, Dims& dims, int64_t& planned) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return false;
  const auto& x = d.inputs[0];
  const auto& y = d.outputs[0];
  if (!nonzero_mask(x.dtype) || x.dims.size() > kMaxRank || y.dtype != DType::Int64) return false;
  const std::vector<int64_t> xd = x.dims.empty() ? std::vector<int64_t>{1} : x.dims;
  if (y.dims.size() != 2 || y.dims[0] != static_cast<int64_t>(xd.size()) || y.dims[1] < 0) return false;
  dims.rank = static_cast<int>(xd.size());
  for (size_t k = 0; k < xd.size(); ++k) {
    if (xd[k] < 0) return false;
    dims.d[k] = xd[k];
  }
  planned = y.dims[1];
  return true;
}

class NonZeroKernel final : public DataCountKernel {
 public:
  NonZeroKernel(const backend::LayerDesc& d, const Dims& dims, int64_t planned)
      : DataCountKernel("NonZero", "non-zero elements", planned),
        dims_(dims),
        size_(dtype_size(d.inputs[0].dtype)),
        mask_(nonzero_mask(d.inputs[0].dtype)) {}

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = in[0].numel();
    auto* y = static_cast<long long*>(out[0].data);
    DataCountReport* report = device_report(rc);
    switch (size_) {
      case 1:
        launch(static_cast<const uint8_t*>(in[0].data), n, static_cast<uint8_t>(mask_), y, report, rc);
        break;
      case 2:
        launch(static_cast<const uint16_t*>(in[0].data), n, static_cast<uint16_t>(mask_), y, report, rc);
        break;
      case 4:
        launch(static_cast<const uint32_t*>(in[0].data), n, static_cast<uint32_t>(mask_), y, report, rc);
        break;
      default:
        launch(static_cast<const unsigned long long*>(in[0].data), n, mask_, y, report, rc);
        break;
    }
    enqueue_report(rc);
  }

 private:
  template <class U>
  void launch(const U* x, int64_t n, U mask, long long* y, DataCountReport* report,
              const RunContext& rc) const {
    nonzero_kernel<U><<<1, kScanThreads, 0, rc.stream>>>(x, n, mask, dims_, y, planned(), report);
    KILN_CUDA_CHECK_LAUNCH();
  }

  Dims dims_;
  size_t size_;
  unsigned long long mask_;
};

backend::KernelFactory nonzero_factory() {
  return {.name = "cuda.nonzero",
          .device = "cuda",
          .op = "NonZero",
          .domain = "",
          .priority = 10,
          .supports =
              [](const backend::LayerDesc& d) {
                Dims dims;
                int64_t planned = 0;
                return nonzero_plan(d, dims, planned);
              },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            Dims dims;
            int64_t planned = 0;
            if (!nonzero_plan(d, dims, planned)) throw Error("cuda.nonzero: layer not supported");
            return std::make_unique<NonZeroKernel>(d, dims, planned);
          }};
}

// ------------------------------------------------------------------------------------ Compress
// sel[s] = the axis position of the s-th selected slice, for s < planned (-1 past the found ones). A true
// entry at or past the axis size n is the reference's error: the first one is reported as `invalid`.
__global__ void __launch_bounds__(kScanThreads)
    compress_select_kernel(const uint8_t* __restrict__ cond, int64_t cond_len, int64_t n,
                           long long* __restrict__ sel, int64_t planned, DataCountReport* report) {
  __shared__ unsigned long long first_bad;
  if (threadIdx.x == 0) first_bad = ULLONG_MAX;
  __syncthreads();
  int64_t found = 0;  // uniform over the block
  for (int64_t base = 0; base < cond_len; base += kScanThreads) {
    const int64_t j = base + threadIdx.x;
    const bool on = j < cond_len && cond[j] != 0;
    if (on && j >= n) atomicMin(&first_bad, static_cast<unsigned long long>(j));  // a minimum: deterministic
    const int flag = on && j < n;
    int total;
    const int before = block_exclusive_scan(flag, total);
    const int64_t s = found + before;
    if (flag && s < planned) sel[s] = j;
    found += total;
  }
  for (int64_t s = found + threadIdx.x; s < planned; s += kScanThreads) sel[s] = -1;
  __syncthreads();
  if (threadIdx.x == 0) *report = {found, first_bad == ULLONG_MAX ? -1 : static_cast<long long>(first_bad)};
}

// Output element e of [outer, planned, inner] from slice sel[s] of the input [outer, n, inner]; zero for a
// slice the data did not select (the count mismatch is reported).
template <class U>
__global__ void compress_copy_kernel(const U* __restrict__ x, const long long* __restrict__ sel,
                                     U* __restrict__ y, int64_t total, int64_t planned, int64_t n,
                                     int64_t inner) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e % inner, t = e / inner, s = t % planned, o = t / planned;
    const long long j = sel[s];
    y[e] = j < 0 ? U(0) : x[(o * n + j) * inner + i];
  }
}

struct CompressPlan {
  int64_t outer = 1, n = 1, inner = 1, planned = 0;
  size_t size = 0;  // bytes per element
};

bool compress_plan(const backend::LayerDesc& d, CompressPlan& p) {
  if (d.inputs.size() != 2 || d.outputs.size() != 1 || !d.inputs[0].present || !d.inputs[1].present ||
      !d.outputs[0].present)
    return false;
  const auto& x = d.inputs[0];
  const auto& cond = d.inputs[1];
  const auto& y = d.outputs[0];
  p.size = dtype_size(x.dtype);
  if (x.dtype == DType::String || (p.size != 1 && p.size != 2 && p.size != 4 && p.size != 8)) return false;
  if (cond.dtype != DType::Bool || cond.dims.size() != 1 || y.dtype != x.dtype) return false;
  for (int64_t v : x.dims)
    if (v < 0) return false;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (d.node->attrs.has("axis")) {
    int64_t axis = d.node->attrs.get_int("axis", 0);
    if (rank == 0 || axis < -rank || axis >= rank) return false;
    if (axis < 0) axis += rank;
    if (static_cast<int64_t>(y.dims.size()) != rank) return false;
    for (int64_t k = 0; k < rank; ++k) {
      if (k != axis && y.dims[k] != x.dims[k]) return false;
      if (k < axis) p.outer *= x.dims[k];
      if (k > axis) p.inner *= x.dims[k];
    }
    p.n = x.dims[axis];
    p.planned = y.dims[axis];
  } else {
    if (y.dims.size() != 1) return false;
    p.n = checked_numel(x.dims).value_or(-1);
    p.planned = y.dims[0];
  }
  return p.n >= 0 && p.planned >= 0;
}

class CompressKernel final : public DataCountKernel {
 public:
  explicit CompressKernel(const CompressPlan& p)
      : DataCountKernel("Compress", "selected slices", p.planned), p_(p) {}

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    auto* sel = static_cast<long long*>(body_workspace(rc));
    compress_select_kernel<<<1, kScanThreads, 0, rc.stream>>>(
        static_cast<const uint8_t*>(in[1].data), in[1].numel(), p_.n, sel, p_.planned, device_report(rc));
    KILN_CUDA_CHECK_LAUNCH();
    const int64_t total = out[0].numel();
    if (total > 0) {
      switch (p_.size) {
        case 1:
          copy<uint8_t>(in[0].data, sel, out[0].data, total, rc);
          break;
        case 2:
          copy<uint16_t>(in[0].data, sel, out[0].data, total, rc);
          break;
        case 4:
          copy<uint32_t>(in[0].data, sel, out[0].data, total, rc);
          break;
        default:
          copy<unsigned long long>(in[0].data, sel, out[0].data, total, rc);
          break;
      }
    }
    enqueue_report(rc);
  }

 protected:
  size_t body_workspace_bytes() const override { return static_cast<size_t>(p_.planned) * sizeof(long long); }
  std::string invalid_message(long long j) const override {
    return "condition element " + std::to_string(j) + " is true but the axis has " + std::to_string(p_.n) +
           " entries";
  }

 private:
  template <class U>
  void copy(const void* x, const long long* sel, void* y, int64_t total, const RunContext& rc) const {
    compress_copy_kernel<U><<<blocks_for(total, kCopyThreads), kCopyThreads, 0, rc.stream>>>(
        static_cast<const U*>(x), sel, static_cast<U*>(y), total, p_.planned, p_.n, p_.inner);
    KILN_CUDA_CHECK_LAUNCH();
  }

  CompressPlan p_;
};

backend::KernelFactory compress_factory() {
  return {.name = "cuda.compress",
          .device = "cuda",
          .op = "Compress",
          .domain = "",
          .priority = 10,
          .supports =
              [](const backend::LayerDesc& d) {
                CompressPlan p;
                return compress_plan(d, p);
              },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            CompressPlan p;
            if (!compress_plan(d, p)) throw Error("cuda.compress: layer not supported");
            return std::make_unique<CompressKernel>(p);
          }};
}

KILN_REGISTER_KERNEL(nonzero_factory());
KILN_REGISTER_KERNEL(compress_factory());

}  // namespace
}  // namespace kiln::cuda
