// kiln — CUDA reductions, fp32 / fp16 / bf16 in, float accumulation, rounded once on store:
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
// Each op: init / add(state, value, index) / combine / store (finalizes into the output element).
enum class Pre : int { None, Abs, Square };
enum class Post : int { None, Mean, Sqrt, Log };

// Sum, Mean, L1, L2, SumSquare, LogSum: a sum of pre(x), then post(sum).
struct AdditiveOp {
  Pre pre;
  Post post;
  float count;  // Mean's divisor
  __device__ float init() const { return 0.f; }
  __device__ void add(float& s, float v, long long) const {
    s += pre == Pre::Abs ? fabsf(v) : pre == Pre::Square ? v * v : v;
  }
  __device__ void combine(float& a, float b) const { a += b; }
  template <class T>
  __device__ void store(void* y, int64_t o, float s) const {
    const float v = post == Post::Mean   ? s / count
                    : post == Post::Sqrt ? sqrtf(s)
                    : post == Post::Log  ? logf(s)
                                         : s;
    static_cast<T*>(y)[o] = from_float<T>(v);
  }
};

struct ProdOp {
  __device__ float init() const { return 1.f; }
  __device__ void add(float& s, float v, long long) const { s *= v; }
  __device__ void combine(float& a, float b) const { a *= b; }
  template <class T>
  __device__ void store(void* y, int64_t o, float s) const {
    static_cast<T*>(y)[o] = from_float<T>(s);
  }
};

template <bool is_max>
struct ExtremumOp {
  __device__ float init() const { return is_max ? -INFINITY : INFINITY; }
  __device__ void add(float& s, float v, long long) const { s = is_max ? fmaxf(s, v) : fminf(s, v); }
  __device__ void combine(float& a, float b) const { a = is_max ? fmaxf(a, b) : fminf(a, b); }
  template <class T>
  __device__ void store(void* y, int64_t o, float s) const {
    static_cast<T*>(y)[o] = from_float<T>(s);
  }
};

struct LogSumExpOp : MaxExpSumOp {
  __device__ void add(MaxExpSum& s, float v, long long) const { max_exp_sum_add(s, v); }
  template <class T>
  __device__ void store(void* y, int64_t o, MaxExpSum s) const {
    static_cast<T*>(y)[o] = from_float<T>(s.m + logf(s.s));
  }
};

struct ArgOp : ArgBestOp {
  template <class T>
  __device__ void store(void* y, int64_t o, ArgBest s) const {
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
      for (int64_t r = lane; r < p.n_red; r += LANES) op.add(s, to_float(base[p.red_offset(r)]), r);
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
      for (int64_t r = threadIdx.y; r < p.n_red; r += BY) op.add(s, to_float(base[p.red_offset(r)]), r);
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

// One float input (and the optional constant axes), one output of the same dtype, a plan that fits; Min and
// Max over an empty axis are an error in the reference, so they are refused.
std::optional<Plan> reduce_plan(const backend::LayerDesc& d, Red red) {
  if (d.inputs.empty() || d.inputs.size() > 2 || d.outputs.size() != 1) return std::nullopt;
  const auto& x = d.inputs[0];
  if (!x.present || !is_cuda_float(x.dtype) || !d.outputs[0].present || d.outputs[0].dtype != x.dtype)
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
    dispatch_float_type(in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      const void* x = in[0].data;
      void* y = out[0].data;
      const float count = static_cast<float>(plan_.n_red);
      switch (red_) {
        case Red::Sum:
          return launch<T>(plan_, AdditiveOp{Pre::None, Post::None, count}, x, y, rc.stream);
        case Red::Mean:
          return launch<T>(plan_, AdditiveOp{Pre::None, Post::Mean, count}, x, y, rc.stream);
        case Red::L1:
          return launch<T>(plan_, AdditiveOp{Pre::Abs, Post::None, count}, x, y, rc.stream);
        case Red::L2:
          return launch<T>(plan_, AdditiveOp{Pre::Square, Post::Sqrt, count}, x, y, rc.stream);
        case Red::SumSquare:
          return launch<T>(plan_, AdditiveOp{Pre::Square, Post::None, count}, x, y, rc.stream);
        case Red::LogSum:
          return launch<T>(plan_, AdditiveOp{Pre::None, Post::Log, count}, x, y, rc.stream);
        case Red::Prod:
          return launch<T>(plan_, ProdOp{}, x, y, rc.stream);
        case Red::Max:
          return launch<T>(plan_, ExtremumOp<true>{}, x, y, rc.stream);
        case Red::Min:
          return launch<T>(plan_, ExtremumOp<false>{}, x, y, rc.stream);
        case Red::LogSumExp:
          return launch<T>(plan_, LogSumExpOp{}, x, y, rc.stream);
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

// ArgMax / ArgMin: one float input, int64 output, a valid axis of non-zero extent.
std::optional<Plan> arg_plan(const backend::LayerDesc& d) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1) return std::nullopt;
  const auto& x = d.inputs[0];
  if (!x.present || !is_cuda_float(x.dtype) || !d.outputs[0].present || d.outputs[0].dtype != DType::Int64)
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
  ArgKernel(bool is_max, bool last, const Plan& plan) : op_{{is_max, last}}, plan_(plan) {}
  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    dispatch_float_type(in[0].dtype, [&](auto tag) {
      launch<decltype(tag)>(plan_, op_, in[0].data, out[0].data, rc.stream);
    });
  }
  std::string describe() const override { return plan_.rows ? "rows" : "columns"; }

 private:
  ArgOp op_;
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
