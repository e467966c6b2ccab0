// Reference kernels of the compute ops (Conv, ConvTranspose, norms, Softmax, Gemm/MatMul, pools, Resize,
// the L-norm reductions), each checked against an independent straightforward loop written here. The
// expected values never come from the kernel under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "ops/op.h"
#include "ops/util.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::find_op;
using namespace kiln::test;  // NOLINT: shared test helpers

std::vector<float> conv2d_expected(const std::vector<float>& x, int64_t n, int64_t c, int64_t h, int64_t w,
                                   const std::vector<float>& wt, int64_t m, int64_t kh, int64_t kw, const std::vector<float>& bias,
                                   int64_t group, std::array<int64_t, 2> s, std::array<int64_t, 2> d,
                                   std::array<int64_t, 4> pads, int64_t& oh, int64_t& ow) {
  const int64_t ph = h + pads[0] + pads[2], pw = w + pads[1] + pads[3];
  std::vector<double> padded(static_cast<size_t>(n * c * ph * pw), 0.0);
  for (int64_t i = 0; i < n * c; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t z = 0; z < w; ++z) padded[(i * ph + y + pads[0]) * pw + z + pads[1]] = x[(i * h + y) * w + z];
  oh = (ph - (d[0] * (kh - 1) + 1)) / s[0] + 1;
  ow = (pw - (d[1] * (kw - 1) + 1)) / s[1] + 1;
  const int64_t cg = c / group, mg = m / group;
  std::vector<float> y;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = bias.empty() ? 0.0 : bias[o];
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t e = 0; e < kw; ++e) {
                const int64_t chan = (o / mg) * cg + ci;
                acc += padded[((b * c + chan) * ph + i * s[0] + a * d[0]) * pw + j * s[1] + e * d[1]] *
                       wt[((o * cg + ci) * kh + a) * kw + e];
              }
          y.push_back(static_cast<float>(acc));
        }
  return y;
}

TEST(OpsComputeConv, Conv2DPadsStridesDilationsGroups) {
  const int64_t n = 2, c = 4, h = 9, w = 11, m = 6, group = 2, kh = 3, kw = 2;
  auto x = randf(n * c * h * w), wt = randf(m * (c / group) * kh * kw), b = randf(m);
  OneNode conv("Conv", {F({n, c, h, w}, x), F({m, c / group, kh, kw}, wt), F({m}, b)});
  conv.attr("group", group).attr("strides", std::vector<int64_t>{2, 1}).attr("dilations", std::vector<int64_t>{1, 2})
      .attr("pads", std::vector<int64_t>{1, 0, 2, 1});
  TensorData out = conv.run1();
  int64_t oh = 0, ow = 0;
  auto want = conv2d_expected(x, n, c, h, w, wt, m, kh, kw, b, group, {2, 1}, {1, 2}, {1, 0, 2, 1}, oh, ow);
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{n, m, oh, ow}));
  expect_near(floats(out), want);
  // No bias, depthwise (group = C), SAME_UPPER with stride 2: total pad 1 on 9 rows goes to the end.
  auto wd = randf(c * 1 * 3 * 3);
  OneNode dw("Conv", {F({n, c, h, w}, x), F({c, 1, 3, 3}, wd)});
  dw.attr("group", c).attr("strides", std::vector<int64_t>{2, 2}).attr("auto_pad", std::string("SAME_UPPER"));
  TensorData dout = dw.run1();
  // out = ceil(9/2) = 5 rows: total pad = (5-1)*2 + 3 - 9 = 2 → 1 and 1; cols ceil(11/2) = 6: total 2 → 1, 1.
  auto dwant = conv2d_expected(x, n, c, h, w, wd, c, 3, 3, {}, c, {2, 2}, {1, 1}, {1, 1, 1, 1}, oh, ow);
  EXPECT_EQ(dout.dims(), (std::vector<int64_t>{n, c, 5, 6}));
  expect_near(floats(dout), dwant);
  // SAME_LOWER with an odd total pad puts the extra row first: rows of 8, stride 1, kernel 2 → pad (1, 0).
  auto x8 = randf(1 * 1 * 8 * 8), w2 = randf(2 * 2);
  OneNode sl("Conv", {F({1, 1, 8, 8}, x8), F({1, 1, 2, 2}, w2)});
  sl.attr("auto_pad", std::string("SAME_LOWER"));
  expect_near(floats(sl.run1()), conv2d_expected(x8, 1, 1, 8, 8, w2, 1, 2, 2, {}, 1, {1, 1}, {1, 1}, {1, 1, 0, 0}, oh, ow));
}

