// Slice: starts/ends/axes attributes before opset 10; starts/ends/axes/steps inputs since.
// Bounds clamp like numpy (INT64_MAX/INT64_MIN mean "to the end"); negative steps walk backwards.
#include <algorithm>
#include <limits>

#include "ops/util.h"

namespace kiln::ops {
namespace {

struct Args {
  std::vector<int64_t> starts, ends, axes, steps;
};

template <class Ctx>
std::optional<Args> read_args(const Ctx& ctx, int64_t rank) {
  Args a;
  if (ctx.opset < 10) {
    a.starts = ctx.node.attrs.get_ints("starts");
    a.ends = ctx.node.attrs.get_ints("ends");
    a.axes = ctx.node.attrs.get_ints("axes");
  } else {
    auto get = [&](size_t k) -> std::optional<std::vector<int64_t>> {
      if constexpr (std::is_same_v<Ctx, InferContext>) return ctx.value(k) ? std::optional(ctx.value(k)->to_int64_vector()) : std::nullopt;
      else return ctx.input(k).to_int64_vector();
    };
    auto s = get(1), e = get(2);
    if (!s || !e) return std::nullopt;
    a.starts = *s;
    a.ends = *e;
    if (ctx.has_input(3)) {
      auto ax = get(3);
      if (!ax) return std::nullopt;
      a.axes = *ax;
    }
    if (ctx.has_input(4)) {
      auto st = get(4);
      if (!st) return std::nullopt;
      a.steps = *st;
    }
  }
  if (a.axes.empty())
    for (size_t k = 0; k < a.starts.size(); ++k) a.axes.push_back(static_cast<int64_t>(k));
  if (a.steps.empty()) a.steps.assign(a.starts.size(), 1);
  if (a.ends.size() != a.starts.size() || a.axes.size() != a.starts.size() || a.steps.size() != a.starts.size())
    ctx.fail("starts, ends, axes and steps must have the same length");
  a.axes = normalize_axes(ctx, a.axes, rank);
  for (int64_t s : a.steps)
    if (s == 0) ctx.fail("slice step cannot be 0");
  return a;
}

void infer_slice(InferContext& ctx) {
  auto s = in_shape(ctx, 0);
  const DType dt = ctx.input(0).dtype;
  if (!s) return set_out(ctx, 0, dt, std::nullopt);
  const int64_t rank = static_cast<int64_t>(s->size());
  auto a = read_args(ctx, rank);
  Shape out = *s;
  if (!a) {  // unknown bounds: sliced dims unknown; which dims those are is known only with axes
    auto axes = ctx.opset >= 10 && ctx.has_input(3) ? ints_arg(ctx, 3, "") : std::nullopt;
    for (int64_t k = 0; k < rank; ++k)
      if (!axes || std::find(axes->begin(), axes->end(), k) != axes->end() ||
          std::find(axes->begin(), axes->end(), k - rank) != axes->end())
        out[k] = Dim();
    return set_out(ctx, 0, dt, out);
  }
  for (size_t j = 0; j < a->axes.size(); ++j) {
    Dim& d = out[a->axes[j]];
    const bool whole = a->starts[j] == 0 && a->steps[j] == 1 && a->ends[j] >= std::numeric_limits<int32_t>::max();
    if (d.is_static()) d = Dim(slice_range(a->starts[j], a->ends[j], a->steps[j], d.value).second);
    else if (!whole) d = Dim();  // a full-range slice keeps a symbolic dim
  }
  set_out(ctx, 0, dt, out);
}

void slice_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const auto a = *read_args(ctx, x.rank());
  std::vector<int64_t> start(x.rank(), 0), step(x.rank(), 1), dims = x.dims();
  for (size_t j = 0; j < a.axes.size(); ++j) {
    const int64_t k = a.axes[j];
    auto [s, len] = slice_range(a.starts[j], a.ends[j], a.steps[j], x.dims()[k]);
    start[k] = s;
    step[k] = a.steps[j];
    dims[k] = len;
  }
  TensorData out(x.dtype(), dims);
  const size_t es = element_size(ctx, x);
  const auto strides = strides_of(x.dims());
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t k = 0; k < idx.size(); ++k) off += (start[k] + idx[k] * step[k]) * strides[k];
    std::memcpy(dst, src + off * es, es);
    dst += es;
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Slice", .min_inputs = 1, .max_inputs = 5, .infer = infer_slice, .reference = slice_kernel});

}  // namespace

std::pair<int64_t, int64_t> slice_range(int64_t start, int64_t end, int64_t step, int64_t n) {
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, 0, n);
  } else {
    start = std::clamp<int64_t>(start, -1, n - 1);
    end = std::clamp<int64_t>(end, -1, n - 1);
  }
  // ceil((end - start) / step), never negative.
  const int64_t len = step > 0 ? (end - start + step - 1) / step : (start - end + (-step) - 1) / (-step);
  return {start, std::max<int64_t>(len, 0)};
}

}  // namespace kiln::ops
