// ReduceX (axes attribute before opset 13 for ReduceSum / 18 for the others, input since; keepdims;
// noop_with_empty_axes) and ArgMax/ArgMin. Reference kernels for all of them (L1/L2/SumSquare/LogSum/
// LogSumExp: float types only, accumulated in double).
#include <algorithm>
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

enum class Red { Sum, Prod, Min, Max, Mean, L1, L2, SumSquare, LogSum, LogSumExp };

// Normalized reduced axes (all when none are given, unless noop_with_empty_axes). nullopt: unknown.
template <class Ctx>
std::optional<std::vector<int64_t>> reduce_axes(const Ctx& ctx, int64_t rank) {
  std::optional<std::vector<int64_t>> axes = ints_arg(ctx, 1, "axes");
  if (!axes) return std::nullopt;
  if (axes->empty()) {
    if (ctx.node.attrs.get_int("noop_with_empty_axes", 0)) return axes;
    for (int64_t k = 0; k < rank; ++k) axes->push_back(k);
    return axes;
  }
  return normalize_axes(ctx, *axes, rank);
}

Shape reduced_shape(const Shape& x, const std::vector<int64_t>& axes, bool keep) {
  Shape out;
  for (size_t k = 0; k < x.size(); ++k) {
    if (std::find(axes.begin(), axes.end(), static_cast<int64_t>(k)) == axes.end()) out.push_back(x[k]);
    else if (keep) out.push_back(Dim(1));
  }
  return out;
}

void infer_reduce(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0);
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  const bool keep = ctx.node.attrs.get_int("keepdims", 1) != 0;
  auto axes = reduce_axes(ctx, static_cast<int64_t>(x->size()));
  if (!axes) return set_out(ctx, 0, dt, keep ? std::optional(Shape(x->size(), Dim())) : std::nullopt);
  set_out(ctx, 0, dt, reduced_shape(*x, *axes, keep));
}

template <Red op>
void reduce_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const auto axes = *reduce_axes(ctx, x.rank());
  const bool keep = ctx.node.attrs.get_int("keepdims", 1) != 0;
  const auto out_dims = static_dims(reduced_shape(make_shape(x.dims()), axes, true));  // keepdims layout
  const auto ostr = broadcast_strides(out_dims, x.dims());  // input index → output offset
  int64_t count = 1;
  for (int64_t a : axes) count *= x.dims()[a];
  if ((op == Red::Min || op == Red::Max) && count == 0 && numel(out_dims) > 0) ctx.fail("reducing an empty axis");
  TensorData out(x.dtype(), out_dims);
  constexpr bool floats_only =
      op == Red::L1 || op == Red::L2 || op == Red::SumSquare || op == Red::LogSum || op == Red::LogSumExp;
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (floats_only && !T::is_float) unsupported(ctx, x.dtype());
    // Float L1/L2/SumSquare/LogSum/LogSumExp accumulate in double; the others in the element's compute type.
    using C = std::conditional_t<floats_only, double, std::conditional_t<T::is_bool, int64_t, typename T::compute>>;
    std::vector<C> acc(static_cast<size_t>(numel(out_dims)), op == Red::Prod ? C(1) : C(0));
    std::vector<bool> seen(acc.size(), false);
    const S* src = x.data<S>();
    int64_t i = 0;
    for_each_index(x.dims(), [&](const std::vector<int64_t>& idx) {
      const int64_t o = dot(idx, ostr);
      const C v = static_cast<C>(T::load(src[i++]));
      if constexpr (op == Red::Sum || op == Red::Mean || op == Red::LogSum)
        acc[o] = static_cast<C>(acc[o] + v);
      else if constexpr (op == Red::L1) acc[o] += std::fabs(v);
      else if constexpr (op == Red::L2 || op == Red::SumSquare) acc[o] += v * v;
      else if constexpr (op == Red::LogSumExp) acc[o] += std::exp(v);
      else if constexpr (op == Red::Prod) acc[o] = static_cast<C>(acc[o] * v);
      else if constexpr (op == Red::Min) acc[o] = !seen[o] || v < acc[o] ? v : acc[o];
      else acc[o] = !seen[o] || acc[o] < v ? v : acc[o];
      seen[o] = true;
    });
    for (size_t o = 0; o < acc.size(); ++o) {
      C v = acc[o];
      if constexpr (op == Red::Mean) v = static_cast<C>(v / static_cast<C>(count));
      if constexpr (op == Red::L2) v = std::sqrt(v);
      if constexpr (op == Red::LogSum || op == Red::LogSumExp) v = std::log(v);
      out.data<S>()[o] = T::store(static_cast<typename T::compute>(v));
    }
  });
  ctx.out[0] = keep ? out : out.reshaped(static_dims(reduced_shape(make_shape(x.dims()), axes, false)));
}

void infer_arg(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  if (!x) return set_out(ctx, 0, DType::Int64, std::nullopt);
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), static_cast<int64_t>(x->size()));
  set_out(ctx, 0, DType::Int64, reduced_shape(*x, {axis}, ctx.node.attrs.get_int("keepdims", 1) != 0));
}

template <bool is_max>
void arg_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), x.rank());
  const bool last = ctx.node.attrs.get_int("select_last_index", 0) != 0;
  const auto& d = x.dims();
  const int64_t outer = numel({d.begin(), d.begin() + axis}), n = d[axis], inner = numel({d.begin() + axis + 1, d.end()});
  if (n == 0) ctx.fail("ArgMax/ArgMin over an empty axis");
  auto out_dims = d;
  out_dims[axis] = 1;
  TensorData out(DType::Int64, out_dims);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      int64_t best = 0;
      double bv = x.as_double(o * n * inner + in);
      for (int64_t k = 1; k < n; ++k) {
        const double v = x.as_double((o * n + k) * inner + in);
        const bool better = is_max ? (v > bv || (last && v == bv)) : (v < bv || (last && v == bv));
        if (better) best = k, bv = v;
      }
      out.data<int64_t>()[o * inner + in] = best;
    }
  if (!ctx.node.attrs.get_int("keepdims", 1)) out_dims.erase(out_dims.begin() + axis);
  ctx.out[0] = out.reshaped(out_dims);
}

#define KILN_REDUCE(NAME, REF) \
  KILN_REGISTER_OP({.op = NAME, .min_inputs = 1, .max_inputs = 2, .infer = infer_reduce, .reference = REF})
KILN_REDUCE("ReduceSum", reduce_kernel<Red::Sum>);
KILN_REDUCE("ReduceProd", reduce_kernel<Red::Prod>);
KILN_REDUCE("ReduceMin", reduce_kernel<Red::Min>);
KILN_REDUCE("ReduceMax", reduce_kernel<Red::Max>);
KILN_REDUCE("ReduceMean", reduce_kernel<Red::Mean>);
KILN_REDUCE("ReduceL2", reduce_kernel<Red::L2>);
KILN_REDUCE("ReduceL1", reduce_kernel<Red::L1>);
KILN_REDUCE("ReduceSumSquare", reduce_kernel<Red::SumSquare>);
KILN_REDUCE("ReduceLogSum", reduce_kernel<Red::LogSum>);
KILN_REDUCE("ReduceLogSumExp", reduce_kernel<Red::LogSumExp>);
KILN_REGISTER_OP({.op = "ArgMax", .infer = infer_arg, .reference = arg_kernel<true>});
KILN_REGISTER_OP({.op = "ArgMin", .infer = infer_arg, .reference = arg_kernel<false>});

}  // namespace
}  // namespace kiln::ops
