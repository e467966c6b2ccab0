// MaxUnpool: the partial inverse of MaxPool. Y is zero except Y.flat[I[i]] = X[i], where I holds the flat
// indices into the whole output (N and C included) that MaxPool's Indices output gives. The output shape is
// the output_shape input when given, else the shape MaxPool would have unpooled from:
//   out = (in - 1) * stride - (pad_begin + pad_end) + kernel per spatial axis.
#include "ops/util.h"

namespace kiln::ops {
namespace {

struct Unpool {
  std::vector<int64_t> kernel, strides, pads;
};

template <class Ctx>
Unpool read_unpool(const Ctx& ctx, size_t n) {
  const Attributes& a = ctx.node.attrs;
  Unpool u{a.get_ints("kernel_shape"), a.get_ints("strides", std::vector<int64_t>(n, 1)),
           a.get_ints("pads", std::vector<int64_t>(2 * n, 0))};
  if (u.kernel.size() != n)
    ctx.fail("kernel_shape must have one entry per spatial axis (" + std::to_string(n) + ")");
  if (u.strides.size() != n || u.pads.size() != 2 * n)
    ctx.fail("strides / pads do not match the spatial rank");
  for (size_t i = 0; i < n; ++i)
    if (u.kernel[i] < 1 || u.strides[i] < 1 || u.pads[i] < 0 || u.pads[i + n] < 0)
      ctx.fail("kernel_shape and strides must be >= 1 and pads >= 0");
  return u;
}

// The unpooled shape from X's shape.
Shape unpooled_shape(const InferContext& ctx, const Shape& x) {
  if (x.size() < 3) ctx.fail("X must be [N, C, spatial...], got " + to_string(x));
  const size_t n = x.size() - 2;
  const Unpool u = read_unpool(ctx, n);
  Shape out{x[0], x[1]};
  for (size_t i = 0; i < n; ++i) {
    const Dim& d = x[i + 2];
    const int64_t o =
        d.is_static() ? (d.value - 1) * u.strides[i] - (u.pads[i] + u.pads[i + n]) + u.kernel[i] : 0;
    if (o < 0)
      ctx.fail("output size along spatial axis " + std::to_string(i) + " would be " + std::to_string(o));
    out.push_back(d.is_static() ? Dim(o) : Dim());
  }
  return out;
}

void infer_max_unpool(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  if (ctx.input(1).dtype != DType::Undefined && ctx.input(1).dtype != DType::Int64)
    ctx.fail("I must be int64");
  auto x = in_shape(ctx, 0);
  const std::optional<Shape> unpooled = x ? std::optional<Shape>(unpooled_shape(ctx, *x)) : std::nullopt;
  if (!ctx.has_input(2)) return set_out(ctx, 0, dt, unpooled);
  const TensorData* s = ctx.value(2);
  if (!s) return set_out(ctx, 0, dt, shape_of_known_rank(ctx, 2));
  const std::vector<int64_t> out = s->to_int64_vector();
  if (unpooled && out.size() != unpooled->size())
    ctx.fail("output_shape has " + std::to_string(out.size()) + " entries for a rank-" +
             std::to_string(unpooled->size()) + " X");
  for (size_t i = 0; unpooled && i < out.size(); ++i)
    if ((*unpooled)[i].is_static() && out[i] < (*unpooled)[i].value)
      ctx.fail("output_shape " + to_string(make_shape(out)) + " is smaller than the unpooled shape " +
               to_string(*unpooled));
  set_out(ctx, 0, dt, make_shape(out));
}

void max_unpool_kernel(KernelContext& ctx) {
  const TensorData &x = ctx.input(0), &idx = ctx.input(1);
  if (idx.dims() != x.dims()) ctx.fail("I must have X's shape");
  if (idx.dtype() != DType::Int64) ctx.fail("I must be int64");
  InferContext ictx(ctx.node, ctx.opset);
  const std::vector<int64_t> u_dims = static_dims(unpooled_shape(ictx, make_shape(x.dims())));
  if (inferred_dims(ctx) != u_dims)
    ctx.fail("an output_shape other than the unpooled shape " + to_string(make_shape(u_dims)) +
             " is not supported: the ONNX reference reads the indices in the unpooled shape and pads its "
             "end, ONNX "
             "Runtime reads them in output_shape");
  TensorData u(x.dtype(), u_dims);  // zero-initialized
  const int64_t total = u.numel();
  const size_t esize = element_size(ctx, x);
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(u.raw());
  const int64_t* pi = idx.data<int64_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (pi[i] < 0 || pi[i] >= total)
      ctx.fail("I[" + std::to_string(i) + "] = " + std::to_string(pi[i]) +
               " is outside the unpooled tensor's " + std::to_string(total) + " elements");
    std::memcpy(dst + pi[i] * esize, src + i * esize, esize);
  }
  ctx.out[0] = u;
}

KILN_REGISTER_OP({.op = "MaxUnpool",
                  .min_inputs = 2,
                  .max_inputs = 3,
                  .infer = infer_max_unpool,
                  .reference = max_unpool_kernel});

}  // namespace
}  // namespace kiln::ops