TEST(OpsComputeConv, Conv3DPackNetLike) {
  // PackNet's packing layer: 1 → 8 channels, 3x3x3 kernel, pad 1, over [N, 1, D, H, W].
  const int64_t n = 1, d = 4, h = 6, w = 5, m = 8;
  auto x = randf(n * d * h * w), wt = randf(m * 27), b = randf(m);
  OneNode conv("Conv", {F({n, 1, d, h, w}, x), F({m, 1, 3, 3, 3}, wt), F({m}, b)});
  conv.attr("pads", std::vector<int64_t>{1, 1, 1, 1, 1, 1}).attr("kernel_shape", std::vector<int64_t>{3, 3, 3});
  TensorData out = conv.run1();
  ASSERT_EQ(out.dims(), (std::vector<int64_t>{n, m, d, h, w}));
  std::vector<float> want;
  for (int64_t o = 0; o < m; ++o)
    for (int64_t z = 0; z < d; ++z)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t q = 0; q < w; ++q) {
          double acc = b[o];
          for (int64_t a = -1; a <= 1; ++a)
            for (int64_t e = -1; e <= 1; ++e)
              for (int64_t f = -1; f <= 1; ++f) {
                const int64_t zz = z + a, yy = y + e, qq = q + f;
                if (zz < 0 || zz >= d || yy < 0 || yy >= h || qq < 0 || qq >= w) continue;
                acc += double(x[(zz * h + yy) * w + qq]) * wt[o * 27 + ((a + 1) * 3 + e + 1) * 3 + f + 1];
              }
          want.push_back(static_cast<float>(acc));
        }
  expect_near(floats(out), want);
}

TEST(OpsComputeConv, Conv1DAndFloat16) {
  auto x = randf(2 * 3 * 10), wt = randf(4 * 3 * 3);
  OneNode c1("Conv", {F({2, 3, 10}, x), F({4, 3, 3}, wt)});
  c1.attr("strides", std::vector<int64_t>{3}).attr("pads", std::vector<int64_t>{2, 0});
  TensorData out = c1.run1();
  ASSERT_EQ(out.dims(), (std::vector<int64_t>{2, 4, 4}));  // (10 + 2 - 3) / 3 + 1
  std::vector<float> want;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t o = 0; o < 4; ++o)
      for (int64_t i = 0; i < 4; ++i) {
        double acc = 0;
        for (int64_t c = 0; c < 3; ++c)
          for (int64_t k = 0; k < 3; ++k) {
            const int64_t p = i * 3 - 2 + k;
            if (p >= 0 && p < 10) acc += double(x[(b * 3 + c) * 10 + p]) * wt[(o * 3 + c) * 3 + k];
          }
        want.push_back(static_cast<float>(acc));
      }
  expect_near(floats(out), want);
  // float16 in, float16 out, within half precision of the float result.
  std::vector<uint16_t> hx, hw;
  for (float v : x) hx.push_back(float_to_half(v));
  for (float v : wt) hw.push_back(float_to_half(v));
  OneNode h1("Conv", {TensorData::from_vector(DType::Float16, {2, 3, 10}, hx), TensorData::from_vector(DType::Float16, {4, 3, 3}, hw)});
  h1.attr("strides", std::vector<int64_t>{3}).attr("pads", std::vector<int64_t>{2, 0});
  TensorData hout = h1.run1();
  ASSERT_EQ(hout.dtype(), DType::Float16);
  expect_near(floats(hout), want, 1e-2f);
  // Integer conv has no reference: a clear refusal naming the node and the dtype.
  std::string msg = error_of([] {
    OneNode("Conv", {TensorData::from_vector<int64_t>(DType::Int64, {1, 1, 3}, {1, 2, 3}),
                   TensorData::from_vector<int64_t>(DType::Int64, {1, 1, 1}, {2})}).run();
  });
  EXPECT_NE(msg.find("the_Conv"), std::string::npos) << msg;
  EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
}

