// Optimized CPU kernels against the reference kernels, and the convolution fusion passes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <thread>

#include "backends/cpu/conv_tactics.h"
#include "device/kernel.h"
#include "kiln/engine.h"
#include "kiln/passes.h"
#include "passes/rewrites.h"
#include "ops/op.h"

namespace kiln {
namespace {

TensorData random_tensor(std::vector<int64_t> dims, uint32_t seed) {
  TensorData t(DType::Float, std::move(dims));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.1f, 1.0f);
  std::bernoulli_distribution sign(0.5);
  // Non-zero values of both signs: a kernel that skips or zeroes something cannot match by accident.
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = sign(rng) ? u(rng) : -u(rng);
  return t;
}

double rel_l2(const float* got, const float* want, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(got[i]) - double(want[i]);
    num += d * d;
    den += double(want[i]) * double(want[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));  // NaN (poisoned, never written) propagates and fails
}

// One Conv-like node with random input, constant weights and (optionally) bias, shapes inferred.
struct ConvCase {
  Graph g;
  Node* node = nullptr;
  TensorData x, w, b;
  ConvCase(const std::string& op, const std::string& domain, std::vector<int64_t> xd, std::vector<int64_t> wd,
           bool bias, uint32_t seed)
      : x(random_tensor(xd, seed)), w(random_tensor(wd, seed + 1)), b(random_tensor({wd[0]}, seed + 2)) {
    g.set_opset("", 13);
    if (!domain.empty()) g.set_opset(domain, 1);
    std::vector<Tensor*> ins{g.add_variable("x", DType::Float, make_shape(xd)), g.add_constant("w", w)};
    if (bias) ins.push_back(g.add_constant("b", b));
    node = g.add_node(op, ins, {g.add_variable("y")}, "conv", domain);
    g.inputs = {ins[0]};
    g.outputs = {node->output(0)};
  }
};

// The layer description the builder would make for the case's node (shapes inferred, constants attached).
backend::LayerDesc conv_desc(ConvCase& c) {
  infer_shapes(c.g);
  const Node& n = *c.node;
  backend::LayerDesc desc;
  desc.node = &n;
  desc.opset = c.g.opset(n.domain);
  desc.threads = 2;
  for (Tensor* t : n.inputs()) {
    backend::LayerDesc::Operand o;
    o.present = true;
    o.dtype = t->dtype;
    o.dims = static_dims(*t->shape);
    if (auto* k = dynamic_cast<Constant*>(t)) o.constant = &k->values();
    desc.inputs.push_back(o);
  }
  desc.outputs.push_back({DType::Float, static_dims(*n.output(0)->shape), nullptr, true});
  return desc;
}

// Runs `kernel` (by name) and the op's reference on the same inputs; returns the relative L2 error. With
// `tactic`, the cpu.conv_onednn kernel is built with that tactic forced.
double compare_with_reference(ConvCase& c, const std::string& kernel, const std::string& tactic = "") {
  const backend::LayerDesc desc = conv_desc(c);
  const Node& n = *c.node;
  const std::vector<int64_t> ydims = desc.outputs[0].dims;

  const backend::KernelFactory* f = backend::find_kernel("cpu", n.domain, n.op, kernel);
  if (!f) ADD_FAILURE() << "no kernel " << kernel;
  if (!f) return INFINITY;
  if (!f->supports(desc)) ADD_FAILURE() << kernel << " does not support the case";
  if (!f->supports(desc)) return INFINITY;
  auto k = tactic.empty() ? f->create(desc) : backend::conv_onednn::create_with_tactic(desc, tactic);
  if (!tactic.empty()) EXPECT_EQ(backend::conv_onednn::tactic_of(*k), tactic);
  std::vector<backend::TensorView> ins;
  for (Tensor* t : n.inputs()) {
    const TensorData& v = t == n.input(0) ? c.x : static_cast<Constant*>(t)->values();
    ins.push_back({DType::Float, v.dims(), const_cast<void*>(v.raw())});
  }
  TensorData y(DType::Float, ydims);
  std::fill(y.data<float>(), y.data<float>() + y.numel(), std::numeric_limits<float>::quiet_NaN());
  k->run(ins, {{DType::Float, ydims, y.raw()}});
  k->run(ins, {{DType::Float, ydims, y.raw()}});  // a second run must give the same (no state kept)

  ops::KernelContext ctx(n, desc.opset);
  for (Tensor* t : n.inputs()) ctx.in.push_back(t == n.input(0) ? &c.x : &static_cast<Constant*>(t)->values());
  ops::run_reference(*ops::find_op(n.domain, n.op), ctx);
  EXPECT_EQ(ctx.out[0].dims(), ydims);
  return rel_l2(y.data<float>(), ctx.out[0].data<float>(), y.numel());
}

// Every tactic cpu.conv_onednn has for the case, each forced in turn, against the reference; returns the
// tactic names so a test can check the ones it expects were tried.
std::vector<std::string> check_every_tactic(ConvCase& c) {
  const std::vector<std::string> names = backend::conv_onednn::tactics_for(conv_desc(c));
  EXPECT_FALSE(names.empty());
  for (const std::string& t : names) EXPECT_LE(compare_with_reference(c, "cpu.conv_onednn", t), 1e-5) << t;
  return names;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(CpuBackend, ConvOneDnn2DPadsStrideDilationGroups) {
  ConvCase c("Conv", "", {2, 6, 11, 13}, {4, 3, 3, 2}, true, 1);
  c.node->attrs.set("group", int64_t{2});
  c.node->attrs.set("strides", std::vector<int64_t>{2, 1});
  c.node->attrs.set("dilations", std::vector<int64_t>{1, 2});
  c.node->attrs.set("pads", std::vector<int64_t>{1, 0, 2, 1});
  EXPECT_LE(compare_with_reference(c, "cpu.conv_onednn"), 1e-5);
}

TEST(CpuBackend, ConvOneDnnDepthwiseNoBias) {
  ConvCase c("Conv", "", {1, 8, 9, 9}, {8, 1, 3, 3}, false, 11);
  c.node->attrs.set("group", int64_t{8});
  c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  EXPECT_LE(compare_with_reference(c, "cpu.conv_onednn"), 1e-5);
}

TEST(CpuBackend, ConvOneDnn3DOneToEight) {
  ConvCase c("Conv", "", {1, 1, 8, 10, 12}, {8, 1, 3, 3, 3}, true, 21);
  c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1, 1, 1});
  EXPECT_LE(compare_with_reference(c, "cpu.conv_onednn"), 1e-5);
}

