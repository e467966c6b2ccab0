// If / Loop / Scan: the reference kernels run directly (Loop's outputs are data-dependent), with outer-scope
// values made inputs by capture_outer_references; expected values are computed by hand-written loops here.
#include <gtest/gtest.h>

#include "kiln/onnx.h"
#include "kiln/passes.h"
#include "ops/internal_ops.h"
#include "passes/rewrites.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::F;
using test::randf;

TensorData Bool(bool v) {
  TensorData t(DType::Bool, {});
  t.data<uint8_t>()[0] = v;
  return t;
}

// A subgraph under construction: add() appends a node writing a fresh tensor.
struct Sub {
  GraphPtr g = std::make_shared<Graph>();
  explicit Sub(const std::string& name) { g->name = name; }
  Tensor* in(const std::string& name, DType dt = DType::Undefined, std::optional<Shape> s = std::nullopt) {
    Tensor* t = g->add_variable(name, dt, std::move(s));
    g->inputs.push_back(t);
    return t;
  }
  Tensor* outer(const std::string& name) { return g->add_variable(name); }  // read from an enclosing scope
  Tensor* add(const std::string& op, std::vector<Tensor*> ins, Attributes attrs = {}) {
    Tensor* out = g->add_variable(g->unique_name(g->name + "_" + op));
    Node* n = g->add_node(op, ins, {out});
    n->attrs = std::move(attrs);
    return out;
  }
};

Attributes attr(const std::string& name, AttributeValue v) {
  Attributes a;
  a.set(name, std::move(v));
  return a;
}

// Runs node n's reference kernel on its (constant) inputs.
std::vector<TensorData> run(const Node& n, int64_t opset = 13) {
  ops::KernelContext ctx(n, opset);
  for (Tensor* t : n.inputs()) ctx.in.push_back(t ? &static_cast<Constant*>(t)->values() : nullptr);
  ops::run_reference(*ops::find_op(n.domain, n.op), ctx);
  return ctx.out;
}

// If(cond) whose then_branch computes x + x and else_branch -x, both reading x from the enclosing graph.
struct IfGraph {
  Graph g;
  Node* node;
  std::vector<float> x = randf(6);
  explicit IfGraph(bool cond) {
    Tensor* xc = g.add_constant("x", F({2, 3}, x));
    Tensor* y = g.add_variable("y");
    Sub then_b("then"), else_b("else");
    Tensor* tx = then_b.outer("x");
    then_b.g->outputs = {then_b.add("Add", {tx, tx})};
    else_b.g->outputs = {else_b.add("Neg", {else_b.outer("x")})};
    node = g.add_node("If", {g.add_constant("cond", Bool(cond))}, {y}, "if");
    node->attrs.set("then_branch", then_b.g);
    node->attrs.set("else_branch", else_b.g);
    g.outputs = {y};
    (void)xc;
  }
};

TEST(ControlFlow, IfRunsTheChosenBranchOnACapturedOuterValue) {
  for (bool cond : {true, false}) {
    IfGraph f(cond);
    EXPECT_EQ(capture_outer_references(f.g), 1u);
    ASSERT_EQ(f.node->inputs().size(), 2u);
    EXPECT_EQ(f.node->input(1)->name, "x");
    EXPECT_EQ(f.node->attrs.get_int(internal_ops::kCaptured, 0), 1);
    std::vector<float> want;
    for (float v : f.x) want.push_back(cond ? v + v : -v);
    test::expect_near(test::floats(run(*f.node).at(0)), want);
    infer_shapes(f.g);
    EXPECT_EQ(to_string(*f.g.outputs[0]->shape), "2x3");
  }
}

TEST(ControlFlow, IfWithoutCaptureInfersAndFoldsThroughInference) {
  IfGraph f(true);
  infer_shapes(f.g);  // the branches' outer x is looked up in the enclosing graph
  EXPECT_EQ(to_string(*f.g.outputs[0]->shape), "2x3");
  EXPECT_NE(test::error_of([&] { run(*f.node); }).find("reads outer-scope value 'x', which was not captured"),
            std::string::npos);
  // cond and x are constants: inference knows the chosen branch's value, and folding uses it.
  EXPECT_EQ(fold_constants(f.g).folded_nodes, 1u);
  ASSERT_TRUE(f.g.outputs[0]->is_constant());
  std::vector<float> want;
  for (float v : f.x) want.push_back(v + v);
  test::expect_near(test::floats(static_cast<Constant*>(f.g.outputs[0])->values()), want);
}