TEST(OpsComputeConv, ConvTransposeStridesPadsGroupsOutputPadding) {
  // Expected by gathering: Y[o] sums X[i] W[k] over every (i, k) with i*s - pad + k*d == o.
  const int64_t n = 2, c = 4, h = 4, w = 5, group = 2, mg = 3, kh = 3, kw = 2;
  const std::array<int64_t, 2> s = {2, 3}, d = {1, 2}, pb = {1, 0}, pe = {0, 2}, op = {1, 0};
  auto x = randf(n * c * h * w), wt = randf(c * mg * kh * kw), b = randf(mg * group);
  OneNode ct("ConvTranspose", {F({n, c, h, w}, x), F({c, mg, kh, kw}, wt), F({mg * group}, b)});
  ct.attr("group", group).attr("strides", std::vector<int64_t>{s[0], s[1]}).attr("dilations", std::vector<int64_t>{d[0], d[1]})
      .attr("pads", std::vector<int64_t>{pb[0], pb[1], pe[0], pe[1]}).attr("output_padding", std::vector<int64_t>{op[0], op[1]});
  TensorData out = ct.run1();
  const int64_t oh = s[0] * (h - 1) + op[0] + (kh - 1) * d[0] + 1 - pb[0] - pe[0];
  const int64_t ow = s[1] * (w - 1) + op[1] + (kw - 1) * d[1] + 1 - pb[1] - pe[1];
  ASSERT_EQ(out.dims(), (std::vector<int64_t>{n, mg * group, oh, ow}));
  const int64_t cg = c / group;
  std::vector<float> want;
  for (int64_t bb = 0; bb < n; ++bb)
    for (int64_t o = 0; o < mg * group; ++o)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t z = 0; z < ow; ++z) {
          double acc = b[o];
          for (int64_t ci = 0; ci < cg; ++ci) {
            const int64_t chan = (o / mg) * cg + ci;
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t e = 0; e < kw; ++e) {
                const int64_t ty = y + pb[0] - a * d[0], tz = z + pb[1] - e * d[1];
                if (ty < 0 || tz < 0 || ty % s[0] || tz % s[1] || ty / s[0] >= h || tz / s[1] >= w) continue;
                acc += double(x[((bb * c + chan) * h + ty / s[0]) * w + tz / s[1]]) * wt[((chan * mg + o % mg) * kh + a) * kw + e];
              }
          }
          want.push_back(static_cast<float>(acc));
        }
  expect_near(floats(out), want);
  // output_shape picks the size (and the pads): 1-D, in 3, stride 2, kernel 3 → full 7; asking 8 adds a
  // bias-only last element, asking 6 crops one from the end.
  auto x1 = randf(3), w1 = randf(3);
  for (int64_t len : {8, 6}) {
    OneNode os("ConvTranspose", {F({1, 1, 3}, x1), F({1, 1, 3}, w1), F({1}, {0.5f})});
    os.attr("strides", std::vector<int64_t>{2}).attr("output_shape", std::vector<int64_t>{len});
    std::vector<float> full(8, 0.5f);
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 3; ++k) full[2 * i + k] += x1[i] * w1[k];
    full.resize(static_cast<size_t>(len));
    SCOPED_TRACE(len);
    expect_near(floats(os.run1()), full);
  }
}