TEST(CpuBackend, ConvOneDnn1DAutoPadSame) {
  ConvCase c("Conv", "", {2, 5, 17}, {3, 5, 4}, true, 31);
  c.node->attrs.set("auto_pad", std::string("SAME_LOWER"));
  c.node->attrs.set("strides", std::vector<int64_t>{2});
  EXPECT_LE(compare_with_reference(c, "cpu.conv_onednn"), 1e-5);
}

TEST(CpuBackend, ConvOneDnnLargeReduction) {
  ConvCase c("Conv", "", {1, 64, 12, 20}, {32, 64, 3, 3}, true, 41);  // K = 576: fp32 accumulation order
  c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  EXPECT_LE(compare_with_reference(c, "cpu.conv_onednn"), 1e-5);
}

TEST(CpuBackend, FusedConvEluSigmoidRelu) {
  for (const char* post : {"Elu", "Sigmoid", "Relu"}) {
    ConvCase c("FusedConv", "kiln", {1, 4, 7, 9}, {6, 4, 3, 3}, true, 51);
    c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    c.node->attrs.set("kiln_post_op", std::string(post));
    c.node->attrs.set("kiln_post_alpha", 0.7f);
    EXPECT_LE(compare_with_reference(c, "cpu.conv_onednn"), 1e-5) << post;
  }
}

