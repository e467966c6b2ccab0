// cuda.elementwise: broadcasting binary arithmetic (Add Sub Mul Div Pow Max Min), unary math and activations,
// Clip; cuda.cast: Cast/CastLike between float, float16 and bfloat16.
//
// Every kernel loads its element type, computes in float and rounds once when storing, as the reference does
// for float16/bfloat16. Binary ops are planned on the host into one of four shapes of work:
//   same     — both operands have the output's layout: flat, 16-byte vector loads;
//   value    — one operand is a constant scalar read at create time and passed by value;
//   blocked  — one operand varies only along one contiguous run of output axes ([C,1,1] per-channel, [W]
//              rows, a device scalar): output viewed as [outer, mid, inner], operand index (i / inner) % mid;
//   general  — numpy broadcasting of any rank <= 8, per-operand strides (0 on broadcast axes), after merging
//              adjacent axes that walk both operands contiguously.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "ops/activation.h"
#include "ops/util.h"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;
constexpr int kMaxRank = 8;

bool aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

// 16 bytes of elements: one vector load/store.
template <typename T>
struct alignas(16) Pack {
  static constexpr int kCount = 16 / static_cast<int>(sizeof(T));
  T v[kCount];
};

// Grid for `work` independent items, at least one thread each (grid-stride loops cover any remainder).
unsigned int grid_for(int64_t work) {
  return blocks_for(work, kThreads);
}

// ================================================================================================ unary
// Activations are ops/activation.h's formulas; the other unary ops are math.
template <ops::Activation A>
struct ActivationFn {
  float alpha, beta;  // the activation's attributes
  __device__ __forceinline__ float operator()(float x) const {
    return ops::activate<A, CudaMath>(x, alpha, beta);
  }
};

enum class MathOp { Exp, Log, Neg, Abs, Sqrt, Reciprocal, Erf, Clip, Floor, Ceil, Round, Sign, Sin, Cos };

// The reference's formulas (src/ops/elementwise_unary.cpp), comparisons kept as written so NaN and -0 behave
// the same. alpha/beta are Clip's bounds.
template <MathOp op>
struct MathFn {
  float alpha, beta;
  __device__ __forceinline__ float operator()(float x) const {
    if constexpr (op == MathOp::Exp)
      return expf(x);
    else if constexpr (op == MathOp::Log)
      return logf(x);
    else if constexpr (op == MathOp::Neg)
      return -x;
    else if constexpr (op == MathOp::Abs)
      return x < 0.f ? -x : x;
    else if constexpr (op == MathOp::Sqrt)
      return sqrtf(x);
    else if constexpr (op == MathOp::Reciprocal)
      return 1.f / x;
    else if constexpr (op == MathOp::Erf)
      return erff(x);
    else if constexpr (op == MathOp::Clip)
      return x < alpha ? alpha : (x > beta ? beta : x);
    else if constexpr (op == MathOp::Floor)
      return floorf(x);
    else if constexpr (op == MathOp::Ceil)
      return ceilf(x);
    else if constexpr (op == MathOp::Round)
      return rintf(x);  // half to even, as std::nearbyint
    else if constexpr (op == MathOp::Sign)
      return static_cast<float>((x > 0.f) - (x < 0.f));
    else if constexpr (op == MathOp::Sin)
      return sinf(x);
    else
      return cosf(x);
  }
};

// y[i] = f(x[i]); `vec`: both pointers 16-byte aligned, so the bulk goes in Packs and the tail element-wise.
template <typename T, class F>
__global__ void unary_kernel(const T* x, T* y, int64_t n, bool vec, F f) {
  constexpr int V = Pack<T>::kCount;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nv = vec ? n / V : 0;
  for (int64_t i = tid; i < nv; i += stride) {
    Pack<T> p = reinterpret_cast<const Pack<T>*>(x)[i];
#pragma unroll
    for (int k = 0; k < V; ++k) p.v[k] = from_float<T>(f(to_float(p.v[k])));
    reinterpret_cast<Pack<T>*>(y)[i] = p;
  }
  for (int64_t i = nv * V + tid; i < n; i += stride) y[i] = from_float<T>(f(to_float(x[i])));
}

