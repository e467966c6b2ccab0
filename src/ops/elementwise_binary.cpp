// Broadcasting binary ops: arithmetic (Add Sub Mul Div Pow Mod PRelu BitShift, variadic Min Max Sum Mean),
// comparisons (Equal Less Greater LessOrEqual GreaterOrEqual → bool) and logic (And Or Xor on bool).
// Arithmetic stays in the input dtype: int64 Div truncates toward zero, float16 computes in float.
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

// clang-format off
enum class Bin { Add, Sub, Mul, Div, Mod, Min, Max, PRelu, ShiftLeft, ShiftRight,
                 Eq, Lt, Gt, Le, Ge, And, Or, Xor };
// clang-format on

constexpr bool is_compare(Bin op) { return op >= Bin::Eq && op <= Bin::Ge; }
constexpr bool is_logic(Bin op) { return op >= Bin::And; }

void check_same_dtype(InferContext& ctx) {
  DType t = ctx.input(0).dtype;
  for (size_t k = 1; k < ctx.num_inputs(); ++k)
    if (t != DType::Undefined && ctx.in[k].dtype != DType::Undefined && ctx.in[k].dtype != t)
      ctx.fail(std::string("input dtypes differ: ") + dtype_name(t) + " vs " + dtype_name(ctx.in[k].dtype));
}

std::optional<Shape> all_broadcast(InferContext& ctx) {
  std::vector<std::optional<Shape>> shapes;
  for (size_t k = 0; k < ctx.num_inputs(); ++k) shapes.push_back(in_shape(ctx, k));
  return broadcast_shapes(ctx, shapes);
}

template <Bin op>
void infer_binary(InferContext& ctx) {
  check_same_dtype(ctx);
  if constexpr (is_logic(op))
    if (ctx.input(0).dtype != DType::Bool && ctx.input(0).dtype != DType::Undefined)
      ctx.fail(std::string("expects bool inputs, got ") + dtype_name(ctx.input(0).dtype));
  set_out(ctx, 0, is_compare(op) || is_logic(op) ? DType::Bool : ctx.input(0).dtype, all_broadcast(ctx));
}

void infer_pow(InferContext& ctx) {  // the exponent may have another dtype
  set_out(ctx, 0, ctx.input(0).dtype, broadcast_shapes(ctx, {in_shape(ctx, 0), in_shape(ctx, 1)}));
}

// Calls f(out_flat, a_offset, b_offset) over the broadcast output.
template <class F>
void broadcast_loop(const std::vector<int64_t>& out, const TensorData& a, const TensorData& b, F&& f) {
  const auto sa = broadcast_strides(a.dims(), out), sb = broadcast_strides(b.dims(), out);
  int64_t i = 0;
  for_each_index(out, [&](const std::vector<int64_t>& idx) { f(i++, dot(idx, sa), dot(idx, sb)); });
}

