// CUDA ScatterND, ScatterElements and Scatter (cuda.scatter): the output is a copy of data, then every update
// is combined into the element its index addresses (reduction none, add, mul, max or min). Indices are read
// from device memory, wrapped and clamped (index_cuda.cuh says why).
//
// The reference applies updates in index order, so when two indices address the same element the later one
// wins (none) or the reductions happen in that order (which matters for float add/mul). Both are kept
// exactly, without atomics on the data:
//   ScatterElements: two indices can only collide on one "line" (all coordinates but the axis equal), so one
//     thread per line walks its indices in order.
//   ScatterND with a reduction: two tuples collide on a whole slice, element e with element e, so one thread
//     per slice element walks all tuples in order (parallel over the slice only).
//   ScatterND without: a first pass marks each addressed slice with the last tuple that addresses it
//     (atomicMax of the tuple number: order-independent, so deterministic), a second writes only the marked
//     tuple's slice, in parallel over every updated element.
// Reductions compute as the reference does: float16/bfloat16 in float, rounded once per update; integer add
// and mul wrap; bool adds as OR and multiplies as AND. Element types: any 1/2/4/8-byte dtype without a
// reduction; float, float16, bfloat16, double, int32, int64 and bool with one.
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/index_cuda.cuh"

namespace kiln::cuda::indexing {
namespace {

enum class Red { None, Add, Mul, Max, Min };

std::optional<Red> reduction_of(const LayerDesc& d) {
  const std::string r = d.node->attrs.get_string("reduction", "none");
  if (r == "none") return Red::None;
  if (d.node->op == "Scatter") return std::nullopt;  // the deprecated alias has no reduction
  if (r == "add") return Red::Add;
  if (r == "mul") return Red::Mul;
  if (r == "max") return Red::Max;
  if (r == "min") return Red::Min;
  return std::nullopt;
}

// Element a of the output combined with update b (S: the storage type; uint8_t stands for bool, the only
// 1-byte type a reduction takes).
template <typename S>
__device__ __forceinline__ S combine(Red r, S a, S b) {
  if (r == Red::None) return b;
  if constexpr (std::is_same_v<S, float> || std::is_same_v<S, __half> || std::is_same_v<S, __nv_bfloat16>) {
    const float x = to_float(a), y = to_float(b);
    const float v = r == Red::Add   ? x + y
                    : r == Red::Mul ? x * y
                    : r == Red::Max ? (x < y ? y : x)
                                    : (y < x ? y : x);  // std::max / std::min, as the reference
    return from_float<S>(v);
  } else if constexpr (std::is_same_v<S, double>) {
    return r == Red::Add ? a + b : r == Red::Mul ? a * b : r == Red::Max ? (a < b ? b : a) : (b < a ? b : a);
  } else if constexpr (sizeof(S) == 1) {
    const bool x = a != 0, y = b != 0;
    const bool v = r == Red::Add ? (x || y) : r == Red::Mul ? (x && y) : r == Red::Max ? (x || y) : (x && y);
    return static_cast<S>(v ? 1 : 0);
  } else {
    using W = std::make_unsigned_t<S>;  // wrap instead of overflowing
    if (r == Red::Add) return static_cast<S>(static_cast<W>(a) + static_cast<W>(b));
    if (r == Red::Mul) return static_cast<S>(static_cast<W>(a) * static_cast<W>(b));
    return r == Red::Max ? (a < b ? b : a) : (b < a ? b : a);
  }
}

bool reducible(DType t) {
  return t == DType::Float || t == DType::Float16 || t == DType::BFloat16 || t == DType::Double ||
         t == DType::Int32 || t == DType::Int64 || t == DType::Bool;
}

// Calls f(S{}): the element's bits without a reduction, its arithmetic type with one.
template <typename F>
void dispatch_scatter(DType t, Red r, F&& f) {
  if (r == Red::None) return dispatch_bits(dtype_size(t), f);
  switch (t) {
    case DType::Float:
      return f(float{});
    case DType::Float16:
      return f(__half{});
    case DType::BFloat16:
      return f(__nv_bfloat16{});
    case DType::Double:
      return f(double{});
    case DType::Int32:
      return f(int32_t{});
    case DType::Int64:
      return f(int64_t{});
    case DType::Bool:
      return f(uint8_t{});
    default:
      throw Error(std::string("CUDA scatter: no reduction for dtype ") + dtype_name(t));
  }
}

// out = data (unless the executor gave the output data's buffer).
void copy_data(const TensorView& data, const TensorView& out, cudaStream_t s) {
  if (data.data != out.data && out.nbytes() > 0)
    KILN_CUDA_CHECK(cudaMemcpyAsync(out.data, data.data, out.nbytes(), cudaMemcpyDeviceToDevice, s));
}

// Shared checks: data, indices, updates present, one output of data's dtype and shape, a known reduction
// the dtype takes.
std::optional<Red> scatter_common(const LayerDesc& d) {
  if (!arity(d, 3)) return std::nullopt;
  const auto &data = d.inputs[0], &idx = d.inputs[1], &upd = d.inputs[2];
  if (!movable(data.dtype) || !is_index_dtype(idx.dtype) || upd.dtype != data.dtype ||
      d.outputs[0].dtype != data.dtype || d.outputs[0].dims != data.dims)
    return std::nullopt;
  const auto r = reduction_of(d);
  if (!r || (*r != Red::None && !reducible(data.dtype))) return std::nullopt;
  return r;
}

// ============================================================================================ ScatterND
// One thread per slice element e, every tuple in order.
template <typename S, typename I>
__global__ void scatter_nd_ordered_kernel(S* out, const I* idx, const S* upd, int64_t tuples, NdParams p,
                                          Red r) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < p.slice; e += step)
    for (int64_t t = 0; t < tuples; ++t) {
      const int64_t o = tuple_offset(idx, t, p) + e;
      out[o] = combine(r, out[o], upd[t * p.slice + e]);
    }
}

