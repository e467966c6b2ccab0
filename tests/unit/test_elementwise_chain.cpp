// kiln.ElementwiseChain: the fuse_elementwise_chains rewrite (what it fuses and what it leaves alone), the
// engine's numerics on fused graphs against loops written here, and cpu.elementwise_chain against the
// reference kernel (outputs poisoned with NaN first).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "device/kernel.h"
#include "kiln/engine.h"
#include "kiln/passes.h"
#include "passes/rewrites.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

TensorData scalar(float v) { return F({}, {v}); }

int64_t numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}


// x [1,C,H,W] ─ Mul(γ [C,1,1]) ─ Add(0.5) ─ Elu(0.7)
struct ScaleShiftElu {
  Graph g;
  int64_t c, h, w;
  std::vector<float> gamma = randf(c);
  ScaleShiftElu(int64_t c = 8, int64_t h = 7, int64_t w = 9) : c(c), h(h), w(w) {
    g.set_opset("", 13);
    Tensor* x = g.add_variable("x", DType::Float, Shape{1, c, h, w});
    g.add_node("Mul", {x, g.add_constant("gamma", F({c, 1, 1}, gamma))}, {g.add_variable("m")}, "mul");
    g.add_node("Add", {g.add_constant("half", scalar(0.5f)), g.tensor("m")}, {g.add_variable("a")}, "add");
    g.add_node("Elu", {g.tensor("a")}, {g.add_variable("y")}, "elu")->attrs.set("alpha", 0.7f);
    g.inputs = {x};
    g.outputs = {g.tensor("y")};
  }
  std::vector<float> expected(const std::vector<float>& x) const {
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      const float v = x[i] * gamma[(i / static_cast<size_t>(h * w)) % static_cast<size_t>(c)] + 0.5f;
      y[i] = v >= 0 ? v : 0.7f * (std::exp(v) - 1.f);
    }
    return y;
  }
};

// x, r [1,C,H,W] ─ Add(x, r) ─ Relu
struct ResidualRelu {
  Graph g;
  ResidualRelu(int64_t c = 4, int64_t h = 5, int64_t w = 6) {
    g.set_opset("", 13);
    Tensor* x = g.add_variable("x", DType::Float, Shape{1, c, h, w});
    Tensor* r = g.add_variable("r", DType::Float, Shape{1, c, h, w});
    g.add_node("Add", {x, r}, {g.add_variable("s")}, "residual");
    g.add_node("Relu", {g.tensor("s")}, {g.add_variable("y")}, "relu");
    g.inputs = {x, r};
    g.outputs = {g.tensor("y")};
  }
};

// x [1,C,H,W] (positive) ─ Sub(5, ·) ─ Div(γ [1,C,1,1], ·) ─ Abs ─ Sqrt ─ Mul(full-size constant) ─ Tanh
//   ─ LeakyRelu(0.2) ─ Neg ─ Exp ─ Sigmoid
struct DataOnTheRight {
  Graph g;
  int64_t c, h, w;
  std::vector<float> gamma = randf(c), full = randf(c * h * w);
  DataOnTheRight(int64_t c = 6, int64_t h = 3, int64_t w = 11) : c(c), h(h), w(w) {
    g.set_opset("", 13);
    Tensor* x = g.add_variable("x", DType::Float, Shape{1, c, h, w});
    g.add_node("Sub", {g.add_constant("five", scalar(5.f)), x}, {g.add_variable("s")}, "sub");
    g.add_node("Div", {g.add_constant("gamma", F({1, c, 1, 1}, gamma)), g.tensor("s")}, {g.add_variable("d")}, "div");
    g.add_node("Abs", {g.tensor("d")}, {g.add_variable("ab")}, "abs");
    g.add_node("Sqrt", {g.tensor("ab")}, {g.add_variable("sq")}, "sqrt");
    g.add_node("Mul", {g.tensor("sq"), g.add_constant("full", F({1, c, h, w}, full))}, {g.add_variable("m")}, "mul");
    g.add_node("Tanh", {g.tensor("m")}, {g.add_variable("t")}, "tanh");
    g.add_node("LeakyRelu", {g.tensor("t")}, {g.add_variable("l")}, "leaky")->attrs.set("alpha", 0.2f);
    g.add_node("Neg", {g.tensor("l")}, {g.add_variable("n")}, "neg");
    g.add_node("Exp", {g.tensor("n")}, {g.add_variable("e")}, "exp");
    g.add_node("Sigmoid", {g.tensor("e")}, {g.add_variable("y")}, "sigmoid");
    g.inputs = {x};
    g.outputs = {g.tensor("y")};
  }
  std::vector<float> expected(const std::vector<float>& x) const {
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      float v = 5.f - x[i];
      v = gamma[(i / static_cast<size_t>(h * w)) % static_cast<size_t>(c)] / v;
      v = std::sqrt(std::fabs(v)) * full[i];
      v = std::tanh(v);
      v = v >= 0 ? v : 0.2f * v;
      v = std::exp(-v);
      y[i] = 1.f / (1.f + std::exp(-v));
    }
    return y;
  }
};

