// GatherElements, ScatterElements and its deprecated alias Scatter (opset 9-10): element-wise indexing along
// one axis. For axis a, index tensor position p addresses data position p with p[a] replaced by indices[p]:
//   GatherElements: out[p] = data[p with p[a] = indices[p]]            (out has the shape of indices)
//   ScatterElements: out = data; out[p with p[a] = indices[p]] (reduction)= updates[p]
// Indices must have the rank of data and no larger a dim on the other axes; negative ones count from the end.
#include "ops/indexing.h"

namespace kiln::ops {
namespace {

bool is_scatter(const auto& ctx) {
  return ctx.node.op != "GatherElements";
}

void infer_elements(InferContext& ctx) {
  require_index_dtype(ctx, ctx.input(1).dtype, "indices");
  auto data = in_shape(ctx, 0), idx = in_shape(ctx, 1);
  if (data) {
    if (data->empty()) ctx.fail("data must have rank >= 1");
    normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), static_cast<int64_t>(data->size()));
  }
  if (data && idx && data->size() != idx->size())
    ctx.fail("indices has rank " + std::to_string(idx->size()) + " but data has rank " +
             std::to_string(data->size()));
  if (is_scatter(ctx)) {
    if (read_reduction(ctx) != Reduction::None && ctx.node.op == "Scatter")
      ctx.fail("Scatter has no reduction");
    auto upd = in_shape(ctx, 2);
    if (idx && upd && is_static(*idx) && is_static(*upd) && *idx != *upd)
      ctx.fail("updates has shape " + to_string(*upd) + " but indices has shape " + to_string(*idx));
    const DType ut = ctx.input(2).dtype, dt = ctx.input(0).dtype;
    if (ut != DType::Undefined && dt != DType::Undefined && ut != dt)
      ctx.fail(std::string("updates is ") + dtype_name(ut) + " but data is " + dtype_name(dt));
    return set_out(ctx, 0, ctx.input(0).dtype, data);
  }
  set_out(ctx, 0, ctx.input(0).dtype, idx);
}

// Calls f(j, off): j walks the index tensor in row-major order, off is the data element it addresses.
template <class F>
void for_each_element_index(const KernelContext& ctx, const TensorData& data, const TensorData& idx, F&& f) {
  require_index_dtype(ctx, idx.dtype(), "indices");
  const int64_t r = data.rank();
  if (r == 0) ctx.fail("data must have rank >= 1");
  if (idx.rank() != r)
    ctx.fail("indices has rank " + std::to_string(idx.rank()) + " but data has rank " + std::to_string(r));
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), r);
  for (int64_t d = 0; d < r; ++d)
    if (d != axis && idx.dims()[d] > data.dims()[d])
      ctx.fail("indices dim " + std::to_string(d) + " (" + std::to_string(idx.dims()[d]) +
               ") exceeds data's (" + std::to_string(data.dims()[d]) + ")");
  const std::vector<int64_t> strides = strides_of(data.dims());
  int64_t j = 0;
  for_each_index(idx.dims(), [&](const std::vector<int64_t>& at) {
    int64_t off = 0;
    for (int64_t d = 0; d < r; ++d)
      off += (d == axis ? checked_index(ctx, idx, j, data.dims()[d], "indices") : at[d]) * strides[d];
    f(j++, off);
  });
}

void gather_elements_kernel(KernelContext& ctx) {
  const TensorData &data = ctx.input(0), &idx = ctx.input(1);
  TensorData out(data.dtype(), idx.dims());
  const size_t es = element_size(ctx, data);
  const auto* src = static_cast<const unsigned char*>(data.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_element_index(ctx, data, idx,
                         [&](int64_t j, int64_t off) { std::memcpy(dst + j * es, src + off * es, es); });
  ctx.out[0] = out;
}

void scatter_elements_kernel(KernelContext& ctx) {
  const TensorData &data = ctx.input(0), &idx = ctx.input(1), &upd = ctx.input(2);
  if (upd.dims() != idx.dims()) ctx.fail("updates must have the shape of indices");
  if (upd.dtype() != data.dtype()) ctx.fail("updates must have the dtype of data");
  const Reduction red = read_reduction(ctx);
  TensorData out = data.clone();
  dispatch(ctx, data.dtype(), [&](auto ty) {
    using T = decltype(ty);
    auto* o = out.data<typename T::storage>();
    const auto* u = upd.data<typename T::storage>();
    for_each_element_index(ctx, data, idx,
                           [&](int64_t j, int64_t off) { o[off] = reduce_into<T>(red, o[off], u[j]); });
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "GatherElements",
                  .min_inputs = 2,
                  .max_inputs = 2,
                  .infer = infer_elements,
                  .reference = gather_elements_kernel});
KILN_REGISTER_OP({.op = "ScatterElements",
                  .min_inputs = 3,
                  .max_inputs = 3,
                  .infer = infer_elements,
                  .reference = scatter_elements_kernel});
KILN_REGISTER_OP({.op = "Scatter",
                  .min_inputs = 3,
                  .max_inputs = 3,
                  .infer = infer_elements,
                  .reference = scatter_elements_kernel});

}  // namespace
}  // namespace kiln::ops
