// Sequences and optionals: the TensorData container values, the sequence/optional reference kernels (expected
// values by hand-written slicing), the ONNX round trip of sequence_type/optional_type, and an engine whose
// input and output are sequences (the per-run executor).
#include <gtest/gtest.h>

#include "kiln/engine.h"
#include "kiln/onnx.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::error_of;
using test::F;
using test::I64;
using test::randf;

// Runs a one-node graph's reference kernel on `inputs` (nullptr: omitted).
std::vector<TensorData> run(const std::string& op, const std::vector<const TensorData*>& inputs,
                            size_t n_out = 1, Attributes attrs = {}) {
  Graph g;
  std::vector<Tensor*> ins, outs;
  for (size_t k = 0; k < inputs.size(); ++k)
    ins.push_back(inputs[k] ? g.add_variable("in" + std::to_string(k)) : nullptr);
  for (size_t k = 0; k < n_out; ++k) outs.push_back(g.add_variable("out" + std::to_string(k)));
  Node* n = g.add_node(op, ins, outs);
  n->attrs = std::move(attrs);
  ops::KernelContext ctx(*n, 18);
  ctx.in = inputs;
  ops::run_reference(*ops::find_op("", op), ctx);
  return ctx.out;
}

TEST(SequenceValue, HoldsTensorsOfOneDtypeAndComparesElementwise) {
  const TensorData a = F({2}, randf(2)), b = F({3}, randf(3));
  const TensorData s = TensorData::sequence(DType::Float, {a, b});
  EXPECT_EQ(s.dtype(), DType::Sequence);
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.nbytes(), 0u);
  ASSERT_EQ(s.elements().size(), 2u);
  EXPECT_TRUE(s.elements()[1].same_values(b));
  const TensorData c = s.clone();
  EXPECT_TRUE(c.same_values(s));
  EXPECT_NE(c.elements()[0].raw(), a.raw());  // deep copy
  EXPECT_FALSE(s.same_values(TensorData::sequence(DType::Float, {a})));
  EXPECT_FALSE(TensorData::sequence(DType::Float, {}).same_values(TensorData::sequence(DType::Int64, {})));
  EXPECT_NE(error_of([&] {
              TensorData::sequence(DType::Float, {a, I64({1})});
            }).find("cannot hold a int64"),
            std::string::npos);
  EXPECT_NE(error_of([] { TensorData(DType::Sequence, {}); }).find("TensorData::sequence"),
            std::string::npos);
  EXPECT_NE(error_of([&] { a.elements(); }).find("holds no elements"), std::string::npos);
  EXPECT_NE(error_of([&] { s.reshaped({1}); }).find("no shape"), std::string::npos);
}

TEST(SequenceValue, OptionalHoldsZeroOrOneValue) {
  const TensorData seq = TensorData::sequence(DType::Float, {F({1}, {2.5f})});
  const TensorData some = TensorData::optional(DType::Sequence, seq),
                   none = TensorData::optional(DType::Sequence, {});
  EXPECT_EQ(some.elements().size(), 1u);
  EXPECT_TRUE(none.elements().empty());
  EXPECT_FALSE(some.same_values(none));
  EXPECT_NE(error_of([&] { TensorData::optional(DType::Optional, some); }).find("cannot hold"),
            std::string::npos);
  EXPECT_EQ(run("OptionalHasElement", {&some})[0].as_int64(0), 1);
  EXPECT_EQ(run("OptionalHasElement", {&none})[0].as_int64(0), 0);
  EXPECT_EQ(run("OptionalHasElement", {nullptr})[0].as_int64(0), 0);
  EXPECT_TRUE(run("OptionalGetElement", {&some})[0].same_values(seq));
  EXPECT_NE(error_of([&] { run("OptionalGetElement", {&none}); }).find("empty"), std::string::npos);
}

TEST(SequenceOps, InsertAtEraseLengthWithNegativePositions) {
  const TensorData a = F({2}, randf(2)), b = F({2}, randf(2)), c = F({1}, randf(1));
  const TensorData s = run("SequenceConstruct", {&a, &b})[0];
  const TensorData pos = I64({}, {-1});
  const TensorData ins = run("SequenceInsert", {&s, &c, &pos})[0];  // before the last: a, c, b
  ASSERT_EQ(ins.elements().size(), 3u);
  EXPECT_TRUE(ins.elements()[1].same_values(c));
  EXPECT_TRUE(ins.elements()[2].same_values(b));
  const TensorData first = I64({}, {-3});
  EXPECT_TRUE(run("SequenceAt", {&ins, &first})[0].same_values(a));
  const TensorData erased = run("SequenceErase", {&ins, &first})[0];
  EXPECT_EQ(run("SequenceLength", {&erased})[0].as_int64(0), 2);
  EXPECT_TRUE(erased.elements()[0].same_values(c));
  const TensorData beyond = I64({}, {3});
  EXPECT_NE(error_of([&] {
              run("SequenceAt", {&ins, &beyond});
            }).find("position 3 is out of range"),
            std::string::npos);
  const TensorData ints = I64({1});
  EXPECT_NE(error_of([&] {
              run("SequenceInsert", {&s, &ints});
            }).find("int64 tensor in a sequence of float32"),
            std::string::npos);
  const TensorData empty = run("SequenceEmpty", {}, 1)[0];
  EXPECT_NE(error_of([&] { run("SequenceErase", {&empty}); }).find("empty sequence"), std::string::npos);
}

