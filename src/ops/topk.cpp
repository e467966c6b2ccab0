// TopK: the K largest (largest=1) or smallest elements along an axis and their int64 indices. K is an
// attribute before opset 10 and a one-element input since. Outputs are always sorted (sorted=0 allows any
// order); equal values keep the lower index first, as the spec asks. NaN orders above every number
// (total_less).
#include <algorithm>
#include <numeric>

#include "ops/indexing.h"

namespace kiln::ops {
namespace {

int64_t k_value(const auto& ctx, const TensorData* k) {
  if (ctx.opset < 10) return ctx.node.attrs.get_int("k", -1);
  if (k->numel() != 1 || k->rank() != 1 || k->dtype() != DType::Int64)
    ctx.fail("K must be a 1-D int64 tensor with one element");
  return k->as_int64(0);
}

void check_k(const auto& ctx, int64_t k, const Dim& n) {
  if (k < 0 || (n.is_static() && k > n.value))
    ctx.fail("K is " + std::to_string(k) + ", out of range [0, " +
             (n.is_static() ? std::to_string(n.value) : "?") + "]");
}

void infer_topk(InferContext& ctx) {
  if (ctx.opset >= 10) {
    if (!ctx.has_input(1)) ctx.fail("input K is required since opset 10");
    if (const DType t = ctx.input(1).dtype; t != DType::Undefined && t != DType::Int64)
      ctx.fail(std::string("K must be int64, got ") + dtype_name(t));
  }
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0);
  if (x) {
    if (x->empty()) ctx.fail("X must have rank >= 1");
    const int64_t axis =
        normalize_axis(ctx, ctx.node.attrs.get_int("axis", -1), static_cast<int64_t>(x->size()));
    Dim& n = (*x)[axis];
    if (ctx.opset < 10 || ctx.value(1)) {
      const int64_t k = k_value(ctx, ctx.value(1));
      check_k(ctx, k, n);
      n = Dim(k);
    } else {
      n = Dim();  // K is only known at run time
    }
  }
  set_out(ctx, 0, dt, x);
  set_out(ctx, 1, DType::Int64, x);
}

void topk_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() == 0) ctx.fail("X must have rank >= 1");
  const auto& d = x.dims();
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", -1), x.rank());
  const int64_t n = d[axis], inner = numel({d.begin() + axis + 1, d.end()});
  const int64_t k = k_value(ctx, ctx.opset < 10 ? nullptr : &ctx.input(1));
  check_k(ctx, k, Dim(n));
  const int64_t outer = outer_count(x.numel(), n, inner);
  const bool largest = ctx.node.attrs.get_int("largest", 1) != 0;
  std::vector<int64_t> out_dims = d;
  out_dims[axis] = k;
  TensorData values(x.dtype(), out_dims), indices(DType::Int64, out_dims);
  auto* ind = indices.data<int64_t>();
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    const auto* src = x.data<typename T::storage>();
    auto* val = values.data<typename T::storage>();
    auto at = [&](int64_t o, int64_t s, int64_t i) { return (o * n + s) * inner + i; };
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        auto less = [&](int64_t a, int64_t b) {
          return total_less<T>(T::load(src[at(o, a, i)]), T::load(src[at(o, b, i)]));
        };
        std::iota(order.begin(), order.end(), 0);
        // A stable sort keeps equal values in index order.
        if (largest)
          std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return less(b, a); });
        else
          std::stable_sort(order.begin(), order.end(), less);
        for (int64_t s = 0; s < k; ++s) {
          val[(o * k + s) * inner + i] = src[at(o, order[s], i)];
          ind[(o * k + s) * inner + i] = order[s];
        }
      }
  });
  ctx.out[0] = values;
  ctx.out[1] = indices;
}

KILN_REGISTER_OP({.op = "TopK",
                  .min_inputs = 1,
                  .max_inputs = 2,
                  .min_outputs = 2,
                  .max_outputs = 2,
                  .infer = infer_topk,
                  .reference = topk_kernel});

}  // namespace
}  // namespace kiln::ops
