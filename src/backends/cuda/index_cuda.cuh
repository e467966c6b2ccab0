// What the CUDA indexing kernels (gather_cuda.cu, scatter_cuda.cu) share: the element types they move, the
// index dtypes they read, and how an index read from device memory becomes a position on an axis.
//
// Out-of-range indices: the reference fails at run time naming the index, but a kernel cannot report from the
// device without a host read (not allowed in a captured graph). So an index is wrapped once (negative values
// count from the end, as ONNX says) and then clamped into [0, n): an invalid index reads or writes the first
// or last element along its axis instead of memory outside the tensor. Constant indices never get here
// invalid: shape inference checks them at build time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cuda/movement_cuda.cuh"

namespace kiln::cuda::indexing {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;
using movement::dispatch_bits;
using movement::factory;
using movement::fits32;
using movement::kMaxRank;
using movement::kThreads;

// Index j of `idx` as a position on an axis of n > 0 elements: wrapped, then clamped (see above).
template <typename I>
__device__ __forceinline__ int64_t clamped_index(const I* idx, int64_t j, int64_t n) {
  int64_t k = static_cast<int64_t>(idx[j]);
  if (k < 0) k += n;
  return k < 0 ? 0 : (k >= n ? n - 1 : k);
}

// GatherND / ScatterND: index tuples of length m address slices of data (ScatterND: one batch).
struct NdParams {
  int m;                      // tuple length
  int64_t slice;              // elements per addressed slice
  int64_t per_batch, block;   // tuples per batch; data elements per batch
  int64_t dims[kMaxRank];     // the data dims each tuple entry indexes
  int64_t strides[kMaxRank];  // data's strides along them
};

// The data offset (within its batch) of the slice that tuple t addresses.
template <typename I>
__device__ __forceinline__ int64_t tuple_offset(const I* idx, int64_t t, const NdParams& p) {
  int64_t off = 0;
  for (int k = 0; k < p.m; ++k) off += clamped_index(idx, t * p.m + k, p.dims[k]) * p.strides[k];
  return off;
}

// Calls f(I{}) with I the index type of an int32/int64 dtype.
template <typename F>
void dispatch_index(DType t, F&& f) {
  if (t == DType::Int32)
    f(int32_t{});
  else if (t == DType::Int64)
    f(int64_t{});
  else
    throw Error(std::string("CUDA indexing kernel: indices must be int32 or int64, got ") + dtype_name(t));
}

inline bool is_index_dtype(DType t) {
  return t == DType::Int32 || t == DType::Int64;
}

// Element types moved as bits (any 1-, 2-, 4- or 8-byte dtype: float, float16, bfloat16, double, integers,
// bool).
inline bool movable(DType t) {
  if (t == DType::Undefined || t == DType::String) return false;
  const size_t s = dtype_size(t);
  return s == 1 || s == 2 || s == 4 || s == 8;
}

// An axis attribute in [-rank, rank) made non-negative; false when out of range.
inline bool axis_in(int64_t axis, int64_t rank, int64_t& out) {
  if (axis < -rank || axis >= rank) return false;
  out = axis < 0 ? axis + rank : axis;
  return true;
}

// Whether the layer has `ins` present inputs and one present output.
inline bool arity(const LayerDesc& d, size_t ins) {
  if (d.inputs.size() != ins || d.outputs.size() != 1 || !d.outputs[0].present) return false;
  for (const auto& o : d.inputs)
    if (!o.present) return false;
  return true;
}

// 1-D grid for `n` one-element-per-thread items (grid-stride loops cover the rest).
inline unsigned int grid_for(int64_t n) {
  return blocks_for(n, kThreads);
}

}  // namespace kiln::cuda::indexing
