// Graph IR and surgery API: links, walks, cleanup, toposort, copy, extract, misuse errors.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/graph.h"

namespace kiln {
namespace {

// x -> Relu -> a -> Sigmoid -> b -> Add(b, c) -> y ; and a dead branch a -> Tanh -> dead
struct Chain {
  Graph g;
  Variable *x, *a, *b, *y, *dead;
  Constant* c;
  Node *relu, *sigmoid, *add, *tanh;
  Chain() {
    x = g.add_variable("x", DType::Float, Shape{1, 4});
    a = g.add_variable("a");
    b = g.add_variable("b");
    y = g.add_variable("y");
    dead = g.add_variable("dead");
    c = g.add_constant("c", TensorData::from_vector<float>(DType::Float, {4}, {1.5f, -2.f, 3.f, 0.25f}));
    relu = g.add_node("Relu", {x}, {a}, "relu");
    sigmoid = g.add_node("Sigmoid", {a}, {b}, "sigmoid");
    add = g.add_node("Add", {b, c}, {y}, "add");
    tanh = g.add_node("Tanh", {a}, {dead}, "tanh");
    g.inputs = {x};
    g.outputs = {y};
  }
};

TEST(Graph, ProducerConsumerLinksAndWalks) {
  Chain m;
  EXPECT_EQ(m.a->producer(), m.relu);
  ASSERT_EQ(m.a->consumers().size(), 2u);
  EXPECT_EQ(m.add->i(0), m.sigmoid);
  EXPECT_EQ(m.add->i(1), nullptr);  // a constant has no producer
  EXPECT_EQ(m.relu->o(0), m.sigmoid);
  EXPECT_EQ(m.relu->o(1), m.tanh);
  EXPECT_EQ(m.relu->o(2), nullptr);
  EXPECT_EQ(m.sigmoid->i()->i(), nullptr);  // walks stop at graph inputs

  m.add->set_input(0, m.a);  // rewire: links follow
  EXPECT_TRUE(m.b->uses().empty());
  EXPECT_EQ(m.add->i(0), m.relu);
}

TEST(Graph, SameTensorUsedTwiceCountsTwoUses) {
  Graph g;
  auto* x = g.add_variable("x", DType::Float);
  auto* y = g.add_variable("y");
  Node* n = g.add_node("Mul", {x, x}, {y});
  EXPECT_EQ(x->uses().size(), 2u);
  EXPECT_EQ(x->consumers().size(), 1u);
  n->set_input(1, nullptr);
  EXPECT_EQ(x->uses().size(), 1u);
}

TEST(Graph, CleanupRemovesDeadNodesAndTensors) {
  Chain m;
  EXPECT_EQ(m.g.cleanup(), 1u);
  EXPECT_EQ(m.g.num_nodes(), 3u);
  EXPECT_EQ(m.g.find_tensor("dead"), nullptr);
  EXPECT_NE(m.g.find_tensor("c"), nullptr);
  m.g.validate();
}

TEST(Graph, CleanupCanDropUnusedInputs) {
  Chain m;
  auto* unused = m.g.add_variable("unused", DType::Float);
  m.g.inputs.push_back(unused);
  m.g.cleanup();
  EXPECT_EQ(m.g.inputs.size(), 2u);
  m.g.cleanup(true);
  EXPECT_EQ(m.g.inputs.size(), 1u);
}

TEST(Graph, ToposortOrdersProducersFirstAndIsStable) {
  Graph g;
  auto* x = g.add_variable("x");
  auto* a = g.add_variable("a");
  auto* b = g.add_variable("b");
  auto* c = g.add_variable("c");
  g.add_node("Relu", {b}, {c}, "third");
  g.add_node("Relu", {a}, {b}, "second");
  g.add_node("Relu", {x}, {a}, "first");
  g.inputs = {x};
  g.outputs = {c};
  g.toposort();
  ASSERT_EQ(g.num_nodes(), 3u);
  EXPECT_EQ(g.nodes()[0]->name, "first");
  EXPECT_EQ(g.nodes()[1]->name, "second");
  EXPECT_EQ(g.nodes()[2]->name, "third");
}

TEST(Graph, ToposortReportsCycleWithNodeName) {
  Graph g;
  g.source = "cyclic.onnx";
  auto* a = g.add_variable("a");
  auto* b = g.add_variable("b");
  g.add_node("Relu", {a}, {b}, "n1");
  g.add_node("Relu", {b}, {a}, "n2");
  try {
    g.toposort();
    FAIL() << "expected a cycle error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("cyclic.onnx"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cycle"), std::string::npos) << msg;
    EXPECT_TRUE(msg.find("n1") != std::string::npos || msg.find("n2") != std::string::npos) << msg;
  }
}

