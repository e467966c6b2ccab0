// Concat along one axis (all other dims must agree).
#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_concat(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  std::optional<Shape> out;
  int64_t axis = 0;
  for (size_t k = 0; k < ctx.num_inputs(); ++k) {
    if (ctx.in[k].dtype != DType::Undefined && dt != DType::Undefined && ctx.in[k].dtype != dt)
      ctx.fail(std::string("input dtypes differ: ") + dtype_name(dt) + " vs " + dtype_name(ctx.in[k].dtype));
    auto s = in_shape(ctx, k);
    if (!s) return set_out(ctx, 0, dt, std::nullopt);
    if (!out) {
      out = s;
      axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), static_cast<int64_t>(s->size()));
      continue;
    }
    if (s->size() != out->size())
      ctx.fail("inputs have different ranks: " + to_string(*out) + " vs " + to_string(*s));
    for (size_t j = 0; j < s->size(); ++j) {
      Dim &o = (*out)[j];
      const Dim& d = (*s)[j];
      if (static_cast<int64_t>(j) == axis) {
        o = o.is_static() && d.is_static() ? Dim(o.value + d.value) : Dim();
      } else if (o.is_static() && d.is_static()) {
        if (o.value != d.value)
          ctx.fail("inputs disagree off the concat axis: " + to_string(*out) + " vs " + to_string(*s));
      } else if (!o.is_static() && d.is_static()) {
        o = d;
      }
    }
  }
  set_out(ctx, 0, dt, out);
}

void concat_kernel(KernelContext& ctx) {
  const TensorData& first = ctx.input(0);
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), first.rank());
  std::vector<int64_t> dims = first.dims();
  dims[axis] = 0;
  for (size_t k = 0; k < ctx.in.size(); ++k) {
    const TensorData& t = ctx.input(k);
    if (t.dtype() != first.dtype() || t.rank() != first.rank()) ctx.fail("inputs differ in dtype or rank");
    for (int64_t j = 0; j < t.rank(); ++j)
      if (j != axis && t.dims()[j] != first.dims()[j]) ctx.fail("inputs disagree off the concat axis");
    dims[axis] += t.dims()[axis];
  }
  TensorData out(first.dtype(), dims);
  const size_t es = element_size(ctx, first);
  const int64_t outer = numel({dims.begin(), dims.begin() + axis});
  const int64_t inner = numel({dims.begin() + axis + 1, dims.end()});
  auto* dst = static_cast<unsigned char*>(out.raw());
  // Row by row: each input contributes a contiguous chunk of dims[axis]*inner elements per outer index.
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < ctx.in.size(); ++k) {
      const TensorData& t = ctx.input(k);
      const size_t chunk = static_cast<size_t>(t.dims()[axis] * inner) * es;
      std::memcpy(dst, static_cast<const unsigned char*>(t.raw()) + o * chunk, chunk);
      dst += chunk;
    }
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Concat", .min_inputs = 1, .max_inputs = kVariadic, .infer = infer_concat,
                  .reference = concat_kernel});

}  // namespace
}  // namespace kiln::ops
