// Regressions found by the libFuzzer targets (tests/fuzz, docs/fuzzing.md): each input that once crashed or
// escaped with a non-kiln exception, reduced to the graph that triggers it, must now give a one-line kiln::Error.
#include <gtest/gtest.h>

#include <string>

#include "kiln/error.h"
#include "kiln/graph.h"
#include "kiln/passes.h"

namespace kiln {
namespace {

std::string infer_error(Graph& g) {
  try {
    infer_shapes(g);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// An op whose output rank comes from the declared length of a shape operand with unknown values: a length of 2^40
// (found by fuzz_onnx_import through Reshape) used to allocate 2^40 dims (std::bad_alloc / ASan
// allocation-size-too-big).
Graph& graph_with_huge_shape_operand(Graph& g, const std::string& op, int64_t length) {
  g.set_opset("", 18);
  auto* x = g.add_variable("x", DType::Float, Shape{2, 3});
  auto* shape = g.add_variable("shape", DType::Int64, Shape{length});
  auto* y = g.add_variable("y");
  if (op == "ConstantOfShape")
    g.add_node(op, {shape}, {y}, "the_" + op);
  else
    g.add_node(op, {x, shape}, {y}, "the_" + op);
  g.inputs = {x, shape};
  g.outputs = {y};
  return g;
}

TEST(FuzzRegressions, ShapeOperandWithHugeDeclaredLength) {
  for (const std::string op : {"Reshape", "Expand", "ConstantOfShape"}) {
    Graph g;
    const std::string e = infer_error(graph_with_huge_shape_operand(g, op, int64_t{1} << 40));
    EXPECT_NE(e.find("the_" + op), std::string::npos) << e;
    EXPECT_NE(e.find("1099511627776 entries"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

TEST(FuzzRegressions, ShapeOperandOfOrdinaryLengthStillInfersRank) {
  for (const std::string op : {"Reshape", "Expand", "ConstantOfShape"}) {
    Graph g;
    graph_with_huge_shape_operand(g, op, 4);
    infer_shapes(g);
    ASSERT_TRUE(g.outputs[0]->shape) << op;
    EXPECT_EQ(g.outputs[0]->shape->size(), 4u) << op;
  }
}

// Reshape to a constant shape whose product overflows int64 (found by fuzz_onnx_import: UBSan signed overflow in
// infer_reshape), and Flatten of a declared input whose dims overflow (refused before Flatten sees it, by the
// graph's input check; Flatten's own product is checked too).
TEST(FuzzRegressions, ReshapeTargetWhoseSizeOverflows) {
  for (bool with_minus_one : {false, true}) {
    Graph g;
    g.set_opset("", 18);
    auto* x = g.add_variable("x", DType::Float, Shape{381, 2});
    const int64_t big = int64_t{1} << 57;
    auto* shape = g.add_constant("shape", TensorData::vector_int64({with_minus_one ? -1 : 381, big, 64}));
    auto* y = g.add_variable("y");
    g.add_node("Reshape", {x, shape}, {y}, "the_reshape");
    g.inputs = {x};
    g.outputs = {y};
    const std::string e = infer_error(g);
    EXPECT_NE(e.find("the_reshape"), std::string::npos) << e;
    EXPECT_NE(e.find("cannot reshape"), std::string::npos) << e;
  }
}

TEST(FuzzRegressions, FlattenOfDimsWhoseProductOverflows) {
  Graph g;
  g.set_opset("", 18);
  const int64_t big = int64_t{1} << 40;
  auto* x = g.add_variable("x", DType::Float, Shape{big, big, 2});
  auto* y = g.add_variable("y");
  g.add_node("Flatten", {x}, {y}, "the_flatten")->attrs.set("axis", int64_t{2});
  g.inputs = {x};
  g.outputs = {y};
  const std::string e = infer_error(g);
  EXPECT_NE(e.find("overflows"), std::string::npos) << e;
}

}  // namespace
}  // namespace kiln