// F: ActivationFn or MathFn.
template <class F>
void launch_unary(DType dtype, const void* x, void* y, int64_t n, float alpha, float beta, cudaStream_t s) {
  if (n == 0) return;
  dispatch_float_type(dtype, [&](auto t) {
    using T = decltype(t);
    const bool vec = aligned16(x) && aligned16(y);
    const int64_t work = vec ? n / Pack<T>::kCount + Pack<T>::kCount : n;
    unary_kernel<T><<<grid_for(work), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), n, vec,
                                                        F{alpha, beta});
    KILN_CUDA_CHECK_LAUNCH();
  });
}

using UnaryLauncher = void (*)(DType, const void*, void*, int64_t, float, float, cudaStream_t);

class UnaryKernel final : public CudaKernel {
 public:
  UnaryKernel(UnaryLauncher launch, DType dtype, float alpha, float beta, std::vector<size_t> owned)
      : launch_(launch), dtype_(dtype), alpha_(alpha), beta_(beta), owned_(std::move(owned)) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    launch_(dtype_, in[0].data, out[0].data, out[0].numel(), alpha_, beta_, rc.stream);
  }
  bool owns_constant_input(size_t k) const override {
    for (size_t o : owned_)
      if (o == k) return true;
    return false;
  }

 private:
  UnaryLauncher launch_;
  DType dtype_;
  float alpha_, beta_;
  std::vector<size_t> owned_;  // Clip's min/max, read at create time
};

struct UnaryEntry {
  const char* op;
  UnaryLauncher launch;
};

// Every activation of ops/activation.h, then the math ops.
// clang-format off
const UnaryEntry kUnary[] = {
#define KILN_ACTIVATION_ENTRY(name, ...) {#name, launch_unary<ActivationFn<ops::Activation::name>>},
    KILN_ACTIVATIONS(KILN_ACTIVATION_ENTRY)
#undef KILN_ACTIVATION_ENTRY
    {"Exp", launch_unary<MathFn<MathOp::Exp>>},
    {"Log", launch_unary<MathFn<MathOp::Log>>},
    {"Neg", launch_unary<MathFn<MathOp::Neg>>},
    {"Abs", launch_unary<MathFn<MathOp::Abs>>},
    {"Sqrt", launch_unary<MathFn<MathOp::Sqrt>>},
    {"Reciprocal", launch_unary<MathFn<MathOp::Reciprocal>>},
    {"Erf", launch_unary<MathFn<MathOp::Erf>>},
    {"Clip", launch_unary<MathFn<MathOp::Clip>>},
    {"Floor", launch_unary<MathFn<MathOp::Floor>>},
    {"Ceil", launch_unary<MathFn<MathOp::Ceil>>},
    {"Round", launch_unary<MathFn<MathOp::Round>>},
    {"Sign", launch_unary<MathFn<MathOp::Sign>>},
    {"Sin", launch_unary<MathFn<MathOp::Sin>>},
    {"Cos", launch_unary<MathFn<MathOp::Cos>>},
};
// clang-format on

const UnaryEntry* unary_entry(const std::string& op) {
  for (const UnaryEntry& e : kUnary)
    if (op == e.op) return &e;
  return nullptr;
}

// Clip's bounds: attributes before opset 11, optional constant scalar inputs 1 (min) and 2 (max) since.
// Float compute, as the reference's (float for every float dtype; unbounded sides are ±FLT_MAX).
bool clip_bounds(const LayerDesc& d, float& lo, float& hi, std::vector<size_t>& owned) {
  lo = -FLT_MAX;
  hi = FLT_MAX;
  if (d.opset < 11) {
    if (d.inputs.size() != 1) return false;
    lo = d.node->attrs.get_float("min", -FLT_MAX);
    hi = d.node->attrs.get_float("max", FLT_MAX);
    return true;
  }
  for (size_t k = 1; k < d.inputs.size() && k < 3; ++k) {
    const auto& o = d.inputs[k];
    if (!o.present) continue;
    if (!o.constant || o.constant->numel() != 1 || !dtype_is_float(o.constant->dtype())) return false;
    (k == 1 ? lo : hi) = static_cast<float>(o.constant->as_double(0));
    owned.push_back(k);
  }
  return d.inputs.size() <= 3;
}

