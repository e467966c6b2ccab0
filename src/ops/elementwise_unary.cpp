// Elementwise unary ops (math, trigonometry, Shrink, Gelu, IsNaN/IsInf) and activations, plus
// Identity/Dropout (inference: pass-through) and Softmax/LogSoftmax. Values compute in the element's own type
// (float16/bfloat16 in float), so int64 Neg/Abs stay exact; activations (ops/activation.h), Shrink and Gelu
// compute in double for floating types, rounded once.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <type_traits>

#include "ops/activation.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

struct Params {
  double alpha = 0, beta = 0;
};

void infer_same(InferContext& ctx) { set_out(ctx, 0, ctx.input(0).dtype, in_shape(ctx, 0)); }

void infer_not(InferContext& ctx) {
  if (ctx.input(0).dtype != DType::Bool && ctx.input(0).dtype != DType::Undefined)
    ctx.fail(std::string("expects bool input, got ") + dtype_name(ctx.input(0).dtype));
  set_out(ctx, 0, DType::Bool, in_shape(ctx, 0));
}

// Applies f(x, params) to every element.
template <class F>
void map_kernel(KernelContext& ctx, F f, Params p = {}, bool floats_only = false) {
  const TensorData& x = ctx.input(0);
  TensorData out(x.dtype(), x.dims());
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    using C = typename T::compute;
    if constexpr (T::is_bool) {
      unsupported(ctx, x.dtype());
    } else {
      if (floats_only && !T::is_float) unsupported(ctx, x.dtype());
      const S* src = x.data<S>();
      S* dst = out.data<S>();
      for (int64_t i = 0; i < x.numel(); ++i) dst[i] = T::store(static_cast<C>(f(T::load(src[i]), p)));
    }
  });
  ctx.out[0] = out;
}

