// String tensors: Cast to/from string, StringNormalizer and TfIdfVectorizer reference kernels (expected
// values derived by hand), and a string graph run by the engine (the per-run executor).
#include <gtest/gtest.h>

#include "kiln/engine.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::error_of;
using test::F;
using test::I64;

TensorData S(std::vector<int64_t> dims, const std::vector<std::string>& v) {
  TensorData t(DType::String, std::move(dims));
  t.strings() = v;
  return t;
}

TensorData run(const std::string& op, const TensorData& x, Attributes attrs) {
  Graph g;
  Node* n = g.add_node(op, {g.add_variable("x")}, {g.add_variable("y")});
  n->attrs = std::move(attrs);
  ops::KernelContext ctx(*n, 18);
  ctx.in = {&x};
  ops::run_reference(*ops::find_op("", op), ctx);
  return ctx.out[0];
}

TEST(StringOps, CastPrintsShortestRoundTripAndParses) {
  Attributes to_string, to_float;
  to_string.set("to", int64_t{8});
  to_float.set("to", int64_t{1});
  const TensorData x = F({4}, {0.1f, -2.5f, 1e-7f, 3.0f});
  EXPECT_EQ(run("Cast", x, to_string).strings(), (std::vector<std::string>{"0.1", "-2.5", "1e-07", "3"}));
  const TensorData s = S({4}, {"0.25", "-INF", "NaN", "1e3"});
  const TensorData y = run("Cast", s, to_float);
  EXPECT_EQ(y.data<float>()[0], 0.25f);
  EXPECT_TRUE(std::isinf(y.data<float>()[1]) && y.data<float>()[1] < 0);
  EXPECT_TRUE(std::isnan(y.data<float>()[2]));
  EXPECT_EQ(y.data<float>()[3], 1000.0f);
  EXPECT_NE(error_of([&] { run("Cast", S({1}, {"1.5x"}), to_float); }).find("cannot read string \"1.5x\""),
            std::string::npos);
}

TEST(StringOps, StringNormalizerDropsStopwordsIgnoringCase) {
  Attributes a;
  a.set("case_change_action", std::string("LOWER"));
  a.set("stopwords", std::vector<std::string>{"The"});
  const TensorData y = run("StringNormalizer", S({1, 4}, {"the", "Quick", "THE", "Fox"}), a);
  EXPECT_EQ(y.dims(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(y.strings(), (std::vector<std::string>{"quick", "fox"}));
  const TensorData none = run("StringNormalizer", S({2}, {"the", "THE"}), a);
  EXPECT_EQ(none.strings(), (std::vector<std::string>{""}));  // all dropped: one empty string
}

TEST(StringOps, TfIdfCountsSkipGrams) {
  // Pool: unigram "a" -> 0, bigram (a, b) -> 1. Row a b a x b: "a" twice; (a, b) once at skip 0 (tokens 0, 1),
  // once at skip 1 (2, 4; not 0, 2 = a a nor 1, 3 = b x), none at skip 2 (0, 3 = a x; 1, 4 = b b): twice.
  Attributes a;
  a.set("min_gram_length", int64_t{1});
  a.set("max_gram_length", int64_t{2});
  a.set("max_skip_count", int64_t{2});
  a.set("mode", std::string("TFIDF"));
  a.set("ngram_counts", std::vector<int64_t>{0, 1});
  a.set("ngram_indexes", std::vector<int64_t>{0, 1});
  a.set("pool_strings", std::vector<std::string>{"a", "a", "b"});
  a.set("weights", std::vector<float>{0.5f, 3.0f});
  const TensorData y = run("TfIdfVectorizer", S({5}, {"a", "b", "a", "x", "b"}), a);
  EXPECT_TRUE(y.same_values(F({2}, {2 * 0.5f, 2 * 3.0f})));
}

TEST(StringOps, StringGraphRunsInTheEngine) {
  Graph g;
  g.set_opset("", 18);
  Tensor* x = g.add_variable("x", DType::String, Shape{3});
  Tensor *n = g.add_variable("n"), *y = g.add_variable("y");
  Node* norm = g.add_node("StringNormalizer", {x}, {n});
  norm->attrs.set("case_change_action", std::string("UPPER"));
  g.add_node("Cast", {n}, {y})->attrs.set("to", int64_t{7});
  g.inputs = {x};
  g.outputs = {y};
  auto engine = Engine::build(g, BuildOptions{});
  auto ctx = engine->create_context();
  ctx->set_input("x", S({3}, {"12", "-7", "40"}));
  ctx->run();
  EXPECT_TRUE(ctx->output("y").same_values(I64({3}, {12, -7, 40})));
}

}  // namespace
}  // namespace kiln
