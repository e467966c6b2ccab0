// Transpose; without 'perm' the dims are reversed.
#include <numeric>

#include "ops/util.h"

namespace kiln::ops {
namespace {

template <class Ctx>
std::vector<int64_t> read_perm(const Ctx& ctx, int64_t rank) {
  std::vector<int64_t> perm = ctx.node.attrs.get_ints("perm");
  if (perm.empty()) {
    perm.resize(rank);
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  if (static_cast<int64_t>(perm.size()) != rank)
    ctx.fail("perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(rank));
  return normalize_axes(ctx, perm, rank, "perm");
}

void infer_transpose(InferContext& ctx) {
  auto s = in_shape(ctx, 0);
  if (!s) return set_out(ctx, 0, ctx.input(0).dtype, std::nullopt);
  auto perm = read_perm(ctx, static_cast<int64_t>(s->size()));
  Shape out;
  for (int64_t p : perm) out.push_back((*s)[p]);
  set_out(ctx, 0, ctx.input(0).dtype, out);
}

void transpose_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  auto perm = read_perm(ctx, x.rank());
  std::vector<int64_t> dims, in_strides = strides_of(x.dims()), strides;
  for (int64_t p : perm) {
    dims.push_back(x.dims()[p]);
    strides.push_back(in_strides[p]);  // output axis k walks input axis perm[k]
  }
  TensorData out(x.dtype(), dims);
  const size_t es = element_size(ctx, x);
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    std::memcpy(dst, src + dot(idx, strides) * es, es);
    dst += es;
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Transpose", .infer = infer_transpose, .reference = transpose_kernel});

}  // namespace
}  // namespace kiln::ops