template <Bin op, class T>
auto apply(const KernelContext& ctx, typename T::compute a, typename T::compute b, bool fmod) {
  using C = typename T::compute;
  if constexpr (op == Bin::Add) return static_cast<C>(a + b);
  else if constexpr (op == Bin::Sub) return static_cast<C>(a - b);
  else if constexpr (op == Bin::Mul) return static_cast<C>(a * b);
  else if constexpr (op == Bin::Div) {
    if constexpr (!T::is_float) {
      if (b == 0) ctx.fail("integer division by zero");
      // INT_MIN / -1 overflows in C++; ONNX Runtime wraps, and so do we.
      if constexpr (std::is_signed_v<C>)
        if (b == static_cast<C>(-1)) return static_cast<C>(0 - static_cast<std::make_unsigned_t<C>>(a));
    }
    return static_cast<C>(a / b);
  } else if constexpr (op == Bin::Mod) {
    if constexpr (T::is_float) {
      C r = std::fmod(a, b);
      // fmod=0 on floats is numpy's remainder: the result takes the divisor's sign.
      if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    } else {
      if (b == 0) ctx.fail("integer modulo by zero");
      if constexpr (std::is_signed_v<C>) {
        if (b == static_cast<C>(-1)) return static_cast<C>(0);
        C r = static_cast<C>(a % b);
        if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<C>(r + b);
        return r;
      } else {
        return static_cast<C>(a % b);
      }
    }
  } else if constexpr (op == Bin::PRelu) {
    if constexpr (T::is_signed) return static_cast<C>(a < C(0) ? a * b : a);
    else return a;
  } else if constexpr (op == Bin::ShiftLeft || op == Bin::ShiftRight) {
    // Unsigned only (binary() refuses the rest). Shifting out every bit gives 0 (a C++ shift by >= the width
    // is undefined).
    if (b >= sizeof(C) * 8) return C(0);
    return static_cast<C>(op == Bin::ShiftLeft ? a << b : a >> b);
  } else if constexpr (op == Bin::Min) return static_cast<C>(b < a ? b : a);
  else if constexpr (op == Bin::Max) return static_cast<C>(a < b ? b : a);
  else if constexpr (op == Bin::Eq) return a == b;
  else if constexpr (op == Bin::Lt) return a < b;
  else if constexpr (op == Bin::Gt) return a > b;
  else if constexpr (op == Bin::Le) return a <= b;
  else if constexpr (op == Bin::Ge) return a >= b;
  else if constexpr (op == Bin::And) return static_cast<bool>(a) && static_cast<bool>(b);
  else if constexpr (op == Bin::Or) return static_cast<bool>(a) || static_cast<bool>(b);
  else return static_cast<bool>(a) != static_cast<bool>(b);
}

template <Bin op>
TensorData binary(const KernelContext& ctx, const TensorData& a, const TensorData& b) {
  if (a.dtype() != b.dtype())
    ctx.fail(std::string("input dtypes differ: ") + dtype_name(a.dtype()) + " vs " + dtype_name(b.dtype()));
  const auto dims = broadcast_dims(ctx, {a.dims(), b.dims()});
  const bool fmod = ctx.node.attrs.get_int("fmod", 0) != 0;
  TensorData out(is_compare(op) || is_logic(op) ? DType::Bool : a.dtype(), dims);
  dispatch(ctx, a.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    constexpr bool shift = op == Bin::ShiftLeft || op == Bin::ShiftRight;
    if constexpr (((op == Bin::Mod || op == Bin::PRelu) && T::is_bool) ||
                  (shift && (T::is_bool || !std::is_unsigned_v<typename T::compute>))) {
      unsupported(ctx, a.dtype());
    } else {
      const S* pa = a.data<S>();
      const S* pb = b.data<S>();
      broadcast_loop(dims, a, b, [&](int64_t i, int64_t ia, int64_t ib) {
        auto r = apply<op, T>(ctx, T::load(pa[ia]), T::load(pb[ib]), fmod);
        if constexpr (is_compare(op) || is_logic(op)) out.data<uint8_t>()[i] = r ? 1 : 0;
        else out.data<S>()[i] = T::store(r);
      });
    }
  });
  return out;
}

// Binary ops fold over their inputs, which also covers variadic Min/Max/Sum.
template <Bin op>
void kernel(KernelContext& ctx) {
  TensorData acc = ctx.input(0);
  if (ctx.in.size() == 1) acc = acc.clone();
  for (size_t k = 1; k < ctx.in.size(); ++k) acc = binary<op>(ctx, acc, ctx.input(k));
  ctx.out[0] = acc;
}

void pow_kernel(KernelContext& ctx) {
  const TensorData &a = ctx.input(0), &b = ctx.input(1);
  const auto dims = broadcast_dims(ctx, {a.dims(), b.dims()});
  TensorData out(a.dtype(), dims);
  dispatch(ctx, a.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (T::is_bool) {
      unsupported(ctx, a.dtype());
    } else {
      broadcast_loop(dims, a, b, [&](int64_t i, int64_t ia, int64_t ib) {
        double r = std::pow(static_cast<double>(T::load(a.data<S>()[ia])), b.as_double(ib));
        out.data<S>()[i] = T::store(static_cast<typename T::compute>(r));
      });
    }
  });
  ctx.out[0] = out;
}

