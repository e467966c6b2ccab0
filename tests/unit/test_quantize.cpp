// Quantization reference kernels (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
// ConvInteger, QLinearMatMul, QLinearConv) against hand-derived values and independent integer loops written
// here: zero points per tensor, per row / column / output channel, rounding ties to even, saturation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

template <class T>
TensorData Q(DType dt, std::vector<int64_t> dims, const std::vector<T>& v) {
  return TensorData::from_vector(dt, std::move(dims), v);
}
TensorData U8(std::vector<int64_t> dims, const std::vector<uint8_t>& v) {
  return Q(DType::UInt8, std::move(dims), v);
}
TensorData S8(std::vector<int64_t> dims, const std::vector<int8_t>& v) {
  return Q(DType::Int8, std::move(dims), v);
}

// Random 8-bit values spanning the whole range (never all equal).
template <class T>
std::vector<T> rand8(int64_t n) {
  std::uniform_int_distribution<int> d(std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(d(rng()));
  return v;
}

std::vector<int64_t> ints(const TensorData& t) {
  return t.to_int64_vector();
}

TEST(Quantize, RoundsHalfToEvenAndSaturates) {
  const std::vector<float> x{0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 300.0f, -300.0f, 2.4999f, 7.0f};
  OneNode u("QuantizeLinear", {F({10}, x), TensorData::scalar_float(1.0f), U8({}, {128})});
  EXPECT_EQ(ints(u.run1()), (std::vector<int64_t>{128, 130, 130, 128, 126, 126, 255, 0, 130, 135}));
  // int8 zero point; with scale 2, 7 / 2 = 3.5 is a tie that rounds up to even 4.
  OneNode s("QuantizeLinear", {F({10}, x), TensorData::scalar_float(2.0f), S8({}, {-3})});
  EXPECT_EQ(ints(s.run1()), (std::vector<int64_t>{-3, -2, -2, -3, -4, -4, 127, -128, -2, 1}));
  // No zero point: uint8 with zero point 0, negatives saturate to 0.
  OneNode n("QuantizeLinear", {F({3}, {-1.0f, 3.2f, 3.6f}), TensorData::scalar_float(1.0f)});
  TensorData y = n.run1();
  EXPECT_EQ(y.dtype(), DType::UInt8);
  EXPECT_EQ(ints(y), (std::vector<int64_t>{0, 3, 4}));
}

TEST(Quantize, PerAxisRoundTrip) {
  // x [2, 3, 4] quantized along axis -2 (3 channels), then dequantized along axis 1: the same channels.
  const auto x = randf(24, 0.1f, 5.0f);
  const std::vector<float> scale{0.02f, 0.05f, 0.1f};
  const std::vector<int8_t> zp{-5, 0, 7};
  OneNode q("QuantizeLinear", {F({2, 3, 4}, x), F({3}, scale), S8({3}, zp)});
  q.attr("axis", int64_t{-2});
  const TensorData y = q.run1();
  const auto got = ints(y);
  for (int64_t i = 0; i < 24; ++i) {
    const int64_t c = (i / 4) % 3;
    const double want = std::clamp<double>(std::nearbyint(x[i] / scale[c]) + zp[c], -128.0,
                                           127.0);  // nearbyint: ties to even
    EXPECT_EQ(got[i], static_cast<int64_t>(want)) << "at " << i;
  }
  OneNode d("DequantizeLinear", {y, F({3}, scale), S8({3}, zp)});
  const auto back = floats(d.run1());
  for (int64_t i = 0; i < 24; ++i) {
    const int64_t c = (i / 4) % 3;
    EXPECT_FLOAT_EQ(back[i], static_cast<float>((got[i] - zp[c]) * double(scale[c])));
  }
  // A scale with the wrong number of channels fails naming it.
  OneNode bad("QuantizeLinear", {F({2, 3, 4}, x), F({4}, {1, 2, 3, 4})});
  EXPECT_NE(error_of([&] { bad.run1(); }).find("y_scale"), std::string::npos);
  OneNode axis("DequantizeLinear", {y, F({3}, scale)});
  axis.attr("axis", int64_t{3});
  EXPECT_NE(error_of([&] { axis.run1(); }).find("axis 3 is out of range"), std::string::npos);
}

TEST(Quantize, DequantizeInt32) {
  const std::vector<int32_t> x{-2000000, 5, 123456, 0};
  OneNode d("DequantizeLinear", {Q(DType::Int32, {4}, x), TensorData::scalar_float(0.25f)});
  EXPECT_EQ(floats(d.run1()), (std::vector<float>{-500000.0f, 1.25f, 30864.0f, 0.0f}));
}

TEST(Quantize, DynamicQuantizeLinear) {
  // Range [-1, 2.5]: scale 3.5 / 255, zero point round(1 / scale) = round(72.857) = 73.
  OneNode d("DynamicQuantizeLinear", {F({4}, {-1.0f, 0.3f, 2.5f, 1.0f})}, 3);
  const auto out = d.run();
  const float scale = 3.5f / 255.0f;
  EXPECT_FLOAT_EQ(out[1].data<float>()[0], scale);
  EXPECT_EQ(ints(out[2]), std::vector<int64_t>{73});
  const std::vector<float> x{-1.0f, 0.3f, 2.5f, 1.0f};
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(ints(out[0])[i],
              static_cast<int64_t>(std::clamp(std::nearbyint(x[i] / scale) + 73, 0.0f, 255.0f)));
  // All positive: the range is widened to include 0, so the zero point is 0.
  OneNode p("DynamicQuantizeLinear", {F({2}, {2.0f, 4.0f})}, 3);
  EXPECT_EQ(ints(p.run()[2]), std::vector<int64_t>{0});
  // All zero: a defined scale of 1, everything quantizes to 0.
  OneNode z("DynamicQuantizeLinear", {F({3}, {0.0f, 0.0f, 0.0f})}, 3);
  const auto zo = z.run();
  EXPECT_EQ(zo[1].data<float>()[0], 1.0f);
  EXPECT_EQ(ints(zo[0]), (std::vector<int64_t>{0, 0, 0}));
}

// C[b, i, j] = sum_k (A[b, i, k] - za(b, i)) * (B[b, k, j] - zb(b, j)), in 64-bit integers.
template <class ZA, class ZB>
std::vector<int64_t> matmul_int(const std::vector<uint8_t>& a, const std::vector<int8_t>& b, int64_t batch,
                                int64_t m, int64_t k, int64_t n, ZA za, ZB zb) {
  std::vector<int64_t> c;
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        int64_t acc = 0;
        for (int64_t q = 0; q < k; ++q)
          acc += (int64_t(a[(p * m + i) * k + q]) - za(p, i)) * (int64_t(b[(p * k + q) * n + j]) - zb(p, j));
        c.push_back(acc);
      }
  return c;
}