TEST(ControlFlow, IfReadingARuntimeValueIsNotEvaluatedUncaptured) {
  IfGraph f(true);
  Tensor* x = f.g.find_tensor("x");
  f.g.rename_tensor(x, "x_const");
  Tensor* xin = f.g.add_variable("x", DType::Float, Shape{2, 3});
  f.g.inputs = {xin};
  const PropagateReport r = fold_constants(f.g);  // must neither fail nor run the kernel without x's value
  EXPECT_EQ(r.folded_nodes, 0u);
  EXPECT_EQ(to_string(*f.g.outputs[0]->shape), "2x3");
}

TEST(ControlFlow, IfValidatesCondAndBranches) {
  IfGraph f(true);
  capture_outer_references(f.g);
  f.node->set_input(0, f.g.add_constant("fcond", TensorData::scalar_float(1)));
  EXPECT_NE(test::error_of([&] { run(*f.node); }).find("cond must be a one-element bool tensor, got float32"),
            std::string::npos);
  TensorData two(DType::Bool, {2});
  f.node->set_input(0, f.g.add_constant("cond2", two));
  EXPECT_NE(test::error_of([&] { run(*f.node); }).find("one-element bool"), std::string::npos);
  f.node->set_input(0, f.g.add_constant("cond3", Bool(true)));
  f.node->set_output(1, f.g.add_variable("extra"));  // two outputs, branches give one
  EXPECT_NE(test::error_of([&] { run(*f.node); }).find("subgraph 'then_branch' has 1 outputs, expected 2"),
            std::string::npos);
}

TEST(ControlFlow, IfInferenceMergesDifferentBranchShapes) {
  Graph g;
  Sub a("a"), b("b");
  a.g->outputs = {a.add("Constant", {}, attr("value", F({2, 3}, randf(6))))};
  b.g->outputs = {b.add("Constant", {}, attr("value", F({2, 5}, randf(10))))};
  Tensor* y = g.add_variable("y");
  Node* n = g.add_node("If", {g.add_variable("c", DType::Bool, Shape{})}, {y});
  n->attrs.set("then_branch", a.g);
  n->attrs.set("else_branch", b.g);
  g.inputs = {n->input(0)};
  g.outputs = {y};
  infer_shapes(g);
  EXPECT_EQ(to_string(*y->shape), "2x?");
  EXPECT_EQ(y->dtype, DType::Float);
}

// Loop(M, cond, s) with body (i, c, s) -> (c, s + w * i, s + w * i): w is an outer value; the scan output
// stacks every iteration's s.
struct ForLoop {
  Graph g;
  Node* node;
  std::vector<float> s0 = randf(3), w = randf(3);
  ForLoop(TensorData m, std::optional<bool> cond) {
    g.add_constant("w", F({3}, w));
    Sub body("body");
    Tensor* i = body.in("i");
    Tensor* c = body.in("c");
    Tensor* s = body.in("s");
    Tensor* fi = body.add("Cast", {i}, attr("to", int64_t(1)));
    Tensor* next = body.add("Add", {s, body.add("Mul", {body.outer("w"), fi})});
    body.g->outputs = {body.add("Identity", {c}), next, body.add("Identity", {next})};
    Tensor* ct = cond ? g.add_constant("cond", Bool(*cond)) : nullptr;
    Tensor* mt = m.empty_type() ? nullptr : g.add_constant("M", m);
    node = g.add_node("Loop", {mt, ct, g.add_constant("s0", F({3}, s0))},
                      {g.add_variable("s"), g.add_variable("scan")}, "loop");
    node->attrs.set("body", body.g);
    g.outputs = {node->output(0), node->output(1)};
    capture_outer_references(g);
  }
};

