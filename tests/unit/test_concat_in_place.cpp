// In-place Concat: when every input is an activation of its own and a contiguous block of the output (batch
// 1, channel axis), producers write straight into their slices and the Concat layer runs nothing. Checked
// against the same graph with the rewrite off, through a view of a concat input, nested concats, save/load,
// and the cases that must keep a copying Concat.
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "kiln/engine.h"
#include "test_util.h"

namespace kiln {
namespace {

TensorData random_tensor(std::vector<int64_t> dims, uint32_t seed) {
  test::rng().seed(seed);
  return test::F(dims, test::randf(TensorData(DType::Float, dims).numel()));
}

// x -> Relu a, Sigmoid b, Neg c; cat1 = Concat(a, b); cat2 = Concat(cat1, c); y = cat2 * 2; also outputs a
// (read from inside cat1's slice) and Flatten(b) (a view of a concat input). `batch` 2 makes slices strided.
std::unique_ptr<Graph> concat_graph(int64_t batch, bool concat_graph_input = false) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  Variable* x = g->add_variable("x", DType::Float, make_shape({batch, 3, 4, 5}));
  g->inputs = {x};
  auto v = [&](const std::string& n) { return g->add_variable(n); };
  g->add_node("Relu", {x}, {v("a")}, "relu");
  g->add_node("Sigmoid", {x}, {v("b")}, "sigmoid");
  g->add_node("Neg", {x}, {v("c")}, "neg");
  Node* c1 =
      g->add_node("Concat", {g->tensor("a"), concat_graph_input ? static_cast<Tensor*>(x) : g->tensor("b")},
                  {v("cat1")}, "cat1");
  c1->attrs.set("axis", int64_t{1});
  Node* c2 = g->add_node("Concat", {g->tensor("cat1"), g->tensor("c")}, {v("cat2")}, "cat2");
  c2->attrs.set("axis", int64_t{-3});
  g->add_node("Mul", {g->tensor("cat2"), g->add_constant("two", TensorData::scalar_float(2.f))}, {v("y")},
              "mul");
  g->add_node("Flatten", {g->tensor("b")}, {v("fb")}, "flatten");
  g->outputs = {g->tensor("y"), g->tensor("a"), g->tensor("fb")};
  return g;
}

std::string kernel_of(const Engine& e, const std::string& layer) {
  for (const LayerInfo& l : e.layers())
    if (l.name == layer) return l.kernel;
  return "";
}

size_t in_place_concats(const Engine& e) {
  size_t n = 0;
  for (const LayerInfo& l : e.layers()) n += l.op == "Concat" && l.kernel == "alias";
  return n;
}

void expect_same_outputs(const Engine& a, const Engine& b, const TensorData& x) {
  auto ca = a.create_context(), cb = b.create_context();
  ca->set_input("x", x);
  cb->set_input("x", x);
  ca->run();
  cb->run();
  for (const TensorInfo& o : a.outputs()) {
    const TensorData &p = ca->output(o.name), &q = cb->output(o.name);
    ASSERT_EQ(p.dims(), q.dims()) << o.name;
    for (int64_t i = 0; i < p.numel(); ++i)
      EXPECT_EQ(p.data<float>()[i], q.data<float>()[i]) << o.name << " " << i;
  }
}

TEST(ConcatInPlace, ProducersWriteIntoSlices) {
  auto g = concat_graph(1);
  auto fast = Engine::build(*g);
  BuildOptions off;
  off.skip_rewrites = {"concat_in_place"};
  auto copying = Engine::build(*g, off);
  // cat1's inputs are a Relu and a Sigmoid output; cat2's first input is cat1, itself in place: only cat1
  // goes in place (a nested in-place concat would need its producer to be a real layer).
  EXPECT_EQ(in_place_concats(*fast), 1u);
  EXPECT_EQ(in_place_concats(*copying), 0u);
  expect_same_outputs(*fast, *copying, random_tensor({1, 3, 4, 5}, 3));
  expect_same_outputs(*fast, *copying, random_tensor({1, 3, 4, 5}, 4));  // reused arena
}

TEST(ConcatInPlace, SaveLoadKeepsIt) {
  auto g = concat_graph(1);
  auto engine = Engine::build(*g);
  const std::string path = "/tmp/kiln_concat_" + std::to_string(::getpid()) + ".kiln";
  engine->save(path);
  auto loaded = Engine::load(path);
  std::remove(path.c_str());
  EXPECT_EQ(in_place_concats(*loaded), 1u);
  expect_same_outputs(*engine, *loaded, random_tensor({1, 3, 4, 5}, 7));
}

TEST(ConcatInPlace, StridedSlicesAndGraphInputsKeepTheCopy) {
  BuildOptions off;
  off.skip_rewrites = {"concat_in_place"};
  auto batched = concat_graph(2);
  auto engine = Engine::build(*batched);
  EXPECT_EQ(in_place_concats(*engine), 0u);  // batch 2: an input is not one block of the output
  expect_same_outputs(*engine, *Engine::build(*batched, off), random_tensor({2, 3, 4, 5}, 9));
  auto with_input = concat_graph(1, true);
  auto e2 = Engine::build(*with_input);
  EXPECT_NE(kernel_of(*e2, "cat1"),
            "alias");  // x is a graph input: copied in by the runtime, not produced here
  EXPECT_EQ(kernel_of(*e2, "cat2"), "alias");  // cat1 is now a real layer, so cat2 can take it in place
  expect_same_outputs(*e2, *Engine::build(*with_input, off), random_tensor({1, 3, 4, 5}, 11));
}

}  // namespace
}  // namespace kiln