TEST(CpuBackend, ConvOneDnnDeclinesWhatItCannotRun) {
  ConvCase c("Conv", "", {1, 2, 5, 5}, {2, 2, 3, 3}, true, 61);
  infer_shapes(c.g);
  backend::LayerDesc desc;
  desc.node = c.node;
  desc.inputs = {{DType::Float, {1, 2, 5, 5}, nullptr, true},
                 {DType::Float, {2, 2, 3, 3}, nullptr, true},  // weights not constant
                 {DType::Float, {2}, &c.b, true}};
  desc.outputs = {{DType::Float, {1, 2, 3, 3}, nullptr, true}};
  const auto* f = backend::find_kernel("cpu", "", "Conv", "cpu.conv_onednn");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->supports(desc));
  desc.inputs[1].constant = &c.w;
  EXPECT_TRUE(f->supports(desc));
  desc.inputs[0].dtype = desc.outputs[0].dtype = DType::Double;
  EXPECT_FALSE(f->supports(desc));
}

TEST(CpuBackend, ConvOneDnnEveryTactic3x3) {
  ConvCase c("Conv", "", {1, 16, 12, 20}, {24, 16, 3, 3}, true, 71);
  c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  const auto names = check_every_tactic(c);
  EXPECT_TRUE(has(names, "gemm_nchw"));
  EXPECT_TRUE(has(names, "direct_nhwc"));
  // Big enough for the channels-last copy to go threaded over several 1024-pixel stripes, with a channel tail.
  ConvCase big("Conv", "", {1, 50, 40, 50}, {16, 50, 3, 3}, true, 72);
  big.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  EXPECT_TRUE(has(check_every_tactic(big), "direct_nhwc"));
  ConvCase big16("Conv", "", {2, 64, 33, 40}, {16, 64, 3, 3}, true, 73);
  big16.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  EXPECT_TRUE(has(check_every_tactic(big16), "direct_nhwc"));
}

TEST(CpuBackend, ConvOneDnnEveryTactic5x5NoBiasOddSizes) {
  ConvCase c("Conv", "", {2, 19, 9, 13}, {7, 19, 5, 5}, false, 81);
  c.node->attrs.set("pads", std::vector<int64_t>{2, 1, 2, 3});
  check_every_tactic(c);
}

TEST(CpuBackend, ConvOneDnnEveryTacticFewInputChannels) {
  ConvCase c("Conv", "", {1, 3, 20, 37}, {16, 3, 5, 5}, true, 85);
  c.node->attrs.set("pads", std::vector<int64_t>{2, 2, 2, 2});
  EXPECT_TRUE(has(check_every_tactic(c), "direct_plain_in"));
  ConvCase one("FusedConv", "kiln", {1, 16, 19, 33}, {1, 16, 3, 3}, true, 86);  // a disparity head: one output
  one.g.set_opset("kiln", 1);
  one.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  one.node->attrs.set("kiln_post_op", std::string("Sigmoid"));
  EXPECT_TRUE(has(check_every_tactic(one), "direct_cout1"));
  for (const char* post : {"Elu", "Relu"}) {  // and a wider kernel with uneven padding, batch 2
    ConvCase c1("FusedConv", "kiln", {2, 5, 9, 21}, {1, 5, 3, 5}, true, 87);
    c1.g.set_opset("kiln", 1);
    c1.node->attrs.set("pads", std::vector<int64_t>{0, 3, 2, 1});
    c1.node->attrs.set("kiln_post_op", std::string(post));
    c1.node->attrs.set("kiln_post_alpha", 0.7f);
    EXPECT_TRUE(has(check_every_tactic(c1), "direct_cout1")) << post;
  }
  ConvCase nb("Conv", "", {1, 64, 48, 160}, {1, 64, 3, 3}, false, 88);  // threaded rows, no bias
  nb.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  EXPECT_TRUE(has(check_every_tactic(nb), "direct_cout1"));
}