TEST(QuantizedMatMul, IntegerPerRowAndPerColumnZeroPoints) {
  const int64_t m = 4, k = 5, n = 3;
  const auto a = rand8<uint8_t>(m * k);
  const auto b = rand8<int8_t>(k * n);
  const std::vector<uint8_t> za{3, 200, 17, 90};
  const std::vector<int8_t> zb{-7, 0, 55};
  OneNode mm("MatMulInteger", {U8({m, k}, a), S8({k, n}, b), U8({m}, za), S8({n}, zb)});
  const TensorData y = mm.run1();
  EXPECT_EQ(y.dtype(), DType::Int32);
  EXPECT_EQ(ints(y), matmul_int(
                         a, b, 1, m, k, n, [&](int64_t, int64_t i) { return za[i]; },
                         [&](int64_t, int64_t j) { return zb[j]; }));
  // Batched, with [B, M, 1] / [B, 1, N] zero points, and a vector A (per-tensor zero point).
  const auto a3 = rand8<uint8_t>(2 * m * k);
  const auto b3 = rand8<int8_t>(2 * k * n);
  const std::vector<uint8_t> za3 = rand8<uint8_t>(2 * m);
  const std::vector<int8_t> zb3 = rand8<int8_t>(2 * n);
  OneNode bm("MatMulInteger", {U8({2, m, k}, a3), S8({2, k, n}, b3), U8({2, m, 1}, za3), S8({2, 1, n}, zb3)});
  EXPECT_EQ(ints(bm.run1()), matmul_int(
                                 a3, b3, 2, m, k, n, [&](int64_t p, int64_t i) { return za3[p * m + i]; },
                                 [&](int64_t p, int64_t j) { return zb3[p * n + j]; }));
  OneNode vec("MatMulInteger",
              {U8({k}, std::vector<uint8_t>(a.begin(), a.begin() + k)), S8({k, n}, b), U8({}, {9})});
  const TensorData yv = vec.run1();
  EXPECT_EQ(yv.dims(), std::vector<int64_t>{n});
  EXPECT_EQ(ints(yv),
            matmul_int(
                a, b, 1, 1, k, n, [](int64_t, int64_t) { return 9; }, [](int64_t, int64_t) { return 0; }));
  // A zero point per column of A is not a layout the spec allows.
  OneNode bad("MatMulInteger", {U8({m, k}, a), S8({k, n}, b), U8({k}, rand8<uint8_t>(k))});
  EXPECT_NE(error_of([&] { bad.run1(); }).find("zero point"), std::string::npos);
  OneNode wide("MatMulInteger", {F({m, k}, randf(m * k)), S8({k, n}, b)});
  EXPECT_NE(error_of([&] { wide.run1(); }).find("uint8 or int8"), std::string::npos);
}

TEST(QuantizedMatMul, QLinearRequantizesPerRowScale) {
  const int64_t m = 3, k = 6, n = 4;
  const auto a = rand8<uint8_t>(m * k);
  const auto b = rand8<int8_t>(k * n);
  const std::vector<float> sa{0.01f, 0.02f, 0.005f}, sb{0.03f, 0.01f, 0.02f, 0.04f};
  const float sy = 0.5f;
  OneNode q("QLinearMatMul", {U8({m, k}, a), F({m}, sa), U8({}, {100}), S8({k, n}, b), F({n}, sb),
                              S8({}, {-4}), TensorData::scalar_float(sy), U8({}, {60})});
  const auto got = ints(q.run1());
  const auto acc = matmul_int(
      a, b, 1, m, k, n, [](int64_t, int64_t) { return 100; }, [](int64_t, int64_t) { return -4; });
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double real = double(acc[i * n + j]) * sa[i] * sb[j] / sy;
      EXPECT_EQ(got[i * n + j], static_cast<int64_t>(std::clamp(std::nearbyint(real) + 60, 0.0, 255.0)))
          << i << "," << j;
    }
}

