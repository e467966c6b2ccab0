// kiln — CUDA reductions, fp32 / fp16 / bf16 in with float accumulation, fp64 in with double accumulation,
// rounded once on store:
//   cuda.reduce     ReduceSum / Mean / Max / Min / Prod / L1 / L2 / LogSum / LogSumExp / SumSquare
//   cuda.argreduce  ArgMax / ArgMin (int64 out; keepdims, select_last_index)
//
// Axes come from the attribute (older opsets) or from a constant second input (ReduceSum 13+, all 18+);
// none given means all axes, unless noop_with_empty_axes (then each output is f(x) of one element, as in the
// reference). At create time the input is viewed as kept and reduced dims: size-1 dims dropped, neighbours of
// the same kind merged, so any axis set works without a transpose. When the innermost merged dim is reduced,
// a warp (short rows) or a block (long rows) reduces each output over contiguous elements; otherwise each
// thread column owns one output (adjacent outputs are adjacent in memory) and BY threads split its elements.
// LogSumExp keeps a running (max, sum of exp) so large inputs do not overflow.
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/reduce_cuda.cuh"
#include "device/kernel.h"

namespace kiln::cuda {
namespace {

using namespace rowred;

constexpr int kMaxDims = 8;

// Input offsets of output o (kept dims) and of reduction index r (reduced dims), both row-major.
struct Plan {
  int nk = 0, nr = 0;
  int64_t kdim[kMaxDims] = {}, kstride[kMaxDims] = {};
  int64_t rdim[kMaxDims] = {}, rstride[kMaxDims] = {};
  int64_t n_out = 1, n_red = 1;
  bool rows = false;  // the innermost merged dim is reduced: each output's elements are contiguous