bool unary_supported(const LayerDesc& d) {
  const UnaryEntry* e = unary_entry(d.node->op);
  if (!e || d.inputs.empty() || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return false;
  const DType t = d.inputs[0].dtype;
  if (!is_cuda_float(t) || d.outputs[0].dtype != t || d.outputs[0].dims != d.inputs[0].dims) return false;
  if (d.node->op == "Clip") {
    float lo, hi;
    std::vector<size_t> owned;
    try {
      return clip_bounds(d, lo, hi, owned);
    } catch (const Error&) {
      return false;
    }
  }
  try {  // attributes of the wrong type make create() throw: refuse instead
    d.node->attrs.get_float("alpha", 0.f);
    d.node->attrs.get_float("beta", 0.f);
  } catch (const Error&) {
    return false;
  }
  return d.inputs.size() == 1;
}

std::unique_ptr<backend::Kernel> create_unary(const LayerDesc& d) {
  const UnaryEntry* e = unary_entry(d.node->op);
  float alpha = 0.f, beta = 0.f;
  std::vector<size_t> owned;
  if (d.node->op == "Clip") {
    clip_bounds(d, alpha, beta, owned);
  } else if (const std::optional<ops::Activation> act = ops::activation_of(d.node->op)) {
    const ops::ActivationParams p = ops::activation_params(*act, d.node->attrs);
    alpha = p.alpha;
    beta = p.beta;
  }
  return std::make_unique<UnaryKernel>(e->launch, d.inputs[0].dtype, alpha, beta, std::move(owned));
}

// =============================================================================================== binary
enum class BinOp { Add, Sub, Mul, Div, Pow, Max, Min };

template <BinOp op>
struct BinaryFn {
  __device__ __forceinline__ float operator()(float a, float b) const {
    if constexpr (op == BinOp::Add)
      return a + b;
    else if constexpr (op == BinOp::Sub)
      return a - b;
    else if constexpr (op == BinOp::Mul)
      return a * b;
    else if constexpr (op == BinOp::Div)
      return a / b;
    else if constexpr (op == BinOp::Pow)
      return b == 2.f ? a * a : powf(a, b);  // a*a: exact, as the reference's
    else if constexpr (op == BinOp::Max)
      return a < b ? b : a;  // NaN handling as the reference
    else
      return b < a ? b : a;
  }
};

// Both operands have the output's layout.
template <typename T, class F>
__global__ void binary_same_kernel(const T* a, const T* b, T* y, int64_t n, bool vec, F f) {
  constexpr int V = Pack<T>::kCount;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nv = vec ? n / V : 0;
  for (int64_t i = tid; i < nv; i += stride) {
    Pack<T> pa = reinterpret_cast<const Pack<T>*>(a)[i];
    const Pack<T> pb = reinterpret_cast<const Pack<T>*>(b)[i];
#pragma unroll
    for (int k = 0; k < V; ++k) pa.v[k] = from_float<T>(f(to_float(pa.v[k]), to_float(pb.v[k])));
    reinterpret_cast<Pack<T>*>(y)[i] = pa;
  }
  for (int64_t i = nv * V + tid; i < n; i += stride) y[i] = from_float<T>(f(to_float(a[i]), to_float(b[i])));
}

// x has the output's layout; the other operand is the by-value scalar s. swap: s is the left operand.
template <typename T, class F>
__global__ void binary_value_kernel(const T* x, float s, bool swap, T* y, int64_t n, bool vec, F f) {
  constexpr int V = Pack<T>::kCount;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nv = vec ? n / V : 0;
  for (int64_t i = tid; i < nv; i += stride) {
    Pack<T> p = reinterpret_cast<const Pack<T>*>(x)[i];
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float v = to_float(p.v[k]);
      p.v[k] = from_float<T>(swap ? f(s, v) : f(v, s));
    }
    reinterpret_cast<Pack<T>*>(y)[i] = p;
  }
  for (int64_t i = nv * V + tid; i < n; i += stride) {
    const float v = to_float(x[i]);
    y[i] = from_float<T>(swap ? f(s, v) : f(v, s));
  }
}