// -------------------------------------------------------------------------------------- normalization
TEST(OpsComputeNorm, BatchInstanceGroup) {
  const int64_t n = 2, c = 6, h = 3, w = 4, hw = h * w;
  auto x = randf(n * c * hw), scale = randf(c), bias = randf(c), mean = randf(c), var = randf(c, 0.2f, 2.0f, false);
  OneNode bn("BatchNormalization", {F({n, c, h, w}, x), F({c}, scale), F({c}, bias), F({c}, mean), F({c}, var)});
  bn.attr("epsilon", 1e-3f);
  std::vector<float> want;
  for (int64_t i = 0; i < n * c * hw; ++i) {
    const int64_t ch = i / hw % c;
    want.push_back(static_cast<float>(scale[ch] * (x[i] - mean[ch]) / std::sqrt(double(var[ch]) + 1e-3) + bias[ch]));
  }
  expect_near(floats(bn.run1()), want);
  OneNode train("BatchNormalization", {F({n, c, h, w}, x), F({c}, scale), F({c}, bias), F({c}, mean), F({c}, var)}, 3);
  train.attr("training_mode", int64_t{1}).attr("momentum", 0.8f).attr("epsilon", 1e-3f);
  // Training mode: each channel's statistics over N and the spatial dims; running stats blend in 20% of them.
  std::vector<float> want_y(x.size()), want_mean, want_var;
  for (int64_t ch = 0; ch < c; ++ch) {
    double m = 0, v = 0;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) m += x[(b * c + ch) * hw + i];
    m /= double(n * hw);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) v += (x[(b * c + ch) * hw + i] - m) * (x[(b * c + ch) * hw + i] - m);
    v /= double(n * hw);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t at = (b * c + ch) * hw + i;
        want_y[at] = static_cast<float>(scale[ch] * (x[at] - m) / std::sqrt(v + 1e-3) + bias[ch]);
      }
    want_mean.push_back(static_cast<float>(0.8 * mean[ch] + 0.2 * m));
    want_var.push_back(static_cast<float>(0.8 * var[ch] + 0.2 * v));
  }
  const auto trained = train.run();
  expect_near(floats(trained[0]), want_y);
  expect_near(floats(trained[1]), want_mean);
  expect_near(floats(trained[2]), want_var);
  OneNode stats_without_training(
      "BatchNormalization", {F({n, c, h, w}, x), F({c}, scale), F({c}, bias), F({c}, mean), F({c}, var)}, 3);
  EXPECT_NE(error_of([&] { stats_without_training.run(); }).find("training_mode"), std::string::npos);

  // Statistics of the `len` values starting at x[start], the textbook way.
  auto mean_var = [&](int64_t start, int64_t len) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < len; ++i) m += x[start + i];
    m /= double(len);
    for (int64_t i = 0; i < len; ++i) v += (x[start + i] - m) * (x[start + i] - m);
    return std::pair<double, double>(m, v / double(len));
  };
  OneNode in("InstanceNormalization", {F({n, c, h, w}, x), F({c}, scale), F({c}, bias)});
  want.clear();
  for (int64_t i = 0; i < n * c * hw; ++i) {
    auto [m, v] = mean_var(i / hw * hw, hw);
    const int64_t ch = i / hw % c;
    want.push_back(static_cast<float>(scale[ch] * (x[i] - m) / std::sqrt(v + 1e-5) + bias[ch]));
  }
  expect_near(floats(in.run1()), want);

  const int64_t groups = 3, per = c / groups * hw;
  auto gs = randf(groups), gb = randf(groups);
  OneNode gn("GroupNormalization", {F({n, c, h, w}, x), F({groups}, gs), F({groups}, gb)});
  gn.attr("num_groups", groups).attr("epsilon", 1e-4f);
  OneNode gn21("GroupNormalization", {F({n, c, h, w}, x), F({c}, scale), F({c}, bias)}, 1, 21);
  gn21.attr("num_groups", groups).attr("epsilon", 1e-4f);
  std::vector<float> want18, want21;
  for (int64_t i = 0; i < n * c * hw; ++i) {
    auto [m, v] = mean_var(i / per * per, per);
    const double norm = (x[i] - m) / std::sqrt(v + 1e-4);
    const int64_t g = i / per % groups, ch = i / hw % c;
    want18.push_back(static_cast<float>(gs[g] * norm + gb[g]));
    want21.push_back(static_cast<float>(scale[ch] * norm + bias[ch]));
  }
  expect_near(floats(gn.run1()), want18);
  expect_near(floats(gn21.run1()), want21);
}

TEST(OpsComputeNorm, LayerNormWithStatistics) {
  const int64_t a = 3, b = 4, c = 5;
  auto x = randf(a * b * c), scale = randf(b * c), bias = randf(c);
  OneNode ln("LayerNormalization", {F({a, b, c}, x), F({b, c}, scale), F({c}, bias)}, 3);
  ln.attr("axis", int64_t{-2});
  auto outs = ln.run();
  ASSERT_EQ(outs[1].dims(), (std::vector<int64_t>{a, 1, 1}));
  std::vector<float> want, wmean, winv;
  for (int64_t i = 0; i < a; ++i) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < b * c; ++j) m += x[i * b * c + j];
    m /= double(b * c);
    for (int64_t j = 0; j < b * c; ++j) v += (x[i * b * c + j] - m) * (x[i * b * c + j] - m);
    const double inv = 1 / std::sqrt(v / double(b * c) + 1e-5);
    wmean.push_back(static_cast<float>(m));
    winv.push_back(static_cast<float>(inv));
    for (int64_t j = 0; j < b * c; ++j) want.push_back(static_cast<float>((x[i * b * c + j] - m) * inv * scale[j] + bias[j % c]));
  }
  expect_near(floats(outs[0]), want);
  expect_near(floats(outs[1]), wmean);
  expect_near(floats(outs[2]), winv);
}