  __device__ int64_t kept_offset(int64_t o) const {
    int64_t off = 0;
    for (int k = nk - 1; k >= 0; --k) {
      off += (o % kdim[k]) * kstride[k];
      o /= kdim[k];
    }
    return off;
  }
  __device__ int64_t red_offset(int64_t r) const {
    if (nr == 1) return r * rstride[0];
    int64_t off = 0;
    for (int k = nr - 1; k >= 0; --k) {
      off += (r % rdim[k]) * rstride[k];
      r /= rdim[k];
    }
    return off;
  }
};

// nullopt when a merged view needs more than kMaxDims kept or reduced dims.
std::optional<Plan> make_plan(const std::vector<int64_t>& dims, const std::vector<bool>& reduced) {
  struct Group {
    int64_t size, stride;
    bool red;
  };
  std::vector<Group> groups;
  int64_t stride = 1;
  std::vector<int64_t> strides(dims.size());
  for (size_t k = dims.size(); k-- > 0;) {
    strides[k] = stride;
    stride *= dims[k];
  }
  Plan p;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (reduced[k])
      p.n_red *= dims[k];
    else
      p.n_out *= dims[k];
    if (dims[k] == 1) continue;  // neither kept nor reduced: no index moves along it
    // Dims of size 1 in between do not break contiguity: the outer neighbour's stride is size * stride.
    if (!groups.empty() && groups.back().red == reduced[k]) {
      groups.back().size *= dims[k];
      groups.back().stride = strides[k];
    } else {
      groups.push_back({dims[k], strides[k], reduced[k]});
    }
  }
  for (const Group& g : groups) {
    int& n = g.red ? p.nr : p.nk;
    if (n == kMaxDims) return std::nullopt;
    (g.red ? p.rdim : p.kdim)[n] = g.size;
    (g.red ? p.rstride : p.kstride)[n] = g.stride;
    ++n;
  }
  p.rows = !groups.empty() && groups.back().red;
  return p;
}

// ------------------------------------------------------------------------------------ reduction ops
// Each op: init / add(state, value, index) / combine / store (finalizes into the output element). A is the
// accumulator: float for fp32 / fp16 / bf16 data, double for float64 data.
enum class Pre : int { None, Abs, Square };
enum class Post : int { None, Mean, Sqrt, Log };

template <class A>
__device__ __forceinline__ A acc_abs(A v) {
  return v < A(0) ? -v : v;
}
__device__ __forceinline__ float acc_sqrt(float v) {
  return sqrtf(v);
}
__device__ __forceinline__ double acc_sqrt(double v) {
  return sqrt(v);
}
__device__ __forceinline__ float acc_log(float v) {
  return logf(v);
}
__device__ __forceinline__ double acc_log(double v) {
  return log(v);
}

// The element as the accumulator type, and the accumulator rounded once into the output's type.
template <class A, class T>
__device__ __forceinline__ A load_acc(T v) {
  if constexpr (std::is_same_v<T, double>)
    return v;
  else
    return to_float(v);
}
template <class T, class A>
__device__ __forceinline__ void store_acc(void* y, int64_t o, A v) {
  if constexpr (std::is_same_v<T, double>)
    static_cast<double*>(y)[o] = v;
  else
    static_cast<T*>(y)[o] = from_float<T>(static_cast<float>(v));
}

// Sum, Mean, L1, L2, SumSquare, LogSum: a sum of pre(x), then post(sum).
template <class A>
struct AdditiveOp {
  using Acc = A;
  Pre pre;
  Post post;
  A count;  // Mean's divisor
  __device__ A init() const { return A(0); }
  __device__ void add(A& s, A v, long long) const {
    s += pre == Pre::Abs ? acc_abs(v) : pre == Pre::Square ? v * v : v;
  }
  __device__ void combine(A& a, A b) const { a += b; }
  template <class T>
  __device__ void store(void* y, int64_t o, A s) const {
    const A v = post == Post::Mean   ? s / count
                : post == Post::Sqrt ? acc_sqrt(s)
                : post == Post::Log  ? acc_log(s)
                                     : s;
    store_acc<T>(y, o, v);
  }
};

template <class A>
struct ProdOp {
  using Acc = A;
  __device__ A init() const { return A(1); }
  __device__ void add(A& s, A v, long long) const { s *= v; }
  __device__ void combine(A& a, A b) const { a *= b; }
  template <class T>
  __device__ void store(void* y, int64_t o, A s) const {
    store_acc<T>(y, o, s);
  }
};

template <class A, bool is_max>
struct ExtremumOp {
  using Acc = A;
  __device__ A init() const { return A(is_max ? -INFINITY : INFINITY); }
  __device__ void add(A& s, A v, long long) const { s = is_max ? acc_max(s, v) : acc_min(s, v); }
  __device__ void combine(A& a, A b) const { a = is_max ? acc_max(a, b) : acc_min(a, b); }
  template <class T>
  __device__ void store(void* y, int64_t o, A s) const {
    store_acc<T>(y, o, s);
  }
};

template <class A>
struct LogSumExpOp : MaxExpSumOpT<A> {
  using Acc = A;
  __device__ void add(MaxExpSumT<A>& s, A v, long long) const { max_exp_sum_add(s, v); }
  template <class T>
  __device__ void store(void* y, int64_t o, MaxExpSumT<A> s) const {
    store_acc<T>(y, o, s.m + acc_log(s.s));
  }
};

template <class A>
struct ArgOp : ArgBestOpT<A> {
  using Acc = A;
  template <class T>
  __device__ void store(void* y, int64_t o, ArgBestT<A> s) const {
    static_cast<long long*>(y)[o] = s.i;
  }
};

// ------------------------------------------------------------------------------------ kernels
// Rows: a group of LANES threads per output, striding over its contiguous(-ish) elements.
template <class T, class Op, int LANES>
__global__ void __launch_bounds__(kBlock)
    reduce_rows_kernel(const T* __restrict__ x, void* y, Plan p, Op op) {
  constexpr int kGroups = kBlock / LANES;
  const int group = threadIdx.x / LANES, lane = threadIdx.x % LANES;
  // o0 is uniform over the block, so every thread takes part in each group_reduce.
  for (int64_t o0 = static_cast<int64_t>(blockIdx.x) * kGroups; o0 < p.n_out;
       o0 += static_cast<int64_t>(gridDim.x) * kGroups) {
    const int64_t o = o0 + group;
    auto s = op.init();
    if (o < p.n_out) {
      const T* base = x + p.kept_offset(o);
      for (int64_t r = lane; r < p.n_red; r += LANES)
        op.add(s, load_acc<typename Op::Acc>(base[p.red_offset(r)]), r);
    }
    s = group_reduce<LANES>(s, op);
    if (lane == 0 && o < p.n_out) op.template store<T>(y, o, s);
  }
}

// Columns: BX adjacent outputs per block, BY threads splitting each output's elements.
template <class T, class Op, int BY>
__global__ void __launch_bounds__(kBlock)
    reduce_columns_kernel(const T* __restrict__ x, void* y, Plan p, Op op) {
  constexpr int BX = kBlock / BY;
  for (int64_t t = blockIdx.x; t * BX < p.n_out; t += gridDim.x) {  // uniform over the block
    const int64_t o = t * BX + threadIdx.x;
    auto s = op.init();
    if (o < p.n_out) {
      const T* base = x + p.kept_offset(o);
      for (int64_t r = threadIdx.y; r < p.n_red; r += BY)
        op.add(s, load_acc<typename Op::Acc>(base[p.red_offset(r)]), r);
    }
    s = column_reduce<BY>(s, op);
    if (threadIdx.y == 0 && o < p.n_out) op.template store<T>(y, o, s);
  }
}

// Rows of at least this many elements get a whole block each; shorter ones a warp.
constexpr int64_t kBlockRow = 1024;
// Columns with at least this many elements are split over 8 threads.
constexpr int64_t kSplitColumn = 32;

template <class T, class Op>
void launch(const Plan& p, const Op& op, const void* x, void* y, cudaStream_t stream) {
  if (p.n_out <= 0) return;
  const T* xt = static_cast<const T*>(x);
  if (p.rows && p.n_red >= kBlockRow) {
    reduce_rows_kernel<T, Op, kBlock><<<grid_for_units(p.n_out), kBlock, 0, stream>>>(xt, y, p, op);
  } else if (p.rows) {
    constexpr int kGroups = kBlock / 32;
    reduce_rows_kernel<T, Op, 32>
        <<<grid_for_units((p.n_out + kGroups - 1) / kGroups), kBlock, 0, stream>>>(xt, y, p, op);
  } else if (p.n_red >= kSplitColumn) {
    constexpr int BY = 8, BX = kBlock / BY;
    reduce_columns_kernel<T, Op, BY>
        <<<grid_for_units((p.n_out + BX - 1) / BX), dim3(BX, BY), 0, stream>>>(xt, y, p, op);
  } else {
    reduce_columns_kernel<T, Op, 1>
        <<<grid_for_units((p.n_out + kBlock - 1) / kBlock), dim3(kBlock, 1), 0, stream>>>(xt, y, p, op);
  }
  KILN_CUDA_CHECK_LAUNCH();
}

// ------------------------------------------------------------------------------------ host side
// The data types these kernels take: the CUDA float types and float64.
bool is_reduce_type(DType t) {
  return is_cuda_float(t) || t == DType::Double;
}

// Calls f(T{}, A{}): T the element's device type, A its accumulator.
template <typename F>
void dispatch_reduce_type(DType t, F&& f) {
  if (t == DType::Double) return f(double{}, double{});
  dispatch_float_type(t, [&](auto tag) { f(tag, float{}); });
}

enum class Red { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

struct RedSpec {
  const char* op;
  Red red;
};
constexpr RedSpec kReductions[] = {
    {"ReduceSum", Red::Sum},
    {"ReduceMean", Red::Mean},
    {"ReduceMax", Red::Max},
    {"ReduceMin", Red::Min},
    {"ReduceProd", Red::Prod},
    {"ReduceL1", Red::L1},
    {"ReduceL2", Red::L2},
    {"ReduceLogSum", Red::LogSum},
    {"ReduceLogSumExp", Red::LogSumExp},
    {"ReduceSumSquare", Red::SumSquare},
};

// Which input dims are reduced, from the axes attribute or the constant axes input; nullopt when the axes
// are not known at build time or are invalid (out of range, repeated).
std::optional<std::vector<bool>> reduced_dims(const backend::LayerDesc& d) {
  const int64_t rank = static_cast<int64_t>(d.inputs[0].dims.size());
  std::vector<int64_t> axes;
  if (d.inputs.size() > 1 && d.inputs[1].present) {
    const TensorData* c = d.inputs[1].constant;
    if (!c || c->rank() > 1) return std::nullopt;
    for (int64_t i = 0; i < c->numel(); ++i) axes.push_back(static_cast<int64_t>(c->as_double(i)));
  } else {
    axes = d.node->attrs.get_ints("axes");
  }
  const bool noop = d.node->attrs.get_int("noop_with_empty_axes", 0) != 0;
  std::vector<bool> red(static_cast<size_t>(rank), axes.empty() && !noop);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) return std::nullopt;
    if (a < 0) a += rank;
    if (red[a]) return std::nullopt;
    red[a] = true;
  }
  return red;
}

