// kiln — CUDA Unique (cuda.unique): the distinct elements of X (flattened), or with `axis` its distinct
// slices along that axis, sorted ascending (sorted=1, slices compared lexicographically, NaN above every
// number and equal to NaN) or in order of first occurrence (sorted=0); outputs Y, indices, inverse_indices,
// counts (the last three optional). The number of groups is planned (Y's dim): a different count in the data
// is reported through data_count_cuda.h.
//
// The algorithm compares slices pairwise instead of sorting, one thread per slice s of the n slices (each of
// L = outer * inner elements):
//   1. first[s]: the first slice equal to s                                  O(n^2 L) compares in the worst
//   case
//   2. for each first occurrence: its group number (sorted: how many first occurrences are smaller; unsorted:
//      how many come before it) and how many slices share it                 O(n^2 L)
//   3. inverse_indices, indices, counts, and which slice each group copies   O(n)
//   4. the number of groups (one block), then Y copied one thread per element.
// Quadratic, but exact and deterministic with no sort; fine for the sizes Unique sees in models.
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/data_count_cuda.h"
#include "device/kernel.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kCountThreads = 1024;

// Elements compare as K: double for float types (exact), long long / unsigned long long for integers.
template <class K, class T>
__device__ __forceinline__ K to_key(T v) {
  if constexpr (std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>)
    return static_cast<K>(to_float(v));
  else
    return static_cast<K>(v);
}

// The reference's total order: NaN above every number and equal to NaN.
template <class K>
__device__ __forceinline__ bool key_less(K a, K b) {
  if constexpr (std::is_floating_point_v<K>) {
    if (isnan(a) || isnan(b)) return !isnan(a) && isnan(b);
  }
  return a < b;
}

template <class T, class K>
struct Slices {
  const T* x;
  int64_t outer, n, inner;
  // -1, 0, 1: slice a before, equal to, after slice b, comparing elements in row-major order.
  __device__ int compare(int64_t a, int64_t b) const {
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const K ka = to_key<K>(x[(o * n + a) * inner + i]), kb = to_key<K>(x[(o * n + b) * inner + i]);
        if (key_less(ka, kb)) return -1;
        if (key_less(kb, ka)) return 1;
      }
    return 0;
  }
};