TEST(CpuBackend, ConvOneDnnEveryTacticPointwise) {
  ConvCase c("Conv", "", {2, 24, 7, 9}, {40, 24, 1, 1}, true, 91);
  check_every_tactic(c);
  ConvCase nb("Conv", "", {2, 24, 7, 9}, {40, 24, 1, 1}, false, 92);
  EXPECT_TRUE(has(check_every_tactic(nb), "matmul_1x1"));
  ConvCase odd("Conv", "", {1, 9, 5, 3}, {5, 9, 1, 1}, false, 93);
  EXPECT_TRUE(has(check_every_tactic(odd), "matmul_1x1"));
}

TEST(CpuBackend, FusedConvEveryTacticKeepsThePostOp) {
  for (const char* post : {"Elu", "Sigmoid", "Relu"}) {
    ConvCase c("FusedConv", "kiln", {1, 16, 10, 11}, {16, 16, 3, 3}, true, 101);
    c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    c.node->attrs.set("kiln_post_op", std::string(post));
    c.node->attrs.set("kiln_post_alpha", 0.7f);
    check_every_tactic(c);
    ConvCase p("FusedConv", "kiln", {1, 16, 6, 7}, {8, 16, 1, 1}, true, 102);
    p.node->attrs.set("kiln_post_op", std::string(post));
    p.node->attrs.set("kiln_post_alpha", 0.7f);
    check_every_tactic(p);
  }
}

TEST(CpuBackend, ConvOneDnnEveryTactic3DOneInputChannel) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  struct Shape {
    std::vector<int64_t> x, w;
  };
  // Widths around the 16/32-lane blocks, channel counts not a multiple of 8, batch 2, a depth of 1.
  for (const Shape& sh : std::vector<Shape>{{{1, 1, 8, 10, 12}, {8, 1, 3, 3, 3}},
                                            {{1, 1, 9, 6, 37}, {8, 1, 3, 3, 3}},
                                            {{2, 1, 5, 4, 16}, {5, 1, 3, 3, 3}},
                                            {{1, 1, 1, 3, 33}, {12, 1, 3, 3, 3}},
                                            {{1, 1, 4, 1, 1}, {3, 1, 3, 3, 3}},
                                            {{1, 1, 6, 5, 64}, {16, 1, 3, 3, 3}}}) {
    for (bool bias : {true, false}) {
      ConvCase c("Conv", "", sh.x, sh.w, bias, 111);
      c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1, 1, 1});
      const auto names = check_every_tactic(c);
      if (avx512) EXPECT_TRUE(has(names, "direct3d_cin1")) << sh.x[4];
    }
  }
  // Not the packing shape (pads 0): the direct kernel must decline.
  ConvCase c("Conv", "", {1, 1, 5, 6, 7}, {8, 1, 3, 3, 3}, true, 112);
  EXPECT_FALSE(has(check_every_tactic(c), "direct3d_cin1"));
}

TEST(CpuBackend, ConvOneDnnTimedSelectionMatchesReference) {
  // Above the size at which create() times its candidates (2·32·32·9·64·64 ≈ 75 MFLOP).
  ConvCase c("Conv", "", {1, 32, 64, 64}, {32, 32, 3, 3}, true, 121);
  c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  EXPECT_LE(compare_with_reference(c, "cpu.conv_onednn"), 1e-5);
  ConvCase v("Conv", "", {1, 1, 64, 48, 160}, {8, 1, 3, 3, 3}, true, 122);  // 2·8·27·64·48·160 ≈ 53 MFLOP
  v.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1, 1, 1});
  EXPECT_LE(compare_with_reference(v, "cpu.conv_onednn"), 1e-5);
}

