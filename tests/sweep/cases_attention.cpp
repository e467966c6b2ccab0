// kiln_backend_sweep cases: kiln.Attention (as fuse_attention writes it: Q [..., S, Dh], Kt [..., Dh, Skv],
// V [..., Skv, Dv], optional additive mask). Head dims 32 / 64 / 80 / 128 (each of the CUDA kernel's padded
// head sizes, and one that is not a power of two), Dv != Dh, S and Skv not multiples of the kernel's 16-row
// and 32-key tiles, Skv != S (cross attention), one key, batch dims of rank 0, 1 and 2 (sizes 1 and 3), a
// ViT-B/16 layer, and masks: per-key [B, 1, 1, Skv] and full [S, Skv] inputs, and a constant causal mask with
// a fully masked row (NaN, as Softmax) and a row whose first 40 keys (more than one tile) are masked.
#include <cmath>

#include "cases_util.h"
#include "cases_values.h"

namespace kiln::sweep {
namespace {

Case attention(DType dt, std::vector<int64_t> batch, int64_t s, int64_t skv, int64_t dh, int64_t dv,
               std::optional<Operand> mask = std::nullopt, const std::string& what = "") {
  auto dims = [&](int64_t a, int64_t b) {
    std::vector<int64_t> d = batch;
    d.push_back(a);
    d.push_back(b);
    return d;
  };
  std::vector<Operand> in{input(dt, dims(s, dh)), input(dt, dims(dh, skv)), input(dt, dims(skv, dv))};
  std::string label =
      "Q " + dims_str(in[0].dims) + " Kt " + dims_str(in[1].dims) + " V " + dims_str(in[2].dims);
  if (mask) {
    label += " mask " + dims_str(mask->dims) + (what.empty() ? "" : " " + what);
    in.push_back(std::move(*mask));
  }
  Case c =
      make_case(label, std::move(in), attrs({{"scale", static_cast<float>(1 / std::sqrt(double(dh)))}}), 1);
  c.flops = 2.0 * static_cast<double>(product(batch) * s * skv * (dh + dv));
  return c;
}

// [s, skv]: causal (key j > i + skv - s masked), row 0 fully masked, the last row's first 40 keys masked.
Operand causal_mask(DType dt, int64_t s, int64_t skv) {
  std::vector<double> v(static_cast<size_t>(s * skv));
  for (int64_t i = 0; i < s; ++i)
    for (int64_t j = 0; j < skv; ++j)
      v[i * skv + j] = (j > i + skv - s || i == 0 || (i == s - 1 && j < 40)) ? -INFINITY : 0.0;
  return fixed(tensor_of(dt, {s, skv}, v));
}

std::vector<Case> attention_cases(const std::string&, DType dt) {
  return {
      attention(dt, {}, 16, 32, 32, 32),
      attention(dt, {1}, 17, 33, 64, 64),
      attention(dt, {3}, 5, 70, 80, 80),
      attention(dt, {1, 3}, 50, 19, 128, 128),
      attention(dt, {3, 2}, 33, 33, 64, 40),  // Dv != Dh
      attention(dt, {2}, 7, 1, 32, 16),       // one key
      attention(dt, {2}, 1, 100, 128, 128),   // one query row
      attention(dt, {2, 3}, 40, 65, 32, 32, input(dt, {2, 1, 1, 65}), "per key"),
      attention(dt, {3}, 23, 45, 80, 80, input(dt, {23, 45}), "full"),
      attention(dt, {1, 2}, 70, 90, 64, 64, causal_mask(dt, 70, 90), "causal"),
      attention(dt, {1, 12}, 197, 197, 64, 64),  // a ViT-B/16 layer
  };
}

KILN_SWEEP_CASES(
    {.domain = "kiln", .ops = {"Attention"}, .dtypes = float_dtypes(), .cases = attention_cases});

}  // namespace
}  // namespace kiln::sweep
