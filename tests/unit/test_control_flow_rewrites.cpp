// inline_if and unroll_scan (the rewrites that let devices without control-flow kernels run If and Scan):
// each rewritten graph is free of the op and gives the original graph's outputs under the reference kernels
// on random non-zero inputs; near-misses are left alone; the ONNX node tests test_if, test_scan_sum and
// test_scan9_sum become If/Scan-free and still match their expected outputs; the CPU build keeps the ops.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "device/device_backend.h"
#include "kiln/engine.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"
#include "kiln/tensor_io.h"
#include "passes/rewrites.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::F;
using test::randf;
using Feeds = std::map<std::string, TensorData>;

const std::vector<float> weights = randf(6);  // one constant for the plain and the rewritten model

TensorData Bool(bool v) {
  TensorData t(DType::Bool, {});
  t.data<uint8_t>()[0] = v;
  return t;
}

// A subgraph under construction: in() declares an input, add() appends a node writing a fresh tensor.
struct Sub {
  GraphPtr g = std::make_shared<Graph>();
  Tensor* in(const std::string& name, DType dt = DType::Float, std::optional<Shape> s = std::nullopt) {
    g->inputs.push_back(g->add_variable(name, dt, std::move(s)));
    return g->inputs.back();
  }
  Tensor* outer(const std::string& name) { return g->add_variable(name); }  // read from the enclosing graph
  Tensor* add(const std::string& op, std::vector<Tensor*> ins, Attributes attrs = {}) {
    Tensor* out = g->add_variable(g->unique_name(op));
    g->add_node(op, ins, {out})->attrs = std::move(attrs);
    return out;
  }
};

// What the builder does before its rewrites: outer reads become inputs, shapes inferred, constants folded.
void prepare(Graph& g) {
  capture_outer_references(g);
  fold_constants(g);
}

size_t count(const Graph& g, const std::string& op) {
  size_t n = 0;
  for (const auto& node : g.nodes()) n += node->op == op;
  return n;
}

// Every output of g, run by the reference kernels on `feeds`.
std::vector<TensorData> run_reference(const Graph& g, const Feeds& feeds, std::string* ops = nullptr) {
  BuildOptions o;
  o.reference_kernels = true;
  auto engine = Engine::build(g, o);
  if (ops)
    for (const LayerInfo& l : engine->layers()) *ops += l.op + " ";
  auto ctx = engine->create_context();
  for (const auto& [name, value] : feeds) ctx->set_input(name, value);
  ctx->run();
  std::vector<TensorData> out;
  for (const Tensor* t : g.outputs) out.push_back(ctx->output(t->name));
  return out;
}

void expect_same(const std::vector<TensorData>& got, const std::vector<TensorData>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    EXPECT_EQ(got[k].dims(), want[k].dims()) << "output " << k;
    EXPECT_EQ(got[k].dtype(), want[k].dtype()) << "output " << k;
    test::expect_near(test::floats(got[k]), test::floats(want[k]), 1e-6f);
  }
}

// If(cond): then = (x + x, x * w), else = (-x, x - w); x and w come from the enclosing graph, w a constant.
struct IfModel {
  Graph g;
  explicit IfModel(Shape else_shape = {2, 3}, Shape cond_shape = {}) {
    g.set_opset("", 13);
    Tensor* x = g.add_variable("x", DType::Float, Shape{2, 3});
    Tensor* cond = g.add_variable("cond", DType::Bool, cond_shape);
    g.add_constant("w", F({2, 3}, weights));
    Sub then_b, else_b;
    Tensor *tx = then_b.outer("x"), *ex = else_b.outer("x");
    then_b.g->outputs = {then_b.add("Add", {tx, tx}), then_b.add("Mul", {tx, then_b.outer("w")})};
    Tensor* ey = else_b.add("Neg", {ex});
    if (else_shape != Shape{2, 3}) {
      Attributes perm;
      perm.set("perm", std::vector<int64_t>{1, 0});
      ey = else_b.add("Transpose", {ey}, perm);
    }
    else_b.g->outputs = {ey, else_b.add("Sub", {ex, else_b.outer("w")})};
    Node* n = g.add_node("If", {cond}, {g.add_variable("y"), g.add_variable("z")}, "if");
    n->attrs.set("then_branch", then_b.g);
    n->attrs.set("else_branch", else_b.g);
    g.inputs = {x, cond};
    g.outputs = {g.tensor("y"), g.tensor("z")};
  }
};