TEST(ControlFlow, LoopCarriesValuesAndStacksScanOutputs) {
  ForLoop f(TensorData::scalar_int64(4), true);
  std::vector<TensorData> out = run(*f.node);
  std::vector<float> s = f.s0, scan;
  for (int i = 0; i < 4; ++i) {
    for (int k = 0; k < 3; ++k) s[k] += f.w[k] * static_cast<float>(i);
    scan.insert(scan.end(), s.begin(), s.end());
  }
  test::expect_near(test::floats(out[0]), s);
  EXPECT_EQ(out[1].dims(), (std::vector<int64_t>{4, 3}));
  test::expect_near(test::floats(out[1]), scan);
  infer_shapes(f.g);  // M is known and cond passes through: the scan length is static
  EXPECT_EQ(to_string(*f.node->output(0)->shape), "3");
  EXPECT_EQ(to_string(*f.node->output(1)->shape), "4x3");
}

TEST(ControlFlow, LoopWithZeroTripsOrFalseCondReturnsInitialValues) {
  for (auto [m, cond] : {std::pair{0, true}, std::pair{5, false}}) {
    ForLoop f(TensorData::scalar_int64(m), cond);
    std::vector<TensorData> out = run(*f.node);
    test::expect_near(test::floats(out[0]), f.s0);
    EXPECT_EQ(out[1].dims(), (std::vector<int64_t>{0, 3}));  // the item shape comes from inference
    EXPECT_EQ(out[1].dtype(), DType::Float);
  }
}

TEST(ControlFlow, LoopValidatesTripCountAndBody) {
  EXPECT_NE(test::error_of([] {
              run(*ForLoop(TensorData::scalar_int64(-2), true).node);
            }).find("trip count M is -2; it must be >= 0"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { run(*ForLoop(TensorData(), std::nullopt).node); }).find("it would never end"),
            std::string::npos);
  ForLoop f(TensorData::scalar_int64(2), true);
  f.node->set_output(2, f.g.add_variable("extra"));
  EXPECT_NE(test::error_of([&] {
              run(*f.node);
            }).find("has 3 outputs, but its body gives 1 loop-carried and 1 scan"),
            std::string::npos);
}

TEST(ControlFlow, LoopRejectsABodyThatChangesACarriedDtype) {
  Graph g;
  Sub body("body");
  body.in("i");
  Tensor* c = body.in("c");
  Tensor* s = body.in("s");
  body.g->outputs = {c, body.add("Cast", {s}, attr("to", int64_t(11)))};
  Node* n = g.add_node(
      "Loop",
      {g.add_constant("M", TensorData::scalar_int64(2)), nullptr, g.add_constant("s0", F({2}, randf(2)))},
      {g.add_variable("s")});
  n->attrs.set("body", body.g);
  EXPECT_NE(
      test::error_of([&] { run(*n); }).find("body changes loop-carried value 0 from float32 to float64"),
      std::string::npos);
}

// A while loop: no M; the body's cond is i < limit (limit read from outside), so it runs limit + 1 times.
TEST(ControlFlow, LoopStopsWhenTheBodyCondTurnsFalse) {
  Graph g;
  g.add_constant("limit", TensorData::scalar_int64(2));
  Sub body("body");
  Tensor* i = body.in("i");
  body.in("c");
  body.g->outputs = {body.add("Less", {i, body.outer("limit")}), body.add("Identity", {i})};
  Node* n =
      g.add_node("Loop", {nullptr, g.add_constant("cond", Bool(true))}, {g.add_variable("is")}, "while");
  n->attrs.set("body", body.g);
  g.outputs = {n->output(0)};
  capture_outer_references(g);
  EXPECT_EQ(run(*n).at(0).to_int64_vector(), (std::vector<int64_t>{0, 1, 2}));
  ops::InferContext ctx(*n, 13);  // without input values the length is data-dependent
  for (Tensor* t : n->inputs())
    ctx.in.push_back(t ? ops::InputInfo{t->dtype, t->shape, nullptr, true} : ops::InputInfo{});
  ops::infer_node(*ops::find_op("", "Loop"), ctx);
  EXPECT_EQ(to_string(*ctx.out[0].shape), "?");
  EXPECT_EQ(ctx.out[0].dtype, DType::Int64);
}