#define KILN_GRID_LOOP(s, count)                                                             \
  for (int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; s < (count); \
       s += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <class T, class K>
__global__ void unique_first_kernel(Slices<T, K> x, long long* __restrict__ first) {
  KILN_GRID_LOOP(s, x.n) {
    int64_t t = 0;
    while (t < s && x.compare(t, s) != 0) ++t;
    first[s] = t;
  }
}

template <class T, class K>
__global__ void unique_group_kernel(Slices<T, K> x, const long long* __restrict__ first, bool sorted,
                                    long long* __restrict__ group, long long* __restrict__ count) {
  KILN_GRID_LOOP(s, x.n) {
    if (first[s] != s) continue;
    long long g = 0, c = 0;
    for (int64_t t = 0; t < x.n; ++t) {
      if (first[t] == s) ++c;
      if (first[t] == t && t != s && (sorted ? x.compare(t, s) < 0 : t < s)) ++g;
    }
    group[s] = g;
    count[s] = c;
  }
}

// rep[g]: the slice group g copies into Y (its first occurrence), for the groups inside the planned count.
__global__ void unique_outputs_kernel(int64_t n, int64_t planned, const long long* __restrict__ first,
                                      const long long* __restrict__ group,
                                      const long long* __restrict__ count, long long* __restrict__ rep,
                                      long long* __restrict__ indices, long long* __restrict__ inverse,
                                      long long* __restrict__ counts) {
  KILN_GRID_LOOP(s, n) {
    const long long f = first[s], g = group[f];
    if (inverse) inverse[s] = g;
    if (f == s && g < planned) {
      rep[g] = s;
      if (indices) indices[g] = s;
      if (counts) counts[g] = count[s];
    }
  }
}

// The number of groups; groups the data did not make get rep -1 (Y zero there; the mismatch is reported).
__global__ void __launch_bounds__(kCountThreads)
    unique_count_kernel(int64_t n, int64_t planned, const long long* __restrict__ first,
                        long long* __restrict__ rep, DataCountReport* report) {
  int64_t found = 0;  // uniform over the block
  for (int64_t base = 0; base < n; base += kCountThreads) {
    const int64_t s = base + threadIdx.x;
    found += __syncthreads_count(s < n && first[s] == s);
  }
  for (int64_t g = found + threadIdx.x; g < planned; g += kCountThreads) rep[g] = -1;
  if (threadIdx.x == 0) *report = {found, -1};
}

template <class U>
__global__ void unique_copy_kernel(const U* __restrict__ x, const long long* __restrict__ rep,
                                   U* __restrict__ y, int64_t total, int64_t planned, int64_t n,
                                   int64_t inner) {
  KILN_GRID_LOOP(e, total) {
    const int64_t i = e % inner, t = e / inner, g = t % planned, o = t / planned;
    const long long r = rep[g];
    y[e] = r < 0 ? U(0) : x[(o * n + r) * inner + i];
  }
}

#undef KILN_GRID_LOOP

// Calls f(T{}, K{}) for the element's device type T and compare type K; false for a dtype not taken.
template <class F>
bool dispatch_unique_type(DType t, F&& f) {
  switch (t) {
    case DType::Float:
      return f(float{}, double{}), true;
    case DType::Float16:
      return f(__half{}, double{}), true;
    case DType::BFloat16:
      return f(__nv_bfloat16{}, double{}), true;
    case DType::Double:
      return f(double{}, double{}), true;
    case DType::Int8:
      return f(int8_t{}, 0ll), true;
    case DType::Int16:
      return f(int16_t{}, 0ll), true;
    case DType::Int32:
      return f(int32_t{}, 0ll), true;
    case DType::Int64:
      return f(int64_t{}, 0ll), true;
    case DType::Bool:
    case DType::UInt8:
      return f(uint8_t{}, 0ull), true;
    case DType::UInt16:
      return f(uint16_t{}, 0ull), true;
    case DType::UInt32:
      return f(uint32_t{}, 0ull), true;
    case DType::UInt64:
      return f(uint64_t{}, 0ull), true;
    default:
      return false;
  }
}

struct UniquePlan {
  int64_t outer = 1, n = 1, inner = 1, planned = 0;
  bool sorted = true;
};

bool unique_plan(const backend::LayerDesc& d, UniquePlan& p) {
  if (d.inputs.size() != 1 || !d.inputs[0].present || d.outputs.empty() || d.outputs.size() > 4 ||
      !d.outputs[0].present)
    return false;
  const auto& x = d.inputs[0];
  const auto& y = d.outputs[0];
  if (!dispatch_unique_type(x.dtype, [](auto, auto) {}) || y.dtype != x.dtype) return false;
  for (int64_t v : x.dims)
    if (v < 0) return false;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  if (d.node->attrs.has("axis")) {
    int64_t axis = d.node->attrs.get_int("axis", 0);
    if (rank == 0 || axis < -rank || axis >= rank || static_cast<int64_t>(y.dims.size()) != rank)
      return false;
    if (axis < 0) axis += rank;
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
  if (p.n < 0 || p.planned < 0) return false;
  // indices and counts hold one entry per group, inverse_indices one per slice.
  for (size_t k = 1; k < d.outputs.size(); ++k) {
    const auto& o = d.outputs[k];
    if (!o.present) continue;
    const int64_t want = k == 2 ? p.n : p.planned;
    if (o.dtype != DType::Int64 || o.dims != std::vector<int64_t>{want}) return false;
  }
  p.sorted = d.node->attrs.get_int("sorted", 1) != 0;
  return true;
}

class UniqueKernel final : public DataCountKernel {
 public:
  UniqueKernel(const UniquePlan& p, DType dtype)
      : DataCountKernel("Unique", "groups", p.planned), p_(p), dtype_(dtype) {}

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    auto* ws = static_cast<long long*>(body_workspace(rc));
    long long *first = ws, *group = ws + p_.n, *count = ws + 2 * p_.n, *rep = ws + 3 * p_.n;
    auto out_ptr = [&](size_t k) { return k < out.size() ? static_cast<long long*>(out[k].data) : nullptr; };
    const unsigned grid = blocks_for(p_.n, kThreads);
    dispatch_unique_type(dtype_, [&](auto tag, auto key) {
      using T = decltype(tag);
      using K = decltype(key);
      const Slices<T, K> x{static_cast<const T*>(in[0].data), p_.outer, p_.n, p_.inner};
      if (p_.n > 0) {
        unique_first_kernel<T, K><<<grid, kThreads, 0, rc.stream>>>(x, first);
        KILN_CUDA_CHECK_LAUNCH();
        unique_group_kernel<T, K><<<grid, kThreads, 0, rc.stream>>>(x, first, p_.sorted, group, count);
        KILN_CUDA_CHECK_LAUNCH();
        unique_outputs_kernel<<<grid, kThreads, 0, rc.stream>>>(p_.n, p_.planned, first, group, count, rep,
                                                                out_ptr(1), out_ptr(2), out_ptr(3));
        KILN_CUDA_CHECK_LAUNCH();
      }
      unique_count_kernel<<<1, kCountThreads, 0, rc.stream>>>(p_.n, p_.planned, first, rep,
                                                              device_report(rc));
      KILN_CUDA_CHECK_LAUNCH();
      const int64_t total = out[0].numel();
      if (total > 0) {
        using U =
            std::conditional_t<sizeof(T) == 1, uint8_t,
                               std::conditional_t<sizeof(T) == 2, uint16_t,
                                                  std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
        unique_copy_kernel<U><<<blocks_for(total, kThreads), kThreads, 0, rc.stream>>>(
            static_cast<const U*>(in[0].data), rep, static_cast<U*>(out[0].data), total, p_.planned, p_.n,
            p_.inner);
        KILN_CUDA_CHECK_LAUNCH();
      }
    });
    enqueue_report(rc);
  }
  std::string describe() const override { return p_.sorted ? "sorted" : "first-occurrence order"; }

 protected:
  size_t body_workspace_bytes() const override {
    return static_cast<size_t>(3 * p_.n + p_.planned) * sizeof(long long);
  }

 private:
  UniquePlan p_;
  DType dtype_;
};

backend::KernelFactory unique_factory() {
  return {.name = "cuda.unique",
          .device = "cuda",
          .op = "Unique",
          .domain = "",
          .priority = 10,
          .supports =
              [](const backend::LayerDesc& d) {
                UniquePlan p;
                return unique_plan(d, p);
              },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            UniquePlan p;
            if (!unique_plan(d, p)) throw Error("cuda.unique: layer not supported");
            return std::make_unique<UniqueKernel>(p, d.inputs[0].dtype);
          }};
}

KILN_REGISTER_KERNEL(unique_factory());

}  // namespace
}  // namespace kiln::cuda