// --------------------------------------------------------------------------------------------- Softmax
TEST(OpsComputeSoftmax, AlongAxisAndCoercedTo2D) {
  const int64_t a = 2, b = 3, c = 4;
  auto x = randf(a * b * c, 0.1f, 5.0f);
  // Opset 13: along axis 1 only.
  OneNode s13("Softmax", {F({a, b, c}, x)}, 1, 13);
  s13.attr("axis", int64_t{1});
  OneNode l13("LogSoftmax", {F({a, b, c}, x)}, 1, 13);
  l13.attr("axis", int64_t{1});
  std::vector<float> want(x.size()), wlog(x.size());
  for (int64_t i = 0; i < a; ++i)
    for (int64_t k = 0; k < c; ++k) {
      double sum = 0;
      for (int64_t j = 0; j < b; ++j) sum += std::exp(double(x[(i * b + j) * c + k]));
      for (int64_t j = 0; j < b; ++j) {
        const size_t at = (i * b + j) * c + k;
        want[at] = static_cast<float>(std::exp(double(x[at])) / sum);
        wlog[at] = static_cast<float>(double(x[at]) - std::log(sum));
      }
    }
  expect_near(floats(s13.run1()), want);
  expect_near(floats(l13.run1()), wlog);
  // Opset 11, axis 1: each [b*c] row of the 2-D view is one softmax.
  OneNode s11("Softmax", {F({a, b, c}, x)}, 1, 11);
  for (int64_t i = 0; i < a; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < b * c; ++j) sum += std::exp(double(x[i * b * c + j]));
    for (int64_t j = 0; j < b * c; ++j) want[i * b * c + j] = static_cast<float>(std::exp(double(x[i * b * c + j])) / sum);
  }
  expect_near(floats(s11.run1()), want);
  // Large inputs don't overflow.
  TensorData big = OneNode("Softmax", {F({2}, {1000.0f, 1000.0f})}).run1();
  expect_near(floats(big), {0.5f, 0.5f});
}

// ---------------------------------------------------------------------------------------- Gemm/MatMul
TEST(OpsComputeMatMul, GemmTransposesAlphaBetaBroadcastC) {
  const int64_t m = 3, k = 5, n = 4;
  auto a = randf(k * m), b = randf(n * k), cv = randf(n), cm = randf(m);
  for (int variant = 0; variant < 2; ++variant) {
    OneNode g("Gemm", {F({k, m}, a), F({n, k}, b), variant == 0 ? F({n}, cv) : F({m, 1}, cm)});
    g.attr("transA", int64_t{1}).attr("transB", int64_t{1}).attr("alpha", 0.5f).attr("beta", -2.0f);
    std::vector<float> want;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += double(a[p * m + i]) * b[j * k + p];
        want.push_back(static_cast<float>(0.5 * acc - 2.0 * (variant == 0 ? cv[j] : cm[i])));
      }
    SCOPED_TRACE(variant);
    expect_near(floats(g.run1()), want);
  }
  // No C, no transposes.
  auto a2 = randf(m * k), b2 = randf(k * n);
  std::vector<float> want;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += double(a2[i * k + p]) * b2[p * n + j];
      want.push_back(static_cast<float>(acc));
    }
  expect_near(floats(OneNode("Gemm", {F({m, k}, a2), F({k, n}, b2)}).run1()), want);
}

