// DepthToSpace (DCR / CRD modes) and SpaceToDepth on [N, C, H, W].
#include "ops/util.h"

namespace kiln::ops {
namespace {

template <class Ctx>
int64_t blocksize(const Ctx& ctx) {
  const int64_t b = ctx.node.attrs.get_int("blocksize", 0);
  if (b < 1) ctx.fail("blocksize must be given and >= 1");
  return b;
}

template <class Ctx>
bool crd_mode(const Ctx& ctx) {
  const std::string mode = ctx.node.attrs.get_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") ctx.fail("unknown mode '" + mode + "'");
  return mode == "CRD";
}

void infer_d2s(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0);
  const int64_t b = blocksize(ctx);
  crd_mode(ctx);
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  if (x->size() != 4) ctx.fail("input must be 4-D, got " + to_string(*x));
  Shape out = *x;
  const Dim c = (*x)[1];
  if (c.is_static() && c.value % (b * b) != 0)
    ctx.fail(std::to_string(c.value) + " channels are not divisible by blocksize^2 = " + std::to_string(b * b));
  out[1] = c.is_static() ? Dim(c.value / (b * b)) : Dim();
  for (int k : {2, 3}) out[k] = out[k].is_static() ? Dim(out[k].value * b) : Dim();
  set_out(ctx, 0, dt, out);
}

void infer_s2d(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0);
  const int64_t b = blocksize(ctx);
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  if (x->size() != 4) ctx.fail("input must be 4-D, got " + to_string(*x));
  Shape out = *x;
  out[1] = out[1].is_static() ? Dim(out[1].value * b * b) : Dim();
  for (int k : {2, 3}) {
    const Dim d = (*x)[k];
    if (d.is_static() && d.value % b != 0)
      ctx.fail("spatial size " + std::to_string(d.value) + " is not divisible by blocksize " + std::to_string(b));
    out[k] = d.is_static() ? Dim(d.value / b) : Dim();
  }
  set_out(ctx, 0, dt, out);
}

// Moves one element per (n, c, h, w) of the *space* tensor [N, C, H*b, W*b] from/to its channel in
// the *depth* tensor [N, C*b*b, H, W]. DCR/SpaceToDepth put the block offset outermost in the
// channel index ((i*b + j)*C + c); CRD puts it innermost (c*b*b + i*b + j).
void move_blocks(KernelContext& ctx, bool to_space) {
  const TensorData& x = ctx.input(0);
  if (x.rank() != 4) ctx.fail("input must be 4-D");
  const int64_t b = blocksize(ctx);
  const bool crd = to_space && crd_mode(ctx);
  const auto& d = x.dims();
  const int64_t n = d[0];
  const int64_t c = to_space ? d[1] / (b * b) : d[1];  // channels of the space tensor
  const int64_t h = to_space ? d[2] : d[2] / b, w = to_space ? d[3] : d[3] / b;  // depth tensor's H, W
  if ((to_space && d[1] % (b * b)) || (!to_space && (d[2] % b || d[3] % b))) ctx.fail("dims not divisible by blocksize");
  const std::vector<int64_t> space{n, c, h * b, w * b}, depth{n, c * b * b, h, w};
  TensorData out(x.dtype(), to_space ? space : depth);
  const size_t es = element_size(ctx, x);
  const auto ss = strides_of(space), ds = strides_of(depth);
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_index(space, [&](const std::vector<int64_t>& idx) {
    const int64_t i = idx[2] % b, j = idx[3] % b;
    const int64_t dc = crd ? idx[1] * b * b + i * b + j : (i * b + j) * c + idx[1];
    const int64_t so = dot(idx, ss), doff = idx[0] * ds[0] + dc * ds[1] + (idx[2] / b) * ds[2] + (idx[3] / b) * ds[3];
    if (to_space) std::memcpy(dst + so * es, src + doff * es, es);
    else std::memcpy(dst + doff * es, src + so * es, es);
  });
  ctx.out[0] = out;
}

void d2s_kernel(KernelContext& ctx) { move_blocks(ctx, true); }
void s2d_kernel(KernelContext& ctx) { move_blocks(ctx, false); }

KILN_REGISTER_OP({.op = "DepthToSpace", .infer = infer_d2s, .reference = d2s_kernel});
KILN_REGISTER_OP({.op = "SpaceToDepth", .infer = infer_s2d, .reference = s2d_kernel});

}  // namespace
}  // namespace kiln::ops
