// kiln — the element-wise activations: one definition for the reference kernels, the fusion passes, the
// fused ops (kiln.FusedConv, kiln.GroupNorm, kiln.ElementwiseChain) and every backend, host and device.
//
// KILN_ACTIVATIONS is the only place an activation's ONNX name, attribute names and default values live;
// activate() is the only place its formula lives. Adding one: a line in the table, a branch in activate(),
// and in a backend whatever maps it to a library primitive (oneDNN post-op) or instantiates a kernel per
// activation (CUDA GroupNorm).
//
// The header compiles under nvcc (.cu files are C++17): the enum, the table, activate() and apply() are
// constexpr or __host__ __device__. Lookups by name and reading node attributes are host functions
// (activation.cpp).
#pragma once
#include <cmath>
#include <optional>
#include <string>

#include "ops/internal_ops.h"

// KILN_ACTIVATION_INLINE: always inlined, so a loop over activate() compiles into its caller, for the
// caller's target (the CPU kernels' SIMD clones) and specialized for one activation.
#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#define KILN_ACTIVATION_INLINE __forceinline__
#elif defined(__GNUC__)
#define KILN_HOST_DEVICE
#define KILN_ACTIVATION_INLINE inline __attribute__((always_inline))
#else
#define KILN_HOST_DEVICE
#define KILN_ACTIVATION_INLINE inline
#endif

namespace kiln {
class Attributes;
class Node;
}  // namespace kiln

