// CUDA unary math and Clip on every numeric dtype the reference takes (cuda.numeric_unary,
// cuda.numeric_clip), priority 1, below cuda.elementwise (float, float16, bfloat16), so in practice float64
// and the integers. Neg, Abs, Sign, Relu: every numeric dtype but bool, computed in the element's own type as
// the reference (ops/elementwise_unary.cpp): integer Neg/Abs wrap (-INT_MIN stays INT_MIN). Sqrt, Exp, Log,
// Ceil, Floor, Round (half to even), Reciprocal: float dtypes only, as the reference refuses integers. Clip:
// min/max from opset-11 inputs — scalars the kernel reads from device memory inside the kernel (no host
// sync), graph inputs or constants — or absent (the dtype's lowest/highest), or before opset 11 attributes.
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/numeric_types_cuda.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

enum class Unary { Neg, Abs, Sign, Relu, Sqrt, Exp, Log, Ceil, Floor, Round, Reciprocal };

std::optional<Unary> unary_of(const std::string& op) {
  if (op == "Neg") return Unary::Neg;
  if (op == "Abs") return Unary::Abs;
  if (op == "Sign") return Unary::Sign;
  if (op == "Relu") return Unary::Relu;
  if (op == "Sqrt") return Unary::Sqrt;
  if (op == "Exp") return Unary::Exp;
  if (op == "Log") return Unary::Log;
  if (op == "Ceil") return Unary::Ceil;
  if (op == "Floor") return Unary::Floor;
  if (op == "Round") return Unary::Round;
  if (op == "Reciprocal") return Unary::Reciprocal;
  return std::nullopt;
}

bool floats_only(Unary u) {
  return u != Unary::Neg && u != Unary::Abs && u != Unary::Sign && u != Unary::Relu;
}

// x < 0, without comparing an unsigned x with zero (nvcc warns).
template <class C>
__device__ __forceinline__ bool negative(C x) {
  if constexpr (std::is_unsigned_v<C>)
    return false;
  else
    return x < C(0);
}

template <class C>
__device__ __forceinline__ C unary_apply(Unary u, C x) {
  switch (u) {
    case Unary::Neg:
      if constexpr (std::is_integral_v<C>)
        return static_cast<C>(numeric::WrapT<C>{0} - static_cast<numeric::WrapT<C>>(x));
      else
        return -x;
    case Unary::Abs:
      if constexpr (std::is_integral_v<C>)
        return negative(x) ? static_cast<C>(numeric::WrapT<C>{0} - static_cast<numeric::WrapT<C>>(x)) : x;
      else
        return negative(x) ? -x : x;
    case Unary::Sign:
      return static_cast<C>((x > C(0)) - negative(x));
    case Unary::Relu:
      return x > C(0) ? x : C(0);
    default:
      break;
  }
  if constexpr (std::is_floating_point_v<C>) {
    switch (u) {  // C is float or double: the overloads pick sqrtf / sqrt and so on
      case Unary::Sqrt:
        return sqrt(x);
      case Unary::Exp:
        return exp(x);
      case Unary::Log:
        return log(x);
      case Unary::Ceil:
        return ceil(x);
      case Unary::Floor:
        return floor(x);
      case Unary::Round:
        return rint(x);  // half to even, as the reference's nearbyint
      default:
        return C(1) / x;
    }
  }
  return x;  // integers with a float-only op: refused by supports()
}

template <class T>
__global__ void numeric_unary_kernel(const typename T::storage* x, typename T::storage* y, int64_t n,
                                     Unary u) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step)
    y[i] = T::store(unary_apply(u, T::load(x[i])));
}

// lo/hi: device pointers to the min/max scalars, or null for the bounds attr_lo/attr_hi.
template <class T>
__global__ void numeric_clip_kernel(const typename T::storage* x, typename T::storage* y, int64_t n,
                                    const typename T::storage* lo_p, const typename T::storage* hi_p,
                                    typename T::compute attr_lo, typename T::compute attr_hi) {
  using C = typename T::compute;
  const C lo = lo_p ? T::load(*lo_p) : attr_lo;
  const C hi = hi_p ? T::load(*hi_p) : attr_hi;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const C v = T::load(x[i]);
    y[i] = T::store(v < lo ? lo : (v > hi ? hi : v));
  }
}

bool is_float_dtype(DType t) {
  return t == DType::Float || t == DType::Double || t == DType::Float16 || t == DType::BFloat16;
}