TEST(CpuBackend, ConvOneDnnTacticRunsConcurrently) {
  // One kernel object, two threads at once, different inputs: per-call buffers must not be shared.
  ConvCase c("Conv", "", {1, 16, 12, 20}, {16, 16, 3, 3}, true, 131);
  c.node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  const backend::LayerDesc desc = conv_desc(c);
  const auto ref = backend::make_reference_kernel(desc);
  for (const std::string& t : backend::conv_onednn::tactics_for(desc)) {
    const auto k = backend::conv_onednn::create_with_tactic(desc, t);
    const std::vector<int64_t> yd = desc.outputs[0].dims;
    std::vector<TensorData> xs, ys, want;
    for (uint32_t i = 0; i < 2; ++i) {
      xs.push_back(random_tensor(desc.inputs[0].dims, 140 + i));
      ys.emplace_back(DType::Float, yd);
      want.emplace_back(DType::Float, yd);
    }
    auto views = [&](TensorData& x) {
      std::vector<backend::TensorView> v{{DType::Float, x.dims(), x.raw()}};
      v.push_back({DType::Float, c.w.dims(), c.w.raw()});
      v.push_back({DType::Float, c.b.dims(), c.b.raw()});
      return v;
    };
    for (int i = 0; i < 2; ++i) ref->run(views(xs[i]), {{DType::Float, yd, want[i].raw()}});
    std::vector<std::thread> th;
    for (int i = 0; i < 2; ++i)
      th.emplace_back([&, i] {
        for (int r = 0; r < 20; ++r) k->run(views(xs[i]), {{DType::Float, yd, ys[i].raw()}});
      });
    for (auto& x : th) x.join();
    for (int i = 0; i < 2; ++i) EXPECT_LE(rel_l2(ys[i].data<float>(), want[i].data<float>(), ys[i].numel()), 1e-5) << t;
  }
}

// ------------------------------------------------------------------------------------ element-wise
// One node over random variable inputs: `kernel` against the op's reference.
double compare_elementwise(const std::string& op, const std::vector<std::vector<int64_t>>& in_dims,
                           const std::string& kernel, float alpha = 0.f) {
  Graph g;
  g.set_opset("", 13);
  std::vector<Tensor*> ins;
  std::vector<TensorData> values;
  for (size_t k = 0; k < in_dims.size(); ++k) {
    ins.push_back(g.add_variable("x" + std::to_string(k), DType::Float, make_shape(in_dims[k])));
    values.push_back(random_tensor(in_dims[k], 100 + static_cast<uint32_t>(k)));
  }
  Node* n = g.add_node(op, ins, {g.add_variable("y")}, "node");
  if (alpha != 0.f) n->attrs.set("alpha", alpha);
  g.inputs = ins;
  g.outputs = {n->output(0)};
  infer_shapes(g);
  backend::LayerDesc desc;
  desc.node = n;
  desc.opset = 13;
  desc.threads = 2;
  for (size_t k = 0; k < ins.size(); ++k) desc.inputs.push_back({DType::Float, in_dims[k], nullptr, true});
  const std::vector<int64_t> ydims = static_dims(*n->output(0)->shape);
  desc.outputs.push_back({DType::Float, ydims, nullptr, true});
  const backend::KernelFactory* f = backend::find_kernel("cpu", "", op, kernel);
  if (!f || !f->supports(desc)) ADD_FAILURE() << kernel << " does not support " << op;
  if (!f || !f->supports(desc)) return INFINITY;
  auto kern = f->create(desc);
  std::vector<backend::TensorView> views;
  for (TensorData& v : values) views.push_back({DType::Float, v.dims(), v.raw()});
  TensorData y(DType::Float, ydims);
  std::fill(y.data<float>(), y.data<float>() + y.numel(), std::numeric_limits<float>::quiet_NaN());
  kern->run(views, {{DType::Float, ydims, y.raw()}});
  ops::KernelContext ctx(*n, 13);
  for (const TensorData& v : values) ctx.in.push_back(&v);
  ops::run_reference(*ops::find_op("", op), ctx);
  return rel_l2(y.data<float>(), ctx.out[0].data<float>(), y.numel());
}

