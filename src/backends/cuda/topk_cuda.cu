// cuda.topk: TopK along one axis of up to kMaxRow elements, K a build-time constant (the attribute before
// opset 10, a constant input since), float / float16 / bfloat16 / int32 / int64 values and int64 indices.
//
// One block per row (grid-stride over rows): the row's keys and indices go to shared memory, padded to a
// power of two, and a bitonic network sorts them by the reference's order — by value (largest or smallest
// first, NaN above every number as ops/indexing.h's total_less), equal values by index, smaller first. That
// order is strict (indices differ), so the network's result is the unique sorted order, exactly the
// reference's stable sort. The first K entries are written; values are copied from the input, bit for bit.
// Outputs are always sorted (sorted=0 allows any order, and the reference sorts too).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

// Longest row sorted on chip: 4096 keys of 8 bytes plus int32 indices = 48 KiB, the shared memory a block
// may use without opting in.
constexpr int kMaxRow = 4096;

// The sort key of an element: float for the float types (exact), the integer itself otherwise.
__device__ __forceinline__ float key_of(float v) {
  return v;
}
__device__ __forceinline__ float key_of(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float key_of(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ int32_t key_of(int32_t v) {
  return v;
}
__device__ __forceinline__ int64_t key_of(int64_t v) {
  return v;
}

// total_less: a < b with NaN above every number and equal to NaN.
__device__ __forceinline__ bool total_less(float a, float b) {
  if (isnan(a) || isnan(b)) return !isnan(a) && isnan(b);
  return a < b;
}
template <typename K>
__device__ __forceinline__ bool total_less(K a, K b) {
  return a < b;
}

// Whether entry a comes before entry b in the output. Padding (index >= n) comes after everything.
template <typename K>
__device__ __forceinline__ bool before(K ka, int ia, K kb, int ib, int n, bool largest) {
  if (ia >= n) return false;
  if (ib >= n) return true;
  if (largest ? total_less(kb, ka) : total_less(ka, kb)) return true;
  if (largest ? total_less(ka, kb) : total_less(kb, ka)) return false;
  return ia < ib;
}

// Rows are (outer, inner) pairs; element s of a row is at (o * n + s) * inner + i. p: n rounded up to a power
// of two (the shared arrays' length).
template <typename T, typename K>
__global__ void topk_kernel(const T* x, T* values, int64_t* indices, int64_t rows, int64_t inner, int n,
                            int p, int k, bool largest) {
  extern __shared__ __align__(16) unsigned char smem[];
  K* keys = reinterpret_cast<K*>(smem);
  int* idx = reinterpret_cast<int*>(smem + static_cast<size_t>(p) * sizeof(K));
  const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t o = row / inner, in = row - o * inner;
    const T* src = x + o * n * inner + in;
    for (int s = tid; s < p; s += threads) {
      keys[s] = s < n ? key_of(src[s * inner]) : K{};
      idx[s] = s;
    }
    __syncthreads();
    for (int size = 2; size <= p; size <<= 1)
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int t = tid; t < p / 2; t += threads) {
          const int i = 2 * stride * (t / stride) + t % stride, l = i + stride;  // i has bit `stride` clear
          const bool up = (i & size) == 0;  // this run sorts in output order, else reversed
          const bool swap = up ? before(keys[l], idx[l], keys[i], idx[i], n, largest)
                               : before(keys[i], idx[i], keys[l], idx[l], n, largest);
          if (swap) {
            const K kt = keys[i];
            keys[i] = keys[l];
            keys[l] = kt;
            const int it = idx[i];
            idx[i] = idx[l];
            idx[l] = it;
          }
        }
        __syncthreads();
      }
    for (int s = tid; s < k; s += threads) {
      const int j = idx[s];
      const int64_t out = (o * k + s) * inner + in;
      values[out] = src[static_cast<int64_t>(j) * inner];
      indices[out] = j;
    }
    __syncthreads();  // the next row reuses the shared arrays
  }
}

struct TopKPlan {
  DType dtype = DType::Undefined;
  int64_t rows = 0, inner = 1;
  int n = 0, k = 0;
  bool largest = true;
  bool k_input = false;  // K is input 1 (opset >= 10), read at create time
};

bool topk_dtype(DType t) {
  return is_cuda_float(t) || t == DType::Int32 || t == DType::Int64;
}