const Node* only_node(const Graph& g) {
  EXPECT_EQ(g.num_nodes(), 1u);
  return g.num_nodes() == 1 ? g.nodes()[0].get() : nullptr;
}

std::vector<std::string> strings_attr(const Node& n, const std::string& name) {
  const Attribute* a = n.attrs.find(name);
  const auto* v = a ? std::get_if<std::vector<std::string>>(&a->value) : nullptr;
  return v ? *v : std::vector<std::string>{};
}

TEST(ElementwiseChain, FusesScaleShiftElu) {
  ScaleShiftElu m;
  auto engine = Engine::build(m.g);
  ASSERT_EQ(engine->layers().size(), 1u);
  EXPECT_EQ(engine->layers()[0].op, "kiln.ElementwiseChain");
  EXPECT_EQ(engine->layers()[0].kernel, "cpu.elementwise_chain");
  EXPECT_EQ(engine->layers()[0].fused.size(), 3u);
  auto xv = randf(m.c * m.h * m.w);
  auto ctx = engine->create_context();
  ctx->set_input("x", F({1, m.c, m.h, m.w}, xv));
  ctx->run();
  expect_near(floats(ctx->output("y")), m.expected(xv), 1e-5f);

  infer_shapes(m.g);
  EXPECT_EQ(fuse_elementwise_chains(m.g), 1u);
  const Node* n = only_node(m.g);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->op, "ElementwiseChain");
  EXPECT_EQ(n->domain, "kiln");
  EXPECT_EQ(m.g.opset("kiln"), 1);
  EXPECT_EQ(strings_attr(*n, "steps"), (std::vector<std::string>{"Mul", "Add", "Elu"}));
  EXPECT_EQ(strings_attr(*n, "kiln_fused"), (std::vector<std::string>{"mul", "add", "elu"}));
  EXPECT_EQ(n->attrs.get_ints("operand"), (std::vector<int64_t>{1, 2, -1}));
  EXPECT_EQ(n->attrs.get_ints("data_first"), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(n->attrs.get_floats("alpha"), (std::vector<float>{0.f, 0.f, 0.7f}));
  ASSERT_EQ(n->inputs().size(), 3u);
  EXPECT_EQ(n->input(0)->name, "x");
  EXPECT_EQ(n->output(0)->name, "y");
  m.g.validate();
}

TEST(ElementwiseChain, FusesResidualAddRelu) {
  ResidualRelu m;
  auto engine = Engine::build(m.g);
  ASSERT_EQ(engine->layers().size(), 1u);
  EXPECT_EQ(engine->layers()[0].kernel, "cpu.elementwise_chain");
  auto xv = randf(120), rv = randf(120);
  auto ctx = engine->create_context();
  ctx->set_input("x", F({1, 4, 5, 6}, xv));
  ctx->set_input("r", F({1, 4, 5, 6}, rv));
  ctx->run();
  std::vector<float> want(120);
  for (size_t i = 0; i < want.size(); ++i) want[i] = std::max(xv[i] + rv[i], 0.f);
  expect_near(floats(ctx->output("y")), want, 1e-6f);

  infer_shapes(m.g);
  EXPECT_EQ(fuse_elementwise_chains(m.g), 1u);
  const Node* n = only_node(m.g);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->input(0)->name, "x");
  EXPECT_EQ(n->input(1)->name, "r");
  EXPECT_EQ(n->attrs.get_ints("operand"), (std::vector<int64_t>{1, -1}));
}

