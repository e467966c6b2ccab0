// Gather along any axis; negative indices count from the end (ONNX semantics since opset 11).
#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_gather(InferContext& ctx) {
  auto data = in_shape(ctx, 0), idx = in_shape(ctx, 1);
  const DType it = ctx.input(1).dtype;
  if (it != DType::Undefined && it != DType::Int32 && it != DType::Int64)
    ctx.fail(std::string("indices must be int32 or int64, got ") + dtype_name(it));
  if (!data || !idx) return set_out(ctx, 0, ctx.input(0).dtype, std::nullopt);
  const int64_t r = static_cast<int64_t>(data->size());
  if (r == 0) ctx.fail("data must have rank >= 1");
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), r);
  // Constant indices are checked now, so an out-of-range one is an error naming it before anything runs.
  const Dim& n = (*data)[axis];
  if (const TensorData* iv = ctx.value(1); iv && n.is_static())
    for (int64_t j = 0; j < iv->numel(); ++j)
      if (const int64_t k = iv->as_int64(j); k < -n.value || k >= n.value)
        ctx.fail("index " + std::to_string(k) + " (indices element " + std::to_string(j) +
                 ") is out of range for axis " + std::to_string(axis) + " of size " +
                 std::to_string(n.value));
  Shape out(data->begin(), data->begin() + axis);
  out.insert(out.end(), idx->begin(), idx->end());
  out.insert(out.end(), data->begin() + axis + 1, data->end());
  set_out(ctx, 0, ctx.input(0).dtype, out);
}

void gather_kernel(KernelContext& ctx) {
  const TensorData &data = ctx.input(0), &idx = ctx.input(1);
  const auto& d = data.dims();
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), data.rank());
  const int64_t outer = numel({d.begin(), d.begin() + axis});
  const int64_t inner = numel({d.begin() + axis + 1, d.end()});
  const int64_t n = d[axis];
  std::vector<int64_t> out_dims(d.begin(), d.begin() + axis);
  out_dims.insert(out_dims.end(), idx.dims().begin(), idx.dims().end());
  out_dims.insert(out_dims.end(), d.begin() + axis + 1, d.end());
  TensorData out(data.dtype(), out_dims);
  const size_t es = element_size(ctx, data);
  const auto* src = static_cast<const unsigned char*>(data.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  const int64_t ni = idx.numel();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < ni; ++j) {
      int64_t k = idx.as_int64(j);
      if (k < -n || k >= n)
        ctx.fail("index " + std::to_string(k) + " (indices element " + std::to_string(j) +
                 ") is out of range for axis " + std::to_string(axis) + " of size " + std::to_string(n));
      if (k < 0) k += n;
      std::memcpy(dst + ((o * ni + j) * inner) * es, src + ((o * n + k) * inner) * es, inner * es);
    }
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Gather", .min_inputs = 2, .max_inputs = 2, .infer = infer_gather, .reference = gather_kernel});

}  // namespace
}  // namespace kiln::ops