// Pass 1 of reduction none: winner[slot] = the last tuple addressing that slice (winner starts at -1).
template <typename I>
__global__ void scatter_nd_mark_kernel(int32_t* winner, const I* idx, int64_t tuples, NdParams p) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < tuples; t += step)
    atomicMax(winner + tuple_offset(idx, t, p) / p.slice, static_cast<int32_t>(t));
}

// Pass 2: element i of the updates is written when its tuple is the winner of its slice.
template <typename U, typename I>
__global__ void scatter_nd_write_kernel(U* out, const I* idx, const U* upd, const int32_t* winner,
                                        int64_t total, NdParams p) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t t = i / p.slice, e = i - t * p.slice;
    const int64_t o = tuple_offset(idx, t, p);
    if (winner[o / p.slice] == static_cast<int32_t>(t)) out[o + e] = upd[i];
  }
}

struct NdPlan {
  NdParams p{};
  int64_t tuples = 0, slots = 0;  // index tuples; slices data holds (winner entries)
  Red red = Red::None;
  bool marked = false;  // the two-pass path of reduction none
};

// The marks take 4 bytes per slice of data; past this many slices the ordered path needs no workspace.
constexpr int64_t kMaxMarkedSlots = int64_t{1} << 26;

std::optional<NdPlan> scatter_nd_plan(const LayerDesc& d) {
  const auto red = scatter_common(d);
  if (!red) return std::nullopt;
  const auto &data = d.inputs[0], &idx = d.inputs[1], &upd = d.inputs[2];
  const int64_t r = static_cast<int64_t>(data.dims.size()), q = static_cast<int64_t>(idx.dims.size());
  if (r < 1 || q < 1 || r > kMaxRank) return std::nullopt;
  const int64_t m = idx.dims.back();
  if (m < 1 || m > r) return std::nullopt;
  std::vector<int64_t> want(idx.dims.begin(), idx.dims.end() - 1);
  want.insert(want.end(), data.dims.begin() + m, data.dims.end());
  if (upd.dims != want) return std::nullopt;
  NdPlan plan;
  plan.red = *red;
  plan.tuples = ops::numel({idx.dims.begin(), idx.dims.end() - 1});
  NdParams& p = plan.p;
  p.m = static_cast<int>(m);
  p.slice = ops::numel({data.dims.begin() + m, data.dims.end()});
  p.per_batch = plan.tuples;
  p.block = ops::numel(data.dims);
  const auto strides = ops::strides_of(data.dims);
  for (int64_t k = 0; k < m; ++k) {
    p.dims[k] = data.dims[static_cast<size_t>(k)];
    p.strides[k] = strides[static_cast<size_t>(k)];
    if (p.dims[k] == 0 && plan.tuples > 0 && p.slice > 0) return std::nullopt;  // no element to clamp to
  }
  plan.slots = p.slice > 0 ? p.block / p.slice : 0;
  plan.marked = plan.red == Red::None && plan.tuples < (int64_t{1} << 31) && plan.slots <= kMaxMarkedSlots;
  return plan;
}