// The plan, or false when this kernel cannot run the layer. Throws on attributes of the wrong type.
bool plan_topk(const LayerDesc& d, TopKPlan& p) {
  if (d.inputs.empty() || d.outputs.size() != 2 || !d.inputs[0].present || !d.outputs[0].present ||
      !d.outputs[1].present)
    return false;
  const auto& x = d.inputs[0];
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (rank < 1 || !topk_dtype(x.dtype) || d.outputs[0].dtype != x.dtype || d.outputs[1].dtype != DType::Int64)
    return false;
  int64_t axis = d.node->attrs.get_int("axis", -1);
  if (axis < -rank || axis >= rank) return false;
  if (axis < 0) axis += rank;
  int64_t k = -1;
  if (d.opset < 10) {
    if (d.inputs.size() != 1) return false;
    k = d.node->attrs.get_int("k", -1);
  } else {
    if (d.inputs.size() != 2) return false;
    const auto& ki = d.inputs[1];
    if (!ki.present || !ki.constant || ki.dtype != DType::Int64 || ki.dims.size() != 1 ||
        ki.constant->numel() != 1)
      return false;
    k = ki.constant->as_int64(0);
    p.k_input = true;
  }
  const int64_t n = x.dims[static_cast<size_t>(axis)];
  if (n > kMaxRow || k < 0 || k > n) return false;
  std::vector<int64_t> out = x.dims;
  out[static_cast<size_t>(axis)] = k;
  if (d.outputs[0].dims != out || d.outputs[1].dims != out) return false;
  p.dtype = x.dtype;
  p.n = static_cast<int>(n);
  p.k = static_cast<int>(k);
  p.inner = 1;
  for (size_t a = static_cast<size_t>(axis) + 1; a < x.dims.size(); ++a) p.inner *= x.dims[a];
  p.rows = 1;
  for (size_t a = 0; a < static_cast<size_t>(axis); ++a) p.rows *= x.dims[a];
  p.rows *= p.inner;
  p.largest = d.node->attrs.get_int("largest", 1) != 0;
  return true;
}

template <typename T, typename K>
void launch_topk(const TopKPlan& pl, const void* x, void* values, void* indices, cudaStream_t s) {
  int p = 1;
  while (p < pl.n) p <<= 1;
  const int threads = p / 2 < 32 ? 32 : (p / 2 > 1024 ? 1024 : p / 2);
  const size_t shared = static_cast<size_t>(p) * (sizeof(K) + sizeof(int));
  const unsigned int grid = static_cast<unsigned int>(pl.rows < (1 << 30) ? pl.rows : (1 << 30));
  topk_kernel<T, K><<<grid, threads, shared, s>>>(static_cast<const T*>(x), static_cast<T*>(values),
                                                  static_cast<int64_t*>(indices), pl.rows, pl.inner, pl.n, p,
                                                  pl.k, pl.largest);
  KILN_CUDA_CHECK_LAUNCH();
}

class TopKKernel final : public CudaKernel {
 public:
  explicit TopKKernel(const TopKPlan& p) : p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.k == 0 || p_.rows == 0) return;  // empty outputs
    switch (p_.dtype) {
      case DType::Int32:
        launch_topk<int32_t, int32_t>(p_, in[0].data, out[0].data, out[1].data, rc.stream);
        break;
      case DType::Int64:
        launch_topk<int64_t, int64_t>(p_, in[0].data, out[0].data, out[1].data, rc.stream);
        break;
      default:
        dispatch_float_type(p_.dtype, [&](auto t) {
          launch_topk<decltype(t), float>(p_, in[0].data, out[0].data, out[1].data, rc.stream);
        });
    }
  }
  bool owns_constant_input(size_t k) const override { return p_.k_input && k == 1; }

 private:
  TopKPlan p_;
};

bool topk_supported(const LayerDesc& d) {
  TopKPlan p;
  try {
    return plan_topk(d, p);
  } catch (const Error&) {
    return false;
  }
}

std::unique_ptr<backend::Kernel> create_topk(const LayerDesc& d) {
  TopKPlan p;
  if (!plan_topk(d, p)) throw Error("cuda.topk: layer '" + d.node->name + "' is not supported");
  return std::make_unique<TopKKernel>(p);
}

KILN_REGISTER_KERNEL({.name = "cuda.topk",
                      .device = "cuda",
                      .op = "TopK",
                      .domain = "",
                      .priority = 10,
                      .supports = topk_supported,
                      .create = create_topk});

}  // namespace
}  // namespace kiln::cuda