namespace kiln::ops {

// X(name, alpha attribute, its ONNX default, beta attribute, its ONNX default). `name` is both the enum
// value and the ONNX op (default domain); "" = the op has no such attribute (the value is then unused).
// "beta" is whichever second float attribute an activation has.
#define KILN_ACTIVATIONS(X)                           \
  X(Relu, "", 0.f, "", 0.f)                           \
  X(LeakyRelu, "alpha", 0.01f, "", 0.f)               \
  X(Elu, "alpha", 1.f, "", 0.f)                       \
  X(Sigmoid, "", 0.f, "", 0.f)                        \
  X(Tanh, "", 0.f, "", 0.f)                           \
  X(Softplus, "", 0.f, "", 0.f)                       \
  X(HardSigmoid, "alpha", 0.2f, "beta", 0.5f)         \
  X(HardSwish, "", 0.f, "", 0.f)                      \
  X(Selu, "alpha", 1.67326319f, "gamma", 1.05070102f) \
  X(Celu, "alpha", 1.f, "", 0.f)                      \
  X(ThresholdedRelu, "alpha", 1.f, "", 0.f)           \
  X(Softsign, "", 0.f, "", 0.f)                       \
  X(Mish, "", 0.f, "", 0.f)

enum class Activation : int {
  None,  // the identity: a fused node without an activation
#define KILN_ACTIVATION_ENUM(name, ...) name,
  KILN_ACTIVATIONS(KILN_ACTIVATION_ENUM)
#undef KILN_ACTIVATION_ENUM
};

struct ActivationInfo {
  Activation act;
  const char* op;          // ONNX op name; "" for None
  const char* alpha_attr;  // "" if the op has no alpha
  float alpha;             // ONNX default
  const char* beta_attr;   // "" if the op has no second parameter
  float beta;              // ONNX default
};

// Indexed by Activation.
// clang-format off
inline constexpr ActivationInfo kActivations[] = {
    {Activation::None, "", "", 0.f, "", 0.f},
#define KILN_ACTIVATION_INFO(name, alpha_attr, alpha, beta_attr, beta) \
  {Activation::name, #name, alpha_attr, alpha, beta_attr, beta},
    KILN_ACTIVATIONS(KILN_ACTIVATION_INFO)
#undef KILN_ACTIVATION_INFO
};
// clang-format on

constexpr const ActivationInfo& activation_info(Activation a) {
  return kActivations[static_cast<int>(a)];
}

// An activation with its parameters, as a fused node or a kernel carries it (alpha/beta unused by ops
// without them).
struct ActivationParams {
  Activation act = Activation::None;
  float alpha = 0.f, beta = 0.f;
};

// ------------------------------------------------------------------------------------------ formulas
// Math supplies exp, exp_minus_1 (e^x - 1: exp(x) - 1, or a libm expm1), tanh and log1p, so each kernel
// keeps its own accuracy/speed trade-off: StdMath (the reference), a vectorizable exp on the CPU
// (backends/cpu/cpu_util.h), expf or __expf on the GPU (backends/cuda/cuda_device.cuh). Comparisons are the
// reference's as written, so NaN and -0 come out the same on every backend.
struct StdMath {
  template <class T>
  static T exp(T x) {
    return std::exp(x);
  }
  template <class T>
  static T exp_minus_1(T x) {
    return std::exp(x) - T(1);
  }
  template <class T>
  static T tanh(T x) {
    return std::tanh(x);
  }
  template <class T>
  static T log1p(T x) {
    return std::log1p(x);
  }
};

#if defined(__CUDACC__)
#pragma nv_exec_check_disable  // Math's functions are host-only or device-only; each use picks one side
#endif
template <Activation A, class Math, class T>
KILN_HOST_DEVICE KILN_ACTIVATION_INLINE T activate(T x, T alpha, T beta) {
  if constexpr (A == Activation::None) {
    return x;
  } else if constexpr (A == Activation::Relu) {
    return x > T(0) ? x : T(0);
  } else if constexpr (A == Activation::LeakyRelu) {
    return x >= T(0) ? x : alpha * x;
  } else if constexpr (A == Activation::Elu) {
    return x >= T(0) ? x : alpha * Math::exp_minus_1(x);
  } else if constexpr (A == Activation::Sigmoid) {
    return T(1) / (T(1) + Math::exp(-x));
  } else if constexpr (A == Activation::Tanh) {
    return Math::tanh(x);
  } else if constexpr (A == Activation::Softplus) {
    // log(1 + e^x) without overflow for large x: max(x, 0) + log1p(e^-|x|).
    return (x > T(0) ? x : T(0)) + Math::log1p(Math::exp(-(x < T(0) ? -x : x)));
  } else if constexpr (A == Activation::HardSigmoid) {
    const T v = alpha * x + beta;  // std::clamp(v, 0, 1)
    return v < T(0) ? T(0) : (T(1) < v ? T(1) : v);
  } else if constexpr (A == Activation::HardSwish) {
    const T v = x / T(6) + T(0.5);
    return x * (v < T(0) ? T(0) : (T(1) < v ? T(1) : v));
  } else if constexpr (A == Activation::Selu) {  // beta is gamma
    return beta * (x > T(0) ? x : alpha * Math::exp_minus_1(x));
  } else if constexpr (A == Activation::Celu) {
    const T neg = alpha * Math::exp_minus_1(x / alpha);  // max(0, x) + min(0, neg)
    return (x > T(0) ? x : T(0)) + (neg < T(0) ? neg : T(0));
  } else if constexpr (A == Activation::ThresholdedRelu) {
    return x > alpha ? x : T(0);
  } else if constexpr (A == Activation::Softsign) {
    return x / (T(1) + (x < T(0) ? -x : x));
  } else if constexpr (A == Activation::Mish) {  // x * tanh(softplus(x)), softplus as above
    return x * Math::tanh((x > T(0) ? x : T(0)) + Math::log1p(Math::exp(-(x < T(0) ? -x : x))));
  } else {
    static_assert(A == Activation::None, "activate(): no formula for this activation");
    return x;
  }
}

// A compile-time activation, for code that instantiates one loop or kernel per activation.
template <Activation A>
struct ActivationTag {
  static constexpr Activation value = A;
};

// f(ActivationTag<a>{}): one branch per activation, so the loop inside f is specialized (vectorizes). A CPU
// kernel's f is a lambda marked KILN_INLINE_LAMBDA (backends/cpu/cpu_util.h) so it compiles into the caller.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class F>
KILN_HOST_DEVICE KILN_ACTIVATION_INLINE decltype(auto) with_activation(Activation a, F&& f) {
  switch (a) {
#define KILN_ACTIVATION_CASE(name, ...) \
  case Activation::name:                \
    return f(ActivationTag<Activation::name>{});
    KILN_ACTIVATIONS(KILN_ACTIVATION_CASE)
#undef KILN_ACTIVATION_CASE
    default:
      return f(ActivationTag<Activation::None>{});
  }
}

// activate() with the activation chosen at run time.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Math, class T>
KILN_HOST_DEVICE KILN_ACTIVATION_INLINE T apply(Activation a, T x, T alpha, T beta) {
  switch (a) {
#define KILN_ACTIVATION_CASE(name, ...) \
  case Activation::name:                \
    return activate<Activation::name, Math>(x, alpha, beta);
    KILN_ACTIVATIONS(KILN_ACTIVATION_CASE)
#undef KILN_ACTIVATION_CASE
    default:
      return x;
  }
}
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Math, class T>
KILN_HOST_DEVICE KILN_ACTIVATION_INLINE T apply(const ActivationParams& p, T x) {
  return apply<Math>(p.act, x, static_cast<T>(p.alpha), static_cast<T>(p.beta));
}

// ------------------------------------------------------------------------------ names and attributes
// The activation an ONNX op (default domain) computes; nullopt if `op` is none of the table's.
std::optional<Activation> activation_of(const std::string& op);
bool is_activation(const std::string& op);
// The ONNX op name ("" for None).
inline std::string activation_name(Activation a) {
  return activation_info(a).op;
}

// The node's activation with its attributes (ONNX defaults when absent): nullopt unless the node is a
// default-domain op of the table with only its own attributes, each a float.
std::optional<ActivationParams> activation_of(const Node& node);
// The parameters of activation `a` from a node's attributes (ONNX defaults when absent); throws kiln::Error
// on an attribute of the wrong type.
ActivationParams activation_params(Activation a, const Attributes& attrs);
// Writes p's parameters as the attributes of its ONNX op (the inverse of activation_params).
void set_activation_attributes(Attributes& attrs, const ActivationParams& p);

// Where a fused node keeps its activation: attrs[op] names it ("" or absent: None), attrs[alpha] and
// attrs[beta] hold its parameters where it has them (absent: the ONNX defaults; ignored where it has none).
struct FusedActivationKeys {
  const char* op;
  const char* alpha;
  const char* beta;
};
inline constexpr FusedActivationKeys kFusedConvActivation{internal_ops::fused_conv::kPostOp,
                                                          internal_ops::fused_conv::kPostAlpha,
                                                          internal_ops::fused_conv::kPostBeta};
inline constexpr FusedActivationKeys kGroupNormActivation{
    internal_ops::group_norm::kActivation, internal_ops::group_norm::kAlpha, internal_ops::group_norm::kBeta};

// The fused activation; nullopt if attrs[keys.op] names no activation of the table. Throws kiln::Error on
// attributes of the wrong type.
std::optional<ActivationParams> fused_activation(const Attributes& attrs, const FusedActivationKeys& keys);
// Records p under `keys`: the op name, and alpha / beta only where the activation has them. None: nothing.
void set_fused_activation(Attributes& attrs, const FusedActivationKeys& keys, const ActivationParams& p);

// ----------------------------------------------------------------------- what the fusion rewrites fold
// The fused ops' contracts and reference kernels take any activation; these say which ones every backend's
// kernel for the op applies in its own pass over the data, so folding them in is a speed-up everywhere.
// An activation joins a list when the kernels named there apply it.
// kiln.FusedConv: the CPU convolutions' oneDNN post-ops (backends/cpu, conv); the CUDA epilogue applies any.
constexpr bool fusable_into_conv(Activation a) {
  return a == Activation::Relu || a == Activation::Elu || a == Activation::Sigmoid;
}
// kiln.GroupNorm: the CUDA kernel instances (backends/cuda/normalization_cuda.h, group_norm_supports); the
// CPU applies any.
constexpr bool fusable_into_group_norm(Activation a) {
  return a == Activation::Relu || a == Activation::Elu;
}
// kiln.ElementwiseChain: any (the CPU chain kernel; a step carries alpha and beta).
constexpr bool fusable_into_chain(Activation a) {
  return a != Activation::None;
}

}  // namespace kiln::ops