class ScatterNdKernel final : public CudaKernel {
 public:
  ScatterNdKernel(NdPlan plan, DType data, DType index) : plan_(plan), data_(data), index_(index) {}
  size_t workspace_bytes() const override {
    return plan_.marked ? static_cast<size_t>(plan_.slots) * sizeof(int32_t) : 0;
  }
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    copy_data(in[0], out[0], rc.stream);
    const NdParams& p = plan_.p;
    if (plan_.tuples == 0 || p.slice == 0) return;
    dispatch_scatter(data_, plan_.red, [&](auto s) {
      dispatch_index(index_, [&](auto ix) {
        using S = decltype(s);
        using I = decltype(ix);
        S* o = static_cast<S*>(out[0].data);
        const I* idx = static_cast<const I*>(in[1].data);
        const S* upd = static_cast<const S*>(in[2].data);
        if (!plan_.marked) {
          scatter_nd_ordered_kernel<S, I>
              <<<grid_for(p.slice), kThreads, 0, rc.stream>>>(o, idx, upd, plan_.tuples, p, plan_.red);
          KILN_CUDA_CHECK_LAUNCH();
          return;
        }
        auto* winner = static_cast<int32_t*>(rc.workspace);
        KILN_CUDA_CHECK(cudaMemsetAsync(winner, 0xFF, workspace_bytes(), rc.stream));  // every entry -1
        scatter_nd_mark_kernel<I>
            <<<grid_for(plan_.tuples), kThreads, 0, rc.stream>>>(winner, idx, plan_.tuples, p);
        KILN_CUDA_CHECK_LAUNCH();
        const int64_t total = plan_.tuples * p.slice;
        scatter_nd_write_kernel<S, I>
            <<<grid_for(total), kThreads, 0, rc.stream>>>(o, idx, upd, winner, total, p);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }

 private:
  NdPlan plan_;
  DType data_, index_;
};

// ======================================================================================= ScatterElements
struct LineParams {
  int rank, axis;
  int64_t n;  // data's size along the axis
  int64_t idims[kMaxRank], istrides[kMaxRank], dstrides[kMaxRank];
};

// One thread per line of the index tensor (every coordinate but the axis), its indices in order.
template <typename S, typename I>
__global__ void scatter_elements_kernel(S* out, const I* idx, const S* upd, int64_t lines, LineParams p,
                                        Red r) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; line < lines;
       line += step) {
    int64_t t = line, ib = 0, db = 0;
    for (int k = p.rank - 1; k >= 0; --k) {
      if (k == p.axis) continue;
      const int64_t q = t / p.idims[k], c = t - q * p.idims[k];
      ib += c * p.istrides[k];
      db += c * p.dstrides[k];
      t = q;
    }
    const int64_t len = p.idims[p.axis], is = p.istrides[p.axis], ds = p.dstrides[p.axis];
    for (int64_t j = 0; j < len; ++j) {
      const int64_t ii = ib + j * is;
      const int64_t o = db + clamped_index(idx, ii, p.n) * ds;
      out[o] = combine(r, out[o], upd[ii]);
    }
  }
}

struct ElementsPlan {
  LineParams p{};
  int64_t lines = 0;
  Red red = Red::None;
};

std::optional<ElementsPlan> scatter_elements_plan(const LayerDesc& d) {
  const auto red = scatter_common(d);
  if (!red) return std::nullopt;
  const auto &data = d.inputs[0], &idx = d.inputs[1], &upd = d.inputs[2];
  const int64_t r = static_cast<int64_t>(data.dims.size());
  int64_t axis = 0;
  if (r == 0 || r > kMaxRank || static_cast<int64_t>(idx.dims.size()) != r || upd.dims != idx.dims ||
      !axis_in(d.node->attrs.get_int("axis", 0), r, axis))
    return std::nullopt;
  ElementsPlan plan;
  plan.red = *red;
  LineParams& p = plan.p;
  p.rank = static_cast<int>(r);
  p.axis = static_cast<int>(axis);
  p.n = data.dims[static_cast<size_t>(axis)];
  const auto ds = ops::strides_of(data.dims), is = ops::strides_of(idx.dims);
  for (size_t k = 0; k < data.dims.size(); ++k) {
    // The reference fails when indices is larger than data off the axis: those writes would leave data.
    if (static_cast<int64_t>(k) != axis && idx.dims[k] > data.dims[k]) return std::nullopt;
    p.idims[k] = idx.dims[k];
    p.istrides[k] = is[k];
    p.dstrides[k] = ds[k];
  }
  const int64_t len = idx.dims[static_cast<size_t>(axis)];
  plan.lines = len > 0 ? ops::numel(idx.dims) / len : 0;
  if (p.n == 0 && ops::numel(idx.dims) > 0) return std::nullopt;
  return plan;
}

class ScatterElementsKernel final : public CudaKernel {
 public:
  ScatterElementsKernel(ElementsPlan plan, DType data, DType index)
      : plan_(plan), data_(data), index_(index) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    copy_data(in[0], out[0], rc.stream);
    if (plan_.lines == 0) return;
    dispatch_scatter(data_, plan_.red, [&](auto s) {
      dispatch_index(index_, [&](auto ix) {
        using S = decltype(s);
        using I = decltype(ix);
        scatter_elements_kernel<S, I><<<grid_for(plan_.lines), kThreads, 0, rc.stream>>>(
            static_cast<S*>(out[0].data), static_cast<const I*>(in[1].data),
            static_cast<const S*>(in[2].data), plan_.lines, plan_.p, plan_.red);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }

 private:
  ElementsPlan plan_;
  DType data_, index_;
};

// ========================================================================================= registration
KILN_REGISTER_KERNEL(factory(
    "cuda.scatter", "ScatterND", [](const LayerDesc& d) { return scatter_nd_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<ScatterNdKernel>(*scatter_nd_plan(d), d.inputs[0].dtype, d.inputs[1].dtype);
    }));
KernelFactory scatter_elements_factory(const std::string& op) {
  return factory(
      "cuda.scatter", op, [](const LayerDesc& d) { return scatter_elements_plan(d).has_value(); },
      [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
        return std::make_unique<ScatterElementsKernel>(*scatter_elements_plan(d), d.inputs[0].dtype,
                                                       d.inputs[1].dtype);
      });
}
KILN_REGISTER_KERNEL(scatter_elements_factory("ScatterElements"));
KILN_REGISTER_KERNEL(scatter_elements_factory("Scatter"));

}  // namespace
}  // namespace kiln::cuda::indexing