TEST(OpsComputeMatMul, BroadcastBatchAndVectors) {
  auto a = randf(2 * 1 * 3 * 4), b = randf(3 * 4 * 5);
  TensorData out = OneNode("MatMul", {F({2, 1, 3, 4}, a), F({3, 4, 5}, b)}).run1();
  ASSERT_EQ(out.dims(), (std::vector<int64_t>{2, 3, 3, 5}));
  std::vector<float> want;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t q = 0; q < 5; ++q) {
          double acc = 0;
          for (int64_t p = 0; p < 4; ++p) acc += double(a[(i * 3 + r) * 4 + p]) * b[(j * 4 + p) * 5 + q];
          want.push_back(static_cast<float>(acc));
        }
  expect_near(floats(out), want);
  // [4] x [3, 4, 5] → [3, 5]; [3, 4, 5] x [5] → [3, 4]; [4] x [4] → scalar.
  auto v4 = randf(4), v5 = randf(5);
  TensorData l = OneNode("MatMul", {F({4}, v4), F({3, 4, 5}, b)}).run1();
  TensorData r = OneNode("MatMul", {F({3, 4, 5}, b), F({5}, v5)}).run1();
  TensorData s = OneNode("MatMul", {F({4}, v4), F({4}, v4)}).run1();
  ASSERT_EQ(l.dims(), (std::vector<int64_t>{3, 5}));
  ASSERT_EQ(r.dims(), (std::vector<int64_t>{3, 4}));
  ASSERT_EQ(s.rank(), 0);
  std::vector<float> wl, wr;
  double dot = 0;
  for (int64_t p = 0; p < 4; ++p) dot += double(v4[p]) * v4[p];
  for (int64_t j = 0; j < 3; ++j) {
    for (int64_t q = 0; q < 5; ++q) {
      double acc = 0;
      for (int64_t p = 0; p < 4; ++p) acc += double(v4[p]) * b[(j * 4 + p) * 5 + q];
      wl.push_back(static_cast<float>(acc));
    }
    for (int64_t p = 0; p < 4; ++p) {
      double acc = 0;
      for (int64_t q = 0; q < 5; ++q) acc += double(b[(j * 4 + p) * 5 + q]) * v5[q];
      wr.push_back(static_cast<float>(acc));
    }
  }
  expect_near(floats(l), wl);
  expect_near(floats(r), wr);
  expect_near(floats(s), {static_cast<float>(dot)});
  // Integer MatMul is exact.
  auto ia = TensorData::from_vector<int64_t>(DType::Int64, {2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(OneNode("MatMul", {ia, ia}).run1().to_int64_vector(), (std::vector<int64_t>{7, 10, 15, 22}));
}

// ----------------------------------------------------------------------------------------------- pools
TEST(OpsComputePool, MaxPoolWithIndicesPadsDilations) {
  const int64_t n = 2, c = 3, h = 7, w = 8;
  auto x = randf(n * c * h * w);
  for (int64_t order : {0, 1}) {
    OneNode mp("MaxPool", {F({n, c, h, w}, x)}, 2);
    mp.attr("kernel_shape", std::vector<int64_t>{3, 2}).attr("strides", std::vector<int64_t>{2, 2})
        .attr("pads", std::vector<int64_t>{1, 1, 1, 0}).attr("dilations", std::vector<int64_t>{1, 2})
        .attr("storage_order", order);
    auto outs = mp.run();
    // rows: (7 + 2 - 3) / 2 + 1 = 4; cols: (8 + 1 - 3) / 2 + 1 = 4
    ASSERT_EQ(outs[0].dims(), (std::vector<int64_t>{n, c, 4, 4}));
    std::vector<float> want;
    std::vector<int64_t> widx;
    for (int64_t p = 0; p < n * c; ++p)
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          float best = -std::numeric_limits<float>::infinity();
          int64_t at = -1;
          for (int64_t a = 0; a < 3; ++a)
            for (int64_t e = 0; e < 2; ++e) {
              const int64_t y = i * 2 - 1 + a, z = j * 2 - 1 + e * 2;
              if (y < 0 || y >= h || z < 0 || z >= w) continue;
              const float v = x[(p * h + y) * w + z];
              if (v > best) best = v, at = p * h * w + (order ? y + z * h : y * w + z);
            }
          want.push_back(best);
          widx.push_back(at);
        }
    SCOPED_TRACE(order);
    expect_near(floats(outs[0]), want, 0);
    EXPECT_EQ(outs[1].to_int64_vector(), widx);
  }
}