// One float input (fp32 / fp16 / bf16 / fp64; and the optional constant axes), one output of the same dtype,
// a plan that fits; Min and Max over an empty axis are an error in the reference, so they are refused.
std::optional<Plan> reduce_plan(const backend::LayerDesc& d, Red red) {
  if (d.inputs.empty() || d.inputs.size() > 2 || d.outputs.size() != 1) return std::nullopt;
  const auto& x = d.inputs[0];
  if (!x.present || !is_reduce_type(x.dtype) || !d.outputs[0].present || d.outputs[0].dtype != x.dtype)
    return std::nullopt;
  for (int64_t v : x.dims)
    if (v < 0) return std::nullopt;
  const auto reduced = reduced_dims(d);
  if (!reduced) return std::nullopt;
  auto p = make_plan(x.dims, *reduced);
  if (!p) return std::nullopt;
  if ((red == Red::Max || red == Red::Min) && p->n_red == 0 && p->n_out > 0) return std::nullopt;
  return p;
}

class ReduceKernel final : public CudaKernel {
 public:
  ReduceKernel(Red red, const Plan& plan) : red_(red), plan_(plan) {}
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    dispatch_reduce_type(in[0].dtype, [&](auto tag, auto acc) {
      using T = decltype(tag);
      using A = decltype(acc);
      const void* x = in[0].data;
      void* y = out[0].data;
      const A count = static_cast<A>(plan_.n_red);
      switch (red_) {
        case Red::Sum:
          return launch<T>(plan_, AdditiveOp<A>{Pre::None, Post::None, count}, x, y, rc.stream);
        case Red::Mean:
          return launch<T>(plan_, AdditiveOp<A>{Pre::None, Post::Mean, count}, x, y, rc.stream);
        case Red::L1:
          return launch<T>(plan_, AdditiveOp<A>{Pre::Abs, Post::None, count}, x, y, rc.stream);
        case Red::L2:
          return launch<T>(plan_, AdditiveOp<A>{Pre::Square, Post::Sqrt, count}, x, y, rc.stream);
        case Red::SumSquare:
          return launch<T>(plan_, AdditiveOp<A>{Pre::Square, Post::None, count}, x, y, rc.stream);
        case Red::LogSum:
          return launch<T>(plan_, AdditiveOp<A>{Pre::None, Post::Log, count}, x, y, rc.stream);
        case Red::Prod:
          return launch<T>(plan_, ProdOp<A>{}, x, y, rc.stream);
        case Red::Max:
          return launch<T>(plan_, ExtremumOp<A, true>{}, x, y, rc.stream);
        case Red::Min:
          return launch<T>(plan_, ExtremumOp<A, false>{}, x, y, rc.stream);
        case Red::LogSumExp:
          return launch<T>(plan_, LogSumExpOp<A>{}, x, y, rc.stream);
      }
    });
  }
  std::string describe() const override { return plan_.rows ? "rows" : "columns"; }

 private:
  Red red_;
  Plan plan_;
};

