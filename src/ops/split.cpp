// Split along one axis. Sizes come from the 'split' attribute (opset < 13), the second input (13+),
// or are equal parts: one per output, or 'num_outputs' (opset 18, last part may be smaller).
#include "ops/util.h"

namespace kiln::ops {
namespace {

// Part sizes for an axis of length n (n < 0: unknown). nullopt when they cannot be known.
template <class Ctx>
std::optional<std::vector<int64_t>> split_sizes(const Ctx& ctx, const std::optional<std::vector<int64_t>>& given,
                                                int64_t n, size_t outputs) {
  if (!given) return std::nullopt;
  if (!given->empty()) {
    if (given->size() != outputs)
      ctx.fail("split has " + std::to_string(given->size()) + " sizes for " + std::to_string(outputs) + " outputs");
    int64_t sum = 0;
    for (int64_t s : *given) sum += s;
    if (n >= 0 && sum != n)
      ctx.fail("split sizes add up to " + std::to_string(sum) + ", not the axis size " + std::to_string(n));
    return given;
  }
  if (n < 0) return std::nullopt;
  const int64_t parts = ctx.node.attrs.get_int("num_outputs", static_cast<int64_t>(outputs));
  if (parts != static_cast<int64_t>(outputs))
    ctx.fail("num_outputs is " + std::to_string(parts) + " but the node has " + std::to_string(outputs) + " outputs");
  // Without num_outputs the axis must divide evenly; with it the last part takes the remainder.
  const int64_t each = ctx.node.attrs.has("num_outputs") ? (n + parts - 1) / parts : n / parts;
  if (!ctx.node.attrs.has("num_outputs") && n % parts != 0)
    ctx.fail("axis size " + std::to_string(n) + " does not split evenly into " + std::to_string(parts));
  std::vector<int64_t> sizes(outputs, each);
  sizes.back() = n - each * (parts - 1);
  if (sizes.back() < 0) ctx.fail("num_outputs leaves an empty part");
  return sizes;
}

void infer_split(InferContext& ctx) {
  auto s = in_shape(ctx, 0);
  for (size_t k = 0; k < ctx.out.size(); ++k) set_out(ctx, k, ctx.input(0).dtype, std::nullopt);
  if (!s) return;
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), static_cast<int64_t>(s->size()));
  const Dim ad = (*s)[axis];
  auto sizes = split_sizes(ctx, ints_arg(ctx, 1, "split"), ad.is_static() ? ad.value : -1, ctx.out.size());
  for (size_t k = 0; k < ctx.out.size(); ++k) {
    Shape o = *s;
    o[axis] = sizes ? Dim((*sizes)[k]) : Dim();
    set_out(ctx, k, ctx.input(0).dtype, o);
  }
}

void split_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const auto& d = x.dims();
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), x.rank());
  auto sizes = *split_sizes(ctx, std::optional(ints_arg(ctx, 1, "split")), d[axis], ctx.out.size());
  const size_t es = element_size(ctx, x);
  const int64_t outer = numel({d.begin(), d.begin() + axis});
  const int64_t inner = numel({d.begin() + axis + 1, d.end()});
  const auto* src = static_cast<const unsigned char*>(x.raw());
  int64_t offset = 0;  // along the axis
  for (size_t k = 0; k < ctx.out.size(); ++k) {
    std::vector<int64_t> od = d;
    od[axis] = sizes[k];
    TensorData out(x.dtype(), od);
    const size_t chunk = static_cast<size_t>(sizes[k] * inner) * es;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(static_cast<unsigned char*>(out.raw()) + o * chunk, src + ((o * d[axis] + offset) * inner) * es, chunk);
    offset += sizes[k];
    ctx.out[k] = out;
  }
}

KILN_REGISTER_OP({.op = "Split", .min_inputs = 1, .max_inputs = 2, .min_outputs = 1, .max_outputs = kVariadic,
                  .infer = infer_split, .reference = split_kernel});

}  // namespace
}  // namespace kiln::ops