TEST(OpsComputePool, AveragePoolCountIncludePadCeilAndGlobal) {
  const int64_t h = 5, w = 6;
  auto x = randf(2 * h * w);
  for (int64_t include : {0, 1}) {
    OneNode ap("AveragePool", {F({1, 2, h, w}, x)});
    ap.attr("kernel_shape", std::vector<int64_t>{3, 3}).attr("strides", std::vector<int64_t>{2, 2})
        .attr("pads", std::vector<int64_t>{1, 1, 1, 1}).attr("ceil_mode", int64_t{1}).attr("count_include_pad", include);
    TensorData out = ap.run1();
    // rows: ceil((5 + 2 - 3) / 2) + 1 = 3; cols: ceil((6 + 2 - 3) / 2) + 1 = 4, whose last window starts at
    // col 5 (inside the input) and reaches past the end padding.
    ASSERT_EQ(out.dims(), (std::vector<int64_t>{1, 2, 3, 4}));
    std::vector<float> want;
    for (int64_t p = 0; p < 2; ++p)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j) {
          double sum = 0;
          int count = 0, padded = 0;
          for (int64_t y = i * 2 - 1; y < i * 2 + 2; ++y)
            for (int64_t z = j * 2 - 1; z < j * 2 + 2; ++z) {
              if (y >= -1 && y <= h && z >= -1 && z <= w) ++padded;  // inside the padded extent
              if (y < 0 || y >= h || z < 0 || z >= w) continue;
              sum += x[(p * h + y) * w + z];
              ++count;
            }
          want.push_back(static_cast<float>(sum / (include ? padded : count)));
        }
    SCOPED_TRACE(include);
    expect_near(floats(out), want);
  }
  TensorData ga = OneNode("GlobalAveragePool", {F({1, 2, h, w}, x)}).run1();
  TensorData gm = OneNode("GlobalMaxPool", {F({1, 2, h, w}, x)}).run1();
  ASSERT_EQ(ga.dims(), (std::vector<int64_t>{1, 2, 1, 1}));
  for (int64_t p = 0; p < 2; ++p) {
    double sum = 0;
    float mx = -1e30f;
    for (int64_t i = 0; i < h * w; ++i) sum += x[p * h * w + i], mx = std::max(mx, x[p * h * w + i]);
    EXPECT_NEAR(ga.data<float>()[p], sum / (h * w), 1e-5);
    EXPECT_EQ(gm.data<float>()[p], mx);
  }
}

// ---------------------------------------------------------------------------------------------- Resize
TEST(OpsComputeResize, NearestAsymmetricFloorTimesTwoPackNet) {
  const int64_t c = 3, h = 4, w = 5;
  auto x = randf(c * h * w);
  // PackNet's export: Resize-11 (X, roi = [], scales = [1, 1, 2, 2]), nearest, asymmetric, floor.
  OneNode r("Resize", {F({1, c, h, w}, x), F({0}, {}), F({4}, {1, 1, 2, 2})}, 1, 11);
  r.attr("mode", std::string("nearest")).attr("coordinate_transformation_mode", std::string("asymmetric"))
      .attr("nearest_mode", std::string("floor"));
  TensorData out = r.run1();
  ASSERT_EQ(out.dims(), (std::vector<int64_t>{1, c, 2 * h, 2 * w}));
  std::vector<float> want;
  for (int64_t p = 0; p < c; ++p)
    for (int64_t i = 0; i < 2 * h; ++i)
      for (int64_t j = 0; j < 2 * w; ++j) want.push_back(x[(p * h + i / 2) * w + j / 2]);
  expect_near(floats(out), want, 0);
  // Upsample-9 and Resize-13 with sizes say the same thing.
  OneNode up("Upsample", {F({1, c, h, w}, x), F({4}, {1, 1, 2, 2})}, 1, 9);
  expect_near(floats(up.run1()), want, 0);
  OneNode r13("Resize", {F({1, c, h, w}, x), TensorData(), TensorData(), I64({1, c, 2 * h, 2 * w})}, 1, 13);
  r13.attr("coordinate_transformation_mode", std::string("asymmetric")).attr("nearest_mode", std::string("floor"));
  expect_near(floats(r13.run1()), want, 0);
}