// Scan-11 over x[2, 5] along axis 1 read backwards: acc += x[:, 4 - t]; output 0 stacks acc along axis 1
// forwards, output 1 the same values in reverse order.
TEST(ControlFlow, ScanReadsAndWritesAlongAxesInBothDirections) {
  Graph g;
  const std::vector<float> x = randf(10), acc0 = randf(2);
  Sub body("body");
  Tensor* acc = body.in("acc");
  Tensor* xt = body.in("xt");
  Tensor* next = body.add("Add", {acc, xt});
  body.g->outputs = {next, body.add("Identity", {next}), body.add("Identity", {next})};
  Node* n = g.add_node("Scan", {g.add_constant("acc0", F({2}, acc0)), g.add_constant("x", F({2, 5}, x))},
                       {g.add_variable("acc"), g.add_variable("fwd"), g.add_variable("rev")}, "scan");
  n->attrs.set("body", body.g);
  n->attrs.set("num_scan_inputs", int64_t(1));
  n->attrs.set("scan_input_axes", std::vector<int64_t>{1});
  n->attrs.set("scan_input_directions", std::vector<int64_t>{1});
  n->attrs.set("scan_output_axes", std::vector<int64_t>{-1, 1});
  n->attrs.set("scan_output_directions", std::vector<int64_t>{0, 1});
  g.outputs = n->outputs();
  std::vector<float> a = acc0, fwd(10), rev(10);
  for (int t = 0; t < 5; ++t)
    for (int r = 0; r < 2; ++r) {
      a[r] += x[r * 5 + (4 - t)];
      fwd[r * 5 + t] = a[r];
      rev[r * 5 + (4 - t)] = a[r];
    }
  std::vector<TensorData> out = run(*n, 11);
  test::expect_near(test::floats(out[0]), a);
  EXPECT_EQ(out[1].dims(), (std::vector<int64_t>{2, 5}));
  test::expect_near(test::floats(out[1]), fwd);
  test::expect_near(test::floats(out[2]), rev);
  g.set_opset("", 11);
  infer_shapes(g);
  EXPECT_EQ(to_string(*n->output(1)->shape), "2x5");
  n->attrs.set("scan_input_axes", std::vector<int64_t>{2});
  EXPECT_NE(test::error_of([&] { run(*n, 11); }).find("scan_input_axes 2 is out of range for rank 2"),
            std::string::npos);
}

// Loop body holding an If that reads a top-level value: capture threads it through both levels.
TEST(ControlFlow, NestedCaptureReachesAnIfInsideALoopBody) {
  Graph g;
  const std::vector<float> w = randf(3), s0 = randf(3);
  g.add_constant("w", F({3}, w));
  Sub then_b("then"), else_b("else"), body("body");
  then_b.g->outputs = {then_b.add("Neg", {then_b.outer("w")})};
  else_b.g->outputs = {else_b.outer("w")};  // passed straight through
  Tensor* i = body.in("i");
  Tensor* c = body.in("c");
  Tensor* s = body.in("s");
  Tensor* odd = body.add(
      "Cast", {body.add("Mod", {i, body.add("Constant", {}, attr("value", TensorData::scalar_int64(2)))})},
      attr("to", int64_t(9)));
  Tensor* step = body.g->add_variable("step");
  Node* inner = body.g->add_node("If", {odd}, {step});
  inner->attrs.set("then_branch", then_b.g);
  inner->attrs.set("else_branch", else_b.g);
  body.g->outputs = {c, body.add("Add", {s, step})};
  Node* n = g.add_node(
      "Loop", {g.add_constant("M", TensorData::scalar_int64(3)), nullptr, g.add_constant("s0", F({3}, s0))},
      {g.add_variable("s")});
  n->attrs.set("body", body.g);
  g.outputs = {n->output(0)};
  EXPECT_EQ(capture_outer_references(g), 2u);  // w into the Loop, then into the If
  std::vector<float> want = s0;
  for (int it = 0; it < 3; ++it)
    for (int k = 0; k < 3; ++k) want[k] += it % 2 ? -w[k] : w[k];
  test::expect_near(test::floats(run(*n).at(0)), want);
  // The captured form is self-contained: it survives an ONNX round trip (engine files carry it).
  g.set_opset("", 13);
  std::unique_ptr<Graph> back = import_onnx_bytes(export_onnx_bytes(g));
  test::expect_near(test::floats(run(*back->nodes().front()).at(0)), want);
}

}  // namespace
}  // namespace kiln