TEST(ControlFlowRewrites, InlineIfSelectsEachBranchAsTheIfDid) {
  IfModel plain, inlined;
  prepare(inlined.g);
  ASSERT_EQ(inline_if(inlined.g), 1u);
  inlined.g.validate();
  EXPECT_EQ(count(inlined.g, "If"), 0u);
  EXPECT_EQ(count(inlined.g, "Where"), 2u);
  for (bool cond : {true, false}) {
    const Feeds feeds{{"x", F({2, 3}, randf(6))}, {"cond", Bool(cond)}};
    expect_same(run_reference(inlined.g, feeds), run_reference(plain.g, feeds));
  }
  // A one-element cond of rank <= the outputs' broadcasts without changing their shape.
  IfModel rank1({2, 3}, Shape{1}), plain1({2, 3}, Shape{1});
  prepare(rank1.g);
  ASSERT_EQ(inline_if(rank1.g), 1u);
  TensorData c(DType::Bool, {1});
  c.data<uint8_t>()[0] = 0;
  const Feeds feeds{{"x", F({2, 3}, randf(6))}, {"cond", c}};
  expect_same(run_reference(rank1.g, feeds), run_reference(plain1.g, feeds));
}

TEST(ControlFlowRewrites, InlineIfLeavesBranchesOfDifferentShapesAlone) {
  IfModel m({3, 2});
  prepare(m.g);
  std::vector<NotFolded> rejected;
  EXPECT_EQ(inline_if(m.g, {}, &rejected), 0u);
  EXPECT_EQ(count(m.g, "If"), 1u);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_NE(rejected[0].reason.find("output 0 differs"), std::string::npos) << rejected[0].reason;
}

// Scan-9 with a state s [3, 2] and two scan inputs: a [3, T, 2] scanned along axis 1
// backwards, b [T, 2] along axis 0; s' = s + a_t * b_t; scan outputs s' * w (w captured) stacked along axis 1
// in reverse, and -b_t stacked along the last axis.
struct ScanModel {
  Graph g;
  int64_t length;
  ScanModel(int64_t opset, int64_t t) : length(t) {
    g.set_opset("", opset);
    Tensor* s = g.add_variable("s", DType::Float, Shape{3, 2});
    Tensor* a = g.add_variable("a", DType::Float, Shape{3, t, 2});
    Tensor* b = g.add_variable("b", DType::Float, Shape{t, 2});
    g.add_constant("w", F({3, 2}, weights));
    Sub body;
    Tensor *bs = body.in("s_in", DType::Float, Shape{3, 2}), *ba = body.in("a_t"), *bb = body.in("b_t");
    Tensor* next = body.add("Add", {bs, body.add("Mul", {ba, bb})});
    body.g->outputs = {next, body.add("Mul", {next, body.outer("w")}), body.add("Neg", {bb})};
    Node* n =
        g.add_node("Scan", {s, a, b}, {g.add_variable("s_out"), g.add_variable("y"), g.add_variable("nb")});
    n->attrs.set("body", body.g);
    n->attrs.set("num_scan_inputs", int64_t{2});
    n->attrs.set("scan_input_axes", std::vector<int64_t>{-2, 0});
    n->attrs.set("scan_input_directions", std::vector<int64_t>{1, 0});
    n->attrs.set("scan_output_axes", std::vector<int64_t>{1, -1});
    n->attrs.set("scan_output_directions", std::vector<int64_t>{1, 0});
    g.inputs = {s, a, b};
    g.outputs = {g.tensor("s_out"), g.tensor("y"), g.tensor("nb")};
  }
  Feeds feeds() const {
    return {{"s", F({3, 2}, randf(6))},
            {"a", F({3, length, 2}, randf(6 * length))},
            {"b", F({length, 2}, randf(2 * length))}};
  }
};