#define KILN_UNARY(NAME, FLOATS_ONLY, EXPR)                                                           \
  void kernel_##NAME(KernelContext& ctx) {                                                          \
    map_kernel(ctx, [](auto x, const Params&) { return EXPR; }, {}, FLOATS_ONLY);                   \
  }                                                                                                 \
  KILN_REGISTER_OP({.op = #NAME, .infer = infer_same, .reference = kernel_##NAME})

using std::abs;
KILN_UNARY(Neg, false, -x);
KILN_UNARY(Abs, false, x < 0 ? -x : x);
KILN_UNARY(Sign, false, (x > 0) - (x < 0));
KILN_UNARY(Sqrt, true, std::sqrt(x));
KILN_UNARY(Exp, true, std::exp(x));
KILN_UNARY(Log, true, std::log(x));
KILN_UNARY(Floor, true, std::floor(x));
KILN_UNARY(Ceil, true, std::ceil(x));
KILN_UNARY(Round, true, std::nearbyint(x));  // ONNX rounds half to even, as does the default FP mode
KILN_UNARY(Reciprocal, true, decltype(x)(1) / x);
KILN_UNARY(Erf, true, std::erf(x));
KILN_UNARY(Sin, true, std::sin(x));
KILN_UNARY(Cos, true, std::cos(x));

KILN_UNARY(Tan, true, std::tan(x));
KILN_UNARY(Asin, true, std::asin(x));
KILN_UNARY(Acos, true, std::acos(x));
KILN_UNARY(Atan, true, std::atan(x));
KILN_UNARY(Sinh, true, std::sinh(x));
KILN_UNARY(Cosh, true, std::cosh(x));
KILN_UNARY(Asinh, true, std::asinh(x));
KILN_UNARY(Acosh, true, std::acosh(x));
KILN_UNARY(Atanh, true, std::atanh(x));

// Shrink (any numeric type): x - bias above lambd, x + bias below -lambd, else 0; computed in double.
void shrink_kernel(KernelContext& ctx) {
  const Params p{ctx.node.attrs.get_float("lambd", 0.5f), ctx.node.attrs.get_float("bias", 0.f)};
  map_kernel(
      ctx,
      [](auto x, const Params& p) {
        const double v = static_cast<double>(x);
        return static_cast<decltype(x)>(v < -p.alpha ? v + p.beta : (v > p.alpha ? v - p.beta : 0.0));
      },
      p);
}
KILN_REGISTER_OP({.op = "Shrink", .infer = infer_same, .reference = shrink_kernel});

// Gelu (opset 20): 0.5 x (1 + erf(x / sqrt 2)), or with approximate="tanh"
// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))). Not in ops/activation.h: its parameter is a string.
void gelu_kernel(KernelContext& ctx) {
  const std::string approximate = ctx.node.attrs.get_string("approximate", "none");
  if (approximate != "none" && approximate != "tanh")
    ctx.fail("approximate must be 'none' or 'tanh', got '" + approximate + "'");
  std::vector<double> v = load_real(ctx, ctx.input(0));
  const double sqrt_2_over_pi = std::sqrt(2.0 / std::numbers::pi);
  for (double& x : v)
    x = 0.5 * x *
        (1 + (approximate == "tanh" ? std::tanh(sqrt_2_over_pi * (x + 0.044715 * x * x * x))
                                    : std::erf(x / std::numbers::sqrt2)));
  ctx.out[0] = store_real(ctx, ctx.input(0).dtype(), ctx.input(0).dims(), v);
}
KILN_REGISTER_OP({.op = "Gelu", .since_opset = 20, .infer = infer_same, .reference = gelu_kernel});

// IsNaN / IsInf (detect_positive, detect_negative): float input, bool output.
void infer_is_class(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  if (dt != DType::Undefined && !dtype_is_float(dt))
    ctx.fail(std::string("expects a float input, got ") + dtype_name(dt));
  set_out(ctx, 0, DType::Bool, in_shape(ctx, 0));
}
template <bool is_inf>
void is_class_kernel(KernelContext& ctx) {
  const bool pos = ctx.node.attrs.get_int("detect_positive", 1) != 0,
             neg = ctx.node.attrs.get_int("detect_negative", 1) != 0;
  const std::vector<double> v = load_real(ctx, ctx.input(0));
  TensorData out(DType::Bool, ctx.input(0).dims());
  for (size_t i = 0; i < v.size(); ++i)
    out.data<uint8_t>()[i] = is_inf ? std::isinf(v[i]) && (v[i] > 0 ? pos : neg) : std::isnan(v[i]);
  ctx.out[0] = out;
}
KILN_REGISTER_OP({.op = "IsNaN", .infer = infer_is_class, .reference = is_class_kernel<false>});
KILN_REGISTER_OP({.op = "IsInf", .infer = infer_is_class, .reference = is_class_kernel<true>});

// Activations, one per entry of ops/activation.h: floating types in double (parameters too), rounded once;
// Relu, the one ONNX activation defined on integers, also computes them exactly in their own type.
template <Activation A>
void activation_kernel(KernelContext& ctx) {
  const ActivationParams a = activation_params(A, ctx.node.attrs);
  const Params p{a.alpha, a.beta};
  map_kernel(
      ctx,
      [](auto x, const Params& p) {
        using C = decltype(x);
        if constexpr (std::is_floating_point_v<C>)
          return activate<A, StdMath>(static_cast<double>(x), p.alpha, p.beta);
        else if constexpr (A == Activation::Relu)
          return activate<A, StdMath>(x, C(0), C(0));
        else
          return x;  // not reached: map_kernel refuses integer types for the other activations
      },
      p, A != Activation::Relu);
}
#define KILN_REGISTER_ACTIVATION(name, ...) \
  KILN_REGISTER_OP({.op = #name, .infer = infer_same, .reference = activation_kernel<Activation::name>});
KILN_ACTIVATIONS(KILN_REGISTER_ACTIVATION)
#undef KILN_REGISTER_ACTIVATION

// Clip: min/max are attributes before opset 11, optional scalar inputs after.
void clip(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  TensorData out(x.dtype(), x.dims());
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    using C = typename T::compute;
    if constexpr (T::is_bool) {
      unsupported(ctx, x.dtype());
    } else {
      C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
      if (ctx.opset < 11) {
        lo = static_cast<C>(ctx.node.attrs.get_float("min", -std::numeric_limits<float>::max()));
        hi = static_cast<C>(ctx.node.attrs.get_float("max", std::numeric_limits<float>::max()));
      }
      for (size_t k : {1, 2})
        if (ctx.has_input(k)) {
          const TensorData& b = ctx.input(k);
          if (b.numel() != 1) ctx.fail("min/max must be scalars");
          if (b.dtype() != x.dtype()) ctx.fail("min/max dtype differs from the input's");
          (k == 1 ? lo : hi) = T::load(b.data<S>()[0]);
        }
      for (int64_t i = 0; i < x.numel(); ++i) {
        C v = T::load(x.data<S>()[i]);
        out.data<S>()[i] = T::store(v < lo ? lo : (v > hi ? hi : v));
      }
    }
  });
  ctx.out[0] = out;
}
KILN_REGISTER_OP({.op = "Clip", .min_inputs = 1, .max_inputs = 3, .infer = infer_same, .reference = clip});

void not_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.dtype() != DType::Bool) unsupported(ctx, x.dtype());
  TensorData out(DType::Bool, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) out.data<uint8_t>()[i] = x.data<uint8_t>()[i] ? 0 : 1;
  ctx.out[0] = out;
}
KILN_REGISTER_OP({.op = "Not", .infer = infer_not, .reference = not_kernel});

