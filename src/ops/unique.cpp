// Unique: the distinct elements of X (flattened), or with `axis` its distinct slices along that axis, sorted
// ascending (sorted=1, slices compared lexicographically) or in order of first occurrence (sorted=0).
// Outputs: Y, indices (first occurrence of each in X), inverse_indices (for each X entry, its position in Y),
// counts. Only Y's unique dim and the counts depend on values; inverse_indices has a known length.
#include <algorithm>
#include <numeric>

#include "ops/indexing.h"

namespace kiln::ops {
namespace {

void infer_unique(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  if (dt == DType::String) ctx.fail("string tensors are not supported");
  auto x = in_shape(ctx, 0);
  std::optional<Shape> y = Shape{Dim()}, inverse = Shape{Dim()};
  if (ctx.node.attrs.has("axis")) {
    y = x;
    if (x) {
      const int64_t axis =
          normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), static_cast<int64_t>(x->size()));
      (*inverse)[0] = (*x)[axis];
      (*y)[axis] = Dim();
    }
  } else if (x && is_static(*x)) {
    (*inverse)[0] = Dim(numel(static_dims(*x)));
  }
  set_out(ctx, 0, dt, y);
  set_out(ctx, 1, DType::Int64, Shape{Dim()});
  set_out(ctx, 2, DType::Int64, inverse);
  set_out(ctx, 3, DType::Int64, Shape{Dim()});
}

void unique_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const AxisSplit split = split_at_optional_axis(ctx, x);
  const std::vector<int64_t>& dims = split.dims;
  const int64_t axis = split.axis, n = split.n, inner = split.inner, outer = split.outer;
  std::vector<int64_t> order(static_cast<size_t>(n)), first, counts, inverse(static_cast<size_t>(n));
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    const auto* src = x.data<typename T::storage>();
    // Slice a < slice b, comparing their elements in row-major order.
    auto less = [&](int64_t a, int64_t b) {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const auto va = T::load(src[(o * n + a) * inner + i]), vb = T::load(src[(o * n + b) * inner + i]);
          if (total_less<T>(va, vb)) return true;
          if (total_less<T>(vb, va)) return false;
        }
      return false;
    };
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), less);  // equal slices stay in index order
    for (const int64_t s : order) {
      if (first.empty() || less(first.back(), s)) {
        first.push_back(s);
        counts.push_back(0);
      }
      ++counts.back();
      inverse[s] = static_cast<int64_t>(first.size()) - 1;
    }
  });
  const int64_t groups = static_cast<int64_t>(first.size());
  if (ctx.node.attrs.get_int("sorted", 1) == 0) {  // renumber the groups by first occurrence
    std::vector<int64_t> by_first(first.size()), rank(first.size());
    std::iota(by_first.begin(), by_first.end(), 0);
    std::sort(by_first.begin(), by_first.end(), [&](int64_t a, int64_t b) { return first[a] < first[b]; });
    std::vector<int64_t> f2(first.size()), c2(first.size());
    for (int64_t g = 0; g < groups; ++g) {
      rank[by_first[g]] = g;
      f2[g] = first[by_first[g]];
      c2[g] = counts[by_first[g]];
    }
    for (int64_t& v : inverse) v = rank[v];
    first.swap(f2);
    counts.swap(c2);
  }
  std::vector<int64_t> y_dims = dims;
  y_dims[axis] = groups;
  TensorData y(x.dtype(), y_dims);
  const size_t es = element_size(ctx, x), row = static_cast<size_t>(inner) * es;
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(y.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t g = 0; g < groups; ++g)
      std::memcpy(dst + (o * groups + g) * row, src + (o * n + first[g]) * row, row);
  ctx.out[0] = y;
  const std::vector<const std::vector<int64_t>*> rest{&first, &inverse, &counts};
  for (size_t k = 1; k < ctx.out.size(); ++k)
    ctx.out[k] =
        TensorData::from_vector(DType::Int64, {static_cast<int64_t>(rest[k - 1]->size())}, *rest[k - 1]);
}

KILN_REGISTER_OP({.op = "Unique", .max_outputs = 4, .infer = infer_unique, .reference = unique_kernel});

}  // namespace
}  // namespace kiln::ops
