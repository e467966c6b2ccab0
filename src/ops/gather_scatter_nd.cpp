// GatherND and ScatterND: the last dim of indices (length m) holds tuples that address slices of data.
//   GatherND (batch_dims b): out[i..., :] = data[batch..., tuple(i...), :]; shape indices[:-1] + data[b+m:]
//   ScatterND: out = data; out[tuple(i...), :] (reduction)= updates[i..., :]; updates is indices[:-1] +
//   data[m:]
// The first b dims of data and indices are shared batch dims. Negative tuple entries count from the end.
#include "ops/indexing.h"

namespace kiln::ops {
namespace {

int64_t batch_dims(const auto& ctx) {
  const int64_t b = ctx.node.attrs.get_int("batch_dims", 0);
  if (b < 0) ctx.fail("batch_dims must be >= 0, got " + std::to_string(b));
  return b;
}

// Checks ranks and the tuple length m (when known) against data's rank r; returns m or -1 when unknown.
int64_t check_nd(const auto& ctx, int64_t r, int64_t q, int64_t m, int64_t b) {
  if (r < 1 || q < 1) ctx.fail("data and indices must have rank >= 1");
  if (b >= std::min(r, q))
    ctx.fail("batch_dims " + std::to_string(b) + " must be less than the ranks of data and indices");
  if (m >= 0 && (m < 1 || m > r - b))
    ctx.fail("the last dim of indices (" + std::to_string(m) + ") must be in [1, " + std::to_string(r - b) +
             "]");
  return m;
}

void infer_nd(InferContext& ctx) {
  require_index_dtype(ctx, ctx.input(1).dtype, "indices");
  const bool scatter = ctx.node.op == "ScatterND";
  const int64_t b = scatter ? 0 : batch_dims(ctx);
  if (scatter) read_reduction(ctx);
  auto data = in_shape(ctx, 0), idx = in_shape(ctx, 1);
  if (scatter) return set_out(ctx, 0, ctx.input(0).dtype, data);
  if (!data || !idx) return set_out(ctx, 0, ctx.input(0).dtype, std::nullopt);
  const Dim& last = idx->empty() ? Dim() : idx->back();
  const int64_t m = check_nd(ctx, static_cast<int64_t>(data->size()), static_cast<int64_t>(idx->size()),
                             last.is_static() ? last.value : -1, b);
  if (m < 0) return set_out(ctx, 0, ctx.input(0).dtype, std::nullopt);
  Shape out(idx->begin(), idx->end() - 1);
  out.insert(out.end(), data->begin() + b + m, data->end());
  set_out(ctx, 0, ctx.input(0).dtype, out);
}

// Calls f(t, off) for every index tuple t (in row-major order) with off the offset of the data slice it
// addresses.
template <class F>
void for_each_tuple(const KernelContext& ctx, const TensorData& data, const TensorData& idx, int64_t b,
                    F&& f) {
  require_index_dtype(ctx, idx.dtype(), "indices");
  const auto &dd = data.dims(), &id = idx.dims();
  const int64_t m = check_nd(ctx, data.rank(), idx.rank(), id.empty() ? 0 : id.back(), b);
  for (int64_t k = 0; k < b; ++k)
    if (dd[k] != id[k]) ctx.fail("batch dim " + std::to_string(k) + " differs between data and indices");
  const std::vector<int64_t> strides = strides_of(dd);
  const int64_t batches = numel({dd.begin(), dd.begin() + b}), block = numel({dd.begin() + b, dd.end()});
  const int64_t per_batch = numel({id.begin() + b, id.end() - 1});
  for (int64_t bi = 0; bi < batches; ++bi)
    for (int64_t t = bi * per_batch; t < (bi + 1) * per_batch; ++t) {
      int64_t off = bi * block;
      for (int64_t k = 0; k < m; ++k)
        off += checked_index(ctx, idx, t * m + k, dd[b + k], "indices") * strides[b + k];
      f(t, off);
    }
}

void gather_nd_kernel(KernelContext& ctx) {
  const TensorData &data = ctx.input(0), &idx = ctx.input(1);
  const int64_t b = batch_dims(ctx);
  check_nd(ctx, data.rank(), idx.rank(), idx.rank() ? idx.dims().back() : 0, b);
  const int64_t m = idx.dims().back();
  std::vector<int64_t> out_dims(idx.dims().begin(), idx.dims().end() - 1);
  out_dims.insert(out_dims.end(), data.dims().begin() + b + m, data.dims().end());
  TensorData out(data.dtype(), out_dims);
  const size_t es = element_size(ctx, data);
  const size_t slice = static_cast<size_t>(numel({data.dims().begin() + b + m, data.dims().end()})) * es;
  const auto* src = static_cast<const unsigned char*>(data.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_tuple(ctx, data, idx, b,
                 [&](int64_t t, int64_t off) { std::memcpy(dst + t * slice, src + off * es, slice); });
  ctx.out[0] = out;
}

void scatter_nd_kernel(KernelContext& ctx) {
  const TensorData &data = ctx.input(0), &idx = ctx.input(1), &upd = ctx.input(2);
  check_nd(ctx, data.rank(), idx.rank(), idx.rank() ? idx.dims().back() : 0, 0);
  const int64_t m = idx.dims().back();
  std::vector<int64_t> want(idx.dims().begin(), idx.dims().end() - 1);
  want.insert(want.end(), data.dims().begin() + m, data.dims().end());
  if (upd.dims() != want)
    ctx.fail("updates has shape " + to_string(make_shape(upd.dims())) + ", expected " +
             to_string(make_shape(want)));
  if (upd.dtype() != data.dtype()) ctx.fail("updates must have the dtype of data");
  const Reduction red = read_reduction(ctx);
  const int64_t slice = numel({data.dims().begin() + m, data.dims().end()});
  TensorData out = data.clone();
  dispatch(ctx, data.dtype(), [&](auto ty) {
    using T = decltype(ty);
    auto* o = out.data<typename T::storage>();
    const auto* u = upd.data<typename T::storage>();
    for_each_tuple(ctx, data, idx, 0, [&](int64_t t, int64_t off) {
      for (int64_t e = 0; e < slice; ++e) o[off + e] = reduce_into<T>(red, o[off + e], u[t * slice + e]);
    });
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP(
    {.op = "GatherND", .min_inputs = 2, .max_inputs = 2, .infer = infer_nd, .reference = gather_nd_kernel});
KILN_REGISTER_OP(
    {.op = "ScatterND", .min_inputs = 3, .max_inputs = 3, .infer = infer_nd, .reference = scatter_nd_kernel});

}  // namespace
}  // namespace kiln::ops