TEST(ControlFlowRewrites, UnrollScanMatchesTheScanAcrossAxesAndDirections) {
  for (int64_t opset : {11, 13}) {  // Unsqueeze's axes: an attribute, then an input
    ScanModel plain(opset, 4), unrolled(opset, 4);
    prepare(unrolled.g);
    ASSERT_EQ(unroll_scan(unrolled.g), 1u);
    unrolled.g.validate();
    EXPECT_EQ(count(unrolled.g, "Scan"), 0u);
    EXPECT_EQ(count(unrolled.g, "Concat"), 2u);
    EXPECT_EQ(unrolled.g.tensor("y")->shape, (Shape{3, 4, 2}));
    EXPECT_EQ(unrolled.g.tensor("nb")->shape, (Shape{2, 4}));
    const Feeds feeds = plain.feeds();
    expect_same(run_reference(unrolled.g, feeds), run_reference(plain.g, feeds));
  }
}

TEST(ControlFlowRewrites, UnrollScanLeavesLongScansAlone) {
  ScanModel m(13, 65);
  prepare(m.g);
  std::vector<NotFolded> rejected;
  EXPECT_EQ(unroll_scan(m.g, {}, &rejected), 0u);
  EXPECT_EQ(count(m.g, "Scan"), 1u);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_NE(rejected[0].reason.find("runs 65 times"), std::string::npos) << rejected[0].reason;
}

// A branch holding control flow of its own is left alone (its nested If is not rewritten here).
TEST(ControlFlowRewrites, InlineIfLeavesNestedControlFlowAlone) {
  IfModel m;
  Node* outer = m.g.find_node("if");
  Sub inner_then, inner_else;
  inner_then.g->outputs = {inner_then.add("Neg", {inner_then.outer("x")})};
  inner_else.g->outputs = {inner_else.add("Abs", {inner_else.outer("x")})};
  auto then_b = std::get<GraphPtr>(outer->attrs.find("then_branch")->value);
  Node* inner = then_b->add_node("If", {then_b->add_variable("cond")}, {then_b->add_variable("nested")});
  inner->attrs.set("then_branch", inner_then.g);
  inner->attrs.set("else_branch", inner_else.g);
  then_b->outputs[0] = inner->output(0);
  prepare(m.g);
  std::vector<NotFolded> rejected;
  EXPECT_EQ(inline_if(m.g, {}, &rejected), 0u);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_NE(rejected[0].reason.find("nested control flow"), std::string::npos) << rejected[0].reason;
}

// Scan-8: every value has a leading batch axis; the scan axis is 1; `directions` reverses the input.
TEST(ControlFlowRewrites, UnrollScan8RunsEachBatchEntry) {
  auto model = [](Graph& g) {
    g.set_opset("", 8);
    Tensor* s = g.add_variable("s", DType::Float, Shape{2, 3});
    Tensor* x = g.add_variable("x", DType::Float, Shape{2, 5, 3});
    Sub body;
    Tensor* next = body.add("Mul", {body.in("s_in", DType::Float, Shape{3}), body.in("x_t")});
    body.g->outputs = {next, body.add("Add", {next, body.g->inputs[1]})};
    Node* n = g.add_node("Scan", {nullptr, s, x}, {g.add_variable("s_out"), g.add_variable("y")});
    n->attrs.set("body", body.g);
    n->attrs.set("num_scan_inputs", int64_t{1});
    n->attrs.set("directions", std::vector<int64_t>{1});
    g.inputs = {s, x};
    g.outputs = {g.tensor("s_out"), g.tensor("y")};
  };
  Graph plain, unrolled;
  model(plain);
  model(unrolled);
  prepare(unrolled);
  ASSERT_EQ(unroll_scan(unrolled), 1u);
  EXPECT_EQ(count(unrolled, "Scan"), 0u);
  EXPECT_EQ(unrolled.tensor("y")->shape, (Shape{2, 5, 3}));
  const Feeds feeds{{"s", F({2, 3}, randf(6, 0.5f, 1.5f))}, {"x", F({2, 5, 3}, randf(30, 0.5f, 1.5f))}};
  expect_same(run_reference(unrolled, feeds), run_reference(plain, feeds));
}