TEST(Graph, CopyIsDeepAndIndependent) {
  Chain m;
  auto copy = m.g.copy();
  copy->validate();
  EXPECT_EQ(copy->num_nodes(), m.g.num_nodes());
  Node* relu = copy->find_node("relu");
  ASSERT_NE(relu, nullptr);
  EXPECT_NE(relu, m.relu);
  relu->op = "Elu";
  EXPECT_EQ(m.relu->op, "Relu");
  auto* c = dynamic_cast<Constant*>(copy->tensor("c"));
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->values().same_values(m.c->values()));
  EXPECT_EQ(copy->inputs[0]->name, "x");
  EXPECT_NE(copy->inputs[0], m.x);
}

TEST(Graph, ExtractBetweenTensors) {
  Chain m;
  auto sub = m.g.extract({"a"}, {"y"});
  EXPECT_EQ(sub->num_nodes(), 2u);  // Sigmoid and Add
  ASSERT_EQ(sub->inputs.size(), 1u);
  EXPECT_EQ(sub->inputs[0]->name, "a");
  EXPECT_EQ(sub->inputs[0]->producer(), nullptr);
  sub->validate();
  EXPECT_THROW(m.g.extract({"b"}, {"dead"}), Error);  // dead depends on a, which is not listed
}

TEST(Graph, BypassAndReplaceNodes) {
  Chain m;
  m.g.bypass(m.sigmoid);  // add now reads a directly
  EXPECT_EQ(m.add->i(0), m.relu);
  m.g.cleanup();
  EXPECT_EQ(m.g.num_nodes(), 2u);  // relu, add (tanh was dead)

  Chain n;
  Node* fused = n.g.replace_nodes({n.sigmoid, n.add}, "FusedSigmoidAdd", {n.a, n.c}, {n.y}, "fused");
  EXPECT_EQ(n.y->producer(), fused);
  EXPECT_EQ(fused->i(0), n.relu);
  n.g.validate();
}

TEST(Graph, InsertAfterReroutesConsumersAndOutputs) {
  Chain m;
  Node* clip = m.g.insert_after(m.a, "Clip", "clip");
  EXPECT_EQ(clip->i(0), m.relu);
  EXPECT_EQ(m.sigmoid->i(0), clip);
  EXPECT_EQ(m.tanh->i(0), clip);
  EXPECT_EQ(m.a->consumers(), std::vector<Node*>{clip});
  Node* last = m.g.insert_after(m.y, "Identity");
  EXPECT_EQ(m.g.outputs[0], last->output(0));
  EXPECT_NE(m.g.outputs[0]->name, "y");
  m.g.toposort();
  m.g.validate();
}

