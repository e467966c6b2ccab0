// infer_shapes / fold_constants on graphs shaped like what PyTorch's exporter emits.
#include <gtest/gtest.h>

#include "kiln/engine.h"
#include "kiln/passes.h"

namespace kiln {
namespace {

Constant* ints(Graph& g, const std::string& name, std::vector<int64_t> v, bool scalar = false) {
  if (scalar) return g.add_constant(name, TensorData::scalar_int64(v.at(0)));
  return g.add_constant(name, TensorData::vector_int64(v));
}

// x[N?,C,H,W] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [16, -1])) -> y
// The target shape is computed from x's shape at run time: only value propagation resolves it.
struct ShapeChain {
  Graph g;
  Variable* x;
  Variable* y;
  explicit ShapeChain(Shape xshape) {
    g.set_opset("", 11);
    x = g.add_variable("x", DType::Float, xshape);
    auto* shape = g.add_variable("shape");
    auto* n = g.add_variable("n");
    auto* n1 = g.add_variable("n1");
    auto* target = g.add_variable("target");
    y = g.add_variable("y");
    g.add_node("Shape", {x}, {shape}, "shape");
    g.add_node("Gather", {shape, ints(g, "zero", {0}, true)}, {n}, "gather")->attrs.set("axis", int64_t{0});
    g.add_node("Unsqueeze", {n}, {n1}, "unsqueeze")->attrs.set("axes", std::vector<int64_t>{0});
    g.add_node("Concat", {n1, ints(g, "rest", {16, -1})}, {target}, "concat")->attrs.set("axis", int64_t{0});
    g.add_node("Reshape", {x, target}, {y}, "reshape");
    g.inputs = {x};
    g.outputs = {y};
  }
};

TEST(Passes, InferShapesResolvesShapeArithmetic) {
  ShapeChain m(Shape{2, 32, 4, 5});
  PropagateReport r = infer_shapes(m.g);
  EXPECT_EQ(m.g.num_nodes(), 5u);  // inference does not change structure
  ASSERT_TRUE(m.y->has_static_shape());
  EXPECT_EQ(to_string(*m.y->shape), "2x16x40");
  EXPECT_EQ(m.g.tensor("target")->dtype, DType::Int64);
  EXPECT_EQ(r.unknown_shapes, 0u);
  EXPECT_GE(r.values_computed, 4u);
}

TEST(Passes, FoldConstantsReplacesShapeChainByInt64Constant) {
  ShapeChain m(Shape{3, 16, 2, 7});
  PropagateReport r = fold_constants(m.g);
  EXPECT_EQ(r.folded_nodes, 4u);
  ASSERT_EQ(m.g.num_nodes(), 1u);
  const Node* reshape = m.g.nodes()[0].get();
  EXPECT_EQ(reshape->op, "Reshape");
  auto* target = dynamic_cast<Constant*>(reshape->input(1));
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(target->name, "target");  // folded tensors keep their names
  EXPECT_EQ(target->dtype, DType::Int64);
  EXPECT_EQ(target->values().to_int64_vector(), (std::vector<int64_t>{3, 16, -1}));
  m.g.validate();
}

// A stale declared shape on an intermediate tensor (exporters leave value_info at batch 1 when the batch is
// made dynamic) gives way to the computed shape and is reported; on a graph output it is an error.
TEST(Passes, ContradictedValueInfoOfIntermediatesIsOverriddenNotOfOutputs) {
  auto make = [](Shape declared_r, Shape declared_y) {
    auto g = std::make_unique<Graph>();
    g->set_opset("", 13);
    auto* x = g->add_variable("x", DType::Float, Shape{4, 3});
    auto* r = g->add_variable("r", DType::Float, declared_r);
    g->add_node("Relu", {x}, {r}, "relu");
    g->add_node("Neg", {r}, {g->add_variable("y", DType::Float, declared_y)}, "neg");
    g->inputs = {x};
    g->outputs = {g->tensor("y")};
    return g;
  };
  auto g = make(Shape{1, 3}, Shape{});
  g->tensor("y")->shape.reset();
  PropagateReport r = infer_shapes(*g);
  ASSERT_EQ(r.overridden_value_info.size(), 1u);
  EXPECT_EQ(r.overridden_value_info[0], "node 'relu' (Relu): output 'r' is declared 1x3 but computes 4x3");
  EXPECT_EQ(*g->tensor("r")->shape, (Shape{4, 3}));
  EXPECT_EQ(*g->tensor("y")->shape, (Shape{4, 3}));
  auto bad = make(Shape{4, 3}, Shape{1, 3});
  try {
    infer_shapes(*bad);
    FAIL() << "a contradicted graph output must be an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "node 'neg' (Neg): output 'y' is declared 1x3 but computes 4x3");
  }
}

TEST(Passes, SymbolicBatchIsNotFoldedButPropagates) {
  ShapeChain m(Shape{Dim::symbolic("N"), 32, 4, 5});
  PropagateReport r = fold_constants(m.g);
  EXPECT_EQ(r.folded_nodes, 0u);  // Shape(x) is not known with a symbolic batch
  EXPECT_EQ(m.g.num_nodes(), 5u);
}

// PyTorch's Pad chain: pads come from Constant/ConstantOfShape → Concat → Reshape[-1,2] → Slice(step -1)
// → Transpose → Reshape[-1] → Cast → Pad. It must fold to [0,0,p,p,0,0,p,p].
TEST(Passes, FoldsPyTorchPadChain) {
  Graph g;
  g.set_opset("", 11);
  auto* x = g.add_variable("x", DType::Float, Shape{1, 3, 8, 9});
  auto v = [&](const char* n) { return g.add_variable(n); };
  const int64_t p = 2;
  Node* cos = g.add_node("ConstantOfShape", {ints(g, "cos_shape", {4})}, {v("zeros")}, "cos");
  cos->attrs.set("value", TensorData::from_vector<int64_t>(DType::Int64, {1}, {0}));
  g.add_node("Concat", {ints(g, "pp", {p, p, p, p}), g.tensor("zeros")}, {v("cat")}, "cat")
      ->attrs.set("axis", int64_t{0});
  g.add_node("Reshape", {g.tensor("cat"), ints(g, "m12", {-1, 2})}, {v("pairs")}, "pairs");
  g.add_node("Slice",
             {g.tensor("pairs"), ints(g, "st", {-1}), ints(g, "en", {INT64_MIN}), ints(g, "ax", {0}),
              ints(g, "sp", {-1})},
             {v("rev")}, "slice");
  g.add_node("Transpose", {g.tensor("rev")}, {v("tr")}, "transpose")
      ->attrs.set("perm", std::vector<int64_t>{1, 0});
  g.add_node("Reshape", {g.tensor("tr"), ints(g, "m1", {-1})}, {v("flat")}, "flat");
  g.add_node("Cast", {g.tensor("flat")}, {v("pads")}, "cast")->attrs.set("to", int64_t{7});
  Node* pad = g.add_node("Pad", {x, g.tensor("pads")}, {v("y")}, "pad");
  pad->attrs.set("mode", std::string("constant"));
  g.inputs = {x};
  g.outputs = {g.tensor("y")};

  PropagateReport r = fold_constants(g);
  EXPECT_EQ(r.folded_nodes, 7u);
  ASSERT_EQ(g.num_nodes(), 1u);
  auto* pads = dynamic_cast<Constant*>(g.nodes()[0]->input(1));
  ASSERT_NE(pads, nullptr);
  EXPECT_EQ(pads->dtype, DType::Int64);
  EXPECT_EQ(pads->values().to_int64_vector(), (std::vector<int64_t>{0, 0, p, p, 0, 0, p, p}));
  EXPECT_EQ(to_string(*g.tensor("y")->shape), "1x3x12x13");
  EXPECT_EQ(r.unknown_shapes, 0u);
}

TEST(Passes, FoldKeepsDtypesExactly) {
  Graph g;
  g.set_opset("", 13);
  auto* a = ints(g, "a", {7, -3, 1000000000000});
  auto* b = ints(g, "b", {2, 2, 3});
  auto* q = g.add_variable("q");
  g.add_node("Div", {a, b}, {q}, "div");
  g.outputs = {q};
  fold_constants(g);
  auto* c = dynamic_cast<Constant*>(g.outputs[0]);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->name, "q");
  EXPECT_EQ(c->dtype, DType::Int64);  // never through float
  // Integer division truncates toward zero (numpy/ONNX Runtime semantics for int64 Div).
  EXPECT_EQ(c->values().to_int64_vector(), (std::vector<int64_t>{3, -1, 333333333333}));
}

TEST(Passes, FoldCapLeavesLargeTensorsAndSaysWhy) {
  Graph g;
  g.set_opset("", 13);
  auto* big = g.add_variable("big");
  Node* n = g.add_node("ConstantOfShape", {ints(g, "shape", {1024, 1024})}, {big}, "make_big");
  n->attrs.set("value", TensorData::from_vector<float>(DType::Float, {1}, {1.5f}));
  g.outputs = {big};
  PropagateOptions o;
  o.max_folded_bytes = 1 << 20;  // 4 MiB tensor does not fit
  PropagateReport r = fold_constants(g, o);
  EXPECT_EQ(r.folded_nodes, 0u);
  ASSERT_EQ(r.not_folded.size(), 1u);
  EXPECT_NE(r.not_folded[0].node.find("make_big"), std::string::npos);
  EXPECT_NE(r.not_folded[0].reason.find("cap"), std::string::npos);
  EXPECT_EQ(to_string(*big->shape), "1024x1024");  // shape still inferred
}

// fp16 builds: an op whose float output type is an attribute (ConstantOfShape here, left unfolded by the fold
// cap; with and without an explicit value) is lowered with the graph, so the Add that reads it sees fp16 on
// both sides (a YOLOv8 head failed with "input dtypes differ: float32 vs float16"), and the result matches.
TEST(Passes, LowerPrecisionLowersAttributeTypedFloatOutputs) {
  for (bool explicit_value : {true, false}) {
    Graph g;
    g.set_opset("", 13);
    auto* x = g.add_variable("x", DType::Float, Shape{64, 64});
    auto* fill = g.add_variable("fill");
    auto* y = g.add_variable("y");
    Node* n = g.add_node("ConstantOfShape", {ints(g, "shape", {64, 64})}, {fill}, "fill");
    if (explicit_value) n->attrs.set("value", TensorData::from_vector<float>(DType::Float, {1}, {1.5f}));
    g.add_node("Add", {x, fill}, {y}, "add");
    g.inputs = {x};
    g.outputs = {y};
    BuildOptions o;
    o.precision = DType::Float16;
    o.fold.max_folded_bytes = 1024;  // keeps the 16 KB fill a layer
    auto engine = Engine::build(g, o);
    auto ctx = engine->create_context();
    std::vector<float> xs(64 * 64);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = 0.25f * static_cast<float>(i % 17) - 2.f;  // exact in fp16
    ctx->set_input("x", TensorData::from_vector<float>(DType::Float, {64, 64}, xs));
    ctx->run();
    const TensorData out = ctx->output("y");
    ASSERT_EQ(out.dtype(), DType::Float);
    for (size_t i = 0; i < xs.size(); ++i)
      ASSERT_EQ(out.as_double(static_cast<int64_t>(i)), xs[i] + (explicit_value ? 1.5 : 0.0)) << i;
  }
}

// A value over the cap that only feeds weight operands (Gemm's B here) is folded up to 16x the cap: kernels
// prepack weights at build time, and at run time it would take the same bytes anyway. Fed to an activation
// input as well, it keeps the normal cap.
TEST(Passes, FoldCapIsWiderForValuesUsedOnlyAsWeights) {
  for (bool also_activation : {false, true}) {
    Graph g;
    g.set_opset("", 13);
    auto* x = g.add_variable("x", DType::Float, Shape{2, 1024});
    auto* w = g.add_variable("w");
    Node* n = g.add_node("ConstantOfShape", {ints(g, "shape", {1024, 1024})}, {w}, "make_w");
    n->attrs.set("value", TensorData::from_vector<float>(DType::Float, {1}, {0.5f}));
    auto* y = g.add_variable("y");
    g.add_node("Gemm", {x, w}, {y}, "fc");
    g.inputs = {x};
    g.outputs = {y};
    if (also_activation) {
      auto* z = g.add_variable("z");
      g.add_node("Relu", {w}, {z}, "act");
      g.outputs.push_back(z);
    }
    PropagateOptions o;
    o.max_folded_bytes = 1 << 20;  // the 4 MiB weight is over the cap, under 16x the cap
    PropagateReport r = fold_constants(g, o);
    EXPECT_EQ(r.folded_nodes, also_activation ? 0u : 1u);
    auto* c = dynamic_cast<Constant*>(g.find_tensor("w"));
    EXPECT_EQ(c != nullptr, !also_activation);
    if (c) EXPECT_EQ(c->values().numel(), 1024 * 1024);
  }
}

TEST(Passes, UnknownOpIsAnErrorNamingFileAndNode) {
  Graph g;
  g.source = "custom.onnx";
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{2});
  auto* y = g.add_variable("y");
  g.add_node("FancyOp", {x}, {y}, "fancy", "com.example");
  g.inputs = {x};
  g.outputs = {y};
  try {
    fold_constants(g);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("custom.onnx"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fancy"), std::string::npos) << msg;
    EXPECT_NE(msg.find("FancyOp"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  PropagateOptions lenient;
  lenient.allow_unknown_ops = true;
  PropagateReport r = fold_constants(g, lenient);
  ASSERT_EQ(r.unknown_ops.size(), 1u);
  EXPECT_EQ(r.unknown_shapes, 1u);  // y
}

TEST(Passes, ContradictingDeclaredShapeIsAnError) {
  Graph g;
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{2, 3});
  auto* y = g.add_variable("y", DType::Float, Shape{3, 2});
  g.add_node("Relu", {x}, {y}, "relu");
  g.inputs = {x};
  g.outputs = {y};
  EXPECT_THROW(infer_shapes(g), Error);
}

}  // namespace
}  // namespace kiln