// The ONNX node tests the CUDA conformance run needs: rewritten, op-free, and still the expected outputs.
TEST(ControlFlowRewrites, NodeTestsBecomeControlFlowFree) {
  namespace fs = std::filesystem;
  const fs::path root = "/usr/share/libonnx-testdata/data/node";
  if (!fs::exists(root)) GTEST_SKIP() << "no ONNX node tests at " << root;
  for (const auto& [name, op] : std::vector<std::pair<std::string, std::string>>{
           {"test_if", "If"}, {"test_scan_sum", "Scan"}, {"test_scan9_sum", "Scan"}}) {
    auto g = import_onnx((root / name / "model.onnx").string());
    prepare(*g);
    EXPECT_EQ(op == "If" ? inline_if(*g) : unroll_scan(*g), 1u) << name;
    EXPECT_EQ(count(*g, op), 0u) << name;
    const fs::path data = root / name / "test_data_set_0";
    Feeds feeds;
    for (size_t k = 0; k < g->inputs.size(); ++k)
      feeds[g->inputs[k]->name] = read_tensor_proto((data / ("input_" + std::to_string(k) + ".pb")).string());
    std::vector<TensorData> want;
    for (size_t k = 0; k < g->outputs.size(); ++k)
      want.push_back(read_tensor_proto((data / ("output_" + std::to_string(k) + ".pb")).string()));
    expect_same(run_reference(*g, feeds), want);
  }
}

// The CPU has reference kernels for If and Scan: the builder does not run the rewrites there.
TEST(ControlFlowRewrites, CpuBuildKeepsIfAndScan) {
  IfModel i;
  ScanModel s(13, 3);
  std::string if_ops, scan_ops;
  run_reference(i.g, {{"x", F({2, 3}, randf(6))}, {"cond", Bool(true)}}, &if_ops);
  run_reference(s.g, s.feeds(), &scan_ops);
  EXPECT_NE(if_ops.find("If"), std::string::npos) << if_ops;
  EXPECT_EQ(if_ops.find("Where"), std::string::npos) << if_ops;
  EXPECT_NE(scan_ops.find("Scan"), std::string::npos) << scan_ops;
  const std::vector<std::string> names = rewrite_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "inline_if"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "unroll_scan"), names.end());
}

// On a device with no kernel at all for If (here one with no kernels: its build stops at the first layer),
// the builder runs inline_if before choosing kernels.
TEST(ControlFlowRewrites, BuilderInlinesIfWhereTheDeviceHasNoIfKernel) {
  static const bool registered = register_device_backend(
      {.name = "test.no_kernels", .unavailable_reason = [] { return std::string(); }});
  ASSERT_TRUE(registered);
  IfModel m;
  BuildOptions o;
  o.device = "test.no_kernels";
  std::string log;
  o.log = [&](const std::string& line) { log += line + "\n"; };
  // The build then stops at the first layer no kernel takes: a Where, not the If.
  const std::string error = test::error_of([&] { Engine::build(m.g, o); });
  EXPECT_NE(error.find("Where"), std::string::npos) << error;
  EXPECT_EQ(error.find("(If)"), std::string::npos) << error;
  EXPECT_NE(log.find("inline_if: 1 rewritten"), std::string::npos) << log;
  log.clear();
  o.device = "cpu";
  Engine::build(m.g, o);
  EXPECT_EQ(log.find("inline_if"), std::string::npos) << log;
}

}  // namespace
}  // namespace kiln