TEST(SequenceOps, SplitToSequenceAndConcatFromSequence) {
  // x is 2x5; split along axis 1 into chunks of 2 (the last has 1 column).
  const std::vector<float> v = randf(10);
  const TensorData x = F({2, 5}, v), two = I64({}, {2});
  Attributes axis1;
  axis1.set("axis", int64_t{1});
  const TensorData s = run("SplitToSequence", {&x, &two}, 1, axis1)[0];
  ASSERT_EQ(s.elements().size(), 3u);
  EXPECT_TRUE(s.elements()[1].same_values(F({2, 2}, {v[2], v[3], v[7], v[8]})));
  EXPECT_TRUE(s.elements()[2].same_values(F({2, 1}, {v[4], v[9]})));
  // Joined back along axis 1: x again.
  EXPECT_TRUE(run("ConcatFromSequence", {&s}, 1, axis1)[0].same_values(x));
  // No split and keepdims=0: the rows of x, stacked again along a new axis 0.
  Attributes drop;
  drop.set("keepdims", int64_t{0});
  const TensorData rows = run("SplitToSequence", {&x, nullptr}, 1, drop)[0];
  ASSERT_EQ(rows.elements().size(), 2u);
  EXPECT_TRUE(rows.elements()[1].same_values(F({5}, {v[5], v[6], v[7], v[8], v[9]})));
  Attributes stack;
  stack.set("new_axis", int64_t{1});
  EXPECT_TRUE(run("ConcatFromSequence", {&rows}, 1, stack)[0].same_values(x));
  const TensorData bad = I64({2}, {3, 1});
  EXPECT_NE(error_of([&] {
              run("SplitToSequence", {&x, &bad}, 1, axis1);
            }).find("do not add up"),
            std::string::npos);
}

// A graph input and output typed sequence(tensor(float, [N])) keep their element type through export and
// import.
TEST(SequenceImport, SequenceAndOptionalTypesRoundTrip) {
  Graph g;
  g.set_opset("", 18);
  Tensor* in = g.add_variable("s", DType::Sequence, Shape{});
  auto e = std::make_shared<ElementType>();
  e->dtype = DType::Float;
  e->shape = Shape{Dim::symbolic("N")};
  in->element = e;
  Tensor* opt = g.add_variable("o");
  g.add_node("Optional", {in}, {opt});
  g.inputs = {in};
  g.outputs = {opt};
  infer_shapes(g);
  ASSERT_EQ(opt->dtype, DType::Optional);
  auto back = import_onnx_bytes(export_onnx_bytes(g));
  const Tensor* o = back->outputs[0];
  ASSERT_EQ(o->dtype, DType::Optional);
  ASSERT_TRUE(o->element);
  ASSERT_EQ(o->element->dtype, DType::Sequence);
  ASSERT_TRUE(o->element->element);
  EXPECT_EQ(o->element->element->dtype, DType::Float);
  EXPECT_EQ(to_string(*o->element->element->shape), "N");
}

// Engine: sequence in, (SequenceInsert of a computed tensor, SequenceAt) out, through the per-run executor.
TEST(SequenceEngine, SequenceInputAndOutputRunPerRun) {
  Graph g;
  g.set_opset("", 18);
  Tensor* s = g.add_variable("s", DType::Sequence, Shape{});
  Tensor* x = g.add_variable("x", DType::Float, Shape{3});
  Tensor *y = g.add_variable("y"), *grown = g.add_variable("grown"), *at = g.add_variable("at");
  Tensor* zero = g.add_constant("zero", I64({}, {0}));
  g.add_node("Neg", {x}, {y});
  g.add_node("SequenceInsert", {s, y, zero}, {grown});
  g.add_node("SequenceAt", {grown, zero}, {at});
  g.inputs = {s, x};
  g.outputs = {grown, at};
  BuildOptions opts;
  opts.threads = 1;
  auto engine = Engine::build(g, opts);
  auto ctx = engine->create_context();
  const std::vector<float> xv = randf(3), av = randf(2);
  ctx->set_input("s", TensorData::sequence(DType::Float, {F({2}, av)}));
  ctx->set_input("x", F({3}, xv));
  ctx->run();
  const TensorData& out = ctx->output("grown");
  ASSERT_EQ(out.dtype(), DType::Sequence);
  ASSERT_EQ(out.elements().size(), 2u);
  const TensorData neg = F({3}, {-xv[0], -xv[1], -xv[2]});
  EXPECT_TRUE(out.elements()[0].same_values(neg));
  EXPECT_TRUE(out.elements()[1].same_values(F({2}, av)));
  EXPECT_TRUE(ctx->output("at").same_values(neg));
  EXPECT_NE(error_of([&] { ctx->set_input("s", F({2}, av)); }).find("must be sequence"), std::string::npos);
}

}  // namespace
}  // namespace kiln