TEST(CpuBackend, ElementwiseUnary) {
  // 2^21 elements: large enough to take the multi-threaded path.
  for (std::vector<int64_t> dims : {std::vector<int64_t>{3, 5, 7}, std::vector<int64_t>{1, 32, 256, 256}}) {
    EXPECT_LE(compare_elementwise("Relu", {dims}, "cpu.elementwise"), 1e-6);
    EXPECT_LE(compare_elementwise("Elu", {dims}, "cpu.elementwise"), 1e-6);
    EXPECT_LE(compare_elementwise("Elu", {dims}, "cpu.elementwise", 0.4f), 1e-6);
    EXPECT_LE(compare_elementwise("Sigmoid", {dims}, "cpu.elementwise"), 1e-6);
  }
}

TEST(CpuBackend, ElementwiseBinaryBroadcasts) {
  using D = std::vector<int64_t>;
  const std::vector<std::pair<D, D>> cases = {
      {{2, 8, 5, 7}, {2, 8, 5, 7}},      // same shape
      {{2, 8, 5, 7}, {8, 1, 1}},         // per-channel (GroupNorm's gamma/beta)
      {{8, 1, 1}, {2, 8, 5, 7}},         // per-channel on the left
      {{2, 8, 5, 7}, {}},                // scalar
      {{}, {2, 8, 5, 7}},                // scalar on the left
      {{2, 8, 5, 7}, {7}},               // last axis
      {{2, 8, 5, 7}, {1, 8, 5, 1}},      // a block of axes
      {{1, 64, 160, 128}, {64, 1, 1}},   // large: threaded
      {{1, 64, 160, 128}, {1, 64, 160, 128}}};
  for (const auto& [a, b] : cases)
    for (const char* op : {"Add", "Mul", "Div"})
      EXPECT_LE(compare_elementwise(op, {a, b}, "cpu.elementwise"), 1e-6)
          << op << " " << to_string(make_shape(a)) << " " << to_string(make_shape(b));
}

TEST(CpuBackend, ElementwiseDeclinesGeneralBroadcast) {
  Graph g;
  auto* n = g.add_node("Add", {g.add_variable("a"), g.add_variable("b")}, {g.add_variable("y")}, "add");
  backend::LayerDesc desc;
  desc.node = n;
  desc.opset = 13;
  desc.inputs = {{DType::Float, {4, 1}, nullptr, true}, {DType::Float, {1, 5}, nullptr, true}};  // outer product
  desc.outputs = {{DType::Float, {4, 5}, nullptr, true}};
  const auto* f = backend::find_kernel("cpu", "", "Add", "cpu.elementwise");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->supports(desc));
  desc.inputs[1].dims = {4, 5};
  EXPECT_TRUE(f->supports(desc));
  desc.inputs[0].dtype = DType::Double;
  EXPECT_FALSE(f->supports(desc));
}

// --------------------------------------------------------------------------------------- fusion passes
// Runs a graph node by node with the reference kernels: the oracle for the (fused, optimized) engine.
TensorData run_reference_graph(const Graph& g, const TensorData& x) {
  std::map<const Tensor*, TensorData> values{{g.inputs[0], x}};
  for (const auto& n : g.nodes()) {
    ops::KernelContext ctx(*n, g.opset(n->domain));
    for (Tensor* t : n->inputs()) {
      if (!t) ctx.in.push_back(nullptr);
      else if (auto* c = dynamic_cast<Constant*>(t)) ctx.in.push_back(&c->values());
      else ctx.in.push_back(&values.at(t));
    }
    ops::run_reference(*ops::find_op(n->domain, n->op), ctx);
    for (size_t k = 0; k < ctx.out.size(); ++k) values[n->output(k)] = ctx.out[k];
  }
  return values.at(g.outputs[0]);
}

