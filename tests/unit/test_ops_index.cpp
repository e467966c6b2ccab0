// Indexing and data-dependent ops (NonZero, Unique, Compress, GatherElements, ScatterElements, GatherND,
// ScatterND, TopK, Einsum, CumSum, OneHot): reference kernels run directly against expectations derived by
// hand or computed here by independent loops, plus inference with unknown values and the index error
// messages.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "ops/op.h"
#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

// Runs the reference kernel of a OneNode without comparing against inference (data-dependent outputs).
std::vector<TensorData> reference(OneNode& n) {
  ops::KernelContext ctx(*n.node, n.opset);
  for (Tensor* t : n.node->inputs()) ctx.in.push_back(t ? &static_cast<Constant*>(t)->values() : nullptr);
  ctx.out.resize(n.node->outputs().size());
  ops::run_reference(*ops::find_op("", n.node->op), ctx);
  return ctx.out;
}

// Output shapes inferred when no input value is known (as for graph inputs), as strings.
std::vector<std::string> infer_without_values(OneNode& n) {
  ops::InferContext ctx(*n.node, n.opset);
  for (Tensor* t : n.node->inputs()) ctx.in.push_back({t->dtype, t->shape, nullptr, true});
  ctx.out.resize(n.node->outputs().size());
  ops::infer_node(*ops::find_op("", n.node->op), ctx);
  std::vector<std::string> s;
  for (const auto& o : ctx.out) s.push_back(o.shape ? to_string(*o.shape) : "unknown");
  return s;
}

std::vector<int64_t> ints(const TensorData& t) {
  return t.to_int64_vector();
}

// Random non-zero floats with about a third of them set to zero.
std::vector<float> sparse_floats(int64_t n) {
  std::vector<float> v = randf(n);
  for (size_t i = 0; i < v.size(); ++i)
    if (rng()() % 3 == 0) v[i] = 0.0f;
  return v;
}

TEST(OpsIndex, NonZeroListsCoordinatesInRowMajorOrder) {
  const std::vector<float> v = sparse_floats(3 * 4 * 5);
  OneNode n("NonZero", {F({3, 4, 5}, v)});
  const TensorData out = reference(n)[0];
  std::vector<std::vector<int64_t>> want(3);
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t c = 0; c < 5; ++c)
        if (v[(a * 4 + b) * 5 + c] != 0.0f) want[0].push_back(a), want[1].push_back(b), want[2].push_back(c);
  const int64_t count = static_cast<int64_t>(want[0].size());
  ASSERT_EQ(out.dims(), (std::vector<int64_t>{3, count}));
  ASSERT_GT(count, 0);
  std::vector<int64_t> flat;
  for (const auto& row : want) flat.insert(flat.end(), row.begin(), row.end());
  EXPECT_EQ(ints(out), flat);
  EXPECT_EQ(infer_without_values(n)[0], "3x?");

  // A bool scalar counts as a one-element vector: [1, 1] when true, [1, 0] when false.
  OneNode t("NonZero", {TensorData::from_vector<uint8_t>(DType::Bool, {}, {1})});
  EXPECT_EQ(reference(t)[0].dims(), (std::vector<int64_t>{1, 1}));
  OneNode f("NonZero", {TensorData::from_vector<uint8_t>(DType::Bool, {}, {0})});
  EXPECT_EQ(reference(f)[0].dims(), (std::vector<int64_t>{1, 0}));
}

TEST(OpsIndex, UniqueFlattenedMatchesAnIndependentCount) {
  std::vector<int64_t> x(60);
  for (auto& e : x) e = static_cast<int64_t>(rng()() % 7) - 3;
  OneNode n("Unique", {I64({3, 20}, x)}, 4);
  const auto out = reference(n);
  std::map<int64_t, std::pair<int64_t, int64_t>> seen;  // value -> (first index, count), sorted by value
  for (int64_t i = 0; i < 60; ++i) {
    auto it = seen.try_emplace(x[i], i, 0).first;
    ++it->second.second;
  }
  std::vector<int64_t> y, first, counts, inverse;
  for (const auto& [value, fc] : seen)
    y.push_back(value), first.push_back(fc.first), counts.push_back(fc.second);
  for (int64_t e : x) inverse.push_back(std::distance(seen.begin(), seen.find(e)));
  EXPECT_EQ(ints(out[0]), y);
  EXPECT_EQ(ints(out[1]), first);
  EXPECT_EQ(ints(out[2]), inverse);
  EXPECT_EQ(ints(out[3]), counts);
  EXPECT_EQ(infer_without_values(n), (std::vector<std::string>{"?", "?", "60", "?"}));
}