// x has the output's layout; small[(i / inner) % mid] is the other operand. `vec` requires inner % V == 0
// (a pack never straddles two values of small) and aligned x, y. I: the index type (32-bit when it fits).
template <typename T, typename I, class F>
__global__ void binary_blocked_kernel(const T* x, const T* small, bool swap, T* y, I n, I mid, I inner,
                                      bool vec, F f) {
  constexpr int V = Pack<T>::kCount;
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  const I tid = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x;
  const I nv = vec ? n / V : 0;
  for (I i = tid; i < nv; i += stride) {
    const float s = to_float(small[mid == 1 ? 0 : (i * V / inner) % mid]);
    Pack<T> p = reinterpret_cast<const Pack<T>*>(x)[i];
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float v = to_float(p.v[k]);
      p.v[k] = from_float<T>(swap ? f(s, v) : f(v, s));
    }
    reinterpret_cast<Pack<T>*>(y)[i] = p;
  }
  for (I i = nv * V + tid; i < n; i += stride) {
    const float s = to_float(small[mid == 1 ? 0 : (i / inner) % mid]);
    const float v = to_float(x[i]);
    y[i] = from_float<T>(swap ? f(s, v) : f(v, s));
  }
}

// Numpy broadcasting: output index decomposed over dims (innermost last), each operand's offset is the dot
// product with its strides (0 along broadcast axes).
struct BroadcastParams {
  int rank;
  int64_t dims[kMaxRank];
  int64_t sa[kMaxRank], sb[kMaxRank];
};

template <typename T, typename I, class F>
__global__ void binary_general_kernel(const T* a, const T* b, T* y, I n, BroadcastParams p, F f) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    I t = i, oa = 0, ob = 0;
#pragma unroll
    for (int k = kMaxRank - 1; k >= 0; --k) {
      if (k >= p.rank) continue;
      const I d = static_cast<I>(p.dims[k]);
      const I q = t / d, r = t - q * d;
      oa += r * static_cast<I>(p.sa[k]);
      ob += r * static_cast<I>(p.sb[k]);
      t = q;
    }
    y[i] = from_float<T>(f(to_float(a[oa]), to_float(b[ob])));
  }
}

enum class Plan { Same, Value, Blocked, General };

struct BinaryPlan {
  Plan plan = Plan::General;
  int big = 0;        // Value/Blocked: the operand with the output's layout (the other is index 1 - big)
  float value = 0.f;  // Value: the constant scalar
  int64_t mid = 1, inner = 1;
  BroadcastParams bp{};
  int owned = -1;  // Value: the constant input read at create time
};

// dims left-padded with 1s to `rank`.
std::vector<int64_t> padded(const std::vector<int64_t>& d, size_t rank) {
  std::vector<int64_t> p(rank - d.size(), 1);
  p.insert(p.end(), d.begin(), d.end());
  return p;
}

// Whether `small` varies only along one contiguous run of output axes (and matches the output there).
bool blocked_of(const std::vector<int64_t>& small, const std::vector<int64_t>& out, int64_t& mid,
                int64_t& inner) {
  const auto d = padded(small, out.size());
  int first = -1, last = -1;
  for (size_t k = 0; k < d.size(); ++k)
    if (d[k] != 1) {
      if (first < 0) first = static_cast<int>(k);
      last = static_cast<int>(k);
    }
  mid = 1;
  inner = 1;
  if (first < 0) return true;  // a scalar
  for (int k = first; k <= last; ++k) {
    if (d[static_cast<size_t>(k)] != out[static_cast<size_t>(k)]) return false;
    mid *= out[static_cast<size_t>(k)];
  }
  for (size_t k = static_cast<size_t>(last) + 1; k < out.size(); ++k) inner *= out[k];
  return true;
}