// PRelu: the slope broadcasts to X's shape (one way only).
void prelu_kernel(KernelContext& ctx) {
  kernel<Bin::PRelu>(ctx);
  if (ctx.out[0].dims() != ctx.input(0).dims()) ctx.fail("slope does not broadcast to the shape of X");
}

// BitShift: direction LEFT or RIGHT (required), unsigned integers.
template <class Ctx>
bool shift_left(const Ctx& ctx) {
  const std::string dir = ctx.node.attrs.get_string("direction", "");
  if (dir != "LEFT" && dir != "RIGHT") ctx.fail("direction must be LEFT or RIGHT, got '" + dir + "'");
  return dir == "LEFT";
}
void infer_bitshift(InferContext& ctx) {
  shift_left(ctx);
  infer_binary<Bin::ShiftLeft>(ctx);
}
void bitshift_kernel(KernelContext& ctx) {
  shift_left(ctx) ? kernel<Bin::ShiftLeft>(ctx) : kernel<Bin::ShiftRight>(ctx);
}

// Mean: the float Sum of the inputs divided by their count.
void mean_kernel(KernelContext& ctx) {
  kernel<Bin::Add>(ctx);
  std::vector<double> v = load_real(ctx, ctx.out[0]);
  for (double& x : v) x /= static_cast<double>(ctx.in.size());
  ctx.out[0] = store_real(ctx, ctx.out[0].dtype(), ctx.out[0].dims(), v);
}

#define KILN_BINARY(NAME, OP) \
  KILN_REGISTER_OP({.op = NAME, .min_inputs = 2, .max_inputs = 2, .infer = infer_binary<OP>, .reference = kernel<OP>})
#define KILN_VARIADIC(NAME, OP)                                                                         \
  KILN_REGISTER_OP({.op = NAME, .min_inputs = 1, .max_inputs = kVariadic, .infer = infer_binary<OP>, \
                    .reference = kernel<OP>})

KILN_BINARY("Add", Bin::Add);
KILN_BINARY("Sub", Bin::Sub);
KILN_BINARY("Mul", Bin::Mul);
KILN_BINARY("Div", Bin::Div);
KILN_BINARY("Mod", Bin::Mod);
KILN_VARIADIC("Min", Bin::Min);
KILN_VARIADIC("Max", Bin::Max);
KILN_VARIADIC("Sum", Bin::Add);
KILN_REGISTER_OP({.op = "Mean",
                  .min_inputs = 1,
                  .max_inputs = kVariadic,
                  .infer = infer_binary<Bin::Add>,
                  .reference = mean_kernel});
KILN_REGISTER_OP({.op = "PRelu",
                  .min_inputs = 2,
                  .max_inputs = 2,
                  .infer = infer_binary<Bin::PRelu>,
                  .reference = prelu_kernel});
KILN_REGISTER_OP({.op = "BitShift",
                  .since_opset = 11,
                  .min_inputs = 2,
                  .max_inputs = 2,
                  .infer = infer_bitshift,
                  .reference = bitshift_kernel});
KILN_BINARY("Equal", Bin::Eq);
KILN_BINARY("Less", Bin::Lt);
KILN_BINARY("Greater", Bin::Gt);
KILN_BINARY("LessOrEqual", Bin::Le);
KILN_BINARY("GreaterOrEqual", Bin::Ge);
KILN_BINARY("And", Bin::And);
KILN_BINARY("Or", Bin::Or);
KILN_BINARY("Xor", Bin::Xor);
KILN_REGISTER_OP({.op = "Pow", .min_inputs = 2, .max_inputs = 2, .infer = infer_pow, .reference = pow_kernel});

}  // namespace
}  // namespace kiln::ops
