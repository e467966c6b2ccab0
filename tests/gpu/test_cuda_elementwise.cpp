// cuda.elementwise and cuda.cast against the CPU reference: unary ops and activations, Clip, broadcasting
// binary ops on every plan (same shape, constant scalar, per-channel / row operands on either side, general
// numpy broadcasting up to rank 6), Pow, Cast between float dtypes; fp32 and a few fp16 builds.
#include <string>
#include <vector>

#include "gpu_test_util.h"

using kiln::Attributes;
using kiln::BuildOptions;
using kiln::DType;
using kiln::Graph;
using kiln::TensorData;
using kiln::gpu_test::compare_with_reference;
using kiln::gpu_test::one_node_graph;
using kiln::gpu_test::OperandSpec;
using kiln::gpu_test::random_tensor;
using kiln::gpu_test::tolerance;

namespace {

using kiln::gpu_test::fp16;
using kiln::gpu_test::fp32;

void expect_match(const Graph& g, const std::string& kernel, BuildOptions opts = fp32()) {
  const auto c = compare_with_reference(g, opts);
  EXPECT_LE(c.worst(), tolerance(opts.precision, opts.tf32));
  EXPECT_TRUE(c.uses_kernel(kernel)) << "the layer did not run on " << kernel;
}

// x → Abs → op(·, extra inputs): ops whose domain is the positive numbers (Log, Sqrt, Pow with any exponent).
std::unique_ptr<Graph> positive_graph(const std::string& op, const std::vector<int64_t>& dims,
                                      const std::vector<OperandSpec>& extra = {},
                                      const Attributes& attrs = {}) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", 17);
  auto* x = g->add_variable("x", DType::Float, kiln::make_shape(dims));
  g->inputs.push_back(x);
  auto* a = g->add_variable("abs_x");
  g->add_node("Abs", {x}, {a}, "abs");
  std::vector<kiln::Tensor*> ins{a};
  for (size_t k = 0; k < extra.size(); ++k) {
    const std::string name = "e" + std::to_string(k);
    if (extra[k].value) {
      ins.push_back(g->add_constant(name, *extra[k].value));
    } else {
      auto* v = g->add_variable(name, extra[k].dtype, kiln::make_shape(extra[k].dims));
      g->inputs.push_back(v);
      ins.push_back(v);
    }
  }
  auto* y = g->add_variable("y");
  kiln::Node* n = g->add_node(op, ins, {y}, "the_" + op);
  n->attrs = attrs;
  g->outputs.push_back(y);
  return g;
}

BuildOptions no_fusion(BuildOptions o = fp32()) {
  o.skip_rewrites = {"elementwise"};  // keep Abs and the op as separate layers
  return o;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ unary
TEST(CudaElementwise, UnaryOps) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "Softplus", "Exp", "Neg", "Abs", "Reciprocal", "Erf", "HardSwish",
                         "Floor", "Ceil", "Round", "Sign", "Sin", "Cos"}) {
    SCOPED_TRACE(op);
    for (const auto& dims :
         std::vector<std::vector<int64_t>>{{2, 3, 17, 19}, {5}, {1, 8, 64, 65}, {3, 1, 7}}) {
      auto g = one_node_graph(op, {OperandSpec{dims}});
      expect_match(*g, "cuda.elementwise");
    }
  }
}

TEST(CudaElementwise, ActivationsWithAttributes) {
  KILN_REQUIRE_GPU();
  struct Case {
    const char* op;
    float alpha, beta;
  };
  for (const Case& c :
       {Case{"Elu", 1.0f, 0}, Case{"Elu", 0.3f, 0}, Case{"LeakyRelu", 0.01f, 0}, Case{"LeakyRelu", 0.25f, 0},
        Case{"HardSigmoid", 0.2f, 0.5f}, Case{"HardSigmoid", 0.7f, 0.1f}}) {
    SCOPED_TRACE(c.op);
    Attributes a;
    a.set("alpha", c.alpha);
    if (std::string(c.op) == "HardSigmoid") a.set("beta", c.beta);
    auto g = one_node_graph(c.op, {OperandSpec{{2, 5, 9, 13}}}, a);
    expect_match(*g, "cuda.elementwise");
  }
  // Defaults (no attributes).
  for (const char* op : {"Elu", "LeakyRelu", "HardSigmoid"}) {
    auto g = one_node_graph(op, {OperandSpec{{3, 7, 11}}});
    expect_match(*g, "cuda.elementwise");
  }
}