std::optional<BinaryPlan> binary_plan(const LayerDesc& d) {
  if (d.opset < 7 || d.inputs.size() != 2 || d.outputs.size() != 1) return std::nullopt;
  const auto& a = d.inputs[0];
  const auto& b = d.inputs[1];
  const auto& y = d.outputs[0];
  if (!a.present || !b.present || !y.present) return std::nullopt;
  const DType t = y.dtype;
  if (!is_cuda_float(t) || a.dtype != t) return std::nullopt;
  const bool pow = d.node->op == "Pow";
  // Pow's exponent may be of any numeric dtype when it is a constant scalar (read on the host).
  const bool b_value = b.constant && b.constant->numel() == 1;
  if (b.dtype != t && !(pow && b_value && b.dtype != DType::String && b.dtype != DType::Bool))
    return std::nullopt;
  const auto& out = y.dims;
  if (out.size() > kMaxRank || a.dims.size() > out.size() || b.dims.size() > out.size()) return std::nullopt;
  // Broadcast-compatible with the given output shape.
  const auto pa = padded(a.dims, out.size()), pb = padded(b.dims, out.size());
  for (size_t k = 0; k < out.size(); ++k)
    if ((pa[k] != out[k] && pa[k] != 1) || (pb[k] != out[k] && pb[k] != 1)) return std::nullopt;
  const int64_t n = ops::numel(out), na = ops::numel(a.dims), nb = ops::numel(b.dims);

  BinaryPlan p;
  if (na == n && nb == n && b.dtype == t) {
    p.plan = Plan::Same;
    return p;
  }
  // A constant scalar (either side) goes by value.
  for (int small = 1; small >= 0; --small) {
    const auto& s = d.inputs[static_cast<size_t>(small)];
    const auto& x = d.inputs[static_cast<size_t>(1 - small)];
    if (s.constant && s.constant->numel() == 1 && ops::numel(x.dims) == n) {
      p.plan = Plan::Value;
      p.big = 1 - small;
      p.value = static_cast<float>(s.constant->as_double(0));
      p.owned = small;
      return p;
    }
  }
  if (pow && b.dtype != t) return std::nullopt;
  for (int big = 0; big < 2; ++big) {
    const auto& x = d.inputs[static_cast<size_t>(big)];
    const auto& s = d.inputs[static_cast<size_t>(1 - big)];
    if (ops::numel(x.dims) == n && blocked_of(s.dims, out, p.mid, p.inner)) {
      p.plan = Plan::Blocked;
      p.big = big;
      return p;
    }
  }
  // General: strides per operand, then merge adjacent axes along which both operands continue contiguously
  // (or both stay broadcast), and drop size-1 axes.
  auto strides = [&](const std::vector<int64_t>& pd) {
    std::vector<int64_t> s(out.size(), 0);
    int64_t acc = 1;
    for (size_t k = out.size(); k-- > 0;) {
      s[k] = pd[k] == 1 ? 0 : acc;
      acc *= pd[k];
    }
    return s;
  };
  const auto sa = strides(pa), sb = strides(pb);
  std::vector<int64_t> md, ma, mb;
  for (size_t k = 0; k < out.size(); ++k) {
    if (out[k] == 1) continue;
    if (!md.empty() && ma.back() == sa[k] * out[k] && mb.back() == sb[k] * out[k]) {
      md.back() *= out[k];
      ma.back() = sa[k];
      mb.back() = sb[k];
    } else {
      md.push_back(out[k]);
      ma.push_back(sa[k]);
      mb.push_back(sb[k]);
    }
  }
  if (md.empty()) md = {1}, ma = {0}, mb = {0};
  p.plan = Plan::General;
  p.bp.rank = static_cast<int>(md.size());
  for (size_t k = 0; k < md.size(); ++k) {
    p.bp.dims[k] = md[k];
    p.bp.sa[k] = ma[k];
    p.bp.sb[k] = mb[k];
  }
  return p;
}