TEST(OpsIndex, UniqueAlongAnAxisSortedAndUnsorted) {
  // Columns (3,0), (1,2), (3,0): two distinct ones.
  const TensorData x = F({2, 3}, {3, 1, 3, 0, 2, 0});
  OneNode s("Unique", {x}, 4);
  s.attr("axis", int64_t{1});
  auto out = reference(s);
  EXPECT_EQ(floats(out[0]), (std::vector<float>{1, 3, 2, 0}));
  EXPECT_EQ(out[0].dims(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(ints(out[1]), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(ints(out[2]), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(ints(out[3]), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(infer_without_values(s)[0], "2x?");
  EXPECT_EQ(infer_without_values(s)[2], "3");

  OneNode u("Unique", {x}, 4);
  u.attr("axis", int64_t{-1}).attr("sorted", int64_t{0});
  out = reference(u);
  EXPECT_EQ(floats(out[0]), (std::vector<float>{3, 1, 0, 2}));
  EXPECT_EQ(ints(out[1]), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(ints(out[2]), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(ints(out[3]), (std::vector<int64_t>{2, 1}));
}

TEST(OpsIndex, CompressSelectsSlicesAndChecksTheCondition) {
  const std::vector<float> v = randf(4 * 5);
  const std::vector<uint8_t> cond{1, 0, 1, 1, 0};
  OneNode n("Compress", {F({4, 5}, v), TensorData::from_vector(DType::Bool, {5}, cond)});
  n.attr("axis", int64_t{1});
  std::vector<float> want;
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 5; ++c)
      if (cond[c]) want.push_back(v[r * 5 + c]);
  const TensorData out = reference(n)[0];
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(floats(out), want);
  EXPECT_EQ(infer_without_values(n)[0], "4x?");
  EXPECT_EQ(n.infer().out[0].shape, make_shape({4, 3}));  // a known condition gives a known shape

  // Without an axis the input is flattened; a short condition selects nothing past its end.
  OneNode flat("Compress", {F({4, 5}, v), TensorData::from_vector<uint8_t>(DType::Bool, {3}, {0, 1, 1})});
  EXPECT_EQ(floats(reference(flat)[0]), (std::vector<float>{v[1], v[2]}));
  OneNode bad("Compress",
              {F({4, 5}, v), TensorData::from_vector<uint8_t>(DType::Bool, {6}, {0, 0, 0, 0, 0, 1})});
  bad.attr("axis", int64_t{1});
  EXPECT_NE(error_of([&] { reference(bad); }).find("condition element 5 is true"), std::string::npos);
}

TEST(OpsIndex, GatherAndScatterElementsFollowTheIndexFormula) {
  const std::vector<float> data = randf(2 * 3 * 4);
  std::vector<int64_t> idx(2 * 5 * 4);
  for (auto& k : idx) k = static_cast<int64_t>(rng()() % 6) - 3;  // in [-3, 3)
  OneNode g("GatherElements", {F({2, 3, 4}, data), I64({2, 5, 4}, idx)});
  g.attr("axis", int64_t{1});
  std::vector<float> want;
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 5; ++b)
      for (int64_t c = 0; c < 4; ++c) {
        const int64_t k = idx[(a * 5 + b) * 4 + c];
        want.push_back(data[(a * 3 + (k < 0 ? k + 3 : k)) * 4 + c]);
      }
  EXPECT_EQ(floats(g.run1()), want);

  // Scatter with reduction=add: duplicate targets accumulate.
  const std::vector<float> upd = randf(2 * 5 * 4);
  OneNode s("ScatterElements", {F({2, 3, 4}, data), I64({2, 5, 4}, idx), F({2, 5, 4}, upd)});
  s.attr("axis", int64_t{1}).attr("reduction", std::string("add"));
  std::vector<float> sum = data;
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 5; ++b)
      for (int64_t c = 0; c < 4; ++c) {
        const int64_t k = idx[(a * 5 + b) * 4 + c];
        sum[(a * 3 + (k < 0 ? k + 3 : k)) * 4 + c] += upd[(a * 5 + b) * 4 + c];
      }
  expect_near(floats(s.run1()), sum);

  idx[7] = 3;
  OneNode bad("GatherElements", {F({2, 3, 4}, data), I64({2, 5, 4}, idx)});
  bad.attr("axis", int64_t{1});
  EXPECT_NE(error_of([&] { reference(bad); }).find("indices element 7 is 3, out of range"),
            std::string::npos);
}

TEST(OpsIndex, GatherNDWithBatchDimsAndScatterNDMultiply) {
  const std::vector<float> data = randf(2 * 3 * 4);
  // batch_dims=1: for each batch b, tuples (i) pick data[b, i, :].
  OneNode g("GatherND", {F({2, 3, 4}, data), I64({2, 2, 1}, {2, -3, 1, 1})});
  g.attr("batch_dims", int64_t{1});
  std::vector<float> want;
  for (auto [b, i] : std::vector<std::pair<int, int>>{{0, 2}, {0, 0}, {1, 1}, {1, 1}})
    for (int c = 0; c < 4; ++c) want.push_back(data[(b * 3 + i) * 4 + c]);
  const TensorData out = g.run1();
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{2, 2, 4}));
  EXPECT_EQ(floats(out), want);

  // int32 ScatterND, reduction=mul, the same row twice: products wrap in int32 instead of overflowing.
  OneNode s("ScatterND",
            {TensorData::from_vector<int32_t>(DType::Int32, {3, 2}, {1, 2, 3, 4, 5, 6}), I64({2, 1}, {1, 1}),
             TensorData::from_vector<int32_t>(DType::Int32, {2, 2}, {65536, -2, 65536, 5})});
  s.attr("reduction", std::string("mul"));
  EXPECT_EQ(ints(s.run1()), (std::vector<int64_t>{1, 2, 0, -40, 5, 6}));  // 3 * 2^32 wraps to 0

  OneNode bad("GatherND", {F({2, 3, 4}, data), I64({1, 2}, {1, 3})});
  EXPECT_NE(error_of([&] { reference(bad); }).find("indices element 1 is 3"), std::string::npos);
}

TEST(OpsIndex, TopKKeepsTheLowerIndexFirstOnTies) {
  const TensorData x = F({1, 5}, {3, 1, 3, 2, 3});
  OneNode hi("TopK", {x, I64({1}, {2})}, 2);
  auto out = hi.run();
  EXPECT_EQ(floats(out[0]), (std::vector<float>{3, 3}));
  EXPECT_EQ(ints(out[1]), (std::vector<int64_t>{0, 2}));
  OneNode lo("TopK", {x, I64({1}, {3})}, 2);
  lo.attr("largest", int64_t{0});
  out = lo.run();
  EXPECT_EQ(floats(out[0]), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(ints(out[1]), (std::vector<int64_t>{1, 3, 0}));
  EXPECT_EQ(infer_without_values(lo)[0], "1x?");  // K known only at run time
  OneNode big("TopK", {x, I64({1}, {6})}, 2);
  EXPECT_NE(error_of([&] { big.infer(); }).find("K is 6, out of range [0, 5]"), std::string::npos);
}

TEST(OpsIndex, EinsumMatchesLoops) {
  const std::vector<float> a = randf(2 * 3 * 4), b = randf(1 * 4 * 5);
  // Ellipsis batch dims broadcast (2 against 1).
  OneNode mm("Einsum", {F({2, 3, 4}, a), F({1, 4, 5}, b)});
  mm.attr("equation", std::string("...ij, ...jk -> ...ik"));
  std::vector<float> want(2 * 3 * 5, 0.0f);
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 5; ++k)
        for (int j = 0; j < 4; ++j) want[(n * 3 + i) * 5 + k] += a[(n * 3 + i) * 4 + j] * b[j * 5 + k];
  const TensorData out = mm.run1();
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{2, 3, 5}));
  expect_near(floats(out), want);

  // A repeated label takes the diagonal; implicit output keeps the labels used once (here none: a trace).
  const std::vector<float> m = randf(16);
  OneNode trace("Einsum", {F({4, 4}, m)});
  trace.attr("equation", std::string("ii"));
  expect_near(floats(trace.run1()), {m[0] + m[5] + m[10] + m[15]});
  // Implicit output in ASCII order: "ba" -> "ab" is a transpose.
  OneNode tr("Einsum", {F({2, 3}, {1, 2, 3, 4, 5, 6})});
  tr.attr("equation", std::string("ba"));
  EXPECT_EQ(floats(tr.run1()), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  OneNode bad("Einsum", {F({2, 3}, randf(6)), F({4}, randf(4))});
  bad.attr("equation", std::string("ij,j->i"));
  EXPECT_NE(error_of([&] { bad.infer(); }).find("has size 4 but its label has size 3"), std::string::npos);
}

TEST(OpsIndex, CumSumExclusiveReverseAndIntegerWrap) {
  const std::vector<float> v = randf(3 * 4);
  OneNode n("CumSum", {F({3, 4}, v), I64({}, {0})});
  n.attr("exclusive", int64_t{1}).attr("reverse", int64_t{1});
  std::vector<float> want(12, 0.0f);
  for (int c = 0; c < 4; ++c)
    for (int r = 1; r >= 0; --r) want[r * 4 + c] = want[(r + 1) * 4 + c] + v[(r + 1) * 4 + c];
  expect_near(floats(n.run1()), want);
  OneNode w("CumSum", {TensorData::from_vector<int32_t>(DType::Int32, {2}, {2147483647, 1}), I64({}, {-1})});
  EXPECT_EQ(ints(w.run1()), (std::vector<int64_t>{2147483647, -2147483648LL}));
}

TEST(OpsIndex, OneHotLeavesOutOfRangeIndicesOff) {
  OneNode n("OneHot", {F({4}, {1.7f, -1, 3, -4}), F({}, {3}), F({2}, {-2, 5})});
  n.attr("axis", int64_t{0});
  const TensorData out = n.run1();
  EXPECT_EQ(out.dims(), (std::vector<int64_t>{3, 4}));
  // Columns: index 1 (1.7 truncated), 2 (-1 + 3), none (3 >= depth), none (-4 < -depth).
  EXPECT_EQ(floats(out), (std::vector<float>{-2, -2, -2, -2, 5, -2, -2, -2, -2, 5, -2, -2}));
}

}  // namespace
}  // namespace kiln