// Direct 2-D integer convolution: x [1, C, H, W] uint8, w [M, C/group, KH, KW] int8, stride s, symmetric pad
// p.
std::vector<int64_t> conv_int(const std::vector<uint8_t>& x, int64_t c, int64_t h, int64_t w, int zx,
                              const std::vector<int8_t>& wt, int64_t m, int64_t kh, int64_t kw,
                              const std::vector<int8_t>& zw, int64_t group, int64_t s, int64_t p, int64_t& oh,
                              int64_t& ow) {
  oh = (h + 2 * p - kh) / s + 1;
  ow = (w + 2 * p - kw) / s + 1;
  const int64_t cg = c / group, mg = m / group;
  std::vector<int64_t> y;
  for (int64_t o = 0; o < m; ++o)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        int64_t acc = 0;
        for (int64_t ci = 0; ci < cg; ++ci)
          for (int64_t a = 0; a < kh; ++a)
            for (int64_t e = 0; e < kw; ++e) {
              const int64_t r = i * s - p + a, col = j * s - p + e, ch = (o / mg) * cg + ci;
              if (r < 0 || r >= h || col < 0 || col >= w) continue;  // padding is the real value 0
              acc += (int64_t(x[(ch * h + r) * w + col]) - zx) *
                     (int64_t(wt[((o * cg + ci) * kh + a) * kw + e]) - zw[o]);
            }
        y.push_back(acc);
      }
  return y;
}

TEST(QuantizedConv, ConvIntegerPerChannelWeightZeroPoint) {
  const int64_t c = 4, h = 7, w = 6, m = 6, group = 2, kh = 3, kw = 2;
  const auto x = rand8<uint8_t>(c * h * w);
  const auto wt = rand8<int8_t>(m * (c / group) * kh * kw);
  const std::vector<int8_t> zw{1, -2, 3, 0, 100, -128};
  OneNode conv("ConvInteger",
               {U8({1, c, h, w}, x), S8({m, c / group, kh, kw}, wt), U8({}, {131}), S8({m}, zw)});
  conv.attr("group", group)
      .attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1});
  int64_t oh = 0, ow = 0;
  const auto want = conv_int(x, c, h, w, 131, wt, m, kh, kw, zw, group, 2, 1, oh, ow);
  const TensorData y = conv.run1();
  EXPECT_EQ(y.dims(), (std::vector<int64_t>{1, m, oh, ow}));
  EXPECT_EQ(ints(y), want);
  // x's zero point is per tensor only.
  OneNode bad("ConvInteger", {U8({1, c, h, w}, x), S8({m, c / group, kh, kw}, wt), U8({c}, {1, 2, 3, 4})});
  bad.attr("group", group);
  EXPECT_NE(error_of([&] { bad.run1(); }).find("zero point"), std::string::npos);
}

TEST(QuantizedConv, QLinearConvWithBiasAndPerChannelScale) {
  const int64_t c = 3, h = 5, w = 5, m = 2, k = 3;
  const auto x = rand8<uint8_t>(c * h * w);
  const auto wt = rand8<int8_t>(m * c * k * k);
  const std::vector<int8_t> zw{0, 0};
  const std::vector<float> sw{0.004f, 0.011f};
  const std::vector<int32_t> bias{-1500, 2300};
  const float sx = 0.05f, sy = 0.9f;
  OneNode q("QLinearConv",
            {U8({1, c, h, w}, x), TensorData::scalar_float(sx), U8({}, {128}), S8({m, c, k, k}, wt),
             F({m}, sw), S8({m}, zw), TensorData::scalar_float(sy), S8({}, {5}), Q(DType::Int32, {m}, bias)});
  q.attr("pads", std::vector<int64_t>{1, 1, 1, 1});
  int64_t oh = 0, ow = 0;
  const auto acc = conv_int(x, c, h, w, 128, wt, m, k, k, zw, 1, 1, 1, oh, ow);
  const TensorData y = q.run1();
  ASSERT_EQ(y.dtype(), DType::Int8);
  const auto got = ints(y);
  ASSERT_EQ(got.size(), acc.size());
  for (size_t i = 0; i < acc.size(); ++i) {
    const int64_t o = static_cast<int64_t>(i) / (oh * ow);
    const double real = double(acc[i] + bias[o]) * sx * sw[o] / sy;
    EXPECT_EQ(got[i], static_cast<int64_t>(std::clamp(std::nearbyint(real) + 5, -128.0, 127.0)))
        << "at " << i;
  }
}

}  // namespace
}  // namespace kiln