template <BinOp op>
class BinaryKernel final : public CudaKernel {
 public:
  BinaryKernel(BinaryPlan plan, DType dtype) : p_(plan), dtype_(dtype) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    dispatch_float_type(dtype_, [&](auto t) {
      using T = decltype(t);
      constexpr int V = Pack<T>::kCount;
      const BinaryFn<op> f{};
      T* y = static_cast<T*>(out[0].data);
      const T* x = static_cast<const T*>(in[static_cast<size_t>(p_.big)].data);
      const T* s = static_cast<const T*>(in[static_cast<size_t>(1 - p_.big)].data);
      const bool swap = p_.big == 1;
      const bool fits32 = n < (int64_t{1} << 31);
      switch (p_.plan) {
        case Plan::Same: {
          const T* a = static_cast<const T*>(in[0].data);
          const T* b = static_cast<const T*>(in[1].data);
          const bool vec = aligned16(a) && aligned16(b) && aligned16(y);
          binary_same_kernel<T>
              <<<grid_for(vec ? n / V + V : n), kThreads, 0, rc.stream>>>(a, b, y, n, vec, f);
          break;
        }
        case Plan::Value: {
          const bool vec = aligned16(x) && aligned16(y);
          binary_value_kernel<T>
              <<<grid_for(vec ? n / V + V : n), kThreads, 0, rc.stream>>>(x, p_.value, swap, y, n, vec, f);
          break;
        }
        case Plan::Blocked: {
          const bool vec = aligned16(x) && aligned16(y) && p_.inner % V == 0;
          const unsigned int grid = grid_for(vec ? n / V + V : n);
          if (fits32)
            binary_blocked_kernel<T, uint32_t><<<grid, kThreads, 0, rc.stream>>>(
                x, s, swap, y, static_cast<uint32_t>(n), static_cast<uint32_t>(p_.mid),
                static_cast<uint32_t>(p_.inner), vec, f);
          else
            binary_blocked_kernel<T, int64_t>
                <<<grid, kThreads, 0, rc.stream>>>(x, s, swap, y, n, p_.mid, p_.inner, vec, f);
          break;
        }
        case Plan::General: {
          const T* a = static_cast<const T*>(in[0].data);
          const T* b = static_cast<const T*>(in[1].data);
          if (fits32)
            binary_general_kernel<T, uint32_t>
                <<<grid_for(n), kThreads, 0, rc.stream>>>(a, b, y, static_cast<uint32_t>(n), p_.bp, f);
          else
            binary_general_kernel<T, int64_t><<<grid_for(n), kThreads, 0, rc.stream>>>(a, b, y, n, p_.bp, f);
          break;
        }
      }
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  bool owns_constant_input(size_t k) const override {
    return p_.owned >= 0 && k == static_cast<size_t>(p_.owned);
  }

 private:
  BinaryPlan p_;
  DType dtype_;
};

template <BinOp op>
KernelFactory binary_factory(const std::string& name) {
  return {.name = "cuda.elementwise",
          .device = "cuda",
          .op = name,
          .domain = "",
          .priority = 10,
          .supports = [](const LayerDesc& d) { return binary_plan(d).has_value(); },
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<BinaryKernel<op>>(*binary_plan(d), d.outputs[0].dtype);
          }};
}

// ================================================================================================= cast
template <typename From, typename To>
__global__ void cast_kernel(const From* x, To* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] =
        from_float<To>(to_float(x[i]));  // every float dtype is exact in float: one rounding, to nearest even
}