// x[1,3,10,12] → Pad(pads, value) → Conv 3x5 (pads 0) → Elu → y; optionally the Pad output is also read by
// a second Conv whose result is added to y.
struct PadConv {
  Graph g;
  Node* pad;
  PadConv(std::vector<int64_t> pads, const std::string& mode, float value, bool second_consumer = false) {
    g.set_opset("", 13);
    auto* x = g.add_variable("x", DType::Float, Shape{1, 3, 10, 12});
    auto* p = g.add_variable("p");
    pad = g.add_node("Pad", {x, g.add_constant("pads", TensorData::vector_int64(pads)),
                             g.add_constant("value", TensorData::scalar_float(value))},
                     {p}, "pad");
    pad->attrs.set("mode", mode);
    auto* c = g.add_variable("c");
    auto* conv = g.add_node("Conv", {p, g.add_constant("w", random_tensor({4, pads[1] + pads[5] + 3, 3, 5}, 7)),
                                     g.add_constant("b", random_tensor({4}, 8))},
                            {c}, "conv");
    conv->attrs.set("pads", std::vector<int64_t>{0, 1, 0, 1});
    auto* y = g.add_variable("y");
    g.add_node("Elu", {c}, {second_consumer ? g.add_variable("e") : y}, "elu");
    if (second_consumer) {
      auto* c2 = g.add_variable("c2");
      g.add_node("Conv", {p, g.tensor("w"), g.tensor("b")}, {c2}, "conv2")
          ->attrs.set("pads", std::vector<int64_t>{0, 1, 0, 1});
      g.add_node("Add", {g.tensor("e"), c2}, {y}, "add");
    }
    g.inputs = {x};
    g.outputs = {y};
  }
};

// Builds an engine from the graph and compares it with the unfused graph run by the reference kernels.
void expect_engine_matches_reference(const Graph& g) {
  const TensorData x = random_tensor(static_dims(*g.inputs[0]->shape), 99);
  auto engine = Engine::build(g);
  auto ctx = engine->create_context();
  ctx->set_input("x", x);
  ctx->run();
  const TensorData& got = ctx->output("y");
  const TensorData want = run_reference_graph(g, x);
  ASSERT_EQ(got.dims(), want.dims());
  EXPECT_LE(rel_l2(got.data<float>(), want.data<float>(), got.numel()), 1e-5);
}

size_t count_op(const Graph& g, const std::string& op) {
  size_t n = 0;
  for (const auto& node : g.nodes()) n += node->op == op;
  return n;
}