bool same_shape_unary(const LayerDesc& d) {
  if (d.inputs.empty() || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return false;
  const DType t = d.inputs[0].dtype;
  return numeric::is_numeric(t) && t != DType::Bool && d.outputs[0].dtype == t &&
         d.inputs[0].dims == d.outputs[0].dims;
}

class NumericUnaryKernel final : public CudaKernel {
 public:
  NumericUnaryKernel(DType dtype, Unary u) : dtype_(dtype), u_(u) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    numeric::dispatch(dtype_, [&](auto t) {
      using T = decltype(t);
      using S = typename T::storage;
      if constexpr (!T::is_bool) {
        numeric_unary_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(
            static_cast<const S*>(in[0].data), static_cast<S*>(out[0].data), n, u_);
        KILN_CUDA_CHECK_LAUNCH();
      }
    });
  }

 private:
  DType dtype_;
  Unary u_;
};

bool numeric_unary_supported(const LayerDesc& d) {
  const std::optional<Unary> u = unary_of(d.node->op);
  return u && d.inputs.size() == 1 && same_shape_unary(d) &&
         (!floats_only(*u) || is_float_dtype(d.inputs[0].dtype));
}

KernelFactory numeric_unary_factory(const std::string& op) {
  return {.name = "cuda.numeric_unary",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 1,
          .supports = numeric_unary_supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<NumericUnaryKernel>(d.inputs[0].dtype, *unary_of(d.node->op));
          }};
}

class NumericClipKernel final : public CudaKernel {
 public:
  explicit NumericClipKernel(const LayerDesc& d)
      : dtype_(d.inputs[0].dtype),
        has_lo_(d.inputs.size() > 1 && d.inputs[1].present),
        has_hi_(d.inputs.size() > 2 && d.inputs[2].present) {
    if (d.opset < 11) {
      attr_lo_ = d.node->attrs.get_float("min", -std::numeric_limits<float>::max());
      attr_hi_ = d.node->attrs.get_float("max", std::numeric_limits<float>::max());
      has_attrs_ = true;
    }
  }
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    numeric::dispatch(dtype_, [&](auto t) {
      using T = decltype(t);
      using S = typename T::storage;
      using C = typename T::compute;
      if constexpr (!T::is_bool) {
        // The reference's defaults: the type's range, or (before opset 11) the attributes cast to it.
        C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
        if (has_attrs_) {
          lo = static_cast<C>(attr_lo_);
          hi = static_cast<C>(attr_hi_);
        }
        numeric_clip_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(
            static_cast<const S*>(in[0].data), static_cast<S*>(out[0].data), n,
            has_lo_ ? static_cast<const S*>(in[1].data) : nullptr,
            has_hi_ ? static_cast<const S*>(in[2].data) : nullptr, lo, hi);
        KILN_CUDA_CHECK_LAUNCH();
      }
    });
  }

 private:
  DType dtype_;
  bool has_lo_, has_hi_, has_attrs_ = false;
  float attr_lo_ = 0, attr_hi_ = 0;
};

bool numeric_clip_supported(const LayerDesc& d) {
  if (d.inputs.size() > 3 || !same_shape_unary(d)) return false;
  // Before opset 11 the bounds are float attributes: cast to an integer type they could be out of its range
  // (undefined), so those stay with the reference.
  if (d.opset < 11 && (d.inputs.size() != 1 || !is_float_dtype(d.inputs[0].dtype))) return false;
  for (size_t k = 1; k < d.inputs.size(); ++k)
    if (d.inputs[k].present &&
        (d.inputs[k].dtype != d.inputs[0].dtype || checked_numel(d.inputs[k].dims) != 1))
      return false;
  if (d.opset < 11) {  // attributes of the wrong type: refuse
    try {
      d.node->attrs.get_float("min", 0.f);
      d.node->attrs.get_float("max", 0.f);
    } catch (const Error&) {
      return false;
    }
  }
  return true;
}

KILN_REGISTER_KERNEL(numeric_unary_factory("Neg"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Abs"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Sign"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Relu"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Sqrt"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Exp"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Log"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Ceil"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Floor"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Round"));
KILN_REGISTER_KERNEL(numeric_unary_factory("Reciprocal"));
KILN_REGISTER_KERNEL(KernelFactory{.name = "cuda.numeric_clip",
                                   .device = "cuda",
                                   .op = "Clip",
                                   .domain = "",
                                   .priority = 1,
                                   .supports = numeric_clip_supported,
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
                                     return std::make_unique<NumericClipKernel>(d);
                                   }});

}  // namespace
}  // namespace kiln::cuda
