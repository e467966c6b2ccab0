// kiln.Attention (domain "kiln"): softmax(scale * Q @ Kt + mask) @ V over the last axis, the layer
// fuse_attention collapses exported attention into (contract: ops/internal_ops.h). The reference is the
// definition, in double: scores of one query row, max-subtracted softmax, weighted sum of V's rows.
#include <cmath>

#include "ops/internal_ops.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

// Static dims must agree; symbolic or unknown ones are left to the kernel-time check.
bool same_dim(const Dim& a, const Dim& b) {
  return !a.is_static() || !b.is_static() || a.value == b.value;
}

void infer_attention(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  for (size_t k = 1; k < ctx.num_inputs(); ++k)
    if (ctx.has_input(k) && ctx.input(k).dtype != dt) ctx.fail("inputs must share Q's dtype");
  const auto q = in_shape(ctx, 0), kt = in_shape(ctx, 1), v = in_shape(ctx, 2);
  if (!q || !kt || !v) return set_out(ctx, 0, dt, std::nullopt);
  const size_t r = q->size();
  if (r < 2 || kt->size() != r || v->size() != r) ctx.fail("Q, Kt and V must have the same rank >= 2");
  bool ok = same_dim((*q)[r - 1], (*kt)[r - 2]) && same_dim((*kt)[r - 1], (*v)[r - 2]);
  for (size_t i = 0; i + 2 < r; ++i) ok = ok && same_dim((*q)[i], (*kt)[i]) && same_dim((*q)[i], (*v)[i]);
  if (!ok) ctx.fail("Q " + to_string(*q) + ", Kt " + to_string(*kt) + ", V " + to_string(*v) + " do not fit");
  Shape out = *q;
  out[r - 1] = (*v)[r - 1];
  if (const auto m = ctx.has_input(3) ? in_shape(ctx, 3) : std::nullopt) {
    Shape scores = *q;
    scores[r - 1] = (*kt)[r - 1];
    bool fits = m->size() <= r;
    for (size_t i = 0; fits && i < m->size(); ++i) {
      const Dim& d = (*m)[m->size() - 1 - i];
      fits = (d.is_static() && d.value == 1) || same_dim(d, scores[r - 1 - i]);
    }
    if (!fits) ctx.fail("mask " + to_string(*m) + " does not broadcast to the scores " + to_string(scores));
  }
  set_out(ctx, 0, dt, out);
}

void attention_kernel(KernelContext& ctx) {
  const TensorData &qt = ctx.input(0), &ktt = ctx.input(1), &vt = ctx.input(2);
  const std::vector<int64_t>& qd = qt.dims();
  const size_t r = qd.size();
  if (r < 2 || ktt.dims().size() != r || vt.dims().size() != r)
    ctx.fail("Q, Kt and V must have the same rank >= 2");
  const int64_t s = qd[r - 2], dh = qd[r - 1], skv = ktt.dims()[r - 1], dv = vt.dims()[r - 1];
  std::vector<int64_t> scores_dims = qd, out_dims = qd;
  scores_dims[r - 1] = skv;
  out_dims[r - 1] = dv;
  const int64_t batch = numel({qd.begin(), qd.end() - 2});
  if (ktt.numel() != batch * dh * skv || vt.numel() != batch * skv * dv) ctx.fail("Q, Kt and V do not fit");
  const std::vector<double> q = load_real(ctx, qt), kt = load_real(ctx, ktt), v = load_real(ctx, vt);
  std::vector<double> mask, y(static_cast<size_t>(batch * s * dv)), p(static_cast<size_t>(skv));
  std::vector<int64_t> mask_strides;
  if (ctx.has_input(3)) {
    mask = load_real(ctx, ctx.input(3));
    if (broadcast_dims(ctx, {scores_dims, ctx.input(3).dims()}) != scores_dims) ctx.fail("mask does not fit");
    mask_strides = broadcast_strides(ctx.input(3).dims(), scores_dims);
  }
  const double scale = ctx.node.attrs.get_float(internal_ops::attention::kScale, 1.f);
  std::vector<int64_t> idx(r, 0);  // scores index of (b, i, 0), for the mask
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < s; ++i) {
      double mx = -INFINITY, sum = 0;
      int64_t rest = b * s + i;
      for (size_t d = r - 1; d-- > 0;) {
        idx[d] = rest % scores_dims[d];
        rest /= scores_dims[d];
      }
      const int64_t mask_row = mask.empty() ? 0 : dot(idx, mask_strides);
      for (int64_t j = 0; j < skv; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < dh; ++k) acc += q[(b * s + i) * dh + k] * kt[(b * dh + k) * skv + j];
        p[j] = scale * acc + (mask.empty() ? 0 : mask[mask_row + j * mask_strides[r - 1]]);
        mx = std::max(mx, p[j]);
      }
      for (int64_t j = 0; j < skv; ++j) sum += (p[j] = std::exp(p[j] - mx));  // all -inf: NaN, as Softmax
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < skv; ++j) acc += p[j] * v[(b * skv + j) * dv + c];
        y[(b * s + i) * dv + c] = skv ? acc / sum : 0;  // no keys: P @ V sums nothing
      }
    }
  ctx.out[0] = store_real(ctx, qt.dtype(), out_dims, y);
}

KILN_REGISTER_OP({.op = internal_ops::attention::kOp,
                  .domain = internal_ops::kDomain,
                  .min_inputs = 3,
                  .max_inputs = 4,
                  .infer = infer_attention,
                  .reference = attention_kernel});

}  // namespace
}  // namespace kiln::ops