TEST(CudaElementwise, PositiveDomainOps) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Log", "Sqrt"}) {
    SCOPED_TRACE(op);
    auto g = positive_graph(op, {2, 3, 15, 17});
    expect_match(*g, "cuda.elementwise", no_fusion());
  }
}

TEST(CudaElementwise, UnaryFp16) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Relu", "Sigmoid", "Tanh", "LeakyRelu"}) {
    SCOPED_TRACE(op);
    auto g = one_node_graph(op, {OperandSpec{{2, 16, 21, 23}}});
    expect_match(*g, "cuda.elementwise", fp16());
  }
}

TEST(CudaElementwise, Clip) {
  KILN_REQUIRE_GPU();
  const std::vector<int64_t> dims{2, 4, 9, 11};
  {  // opset 13: min and max inputs
    auto g =
        one_node_graph("Clip",
                       {OperandSpec{dims}, OperandSpec{{}, DType::Float, TensorData::scalar_float(-0.5f)},
                        OperandSpec{{}, DType::Float, TensorData::scalar_float(1.25f)}},
                       {}, "", 1, 13);
    expect_match(*g, "cuda.elementwise");
  }
  {  // opset 13: min only
    auto g = one_node_graph(
        "Clip", {OperandSpec{dims}, OperandSpec{{}, DType::Float, TensorData::scalar_float(0.3f)}}, {}, "", 1,
        13);
    expect_match(*g, "cuda.elementwise");
  }
  {  // opset 6: attributes
    Attributes a;
    a.set("min", -1.0f);
    a.set("max", 0.75f);
    auto g = one_node_graph("Clip", {OperandSpec{dims}}, a, "", 1, 6);
    expect_match(*g, "cuda.elementwise");
  }
  {  // fp16 (ReLU6-like)
    auto g = one_node_graph("Clip",
                            {OperandSpec{dims}, OperandSpec{{}, DType::Float, TensorData::scalar_float(0.0f)},
                             OperandSpec{{}, DType::Float, TensorData::scalar_float(1.0f)}},
                            {}, "", 1, 13);
    expect_match(*g, "cuda.elementwise", fp16());
  }
}

// ----------------------------------------------------------------------------------------------- binary
namespace {

struct BinaryShapes {
  std::vector<int64_t> a, b;
  bool a_const = false, b_const = false;
};

// Every plan of the binary kernel, the small operand on either side, odd sizes for the vector tails.
const std::vector<BinaryShapes>& binary_cases() {
  static const std::vector<BinaryShapes> cases = {
      {{2, 3, 5, 7}, {2, 3, 5, 7}},                 // same
      {{1, 8, 64, 66}, {1, 8, 64, 66}},             // same, vectorized bulk
      {{1, 3, 9, 5}, {3, 9, 5}},                    // same after dropping 1s
      {{2, 8, 5, 7}, {8, 1, 1}, false, true},       // per-channel constant
      {{8, 1, 1}, {2, 8, 5, 7}},                    // per-channel on the left
      {{2, 16, 8, 8}, {1, 16, 1, 1}},               // per-channel, vectorized (inner % 8 == 0)
      {{2, 3, 5, 7}, {}, false, true},              // constant scalar
      {{}, {2, 3, 5, 7}, true, false},              // constant scalar on the left
      {{2, 3, 5, 7}, {1}},                          // runtime scalar
      {{2, 3, 5, 7}, {7}},                          // trailing row
      {{4, 5, 6}, {5, 1}},                          // middle run
      {{3, 1, 5}, {1, 4, 1}},                       // general: both broadcast
      {{2, 1, 3, 1, 5}, {1, 4, 1, 6, 1}},           // general, rank 5
      {{2, 3, 1, 4, 1, 5}, {3, 7, 1, 6, 1}},        // general, rank 6
      {{1, 3, 1, 33}, {2, 1, 17, 1}, false, true},  // general with a constant
  };
  return cases;
}

std::unique_ptr<Graph> binary_graph(const std::string& op, const BinaryShapes& s, int64_t opset = 17) {
  OperandSpec a{s.a}, b{s.b};
  if (s.a_const) a.value = random_tensor(s.a);
  if (s.b_const) b.value = random_tensor(s.b);
  return one_node_graph(op, {a, b}, {}, "", 1, opset);
}

}  // namespace

