// LSTM, GRU, RNN: shape inference (both layouts, symbolic dims), attribute and shape errors, and the
// reference kernel on a case small enough to derive by hand. (Against ONNX Runtime:
// tests/python/test_recurrent.py.)
#include <gtest/gtest.h>

#include <cmath>

#include "ops/op.h"
#include "test_util.h"

namespace kiln {
namespace {

using test::OneNode;

// A node over variables of the given shapes (nullopt: an omitted input).
struct RecurrentNode : OneNode {
  RecurrentNode(const std::string& op, const std::vector<std::optional<Shape>>& shapes, size_t outputs)
      : OneNode(op, {}, outputs, 14) {
    std::vector<Tensor*> ins;
    for (size_t k = 0; k < shapes.size(); ++k)
      ins.push_back(
          shapes[k] ? g.add_variable("v" + std::to_string(k), k == 4 ? DType::Int32 : DType::Float, shapes[k])
                    : nullptr);
    node->set_inputs(ins);
  }
  std::string shape(size_t k) {
    auto ctx = infer();
    return ctx.out[k].shape ? to_string(*ctx.out[k].shape) : "unknown";
  }
  std::string error() {
    try {
      infer();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
};

TEST(Recurrent, InfersBothLayoutsWithSymbolicDims) {
  const Dim T = Dim::symbolic("T");
  RecurrentNode gru("GRU", {Shape{T, 2, 5}, Shape{2, 12, 5}, Shape{2, 12, 4}}, 2);
  gru.attr("direction", std::string("bidirectional"));
  EXPECT_EQ(gru.shape(0), "Tx2x2x4");
  EXPECT_EQ(gru.shape(1), "2x2x4");
  RecurrentNode lstm("LSTM", {Shape{3, T, 5}, Shape{1, 16, 5}, Shape{1, 16, 4}, std::nullopt, Shape{3}}, 3);
  lstm.attr("layout", int64_t{1});
  EXPECT_EQ(lstm.shape(0), "3xTx1x4");
  EXPECT_EQ(lstm.shape(1), "3x1x4");
  EXPECT_EQ(lstm.shape(2), "3x1x4");
}

TEST(Recurrent, BadAttributesAndShapesAreErrorsNamingThem) {
  const std::vector<std::optional<Shape>> lstm{Shape{6, 2, 5}, Shape{1, 16, 5}, Shape{1, 16, 4}};
  auto err = [&](const std::string& attr, AttributeValue v, std::vector<std::optional<Shape>> shapes) {
    RecurrentNode n("LSTM", shapes, 1);
    if (!attr.empty()) n.attr(attr, std::move(v));
    return n.error();
  };
  EXPECT_NE(err("direction", std::string("sideways"), lstm).find("direction must be forward"),
            std::string::npos);
  EXPECT_NE(err("activations", std::vector<std::string>{"Sigmoid", "Tanh"}, lstm).find("must list 3"),
            std::string::npos);
  EXPECT_NE(err("activations", std::vector<std::string>{"Sigmoid", "Swish", "Tanh"}, lstm).find("'Swish'"),
            std::string::npos);
  EXPECT_NE(err("hidden_size", int64_t{5}, lstm).find("W must have shape [1, 20, 5]"), std::string::npos);
  EXPECT_NE(err("layout", int64_t{2}, lstm).find("layout must be 0 or 1"), std::string::npos);
  EXPECT_NE(err("clip", -1.f, lstm).find("clip must be > 0"), std::string::npos);
  EXPECT_NE(err("", int64_t{0}, {Shape{6, 2, 5}, Shape{1, 16, 7}, Shape{1, 16, 4}}).find("W must have shape"),
            std::string::npos);
  EXPECT_NE(err("", int64_t{0}, {Shape{6, 2, 5}, Shape{1, 16, 5}, Shape{1, 16, 4}, Shape{1, 16}})
                .find("B must have shape [1, 32]"),
            std::string::npos);
}

// RNN, one unit, tanh: h_t = tanh(w x_t + r h_{t-1} + wb + rb), derived by hand; batch entry 1 has length 0.
TEST(Recurrent, ReferenceMatchesAHandDerivedRnn) {
  const float w = 0.5f, r = -1.f, wb = 0.1f, rb = 0.2f;
  OneNode n("RNN",
            {TensorData::from_vector<float>(DType::Float, {2, 2, 1}, {1.f, 3.f, 2.f, 4.f}),
             TensorData::from_vector<float>(DType::Float, {1, 1, 1}, {w}),
             TensorData::from_vector<float>(DType::Float, {1, 1, 1}, {r}),
             TensorData::from_vector<float>(DType::Float, {1, 2}, {wb, rb}),
             TensorData::from_vector<int32_t>(DType::Int32, {2}, {2, 0})},
            2, 14);
  const auto out = n.run();
  const double h1 = std::tanh(w * 1.0 + wb + rb), h2 = std::tanh(w * 2.0 + r * h1 + wb + rb);
  const float* y = out[0].data<float>();  // [seq 2, dirs 1, batch 2, hidden 1]
  EXPECT_NEAR(y[0], h1, 1e-6);
  EXPECT_NEAR(y[2], h2, 1e-6);
  EXPECT_EQ(y[1], 0.f);  // beyond batch 1's length
  EXPECT_EQ(y[3], 0.f);
  EXPECT_NEAR(out[1].data<float>()[0], h2, 1e-6);
  EXPECT_EQ(out[1].data<float>()[1], 0.f);
}

}  // namespace
}  // namespace kiln