class CastKernel final : public CudaKernel {
 public:
  CastKernel(DType from, DType to, bool like) : from_(from), to_(to), like_(like) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    if (from_ == to_) {
      if (in[0].data != out[0].data)
        KILN_CUDA_CHECK(
            cudaMemcpyAsync(out[0].data, in[0].data, out[0].nbytes(), cudaMemcpyDeviceToDevice, rc.stream));
      return;
    }
    dispatch_float_type(from_, [&](auto f) {
      dispatch_float_type(to_, [&](auto t) {
        using F = decltype(f);
        using T = decltype(t);
        cast_kernel<F, T><<<grid_for(n), kThreads, 0, rc.stream>>>(static_cast<const F*>(in[0].data),
                                                                   static_cast<T*>(out[0].data), n);
        KILN_CUDA_CHECK_LAUNCH();
      });
    });
  }
  // CastLike's second input only lends its dtype.
  bool owns_constant_input(size_t k) const override { return like_ && k == 1; }

 private:
  DType from_, to_;
  bool like_;
};

bool cast_supported(const LayerDesc& d) {
  const bool like = d.node->op == "CastLike";
  if (d.inputs.size() != (like ? 2u : 1u) || d.outputs.size() != 1 || !d.inputs[0].present ||
      !d.outputs[0].present)
    return false;
  if (like && !d.inputs[1].constant)
    return false;  // its data would otherwise be a live device tensor we ignore
  return is_cuda_float(d.inputs[0].dtype) && is_cuda_float(d.outputs[0].dtype) &&
         d.inputs[0].dims == d.outputs[0].dims;
}

KernelFactory cast_factory(const std::string& op) {
  return {.name = "cuda.cast",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = cast_supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<CastKernel>(d.inputs[0].dtype, d.outputs[0].dtype,
                                                d.node->op == "CastLike");
          }};
}

// ========================================================================================= registration
KernelFactory unary_factory(const std::string& op) {
  return {.name = "cuda.elementwise",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = unary_supported,
          .create = create_unary};
}

KILN_REGISTER_KERNEL(binary_factory<BinOp::Add>("Add"));
KILN_REGISTER_KERNEL(binary_factory<BinOp::Sub>("Sub"));
KILN_REGISTER_KERNEL(binary_factory<BinOp::Mul>("Mul"));
KILN_REGISTER_KERNEL(binary_factory<BinOp::Div>("Div"));
KILN_REGISTER_KERNEL(binary_factory<BinOp::Pow>("Pow"));
KILN_REGISTER_KERNEL(binary_factory<BinOp::Max>("Max"));
KILN_REGISTER_KERNEL(binary_factory<BinOp::Min>("Min"));

#define KILN_REGISTER_ACTIVATION(name, ...) KILN_REGISTER_KERNEL(unary_factory(#name));
KILN_ACTIVATIONS(KILN_REGISTER_ACTIVATION)
#undef KILN_REGISTER_ACTIVATION
KILN_REGISTER_KERNEL(unary_factory("Exp"));
KILN_REGISTER_KERNEL(unary_factory("Log"));
KILN_REGISTER_KERNEL(unary_factory("Neg"));
KILN_REGISTER_KERNEL(unary_factory("Abs"));
KILN_REGISTER_KERNEL(unary_factory("Sqrt"));
KILN_REGISTER_KERNEL(unary_factory("Reciprocal"));
KILN_REGISTER_KERNEL(unary_factory("Erf"));
KILN_REGISTER_KERNEL(unary_factory("Clip"));
KILN_REGISTER_KERNEL(unary_factory("Floor"));
KILN_REGISTER_KERNEL(unary_factory("Ceil"));
KILN_REGISTER_KERNEL(unary_factory("Round"));
KILN_REGISTER_KERNEL(unary_factory("Sign"));
KILN_REGISTER_KERNEL(unary_factory("Sin"));
KILN_REGISTER_KERNEL(unary_factory("Cos"));

KILN_REGISTER_KERNEL(cast_factory("Cast"));
KILN_REGISTER_KERNEL(cast_factory("CastLike"));

}  // namespace
}  // namespace kiln::cuda