void identity(KernelContext& ctx) { ctx.out[0] = ctx.input(0); }  // values are immutable: share the buffer
void infer_identity(InferContext& ctx) {  // also passes sequences and optionals through, with what they hold
  infer_same(ctx);
  if (!ctx.out.empty()) ctx.out[0].element = ctx.input(0).element;
}
KILN_REGISTER_OP({.op = "Identity", .infer = infer_identity, .reference = identity});

// Dropout is the identity at inference; the optional mask output is all true.
void infer_dropout(InferContext& ctx) {
  infer_same(ctx);
  set_out(ctx, 1, DType::Bool, in_shape(ctx, 0));
}
void dropout(KernelContext& ctx) {
  // training_mode with a non-zero ratio draws a random mask: no oracle could agree with it. With ratio 0
  // (or inference) it is the identity.
  const bool training = ctx.has_input(2) && ctx.input(2).numel() == 1 && ctx.input(2).as_int64(0) != 0;
  const double ratio = ctx.has_input(1) && ctx.input(1).numel() == 1 ? ctx.input(1).as_double(0) : 0.5;
  if (training && ratio != 0.0) ctx.fail("training_mode Dropout with a non-zero ratio is random: not supported");
  ctx.out[0] = ctx.input(0);
  if (ctx.out.size() > 1) {
    TensorData mask(DType::Bool, ctx.input(0).dims());
    std::fill_n(mask.data<uint8_t>(), mask.numel(), 1);
    ctx.out[1] = mask;
  }
}
KILN_REGISTER_OP({.op = "Dropout", .min_inputs = 1, .max_inputs = 3, .max_outputs = 2, .infer = infer_dropout,
                  .reference = dropout});

void infer_softmax(InferContext& ctx) {
  const int64_t r = ctx.rank(0);
  if (r >= 0) normalize_axis(ctx, ctx.node.attrs.get_int("axis", ctx.opset < 13 ? 1 : -1), r);
  infer_same(ctx);
}

// Softmax over one axis (opset >= 13), or before 13 over the input coerced to 2-D at `axis` (every dim from
// axis on is one row). Computed in double with the row maximum subtracted.
template <bool is_log>
void softmax_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const int64_t r = x.rank();
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", ctx.opset < 13 ? 1 : -1), r);
  const auto& d = x.dims();
  const int64_t outer = numel({d.begin(), d.begin() + axis});
  // Elements of one row are `n` apart by `step`; `inner` rows interleave inside each outer block.
  const int64_t n = ctx.opset < 13 ? numel({d.begin() + axis, d.end()}) : d[axis];
  const int64_t inner = ctx.opset < 13 ? 1 : numel({d.begin() + axis + 1, d.end()});
  TensorData out(x.dtype(), d);
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (!T::is_float) {
      unsupported(ctx, x.dtype());
    } else {
      const S* src = x.data<S>();
      S* dst = out.data<S>();
      std::vector<double> e(static_cast<size_t>(n));
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t in = 0; in < inner; ++in) {
          const int64_t base = o * n * inner + in;
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t k = 0; k < n; ++k) mx = std::max(mx, static_cast<double>(T::load(src[base + k * inner])));
          double sum = 0;
          for (int64_t k = 0; k < n; ++k) sum += e[k] = std::exp(static_cast<double>(T::load(src[base + k * inner])) - mx);
          for (int64_t k = 0; k < n; ++k) {
            const double v = is_log ? static_cast<double>(T::load(src[base + k * inner])) - mx - std::log(sum) : e[k] / sum;
            dst[base + k * inner] = T::store(static_cast<typename T::compute>(v));
          }
        }
    }
  });
  ctx.out[0] = out;
}
KILN_REGISTER_OP({.op = "Softmax", .infer = infer_softmax, .reference = softmax_kernel<false>});
KILN_REGISTER_OP({.op = "LogSoftmax", .infer = infer_softmax, .reference = softmax_kernel<true>});

}  // namespace
}  // namespace kiln::ops