TEST(CudaElementwise, BinaryBroadcasting) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    for (size_t k = 0; k < binary_cases().size(); ++k) {
      SCOPED_TRACE(std::string(op) + " case " + std::to_string(k));
      auto g = binary_graph(op, binary_cases()[k]);
      expect_match(*g, "cuda.elementwise");
    }
  }
}

TEST(CudaElementwise, BinaryFp16) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Add", "Mul", "Sub"}) {
    for (const BinaryShapes& s :
         {BinaryShapes{{2, 8, 15, 17}, {2, 8, 15, 17}}, BinaryShapes{{2, 8, 15, 17}, {8, 1, 1}, false, true},
          BinaryShapes{{2, 8, 15, 16}, {}, false, true}, BinaryShapes{{3, 1, 5}, {1, 4, 1}}}) {
      SCOPED_TRACE(op);
      auto g = binary_graph(op, s);
      expect_match(*g, "cuda.elementwise", fp16());
    }
  }
}

TEST(CudaElementwise, Pow) {
  KILN_REQUIRE_GPU();
  const std::vector<int64_t> dims{2, 3, 7, 9};
  // Integer exponents are defined for negative bases: constant scalar float and int64 exponents.
  for (float e : {2.0f, 3.0f, -1.0f}) {
    auto g = one_node_graph("Pow",
                            {OperandSpec{dims}, OperandSpec{{}, DType::Float, TensorData::scalar_float(e)}});
    expect_match(*g, "cuda.elementwise");
  }
  {
    auto g = one_node_graph("Pow",
                            {OperandSpec{dims}, OperandSpec{{}, DType::Int64, TensorData::scalar_int64(2)}});
    expect_match(*g, "cuda.elementwise");
  }
  // Fractional exponents on a positive base: scalar, per-channel and full tensors.
  {
    auto g = positive_graph("Pow", dims, {OperandSpec{{}, DType::Float, TensorData::scalar_float(0.5f)}});
    expect_match(*g, "cuda.elementwise", no_fusion());
  }
  {
    auto g = positive_graph("Pow", dims, {OperandSpec{{3, 1, 1}, DType::Float, random_tensor({3, 1, 1})}});
    expect_match(*g, "cuda.elementwise", no_fusion());
  }
  {
    auto g = positive_graph("Pow", dims, {OperandSpec{dims}});
    expect_match(*g, "cuda.elementwise", no_fusion());
  }
}

// ------------------------------------------------------------------------------------------------- Cast
TEST(CudaElementwise, CastBetweenFloatTypes) {
  KILN_REQUIRE_GPU();
  struct Case {
    DType from, to;
  };
  for (const Case& c : {Case{DType::Float, DType::Float16}, Case{DType::Float, DType::BFloat16},
                        Case{DType::Float16, DType::Float}, Case{DType::BFloat16, DType::Float},
                        Case{DType::Float16, DType::BFloat16}, Case{DType::BFloat16, DType::Float16}}) {
    SCOPED_TRACE(std::string(kiln::dtype_name(c.from)) + " -> " + kiln::dtype_name(c.to));
    Attributes a;
    a.set("to", static_cast<int64_t>(c.to));
    auto g = one_node_graph("Cast", {OperandSpec{{2, 3, 17, 5}, c.from}}, a);
    // The reference rounds the same way (to nearest even): the outputs are equal, bit for bit.
    expect_match(*g, "cuda.cast");
  }
}
