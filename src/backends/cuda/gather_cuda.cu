// CUDA Gather, GatherElements and GatherND (cuda.gather): one thread per output element, which reads the data
// element its index addresses. Any 1/2/4/8-byte element type (moved as bits), int32 or int64 indices read
// from device memory, wrapped and clamped (index_cuda.cuh says why clamped).
//   Gather (axis a):        out[o, j, e] = data[o, idx[j], e]   over [outer, indices, inner]
//   GatherElements (axis a): out[p] = data[p with p[a] = idx[p]]
//   GatherND (batch_dims b): out[t, e] = data[batch(t), idx[t, 0..m), e] over [tuples, slice]
// The loop counter is 32-bit when the output fits (cheaper division), 64-bit otherwise.
#include <memory>
#include <vector>

#include "backends/cuda/index_cuda.cuh"

namespace kiln::cuda::indexing {
namespace {

// ================================================================================================ Gather
template <typename U, typename I, typename N>
__global__ void gather_axis_kernel(const U* data, const I* idx, U* out, N total, N ni, N inner, int64_t n) {
  const N step = static_cast<N>(gridDim.x) * blockDim.x;
  for (N i = static_cast<N>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const N t = i / inner, e = i - t * inner;
    const N o = t / ni, j = t - o * ni;
    out[i] = data[(static_cast<int64_t>(o) * n + clamped_index(idx, static_cast<int64_t>(j), n)) * inner + e];
  }
}

struct GatherShape {
  int64_t outer = 1, n = 0, inner = 1, ni = 0;
};

std::optional<GatherShape> gather_shape(const LayerDesc& d) {
  if (!arity(d, 2)) return std::nullopt;
  const auto &data = d.inputs[0], &idx = d.inputs[1];
  if (!movable(data.dtype) || !is_index_dtype(idx.dtype) || d.outputs[0].dtype != data.dtype)
    return std::nullopt;
  const int64_t r = static_cast<int64_t>(data.dims.size());
  int64_t axis = 0;
  if (r == 0 || !axis_in(d.node->attrs.get_int("axis", 0), r, axis)) return std::nullopt;
  std::vector<int64_t> want(data.dims.begin(), data.dims.begin() + axis);
  want.insert(want.end(), idx.dims.begin(), idx.dims.end());
  want.insert(want.end(), data.dims.begin() + axis + 1, data.dims.end());
  if (d.outputs[0].dims != want) return std::nullopt;
  GatherShape s;
  s.outer = ops::numel({data.dims.begin(), data.dims.begin() + axis});
  s.n = data.dims[static_cast<size_t>(axis)];
  s.inner = ops::numel({data.dims.begin() + axis + 1, data.dims.end()});
  s.ni = ops::numel(idx.dims);
  // Nothing valid to read on an empty axis (the reference fails for any index); an empty output reads
  // nothing.
  if (s.n == 0 && ops::numel(want) > 0) return std::nullopt;
  return s;
}

class GatherKernel final : public CudaKernel {
 public:
  GatherKernel(GatherShape s, DType data, DType index) : s_(s), data_(data), index_(index) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t total = out[0].numel();
    if (total == 0) return;
    dispatch_bits(dtype_size(data_), [&](auto u) {
      dispatch_index(index_, [&](auto ix) {
        using U = decltype(u);
        using I = decltype(ix);
        const U* src = static_cast<const U*>(in[0].data);
        const I* idx = static_cast<const I*>(in[1].data);
        U* dst = static_cast<U*>(out[0].data);
        if (fits32(total))
          gather_axis_kernel<U, I, uint32_t><<<grid_for(total), kThreads, 0, rc.stream>>>(
              src, idx, dst, static_cast<uint32_t>(total), static_cast<uint32_t>(s_.ni),
              static_cast<uint32_t>(s_.inner), s_.n);
        else
          gather_axis_kernel<U, I, int64_t>
              <<<grid_for(total), kThreads, 0, rc.stream>>>(src, idx, dst, total, s_.ni, s_.inner, s_.n);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }

 private:
  GatherShape s_;
  DType data_, index_;
};

// ======================================================================================= GatherElements
struct ElementsParams {
  int rank, axis;
  int64_t n;                   // data's size along the axis
  int64_t idims[kMaxRank];     // the index tensor's (and output's) dims
  int64_t dstrides[kMaxRank];  // data's strides
};

template <typename U, typename I, typename N>
__global__ void gather_elements_kernel(const U* data, const I* idx, U* out, N total, ElementsParams p) {
  const N step = static_cast<N>(gridDim.x) * blockDim.x;
  for (N i = static_cast<N>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    N t = i;
    int64_t off = 0;
#pragma unroll
    for (int k = kMaxRank - 1; k >= 0; --k) {
      if (k >= p.rank) continue;
      const N dk = static_cast<N>(p.idims[k]);
      const N q = t / dk;
      const int64_t c =
          k == p.axis ? clamped_index(idx, static_cast<int64_t>(i), p.n) : static_cast<int64_t>(t - q * dk);
      off += c * p.dstrides[k];
      t = q;
    }
    out[i] = data[off];
  }
}

std::optional<ElementsParams> elements_params(const LayerDesc& d) {
  if (!arity(d, 2)) return std::nullopt;
  const auto &data = d.inputs[0], &idx = d.inputs[1];
  if (!movable(data.dtype) || !is_index_dtype(idx.dtype) || d.outputs[0].dtype != data.dtype ||
      d.outputs[0].dims != idx.dims)
    return std::nullopt;
  const int64_t r = static_cast<int64_t>(data.dims.size());
  int64_t axis = 0;
  if (r == 0 || r > kMaxRank || static_cast<int64_t>(idx.dims.size()) != r ||
      !axis_in(d.node->attrs.get_int("axis", 0), r, axis))
    return std::nullopt;
  ElementsParams p{};
  p.rank = static_cast<int>(r);
  p.axis = static_cast<int>(axis);
  p.n = data.dims[static_cast<size_t>(axis)];
  const auto strides = ops::strides_of(data.dims);
  for (size_t k = 0; k < data.dims.size(); ++k) {
    // The reference fails when indices is larger than data off the axis: those reads would leave data.
    if (static_cast<int64_t>(k) != axis && idx.dims[k] > data.dims[k]) return std::nullopt;
    p.idims[k] = idx.dims[k];
    p.dstrides[k] = strides[k];
  }
  if (p.n == 0 && ops::numel(idx.dims) > 0) return std::nullopt;
  return p;
}

class GatherElementsKernel final : public CudaKernel {
 public:
  GatherElementsKernel(ElementsParams p, DType data, DType index) : p_(p), data_(data), index_(index) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t total = out[0].numel();
    if (total == 0) return;
    dispatch_bits(dtype_size(data_), [&](auto u) {
      dispatch_index(index_, [&](auto ix) {
        using U = decltype(u);
        using I = decltype(ix);
        const U* src = static_cast<const U*>(in[0].data);
        const I* idx = static_cast<const I*>(in[1].data);
        U* dst = static_cast<U*>(out[0].data);
        if (fits32(total))
          gather_elements_kernel<U, I, uint32_t>
              <<<grid_for(total), kThreads, 0, rc.stream>>>(src, idx, dst, static_cast<uint32_t>(total), p_);
        else
          gather_elements_kernel<U, I, int64_t>
              <<<grid_for(total), kThreads, 0, rc.stream>>>(src, idx, dst, total, p_);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }

 private:
  ElementsParams p_;
  DType data_, index_;
};

// ============================================================================================= GatherND
template <typename U, typename I, typename N>
__global__ void gather_nd_kernel(const U* data, const I* idx, U* out, N total, NdParams p) {
  const N step = static_cast<N>(gridDim.x) * blockDim.x;
  const N slice = static_cast<N>(p.slice), per_batch = static_cast<N>(p.per_batch);
  for (N i = static_cast<N>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const N t = i / slice, e = i - t * slice;
    out[i] = data[static_cast<int64_t>(t / per_batch) * p.block +
                  tuple_offset(idx, static_cast<int64_t>(t), p) + static_cast<int64_t>(e)];
  }
}

// The reference's shape rules (its failures become refusals); an empty addressed axis is refused too.
std::optional<NdParams> gather_nd_params(const LayerDesc& d) {
  if (!arity(d, 2)) return std::nullopt;
  const auto &data = d.inputs[0], &idx = d.inputs[1];
  if (!movable(data.dtype) || !is_index_dtype(idx.dtype) || d.outputs[0].dtype != data.dtype)
    return std::nullopt;
  const int64_t r = static_cast<int64_t>(data.dims.size()), q = static_cast<int64_t>(idx.dims.size());
  const int64_t b = d.node->attrs.get_int("batch_dims", 0);
  if (r < 1 || q < 1 || r > kMaxRank || b < 0 || b >= std::min(r, q)) return std::nullopt;
  const int64_t m = idx.dims.back();
  if (m < 1 || m > r - b) return std::nullopt;
  for (int64_t k = 0; k < b; ++k)
    if (data.dims[static_cast<size_t>(k)] != idx.dims[static_cast<size_t>(k)]) return std::nullopt;
  std::vector<int64_t> want(idx.dims.begin(), idx.dims.end() - 1);
  want.insert(want.end(), data.dims.begin() + b + m, data.dims.end());
  if (d.outputs[0].dims != want) return std::nullopt;
  NdParams p{};
  p.m = static_cast<int>(m);
  p.slice = ops::numel({data.dims.begin() + b + m, data.dims.end()});
  p.per_batch = ops::numel({idx.dims.begin() + b, idx.dims.end() - 1});
  p.block = ops::numel({data.dims.begin() + b, data.dims.end()});
  const auto strides = ops::strides_of(data.dims);
  for (int64_t k = 0; k < m; ++k) {
    p.dims[k] = data.dims[static_cast<size_t>(b + k)];
    p.strides[k] = strides[static_cast<size_t>(b + k)];
    if (p.dims[k] == 0 && ops::numel(want) > 0) return std::nullopt;  // no element to clamp to
  }
  return p;
}

class GatherNdKernel final : public CudaKernel {
 public:
  GatherNdKernel(NdParams p, DType data, DType index) : p_(p), data_(data), index_(index) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t total = out[0].numel();
    if (total == 0) return;
    dispatch_bits(dtype_size(data_), [&](auto u) {
      dispatch_index(index_, [&](auto ix) {
        using U = decltype(u);
        using I = decltype(ix);
        const U* src = static_cast<const U*>(in[0].data);
        const I* idx = static_cast<const I*>(in[1].data);
        U* dst = static_cast<U*>(out[0].data);
        if (fits32(total))
          gather_nd_kernel<U, I, uint32_t>
              <<<grid_for(total), kThreads, 0, rc.stream>>>(src, idx, dst, static_cast<uint32_t>(total), p_);
        else
          gather_nd_kernel<U, I, int64_t>
              <<<grid_for(total), kThreads, 0, rc.stream>>>(src, idx, dst, total, p_);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }

 private:
  NdParams p_;
  DType data_, index_;
};

// ========================================================================================= registration
KILN_REGISTER_KERNEL(factory(
    "cuda.gather", "Gather", [](const LayerDesc& d) { return gather_shape(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<GatherKernel>(*gather_shape(d), d.inputs[0].dtype, d.inputs[1].dtype);
    }));
KILN_REGISTER_KERNEL(factory(
    "cuda.gather", "GatherElements", [](const LayerDesc& d) { return elements_params(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<GatherElementsKernel>(*elements_params(d), d.inputs[0].dtype,
                                                    d.inputs[1].dtype);
    }));
KILN_REGISTER_KERNEL(factory(
    "cuda.gather", "GatherND", [](const LayerDesc& d) { return gather_nd_params(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<GatherNdKernel>(*gather_nd_params(d), d.inputs[0].dtype, d.inputs[1].dtype);
    }));

}  // namespace
}  // namespace kiln::cuda::indexing
