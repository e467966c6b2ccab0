// MelWeightMatrix (opset 17): the [dft_length / 2 + 1, num_mel_bins] matrix that maps a one-sided magnitude
// spectrum onto triangular mel filters. num_mel_bins + 2 points equally spaced on the mel scale
// (mel = 2595 log10(1 + hz / 700)) between lower_edge_hertz and upper_edge_hertz are taken back to hertz and
// to spectrum bins floor((dft_length + 1) * hz / sample_rate); filter i rises linearly from point i to point
// i + 1 (1 at its center) and falls to 0 at point i + 2. Computed in double. The mel step is the range over
// num_mel_bins + 2, not + 1, so the last point stops short of upper_edge_hertz: that is what the ONNX
// reference implementation, its node test data and ONNX Runtime all compute, so kiln does too.
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

template <class Ctx>
int64_t positive_scalar(const Ctx& ctx, const TensorData& t, const char* what) {
  if (t.numel() != 1 || (t.dtype() != DType::Int32 && t.dtype() != DType::Int64))
    ctx.fail(std::string(what) + " must be an int32 or int64 scalar");
  const int64_t v = t.as_int64(0);
  if (v < 1 || v > (int64_t{1} << 31))
    ctx.fail(std::string(what) + " must be in [1, 2^31], got " + std::to_string(v));
  return v;
}

void infer_mel(InferContext& ctx) {
  const DType dt = output_datatype(ctx);
  Dim bins, mels;
  if (const TensorData* n = ctx.value(0)) mels = Dim(positive_scalar(ctx, *n, "num_mel_bins"));
  if (const TensorData* d = ctx.value(1)) bins = Dim(positive_scalar(ctx, *d, "dft_length") / 2 + 1);
  set_out(ctx, 0, dt, Shape{bins, mels});
}

void mel_kernel(KernelContext& ctx) {
  const int64_t mels = positive_scalar(ctx, ctx.input(0), "num_mel_bins");
  const int64_t dft_length = positive_scalar(ctx, ctx.input(1), "dft_length");
  const int64_t sample_rate = positive_scalar(ctx, ctx.input(2), "sample_rate");
  const TensorData &lo_t = ctx.input(3), &hi_t = ctx.input(4);
  if (lo_t.numel() != 1 || hi_t.numel() != 1 || !dtype_is_float(lo_t.dtype()) ||
      !dtype_is_float(hi_t.dtype()))
    ctx.fail("lower_edge_hertz and upper_edge_hertz must be float scalars");
  const double lo = load_real(ctx, lo_t)[0], hi = load_real(ctx, hi_t)[0];
  if (!(0 <= lo && lo < hi && hi <= sample_rate / 2.0))
    ctx.fail("needs 0 <= lower_edge_hertz < upper_edge_hertz <= sample_rate / 2, got " + std::to_string(lo) +
             ", " + std::to_string(hi) + " at sample_rate " + std::to_string(sample_rate));
  const int64_t bins = dft_length / 2 + 1;
  auto to_mel = [](double hz) { return 2595 * std::log10(1 + hz / 700); };
  const double mel_lo = to_mel(lo), step = (to_mel(hi) - mel_lo) / static_cast<double>(mels + 2);
  std::vector<int64_t> point(static_cast<size_t>(mels + 2));
  for (int64_t k = 0; k < mels + 2; ++k) {
    const double hz = 700 * (std::pow(10.0, (mel_lo + step * static_cast<double>(k)) / 2595) - 1);
    point[static_cast<size_t>(k)] =
        static_cast<int64_t>(std::floor(static_cast<double>(dft_length + 1) * hz / sample_rate));
  }
  // With upper_edge_hertz <= sample_rate / 2, every point is a spectrum bin; checked anyway before indexing.
  for (int64_t p : point)
    if (p < 0 || p >= bins)
      ctx.fail("a filter edge falls outside the " + std::to_string(bins) + " spectrum bins");
  std::vector<double> w(static_cast<size_t>(bins * mels), 0.0);
  auto at = [&](int64_t bin, int64_t mel) -> double& { return w[static_cast<size_t>(bin * mels + mel)]; };
  for (int64_t i = 0; i < mels; ++i) {
    const int64_t left = point[static_cast<size_t>(i)], center = point[static_cast<size_t>(i + 1)],
                  right = point[static_cast<size_t>(i + 2)];
    if (center == left)
      at(center, i) = 1;
    else
      for (int64_t j = left; j <= center; ++j) at(j, i) = double(j - left) / double(center - left);
    for (int64_t j = center; j < right; ++j) at(j, i) = double(right - j) / double(right - center);
  }
  TensorData out(output_datatype(ctx), {bins, mels});
  dispatch(ctx, out.dtype(), [&](auto ty) {
    using T = decltype(ty);
    for (size_t k = 0; k < w.size(); ++k)
      out.data<typename T::storage>()[k] = T::store(static_cast<typename T::compute>(w[k]));
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "MelWeightMatrix",
                  .since_opset = 17,
                  .min_inputs = 5,
                  .max_inputs = 5,
                  .infer = infer_mel,
                  .reference = mel_kernel});

}  // namespace
}  // namespace kiln::ops