backend::KernelFactory reduce_factory(const RedSpec& spec) {
  const Red red = spec.red;
  return {.name = "cuda.reduce",
          .device = "cuda",
          .op = spec.op,
          .domain = "",
          .priority = 10,
          .supports = [red](const backend::LayerDesc& d) { return reduce_plan(d, red).has_value(); },
          .create = [red](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            const auto p = reduce_plan(d, red);
            if (!p) throw Error("cuda.reduce: layer not supported");
            return std::make_unique<ReduceKernel>(red, *p);
          }};
}

// ArgMax / ArgMin: one float input (fp32 / fp16 / bf16 / fp64), int64 output, a valid axis of non-zero
// extent.
std::optional<Plan> arg_plan(const backend::LayerDesc& d) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1) return std::nullopt;
  const auto& x = d.inputs[0];
  if (!x.present || !is_reduce_type(x.dtype) || !d.outputs[0].present || d.outputs[0].dtype != DType::Int64)
    return std::nullopt;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = d.node->attrs.get_int("axis", 0);
  if (rank == 0 || axis < -rank || axis >= rank) return std::nullopt;
  if (axis < 0) axis += rank;
  for (int64_t v : x.dims)
    if (v < 0) return std::nullopt;
  if (x.dims[axis] == 0) return std::nullopt;  // the reference's error
  std::vector<bool> reduced(static_cast<size_t>(rank), false);
  reduced[axis] = true;
  return make_plan(x.dims, reduced);
}

class ArgKernel final : public CudaKernel {
 public:
  ArgKernel(bool is_max, bool last, const Plan& plan) : is_max_(is_max), last_(last), plan_(plan) {}
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    dispatch_reduce_type(in[0].dtype, [&](auto tag, auto acc) {
      const ArgOp<decltype(acc)> op{{is_max_, last_}};
      launch<decltype(tag)>(plan_, op, in[0].data, out[0].data, rc.stream);
    });
  }
  std::string describe() const override { return plan_.rows ? "rows" : "columns"; }

 private:
  bool is_max_, last_;
  Plan plan_;
};

backend::KernelFactory arg_factory(const char* op, bool is_max) {
  return {.name = "cuda.argreduce",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = [](const backend::LayerDesc& d) { return arg_plan(d).has_value(); },
          .create = [is_max](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            const auto p = arg_plan(d);
            if (!p) throw Error("cuda.argreduce: layer not supported");
            const bool last = d.node->attrs.get_int("select_last_index", 0) != 0;
            return std::make_unique<ArgKernel>(is_max, last, *p);
          }};
}

KILN_REGISTER_KERNEL(reduce_factory(kReductions[0]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[1]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[2]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[3]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[4]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[5]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[6]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[7]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[8]));
KILN_REGISTER_KERNEL(reduce_factory(kReductions[9]));
KILN_REGISTER_KERNEL(arg_factory("ArgMax", true));
KILN_REGISTER_KERNEL(arg_factory("ArgMin", false));

}  // namespace
}  // namespace kiln::cuda
