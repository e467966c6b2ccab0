// CUDA normalization kernels against the CPU reference: cuda.groupnorm (kiln.GroupNorm, + Relu / Elu),
// cuda.instancenorm, GroupNormalizationPlugin on "cuda"; and launch_group_norm directly on data whose mean is
// far larger than its spread (robust statistics), in place and out of place, and on both of its paths (single
// pass — with and without the grid barrier — and the two-pass fallback), fp32 / fp16, with / without ELU.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backends/cuda/normalization_cuda.h"
#include "gpu_test_util.h"

namespace kiln {
namespace {

using gpu_test::compare_with_reference;
using gpu_test::one_node_graph;
using gpu_test::OperandSpec;
using gpu_test::random_tensor;

struct GnCase {
  std::vector<int64_t> dims;
  int64_t groups;
};

const std::vector<GnCase> kGnCases = {
    {{1, 64, 48, 160}, 16}, {{2, 32, 7, 9}, 8}, {{1, 512, 6, 20}, 16}, {{1, 4, 3, 5}, 2},
    {{1, 32, 24, 80}, 16},  {{3, 6, 11}, 3},    {{1, 16, 1, 1}, 16},
};

std::unique_ptr<Graph> gn_graph(const GnCase& k, const std::string& act) {
  const int64_t c = k.dims[1];
  Attributes a;
  a.set("num_groups", k.groups);
  a.set("epsilon", 1e-5f);
  if (!act.empty()) a.set("activation", act);
  if (act == "Elu") a.set("alpha", 0.7f);
  return one_node_graph(
      "GroupNorm",
      {OperandSpec{k.dims, DType::Float, std::nullopt}, OperandSpec{{c}, DType::Float, random_tensor({c})},
       OperandSpec{{c}, DType::Float, random_tensor({c}, 0.0f, 0.5f)}},
      a, "kiln", 1);
}

void check_gn(DType precision) {
  BuildOptions opts;
  opts.tf32 = false;
  opts.precision = precision;
  const double tol = gpu_test::tolerance(precision, false);
  for (const GnCase& k : kGnCases)
    for (const std::string act : {"", "Relu", "Elu"}) {
      auto g = gn_graph(k, act);
      const auto c = compare_with_reference(*g, opts);
      EXPECT_LE(c.worst(), tol) << "dims " << k.dims[0] << "x" << k.dims[1] << "x... G" << k.groups
                                << " act '" << act << "'";
      EXPECT_TRUE(c.uses_kernel("cuda.groupnorm")) << "act '" << act << "'";
    }
}

TEST(CudaNormalization, GroupNormFp32) {
  KILN_REQUIRE_GPU();
  check_gn(DType::Float);
}

TEST(CudaNormalization, GroupNormFp16) {
  KILN_REQUIRE_GPU();
  check_gn(DType::Float16);
}

TEST(CudaNormalization, GroupNormBf16) {
  KILN_REQUIRE_GPU();
  check_gn(DType::BFloat16);
}

TEST(CudaNormalization, InstanceNorm) {
  KILN_REQUIRE_GPU();
  for (DType precision : {DType::Float, DType::Float16}) {
    BuildOptions opts;
    opts.tf32 = false;
    opts.precision = precision;
    for (const std::vector<int64_t>& dims :
         std::vector<std::vector<int64_t>>{{1, 16, 30720}, {2, 8, 5, 7}, {1, 3, 4, 5, 6}, {1, 64, 96, 32}}) {
      const int64_t c = dims[1];
      Attributes a;
      a.set("epsilon", 1e-5f);
      auto g = one_node_graph(
          "InstanceNormalization",
          {OperandSpec{dims, DType::Float, std::nullopt}, OperandSpec{{c}, DType::Float, random_tensor({c})},
           OperandSpec{{c}, DType::Float, random_tensor({c})}},
          a);
      const auto cmp = compare_with_reference(*g, opts);
      EXPECT_LE(cmp.worst(), gpu_test::tolerance(precision, false)) << "C " << c << " rank " << dims.size();
      EXPECT_TRUE(cmp.uses_kernel("cuda.instancenorm"));
    }
  }
}

// The plugin on CUDA against kiln.GroupNorm's reference kernel (same constants, same input).
TEST(CudaNormalization, GroupNormalizationPlugin) {
  KILN_REQUIRE_GPU();
  for (DType precision : {DType::Float, DType::Float16}) {
    for (const GnCase& k : std::vector<GnCase>{{{1, 64, 24, 80}, 16}, {{2, 6, 5, 7}, 3}}) {
      const int64_t c = k.dims[1];
      const TensorData scale = random_tensor({c}), bias = random_tensor({c});
      Attributes pa;
      pa.set("num_groups", k.groups);
      pa.set("eps", 1e-5f);
      auto plugin_graph =
          one_node_graph("GroupNormalizationPlugin",
                         {OperandSpec{k.dims, DType::Float, std::nullopt},
                          OperandSpec{{c}, DType::Float, scale}, OperandSpec{{c}, DType::Float, bias}},
                         pa);
      Attributes ga;
      ga.set("num_groups", k.groups);
      ga.set("epsilon", 1e-5f);
      auto ref_graph =
          one_node_graph("GroupNorm",
                         {OperandSpec{k.dims, DType::Float, std::nullopt},
                          OperandSpec{{c}, DType::Float, scale}, OperandSpec{{c}, DType::Float, bias}},
                         ga, "kiln", 1);
      BuildOptions ref;
      ref.device = "cpu";
      ref.reference_kernels = true;
      BuildOptions opts;
      opts.device = "cuda";
      opts.tf32 = false;
      opts.precision = precision;
      auto ref_engine = Engine::build(*ref_graph, ref);
      auto cuda_engine = Engine::build(*plugin_graph, opts);
      bool plugin_used = false;
      for (const LayerInfo& l : cuda_engine->layers()) plugin_used |= l.kernel == "plugin";
      EXPECT_TRUE(plugin_used);
      auto rc = ref_engine->create_context();
      auto cc = cuda_engine->create_context();
      const TensorData x = random_tensor(k.dims);
      rc->set_input("x0", x);
      cc->set_input("x0", x);
      rc->run();
      cc->run();
      EXPECT_LE(gpu_test::rel_l2(cc->output("y0"), rc->output("y0")), gpu_test::tolerance(precision, false))
          << "C " << c << " G " << k.groups;
    }
  }
}

// |mean| / std = 200 over groups of 491520 elements: naive E[x²] − E[x]² in float would lose everything.
TEST(CudaNormalization, RobustStatisticsLargeOffset) {
  KILN_REQUIRE_GPU();
  const int64_t n = 1, c = 64, spatial = 96 * 320 * 2, groups = 16;
  const int64_t total = n * c * spatial;
  std::vector<float> x(static_cast<size_t>(total)), scale(c), bias(c);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (auto& v : x) v = 100.f + u(rng);
  for (int64_t k = 0; k < c; ++k) {
    scale[k] = 0.5f + 0.01f * static_cast<float>(k);
    bias[k] = 0.1f * static_cast<float>(k % 7) - 0.3f;
  }
  // Reference in double, two-pass.
  const int64_t len = c / groups * spatial;
  std::vector<double> want(static_cast<size_t>(total));
  for (int64_t g = 0; g < n * groups; ++g) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < len; ++i) mean += x[g * len + i];
    mean /= static_cast<double>(len);
    for (int64_t i = 0; i < len; ++i) var += (x[g * len + i] - mean) * (x[g * len + i] - mean);
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(len) + 1e-5);
    for (int64_t i = 0; i < len; ++i) {
      const int64_t ch = (g % groups) * (c / groups) + i / spatial;
      const double v = (x[g * len + i] - mean) * inv * scale[ch] + bias[ch];
      want[g * len + i] = v > 0 ? v : std::expm1(v);
    }
  }
  cuda::DeviceBuffer dx(x.data(), x.size() * 4), dy(x.size() * 4), ds(scale.data(), scale.size() * 4),
      db(bias.data(), bias.size() * 4);
  const size_t ws_bytes = cuda::group_norm_workspace_bytes(n, c, spatial, groups);
  cuda::DeviceBuffer ws(ws_bytes);
  for (cuda::GroupNormPath path : {cuda::GroupNormPath::Auto, cuda::GroupNormPath::TwoPass})
    for (bool in_place : {false, true}) {
      SCOPED_TRACE(path == cuda::GroupNormPath::TwoPass ? "two-pass" : "auto");
      // Fresh input every run: an in-place run overwrote it.
      ASSERT_EQ(cudaMemcpy(dx.ptr, x.data(), x.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
      void* out = in_place ? dx.ptr : dy.ptr;
      cuda::launch_group_norm(DType::Float, dx.ptr, out, ds.ptr, db.ptr, DType::Float, n, c, spatial, groups,
                              1e-5f, ops::Activation::Elu, 1.f, ws.ptr, ws_bytes, nullptr, path);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      std::vector<float> got(x.size());
      ASSERT_EQ(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
      double num = 0, den = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
      }
      EXPECT_LE(std::sqrt(num / den), 1e-5) << (in_place ? "in place" : "out of place");
    }
}

// Both launcher paths against a double reference: shapes that take the single pass with the grid barrier
// (several blocks per group), without it (one block per group), and that fall back to two passes (too large
// for every block to be resident, or a spatial size that is not a multiple of 16 bytes); fp32 / fp16 data,
// fp32 / fp16 scale and bias, no activation / ELU, out of place and in place. Auto is compared with the
// forced two-pass path on every shape.
TEST(CudaNormalization, GroupNormLauncherPaths) {
  KILN_REQUIRE_GPU();
  int dev = 0, coop = 0, sms = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), cudaSuccess);
  struct Case {
    int64_t n, c, spatial, groups;
    const char* what;
  };
  const std::vector<Case> cases = {
      {1, 64, 96 * 320, 16, "several blocks per group (barrier)"},
      {1, 512, 12 * 40, 16, "one block per group (fp16), two (fp32)"},
      {1, 512, 6 * 20, 16, "small groups"},
      {3, 6, 64, 3, "small, N > 1"},
      {1, 68, 140000, 68, "68 groups of > 264 KB: 2+ blocks each, more than an H100 holds: two passes"},
      {2, 6, 35, 3, "spatial not a multiple of 16 bytes: two passes"},
  };
  std::mt19937 rng(11);
  for (const Case& k : cases) {
    const int64_t total = k.n * k.c * k.spatial, cpg = k.c / k.groups, len = cpg * k.spatial;
    std::normal_distribution<float> nd(3.f, 1.5f);
    std::vector<float> x(static_cast<size_t>(total)), scale(k.c), bias(k.c);
    for (auto& v : x) v = nd(rng);
    for (int64_t i = 0; i < k.c; ++i) {
      scale[i] = half_to_float(float_to_half(0.5f + 0.03f * static_cast<float>(i % 17)));
      bias[i] = half_to_float(float_to_half(0.2f * static_cast<float>(i % 5) - 0.4f));
    }
    for (DType dt : {DType::Float, DType::Float16}) {
      const size_t es = dt == DType::Float ? 4 : 2;
      // Device data of dt, and the values the kernel sees (fp16-rounded) for the reference.
      std::vector<float> xs = x;
      std::vector<uint16_t> xh;
      if (dt == DType::Float16) {
        xh.resize(x.size());
        for (size_t i = 0; i < x.size(); ++i) {
          xh[i] = float_to_half(x[i]);
          xs[i] = half_to_float(xh[i]);
        }
      }
      const void* host_x = dt == DType::Float ? static_cast<const void*>(x.data()) : xh.data();
      const DType param_dt = dt == DType::Float16 ? DType::Float16 : DType::Float;
      std::vector<uint16_t> sh(k.c), bh(k.c);
      for (int64_t i = 0; i < k.c; ++i) {
        sh[i] = float_to_half(scale[i]);
        bh[i] = float_to_half(bias[i]);
      }
      cuda::DeviceBuffer dx(host_x, x.size() * es), dy(x.size() * es);
      cuda::DeviceBuffer ds = param_dt == DType::Float ? cuda::DeviceBuffer(scale.data(), k.c * 4)
                                                       : cuda::DeviceBuffer(sh.data(), k.c * 2);
      cuda::DeviceBuffer db = param_dt == DType::Float ? cuda::DeviceBuffer(bias.data(), k.c * 4)
                                                       : cuda::DeviceBuffer(bh.data(), k.c * 2);
      const size_t ws_bytes = cuda::group_norm_workspace_bytes(k.n, k.c, k.spatial, k.groups);
      cuda::DeviceBuffer ws(std::max<size_t>(ws_bytes, 16));
      for (ops::Activation act : {ops::Activation::None, ops::Activation::Elu}) {
        std::vector<double> want(x.size());
        for (int64_t g = 0; g < k.n * k.groups; ++g) {
          double mean = 0, var = 0;
          for (int64_t i = 0; i < len; ++i) mean += xs[g * len + i];
          mean /= static_cast<double>(len);
          for (int64_t i = 0; i < len; ++i) var += (xs[g * len + i] - mean) * (xs[g * len + i] - mean);
          const double inv = 1.0 / std::sqrt(var / static_cast<double>(len) + 1e-5);
          for (int64_t i = 0; i < len; ++i) {
            const int64_t ch = (g % k.groups) * cpg + i / k.spatial;
            const double v = (xs[g * len + i] - mean) * inv * scale[ch] + bias[ch];
            want[g * len + i] = act == ops::Activation::Elu && v <= 0 ? 0.7 * std::expm1(v) : v;
          }
        }
        for (cuda::GroupNormPath path : {cuda::GroupNormPath::Auto, cuda::GroupNormPath::TwoPass})
          for (bool in_place : {false, true}) {
            const cuda::GroupNormPath taken =
                cuda::group_norm_path(dt, k.n, k.c, k.spatial, k.groups, act, path);
            SCOPED_TRACE(testing::Message()
                         << k.n << "x" << k.c << "x" << k.spatial << " G" << k.groups << " (" << k.what
                         << ") " << dtype_name(dt) << " act " << ops::activation_name(act) << (in_place ? " in place" : "")
                         << " path " << (taken == cuda::GroupNormPath::SinglePass ? "single" : "two-pass"));
            if (path == cuda::GroupNormPath::TwoPass) EXPECT_EQ(taken, cuda::GroupNormPath::TwoPass);
            ASSERT_EQ(cudaMemcpy(dx.ptr, host_x, x.size() * es, cudaMemcpyHostToDevice), cudaSuccess);
            void* out = in_place ? dx.ptr : dy.ptr;
            ASSERT_EQ(cudaMemset(out == dx.ptr ? dy.ptr : out, 0xff, x.size() * es), cudaSuccess);
            cuda::launch_group_norm(dt, dx.ptr, out, ds.ptr, db.ptr, param_dt, k.n, k.c, k.spatial, k.groups,
                                    1e-5f, act, 0.7f, ws.ptr, ws_bytes, nullptr, path);
            ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
            std::vector<float> got(x.size());
            if (dt == DType::Float) {
              ASSERT_EQ(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
            } else {
              std::vector<uint16_t> gh(x.size());
              ASSERT_EQ(cudaMemcpy(gh.data(), out, gh.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
              for (size_t i = 0; i < gh.size(); ++i) got[i] = half_to_float(gh[i]);
            }
            double num = 0, den = 0;
            for (size_t i = 0; i < got.size(); ++i) {
              num += (got[i] - want[i]) * (got[i] - want[i]);
              den += want[i] * want[i];
            }
            EXPECT_LE(std::sqrt(num / den), dt == DType::Float ? 1e-5 : 2e-3);
          }
      }
      // Which path the automatic choice takes where the answer does not depend on the GPU model.
      const cuda::GroupNormPath autop = cuda::group_norm_path(dt, k.n, k.c, k.spatial, k.groups, ops::Activation::Elu);
      if (k.spatial % (16 / static_cast<int64_t>(es)) != 0)
        EXPECT_EQ(autop, cuda::GroupNormPath::TwoPass) << k.what;
      if (k.c == 512 && k.spatial == 6 * 20)
        EXPECT_EQ(autop, cuda::GroupNormPath::SinglePass) << dtype_name(dt);
      if (k.c == 64 && coop && sms >= 32) EXPECT_EQ(autop, cuda::GroupNormPath::SinglePass) << dtype_name(dt);
      if (k.c == 68 && k.n * k.groups * 2 > sms)
        EXPECT_EQ(autop, cuda::GroupNormPath::TwoPass) << dtype_name(dt);
    }
  }
}

// Misaligned pointers (the scalar path) and fp16 scale/bias with fp32 data, directly through the launcher.
TEST(CudaNormalization, LauncherScalarPathAndMixedParams) {
  KILN_REQUIRE_GPU();
  const int64_t n = 2, c = 8, spatial = 40, groups = 4, total = n * c * spatial;
  std::vector<float> x(static_cast<size_t>(total + 1));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(1.f, 2.f);
  for (auto& v : x) v = nd(rng);
  std::vector<uint16_t> scale(c), bias(c);
  std::vector<float> scale_f(c), bias_f(c);
  for (int64_t k = 0; k < c; ++k) {
    scale_f[k] = half_to_float(float_to_half(0.25f * static_cast<float>(k + 1)));
    bias_f[k] = half_to_float(float_to_half(-0.5f + 0.125f * static_cast<float>(k)));
    scale[k] = float_to_half(scale_f[k]);
    bias[k] = float_to_half(bias_f[k]);
  }
  cuda::DeviceBuffer dx(x.data(), x.size() * 4), dy((x.size() + 1) * 4), ds(scale.data(), c * 2),
      db(bias.data(), c * 2);
  const size_t ws_bytes = cuda::group_norm_workspace_bytes(n, c, spatial, groups);
  cuda::DeviceBuffer ws(ws_bytes);
  // x + 1, y + 1: 4-byte aligned only.
  cuda::launch_group_norm(DType::Float, dx.as<float>() + 1, dy.as<float>() + 1, ds.ptr, db.ptr,
                          DType::Float16, n, c, spatial, groups, 1e-5f, ops::Activation::Relu, 1.f, ws.ptr, ws_bytes,
                          nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got(static_cast<size_t>(total));
  ASSERT_EQ(cudaMemcpy(got.data(), dy.as<float>() + 1, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  const int64_t len = c / groups * spatial;
  double num = 0, den = 0;
  for (int64_t g = 0; g < n * groups; ++g) {
    const float* xs = x.data() + 1 + g * len;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < len; ++i) mean += xs[i];
    mean /= static_cast<double>(len);
    for (int64_t i = 0; i < len; ++i) var += (xs[i] - mean) * (xs[i] - mean);
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(len) + 1e-5);
    for (int64_t i = 0; i < len; ++i) {
      const int64_t ch = (g % groups) * (c / groups) + i / spatial;
      const double w = std::max(0.0, (xs[i] - mean) * inv * scale_f[ch] + bias_f[ch]);
      num += (got[g * len + i] - w) * (got[g * len + i] - w);
      den += w * w;
    }
  }
  EXPECT_LE(std::sqrt(num / den), 1e-5);
}

}  // namespace
}  // namespace kiln