TEST(ElementwiseChain, FusesSubDivWithDataOnTheRight) {
  DataOnTheRight m;
  auto engine = Engine::build(m.g);
  ASSERT_EQ(engine->layers().size(), 1u);
  EXPECT_EQ(engine->layers()[0].kernel, "cpu.elementwise_chain");
  EXPECT_EQ(engine->layers()[0].fused.size(), 10u);
  auto xv = randf(m.c * m.h * m.w, 0.1f, 3.f, false);
  auto ctx = engine->create_context();
  ctx->set_input("x", F({1, m.c, m.h, m.w}, xv));
  ctx->run();
  expect_near(floats(ctx->output("y")), m.expected(xv), 1e-5f);

  infer_shapes(m.g);
  EXPECT_EQ(fuse_elementwise_chains(m.g), 1u);
  const Node* n = only_node(m.g);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->attrs.get_ints("data_first"), (std::vector<int64_t>{0, 0, 1, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(n->attrs.get_ints("operand"), (std::vector<int64_t>{1, 2, -1, -1, 3, -1, -1, -1, -1, -1}));
}

TEST(ElementwiseChain, SkipRewritesKeepsNodes) {
  ScaleShiftElu m;
  BuildOptions o;
  o.skip_rewrites = {"elementwise"};
  EXPECT_EQ(Engine::build(m.g, o)->layers().size(), 3u);
}

// Runs cpu.elementwise_chain and the reference on the fused node of `g` (after fusing it); the data inputs
// get random values, outputs are poisoned with NaN.
void check_fast_kernel(Graph& g, float lo = 0.1f, bool negative = true) {
  infer_shapes(g);
  ASSERT_EQ(fuse_elementwise_chains(g), 1u);
  const Node* n = only_node(g);
  ASSERT_TRUE(n);
  backend::LayerDesc desc;
  desc.node = n;
  desc.opset = 1;
  desc.threads = 3;
  std::vector<TensorData> values;
  values.reserve(n->inputs().size());
  for (Tensor* t : n->inputs()) {
    const std::vector<int64_t> dims = static_dims(*t->shape);
    if (auto* c = dynamic_cast<Constant*>(t)) {
      values.push_back(c->values());
    } else {
      values.push_back(F(dims, randf(numel(dims), lo, 3.f, negative)));
    }
    desc.inputs.push_back({DType::Float, dims, t->is_constant() ? &values.back() : nullptr, true});
  }
  const std::vector<int64_t> ydims = static_dims(*n->output(0)->shape);
  desc.outputs = {{DType::Float, ydims, nullptr, true}};
  const backend::KernelFactory* fast = backend::find_kernel("cpu", "kiln", "ElementwiseChain", "cpu.elementwise_chain");
  const backend::KernelFactory* ref = backend::find_kernel("cpu", "kiln", "ElementwiseChain", "reference");
  ASSERT_TRUE(fast && ref);
  ASSERT_TRUE(fast->supports(desc));
  std::vector<backend::TensorView> ins;
  for (TensorData& v : values) ins.push_back({DType::Float, v.dims(), v.raw()});
  TensorData want(DType::Float, ydims), got(DType::Float, ydims);
  std::fill_n(got.data<float>(), got.numel(), std::numeric_limits<float>::quiet_NaN());
  ref->create(desc)->run(ins, {{DType::Float, ydims, want.raw()}});
  fast->create(desc)->run(ins, {{DType::Float, ydims, got.raw()}});
  EXPECT_LE(rel_l2(got.data<float>(), want.data<float>(), got.numel()), 1e-6) << to_string(make_shape(ydims));
}

TEST(ElementwiseChain, CpuKernelMatchesReference) {
  { ScaleShiftElu m; check_fast_kernel(m.g); }
  { ScaleShiftElu m(16, 130, 170); check_fast_kernel(m.g); }  // threaded, blocks straddle channels
  { ScaleShiftElu m(3, 1, 1); check_fast_kernel(m.g); }       // one element per channel
  { ResidualRelu m; check_fast_kernel(m.g); }
  { ResidualRelu m(8, 100, 200); check_fast_kernel(m.g); }
  { DataOnTheRight m; check_fast_kernel(m.g, 0.1f, false); }
  { DataOnTheRight m(5, 77, 131); check_fast_kernel(m.g, 0.1f, false); }
}

TEST(ElementwiseChain, LeavesWhatDoesNotFitAlone) {
  {  // a link tensor used twice: Mul's output read by both inputs of Add
    Graph g;
    Tensor* x = g.add_variable("x", DType::Float, Shape{1, 4, 3, 3});
    g.add_node("Mul", {x, g.add_constant("s", scalar(2.f))}, {g.add_variable("m")}, "mul");
    g.add_node("Add", {g.tensor("m"), g.tensor("m")}, {g.add_variable("y")}, "add");
    g.inputs = {x};
    g.outputs = {g.tensor("y")};
    infer_shapes(g);
    EXPECT_EQ(fuse_elementwise_chains(g), 0u);
    EXPECT_EQ(g.num_nodes(), 2u);
  }
  {  // a graph output in the middle
    Graph g;
    Tensor* x = g.add_variable("x", DType::Float, Shape{1, 4, 3, 3});
    g.add_node("Mul", {x, g.add_constant("s", scalar(2.f))}, {g.add_variable("m")}, "mul");
    g.add_node("Relu", {g.tensor("m")}, {g.add_variable("y")}, "relu");
    g.inputs = {x};
    g.outputs = {g.tensor("m"), g.tensor("y")};
    infer_shapes(g);
    EXPECT_EQ(fuse_elementwise_chains(g), 0u);
    EXPECT_EQ(g.num_nodes(), 2u);
  }
  {  // a broadcast that grows the data's shape, and a non-constant per-channel operand
    Graph g;
    Tensor* x = g.add_variable("x", DType::Float, Shape{1, 4, 1, 1});
    Tensor* z = g.add_variable("z", DType::Float, Shape{1, 4, 1, 1});
    g.add_node("Add", {x, g.add_constant("big", F({1, 4, 3, 3}, randf(36)))}, {g.add_variable("a")}, "grow");
    g.add_node("Relu", {g.tensor("a")}, {g.add_variable("y")}, "relu");
    Tensor* x2 = g.add_variable("x2", DType::Float, Shape{1, 4, 3, 3});
    g.add_node("Mul", {x2, z}, {g.add_variable("m")}, "mul_by_activation");
    g.add_node("Relu", {g.tensor("m")}, {g.add_variable("y2")}, "relu2");
    g.inputs = {x, z, x2};
    g.outputs = {g.tensor("y"), g.tensor("y2")};
    infer_shapes(g);
    EXPECT_EQ(fuse_elementwise_chains(g), 0u);
    EXPECT_EQ(g.num_nodes(), 4u);
  }
  {  // not float
    Graph g;
    Tensor* x = g.add_variable("x", DType::Int32, Shape{1, 4, 3, 3});
    g.add_node("Add", {x, g.add_constant("one", TensorData::from_vector(DType::Int32, {}, std::vector<int32_t>{1}))},
               {g.add_variable("a")}, "add");
    g.add_node("Abs", {g.tensor("a")}, {g.add_variable("y")}, "abs");
    g.inputs = {x};
    g.outputs = {g.tensor("y")};
    infer_shapes(g);
    EXPECT_EQ(fuse_elementwise_chains(g), 0u);
    EXPECT_EQ(g.num_nodes(), 2u);
  }
}

}  // namespace
}  // namespace kiln