TEST(OpsComputeResize, LinearHalfPixelAndAlignCorners) {
  const int64_t h = 3, w = 4, oh = 5, ow = 7;
  auto x = randf(h * w);
  for (const char* mode : {"half_pixel", "align_corners", "pytorch_half_pixel"}) {
    OneNode r("Resize", {F({1, 1, h, w}, x), TensorData(), TensorData(), I64({1, 1, oh, ow})}, 1, 13);
    r.attr("mode", std::string("linear")).attr("coordinate_transformation_mode", std::string(mode));
    TensorData out = r.run1();
    ASSERT_EQ(out.dims(), (std::vector<int64_t>{1, 1, oh, ow}));
    // Source coordinate per the spec, clamped into the input; bilinear weights of the 2x2 neighbourhood.
    auto src = [&](int64_t o, int64_t in, int64_t out_len) {
      const double scale = double(out_len) / in;
      double c = std::string(mode) == "align_corners" ? o * double(in - 1) / double(out_len - 1) : (o + 0.5) / scale - 0.5;
      return std::clamp(c, 0.0, double(in - 1));
    };
    std::vector<float> want;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const double cy = src(i, h, oh), cx = src(j, w, ow);
        const int64_t y0 = int64_t(std::floor(cy)), x0 = int64_t(std::floor(cx));
        const int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
        const double fy = cy - y0, fx = cx - x0;
        want.push_back(static_cast<float>((1 - fy) * ((1 - fx) * x[y0 * w + x0] + fx * x[y0 * w + x1]) +
                                          fy * ((1 - fx) * x[y1 * w + x0] + fx * x[y1 * w + x1])));
      }
    SCOPED_TRACE(mode);
    expect_near(floats(out), want);
  }
  // Nearest rounding modes on a 1-D upsample by 4/3 with half_pixel: source (o + 0.5) * 0.75 - 0.5.
  auto v = randf(6);
  for (const char* nm : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}) {
    OneNode r("Resize", {F({6}, v), TensorData(), TensorData(), I64({8})}, 1, 13);
    r.attr("nearest_mode", std::string(nm));
    std::vector<float> want;
    for (int64_t o = 0; o < 8; ++o) {
      const double c = (o + 0.5) * 0.75 - 0.5, f = std::floor(c);
      const std::string m = nm;
      double i = m == "floor" ? f : m == "ceil" ? std::ceil(c) : c - f == 0.5 ? (m == "round_prefer_floor" ? f : f + 1) : std::round(c);
      want.push_back(v[static_cast<size_t>(std::clamp(i, 0.0, 5.0))]);
    }
    SCOPED_TRACE(nm);
    expect_near(floats(r.run1()), want, 0);
  }
  // Antialiased linear downscale by 1/2 (opset 18): the triangle filter is twice as wide, so output o (source
  // 2o + 0.5) weighs inputs 2o-1 .. 2o+2 by 1/8, 3/8, 3/8, 1/8 (edges clamped).
  OneNode aa("Resize", {F({6}, v), TensorData(), F({1}, {0.5f})}, 1, 18);
  aa.attr("antialias", int64_t{1}).attr("mode", std::string("linear"));
  std::vector<float> want;
  for (int64_t o = 0; o < 3; ++o) {
    auto at = [&](int64_t i) {
      return static_cast<double>(v[static_cast<size_t>(std::clamp<int64_t>(i, 0, 5))]);
    };
    want.push_back(
        static_cast<float>((at(2 * o - 1) + 3 * at(2 * o) + 3 * at(2 * o + 1) + at(2 * o + 2)) / 8));
  }
  expect_near(floats(aa.run1()), want);
}

// ------------------------------------------------------------------------------------------- reductions
TEST(OpsComputeReduce, LNormsSumSquareLogSumExp) {
  auto x = randf(2 * 3 * 4);
  for (const char* op : {"ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"}) {
    OneNode r(op, {F({2, 3, 4}, x)}, 1, 13);
    r.attr("axes", std::vector<int64_t>{0, 2}).attr("keepdims", int64_t{0});
    std::vector<float> want;
    for (int64_t j = 0; j < 3; ++j) {
      double l1 = 0, sq = 0, se = 0;
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t k = 0; k < 4; ++k) {
          const double v = x[(i * 3 + j) * 4 + k];
          l1 += std::fabs(v), sq += v * v, se += std::exp(v);
        }
      const std::string o = op;
      want.push_back(static_cast<float>(o == "ReduceL1" ? l1 : o == "ReduceL2" ? std::sqrt(sq) : o == "ReduceSumSquare" ? sq : std::log(se)));
    }
    SCOPED_TRACE(op);
    TensorData out = r.run1();
    EXPECT_EQ(out.dims(), (std::vector<int64_t>{3}));
    expect_near(floats(out), want);
  }
}

}  // namespace
}  // namespace kiln