TEST(CpuBackend, FusePadIntoConvPyTorchStyle) {
  PadConv m({0, 0, 2, 1, 0, 0, 2, 1}, "constant", 0.0f);
  infer_shapes(m.g);
  auto fused = m.g.copy();
  EXPECT_EQ(fuse_pad_into_conv(*fused), 1u);
  EXPECT_EQ(count_op(*fused, "Pad"), 0u);
  const Node* conv = fused->find_node("conv");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->attrs.get_ints("pads"), (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(std::get<std::vector<std::string>>(conv->attrs.find("kiln_fused")->value),
            (std::vector<std::string>{"pad", "conv"}));
  expect_engine_matches_reference(m.g);
  auto engine = Engine::build(m.g);
  EXPECT_EQ(count_op(engine->graph(), "Pad"), 0u);
}

TEST(CpuBackend, FusePadIntoConvLeavesOtherPadsAlone) {
  struct Case {
    const char* what;
    std::vector<int64_t> pads;
    const char* mode;
    float value;
    bool second_consumer;
  };
  for (const Case& c : {Case{"reflect", {0, 0, 1, 1, 0, 0, 1, 1}, "reflect", 0.0f, false},
                        Case{"non-zero value", {0, 0, 1, 1, 0, 0, 1, 1}, "constant", 0.5f, false},
                        Case{"channel pads", {0, 1, 1, 1, 0, 0, 1, 1}, "constant", 0.0f, false},
                        Case{"negative pads", {0, 0, -1, 1, 0, 0, 1, 1}, "constant", 0.0f, false},
                        Case{"two consumers", {0, 0, 1, 1, 0, 0, 1, 1}, "constant", 0.0f, true}}) {
    SCOPED_TRACE(c.what);
    PadConv m(c.pads, c.mode, c.value, c.second_consumer);
    infer_shapes(m.g);
    auto g = m.g.copy();
    EXPECT_EQ(fuse_pad_into_conv(*g), 0u);
    EXPECT_EQ(count_op(*g, "Pad"), 1u);
    EXPECT_EQ(g->find_node("conv")->attrs.get_ints("pads"), (std::vector<int64_t>{0, 1, 0, 1}));
    expect_engine_matches_reference(m.g);
  }
}

TEST(CpuBackend, FuseConvActivationMakesFusedConv) {
  PadConv m({0, 0, 1, 1, 0, 0, 1, 1}, "constant", 0.0f);
  m.g.find_node("elu")->attrs.set("alpha", 0.3f);
  infer_shapes(m.g);
  auto g = m.g.copy();
  EXPECT_EQ(fuse_pad_into_conv(*g), 1u);
  EXPECT_EQ(fuse_conv_activation(*g), 1u);
  ASSERT_EQ(g->num_nodes(), 1u);
  const Node& f = *g->nodes()[0];
  EXPECT_EQ(f.op, "FusedConv");
  EXPECT_EQ(f.domain, "kiln");
  EXPECT_EQ(f.attrs.get_string("kiln_post_op", ""), "Elu");
  EXPECT_FLOAT_EQ(f.attrs.get_float("kiln_post_alpha", 0), 0.3f);
  EXPECT_EQ(std::get<std::vector<std::string>>(f.attrs.find("kiln_fused")->value),
            (std::vector<std::string>{"pad", "conv", "elu"}));
  // The fused graph, run by the reference kernels alone, still computes the original.
  const TensorData x = random_tensor({1, 3, 10, 12}, 5);
  const TensorData a = run_reference_graph(m.g, x), b = run_reference_graph(*g, x);
  EXPECT_LE(rel_l2(b.data<float>(), a.data<float>(), a.numel()), 1e-6);
  expect_engine_matches_reference(m.g);
  auto engine = Engine::build(m.g);
  ASSERT_EQ(engine->layers().size(), 1u);
  EXPECT_EQ(engine->layers()[0].kernel, "cpu.conv_onednn");
}

}  // namespace
}  // namespace kiln

#include <unistd.h>

#include <cstring>

#include "kiln/engine.h"

namespace kiln {
namespace {

// A timed convolution's tactic is stored in the engine file: the loaded engine computes bit-identical outputs.
TEST(CpuBackend, ConvTacticSurvivesEngineFile) {
  Graph g;
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{1, 32, 48, 48});
  TensorData w(DType::Float, {32, 32, 3, 3}), b(DType::Float, {32});
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-0.2f, 0.2f);
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = u(rng);
  for (int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = u(rng);
  Node* conv = g.add_node("Conv", {x, g.add_constant("w", w), g.add_constant("b", b)}, {g.add_variable("y")}, "conv");
  conv->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  g.inputs = {x};
  g.outputs = {g.tensor("y")};
  auto engine = Engine::build(g);
  ASSERT_EQ(engine->layers()[0].kernel, "cpu.conv_onednn");
  TensorData xv(DType::Float, {1, 32, 48, 48});
  for (int64_t i = 0; i < xv.numel(); ++i) xv.data<float>()[i] = u(rng);
  auto run = [&](Engine& e) {
    auto ctx = e.create_context();
    ctx->set_input("x", xv);
    ctx->run();
    return ctx->output("y").clone();
  };
  TensorData first = run(*engine);
  const std::string path = ::testing::TempDir() + "/conv_tactic_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  auto loaded = Engine::load(path);
  EXPECT_TRUE(run(*loaded).same_values(first));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace kiln