TEST(Graph, MisuseGivesClearErrors) {
  Graph g;
  auto* x = g.add_variable("x");
  auto* y = g.add_variable("y");
  EXPECT_THROW(g.add_variable("x"), Error);  // duplicate name
  g.add_node("Relu", {x}, {y}, "r1");
  try {
    g.add_node("Relu", {x}, {y}, "r2");  // second producer for y
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("r1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(g.num_nodes(), 1u);  // the failed add left nothing behind
  EXPECT_THROW(g.tensor("missing"), Error);

  Graph other;
  auto* foreign = other.add_variable("foreign");
  g.add_node("Relu", {foreign}, {g.add_variable("z")}, "bad");
  EXPECT_THROW(g.validate(), Error);  // reads a tensor of another graph
}

TEST(Graph, RenamedTensorsAreFoundByNewName) {
  Chain m;
  m.a->name = "renamed";
  EXPECT_EQ(m.g.find_tensor("renamed"), m.a);
  EXPECT_EQ(m.g.find_tensor("a"), nullptr);
  EXPECT_EQ(m.g.tensors().count("renamed"), 1u);
  m.b->name = "renamed";
  EXPECT_THROW(m.g.tensors(), Error);
}

TEST(Graph, UniqueNamesAndOpsets) {
  Graph g;
  g.add_variable("t");
  std::string n1 = g.unique_name("t");
  EXPECT_NE(n1, "t");
  g.add_variable(n1);
  EXPECT_NE(g.unique_name("t"), n1);
  g.set_opset("", 13);
  g.set_opset("com.example", 2);
  EXPECT_EQ(g.opset(), 13);
  EXPECT_EQ(g.opset("ai.onnx"), 13);
  EXPECT_EQ(g.opset("com.example"), 2);
  EXPECT_EQ(g.opset("other"), 0);
}

TEST(Graph, LazyConstantLoadsOnceAndChecksShape) {
  Graph g;
  auto* c = g.add_constant("w", TensorData::scalar_float(0));
  int loads = 0;
  c->set_loader(DType::Float, {2}, [&] {
    ++loads;
    return TensorData::from_vector<float>(DType::Float, {2}, {3.f, 4.f});
  });
  EXPECT_FALSE(c->loaded());
  EXPECT_EQ(to_string(*c->shape), "2");
  EXPECT_EQ(c->values().data<float>()[1], 4.f);
  c->values();
  EXPECT_EQ(loads, 1);

  auto* bad = g.add_constant("bad", TensorData::scalar_float(0));
  bad->set_loader(DType::Float, {3}, [] { return TensorData::from_vector<float>(DType::Float, {2}, {1, 2}); });
  EXPECT_THROW(bad->values(), Error);
}

TEST(Graph, SubgraphOuterReferencesKeepProducersAlive) {
  Graph g;
  auto* x = g.add_variable("x", DType::Float);
  auto* cond = g.add_variable("cond", DType::Bool);
  auto* outer = g.add_variable("outer");
  auto* y = g.add_variable("y");
  g.add_node("Relu", {x}, {outer}, "producer");
  auto body = std::make_shared<Graph>();
  auto* ref = body->add_variable("outer");  // read from the enclosing graph
  auto* out = body->add_variable("body_out");
  body->add_node("Neg", {ref}, {out});
  body->outputs = {out};
  Node* if_node = g.add_node("If", {cond}, {y}, "if");
  if_node->attrs.set("then_branch", GraphPtr(body));
  if_node->attrs.set("else_branch", GraphPtr(body->copy()));
  g.inputs = {x, cond};
  g.outputs = {y};
  EXPECT_EQ(body->outer_scope_names(), std::vector<std::string>{"outer"});
  // The If is listed first: toposort must still place the producer of "outer" before it.
  g.toposort();
  EXPECT_EQ(g.nodes()[0]->name, "producer");
  EXPECT_EQ(g.cleanup(), 0u);
  auto copy = g.copy();
  EXPECT_EQ(copy->num_nodes(), 2u);
}

TEST(TensorData, HalfAndBfloatConversionsRoundTrip) {
  for (float f : {0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.9604645e-08f, 0.1f, -1000.75f}) {
    float back = half_to_float(float_to_half(f));
    EXPECT_NEAR(back, f, std::abs(f) * 1e-3 + 1e-7) << f;
  }
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(3.0f)), 3.0f);
  EXPECT_NEAR(bfloat16_to_float(float_to_bfloat16(0.1f)), 0.1f, 1e-3);
}

TEST(TensorData, ValuesAndReshape) {
  auto t = TensorData::from_vector<int64_t>(DType::Int64, {2, 3}, {1, -2, 3, 4, 5, -6});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 48u);
  EXPECT_EQ(t.as_int64(5), -6);
  auto r = t.reshaped({3, 2});
  EXPECT_EQ(r.data<int64_t>(), t.data<int64_t>());  // shares the buffer
  auto c = t.clone();
  c.data<int64_t>()[0] = 42;
  EXPECT_EQ(t.data<int64_t>()[0], 1);
  EXPECT_FALSE(c.same_values(t));
  EXPECT_THROW(t.reshaped({4}), Error);
  EXPECT_THROW(TensorData(DType::Float, {-1}), Error);
}

}  // namespace
}  // namespace kiln
