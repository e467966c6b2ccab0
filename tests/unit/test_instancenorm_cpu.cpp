// cpu.instancenorm against the InstanceNormalization reference kernel.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include "device/kernel.h"
#include "kiln/graph.h"
#include "kiln/passes.h"
#include "ops/op.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::rel_l2;

// Values 3 + N(0, 1): an offset mean stresses the variance's precision; non-zero, both signs occur.
TensorData offset_tensor(std::vector<int64_t> dims, uint32_t seed, float offset) {
  TensorData t(DType::Float, std::move(dims));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = offset + nd(rng);
  return t;
}

struct InCase {
  Graph g;
  Node* node = nullptr;
  TensorData x, scale, bias;
  backend::LayerDesc desc;
  InCase(std::vector<int64_t> xd, uint32_t seed, int threads = 4)
      : x(offset_tensor(xd, seed, 3.f)), scale(offset_tensor({xd[1]}, seed + 1, 0.5f)),
        bias(offset_tensor({xd[1]}, seed + 2, 0.f)) {
    g.set_opset("", 13);
    std::vector<Tensor*> ins{g.add_variable("x", DType::Float, make_shape(xd)), g.add_constant("scale", scale),
                             g.add_constant("b", bias)};
    node = g.add_node("InstanceNormalization", ins, {g.add_variable("y")}, "in");
    node->attrs.set("epsilon", 1e-5f);
    g.inputs = {ins[0]};
    g.outputs = {node->output(0)};
    infer_shapes(g);
    desc.node = node;
    desc.opset = 13;
    desc.threads = threads;
    desc.inputs = {{DType::Float, xd, nullptr, true},
                   {DType::Float, {xd[1]}, &scale, true},
                   {DType::Float, {xd[1]}, &bias, true}};
    desc.outputs = {{DType::Float, static_dims(*node->output(0)->shape), nullptr, true}};
  }
};

double compare(const std::vector<int64_t>& xd, uint32_t seed, bool timing = false) {
  InCase c(xd, seed);
  const auto* f = backend::find_kernel("cpu", "", "InstanceNormalization", "cpu.instancenorm");
  if (!f) ADD_FAILURE() << "no cpu.instancenorm";
  if (!f) return INFINITY;
  if (!f->supports(c.desc)) ADD_FAILURE() << "cpu.instancenorm does not support the case";
  if (!f->supports(c.desc)) return INFINITY;
  auto k = f->create(c.desc);
  const std::vector<backend::TensorView> ins{{DType::Float, c.x.dims(), c.x.raw()},
                                             {DType::Float, c.scale.dims(), c.scale.raw()},
                                             {DType::Float, c.bias.dims(), c.bias.raw()}};
  const std::vector<int64_t> ydims = c.desc.outputs[0].dims;
  EXPECT_EQ(ydims, xd);
  TensorData y(DType::Float, ydims);
  std::fill(y.data<float>(), y.data<float>() + y.numel(), std::numeric_limits<float>::quiet_NaN());
  using clk = std::chrono::steady_clock;
  auto t0 = clk::now();
  k->run(ins, {{DType::Float, ydims, y.raw()}});
  k->run(ins, {{DType::Float, ydims, y.raw()}});  // a second run must give the same (no state kept)
  auto t1 = clk::now();

  ops::KernelContext ctx(*c.node, 13);
  ctx.in = {&c.x, &c.scale, &c.bias};
  auto t2 = clk::now();
  ops::run_reference(*ops::find_op("", "InstanceNormalization"), ctx);
  auto t3 = clk::now();
  if (timing) {
    const int reps = 20;
    auto t4 = clk::now();
    for (int r = 0; r < reps; ++r) k->run(ins, {{DType::Float, ydims, y.raw()}});
    auto t5 = clk::now();
    std::printf("[timing] cpu.instancenorm (4 threads): %.3f ms/call (first two calls %.3f ms); reference: %.3f ms\n",
                std::chrono::duration<double, std::milli>(t5 - t4).count() / reps,
                std::chrono::duration<double, std::milli>(t1 - t0).count() / 2,
                std::chrono::duration<double, std::milli>(t3 - t2).count());
  }
  EXPECT_EQ(ctx.out[0].dims(), ydims);
  const double err = rel_l2(y.data<float>(), ctx.out[0].data<float>(), y.numel());
  if (timing) std::printf("[timing] relative L2 vs reference: %.3g\n", err);
  return err;
}

TEST(CpuInstanceNorm, Small4D) { EXPECT_LE(compare({2, 3, 5, 7}, 1), 1e-5); }

TEST(CpuInstanceNorm, LargePlanesThreaded) { EXPECT_LE(compare({1, 16, 491520}, 11, true), 1e-5); }

TEST(CpuInstanceNorm, ThinPlanes) { EXPECT_LE(compare({1, 4, 10, 1}, 21), 1e-5); }

TEST(CpuInstanceNorm, Spatial3D) { EXPECT_LE(compare({1, 2, 3, 4, 5}, 31), 1e-5); }

TEST(CpuInstanceNorm, DeclinesNonConstantScale) {
  InCase c({1, 2, 3, 4}, 41);
  const auto* f = backend::find_kernel("cpu", "", "InstanceNormalization", "cpu.instancenorm");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->supports(c.desc));
  auto d = c.desc;
  d.inputs[1].constant = nullptr;
  EXPECT_FALSE(f->supports(d));
  d = c.desc;
  d.inputs[2].constant = nullptr;
  EXPECT_FALSE(f->supports(d));
  d = c.desc;
  d.inputs[0].dtype = d.outputs[0].dtype = DType::Double;
  EXPECT_FALSE(f->supports(d));
  d = c.desc;
  d.inputs[0].dims = d.outputs[0].dims = {1, 2};
  EXPECT_FALSE(f->supports(d));
}

}  // namespace
}  // namespace kiln
