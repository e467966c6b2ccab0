// kiln_backend_sweep cases: element-wise ops — unary activations and math (with their attributes), binary
// ops on every broadcasting shape a kernel plans differently (same shape, constant or variable scalar on
// either side, per-channel and row operands, general numpy broadcasting up to rank 6), Cast / CastLike
// between the float dtypes, and kiln.ElementwiseChain as fuse_elementwise writes it.
#include "cases_util.h"

namespace kiln::sweep {
namespace {

// Odd-sized, tiny, rank-3 with a 1, rank-1 and a large one (over the CPU kernels' 1M-element threading
// threshold).
const std::vector<std::vector<int64_t>>& unary_shapes() {
  static const std::vector<std::vector<int64_t>> s{{2, 3, 17, 19}, {5}, {3, 1, 7}, {2, 16, 181, 191}};
  return s;
}

std::vector<Case> unary_cases(const std::string& op, DType dt) {
  Fill fill;
  if (op == "Log" || op == "Sqrt") fill.positive = true;  // their domain
  if (op == "Sin" || op == "Cos") fill.hi = 6.0;
  // Past their breakpoints: Erf's two polynomials meet at 0.9 and it saturates at 3.92; HardSwish clamps at
  // ±3.
  if (op == "Erf" || op == "HardSwish") fill = {0.01, 5.0, false};
  std::vector<Case> out;
  for (const auto& dims : unary_shapes()) out.push_back(make_case(dims_str(dims), {input(dt, dims, fill)}));
  const std::vector<int64_t> dims{2, 5, 9, 13};
  if (op == "Elu")
    out.push_back(make_case(dims_str(dims) + " alpha=0.5", {input(dt, dims)}, attrs({{"alpha", 0.5f}})));
  if (op == "LeakyRelu")
    out.push_back(make_case(dims_str(dims) + " alpha=0.2", {input(dt, dims)}, attrs({{"alpha", 0.2f}})));
  if (op == "HardSigmoid")
    out.push_back(make_case(dims_str(dims) + " alpha=0.3 beta=0.4", {input(dt, dims)},
                            attrs({{"alpha", 0.3f}, {"beta", 0.4f}})));
  if (op == "Selu")
    out.push_back(make_case(dims_str(dims) + " alpha=1.2 gamma=0.9", {input(dt, dims)},
                            attrs({{"alpha", 1.2f}, {"gamma", 0.9f}})));
  if (op == "Celu" || op == "ThresholdedRelu")
    out.push_back(make_case(dims_str(dims) + " alpha=0.4", {input(dt, dims)}, attrs({{"alpha", 0.4f}})));
  if (op == "Clip") {
    out.clear();  // Clip without bounds is the identity; every case bounds it
    const std::vector<int64_t> big{2, 16, 181, 191};
    for (const auto& d : {dims, big})
      out.push_back(
          make_case(dims_str(d) + " min=-0.5 max=0.7", {input(dt, d), scalar(dt, -0.5), scalar(dt, 0.7)}));
    out.push_back(make_case(dims_str(dims) + " min=-0.3", {input(dt, dims), scalar(dt, -0.3)}));
    out.push_back(make_case(dims_str(dims) + " max=0.4", {input(dt, dims), absent(), scalar(dt, 0.4)}));
    out.push_back(make_case(dims_str(dims) + " opset6 min=-1 max=1", {input(dt, dims)},
                            attrs({{"min", -1.0f}, {"max", 1.0f}}), 6));
    out.push_back(
        make_case(dims_str(dims) + " variable min, max", {input(dt, dims), input(dt, {}), input(dt, {})}));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Relu",     "Sigmoid",   "Tanh",        "Exp",        "Log",
                          "Neg",      "Abs",       "Sqrt",        "Reciprocal", "Erf",
                          "Elu",      "LeakyRelu", "HardSigmoid", "HardSwish",  "Softplus",
                          "Clip",     "Floor",     "Ceil",        "Round",      "Sign",
                          "Sin",      "Cos",       "Selu",        "Celu",       "ThresholdedRelu",
                          "Softsign", "Mish"},
                  .dtypes = float_dtypes(),
                  .cases = unary_cases});

// ------------------------------------------------------------------------------------------- binary
std::vector<Case> binary_cases(const std::string& op, DType dt) {
  const bool integer = !dtype_is_float(dt);  // int32/int64: cuda.numeric_binary / cuda.numeric_variadic
  if (integer && op == "Pow") return {};
  // Pow: a positive base, so every exponent is defined. Integer Mul: factors whose products fit int32.
  const Fill small{-3000, 3000, false, true};
  const Fill base = op == "Pow" ? Fill{0.5, 2.0, true} : (integer && op == "Mul" ? small : Fill{});
  const Fill other = op == "Pow" ? Fill{0.2, 2.0, false} : (integer && op == "Mul" ? small : Fill{});
  const std::vector<int64_t> x{2, 3, 17, 19}, nchw{2, 16, 9, 11}, big{2, 16, 181, 191};
  auto two = [&](std::string label, Operand a, Operand b) { return make_case(std::move(label), {a, b}); };
  std::vector<Case> out{
      two("same " + dims_str(x), input(dt, x, base), input(dt, x, other)),
      two("scalar const b " + dims_str(x), input(dt, x, base), weight(dt, {}, other)),
      two("scalar var b[1] " + dims_str(x), input(dt, x, base), input(dt, {1}, other)),
      two("channel const b[16,1,1] " + dims_str(nchw), input(dt, nchw, base), weight(dt, {16, 1, 1}, other)),
      two("channel var a[1,16,1,1] " + dims_str(nchw), input(dt, {1, 16, 1, 1}, base),
          input(dt, nchw, other)),
      two("row b[33] [4,5,33]", input(dt, {4, 5, 33}, base), input(dt, {33}, other)),
      two("general [2,1,5,1]x[1,3,1,7]", input(dt, {2, 1, 5, 1}, base), input(dt, {1, 3, 1, 7}, other)),
      two("rank6 [2,1,3,1,2,5]x[1,2,1,4,1,5]", input(dt, {2, 1, 3, 1, 2, 5}, base),
          input(dt, {1, 2, 1, 4, 1, 5}, other)),
      two("empty [0,3]x[3]", input(dt, {0, 3}, base), input(dt, {3}, other)),
      two("same " + dims_str(big), input(dt, big, base), input(dt, big, other)),
      two("channel const b[16,1,1] " + dims_str(big), input(dt, big, base), weight(dt, {16, 1, 1}, other)),
  };
  if (op != "Pow")  // a scalar base: Pow's base must stay positive, which a random left scalar is not
    out.push_back(two("scalar const a " + dims_str(x), weight(dt, {}, base), input(dt, x, other)));
  if (op == "Max" || op == "Min") {  // variadic: one input, and several broadcasting ones
    out.push_back(make_case("one " + dims_str(x), {input(dt, x)}));
    out.push_back(
        make_case("four broadcast [2,1,5,1],[1,3,1,7],[7],[]",
                  {input(dt, {2, 1, 5, 1}), input(dt, {1, 3, 1, 7}), input(dt, {7}), input(dt, {})}));
  }
  if (op == "Pow") {
    out.push_back(two("exponent int64 2", input(dt, x, base), scalar(DType::Int64, 2)));
    out.push_back(two("exponent 0.5", input(dt, x, base), scalar(dt, 0.5)));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"},
                  .dtypes = {DType::Float, DType::Float16, DType::BFloat16, DType::Int32, DType::Int64},
                  .cases = binary_cases});

// --------------------------------------------------------------------------------------------- cast
std::vector<Case> cast_cases(const std::string& op, DType from) {
  std::vector<Case> out;
  const std::vector<int64_t> x{2, 3, 17, 19}, big{1, 1024, 1030};
  for (DType to : float_dtypes()) {
    auto make = [&](const std::string& what, const std::vector<int64_t>& dims, Fill fill) {
      Case c = op == "Cast" ? make_case(std::string("to ") + dtype_name(to) + " " + what + dims_str(dims),
                                        {input(from, dims, fill)}, attrs({{"to", static_cast<int64_t>(to)}}))
                            : make_case(std::string("like ") + dtype_name(to) + " " + what + dims_str(dims),
                                        {input(from, dims, fill), weight(to, {1})});
      c.exact = true;  // one rounding to nearest even, as the reference does
      return c;
    };
    out.push_back(make("", x, {}));
    out.push_back(make("", big, {}));
    // Subnormals of the 16-bit types and values past float16's range (→ inf).
    out.push_back(make("wide range ", x, {1e-7, 1e5}));
  }
  return out;
}

// Sum: one, two (ResNet's residual) and three same-shape inputs, one large enough to be threaded, a
// broadcast pair (which cpu.sum leaves to the reference), four broadcasting inputs and eight.
std::vector<Case> sum_cases(const std::string&, DType dt) {
  const std::vector<int64_t> x{2, 3, 17, 19}, big{2, 16, 181, 191};
  return {make_case("one " + dims_str(x), {input(dt, x)}),
          make_case("two " + dims_str(x), {input(dt, x), input(dt, x)}),
          make_case("three " + dims_str(x), {input(dt, x), input(dt, x), input(dt, x)}),
          make_case("two " + dims_str(big), {input(dt, big), input(dt, big)}),
          make_case("broadcast [4,5,33]+[33]", {input(dt, {4, 5, 33}), input(dt, {33})}),
          make_case("four broadcast [2,1,5,1]+[1,3,1,7]+[7]+[]",
                    {input(dt, {2, 1, 5, 1}), input(dt, {1, 3, 1, 7}), input(dt, {7}), input(dt, {})}),
          make_case("eight [3,5,7]", std::vector<Operand>(8, input(dt, {3, 5, 7})))};
}

KILN_SWEEP_CASES({.domain = "", .ops = {"Sum"}, .dtypes = float_dtypes(), .cases = sum_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Cast", "CastLike"}, .dtypes = float_dtypes(), .cases = cast_cases});

// ----------------------------------------------------------------------------------- ElementwiseChain
struct Step {
  std::string op;
  int64_t operand = -1, data_first = 1;
  float alpha = 0.f;
};

Case chain(const std::string& label, std::vector<Operand> inputs, const std::vector<Step>& steps) {
  std::vector<std::string> names;
  std::vector<int64_t> operand, data_first;
  std::vector<float> alpha;
  std::string text;
  for (const Step& s : steps) {
    names.push_back(s.op);
    operand.push_back(s.operand);
    data_first.push_back(s.data_first);
    alpha.push_back(s.alpha);
    if (!text.empty()) text += ',';
    text += s.op;
  }
  Case c = make_case(
      label + " " + text, std::move(inputs),
      attrs({{"steps", names}, {"operand", operand}, {"data_first", data_first}, {"alpha", alpha}}), 1);
  return c;
}

std::vector<Case> chain_cases(const std::string&, DType dt) {
  const std::vector<int64_t> x{2, 6, 9, 11}, big{2, 16, 181, 191};
  return {
      chain(dims_str(x), {input(dt, x)}, {{"Relu"}}),
      chain(dims_str(x) + " scalar", {input(dt, x), weight(dt, {})}, {{"Add", 1}, {"Relu"}}),
      chain(dims_str(x) + " channel+full", {input(dt, x), weight(dt, {6, 1, 1}), input(dt, x)},
            {{"Mul", 1}, {"Add", 2, 0}, {"Sigmoid"}}),
      chain(dims_str(x) + " every op", {input(dt, x), weight(dt, {1}), input(dt, {1, 6, 1, 1})},
            {{"Sub", 1, 0},
             {"Elu", -1, 1, 0.5f},
             {"Div", 2, 1},
             {"Tanh"},
             {"LeakyRelu", -1, 1, 0.1f},
             {"Neg"},
             {"Abs"},
             {"Sqrt"},
             {"Exp"},
             {"Div", 1, 0}}),
      chain(dims_str(x) + " new activations", {input(dt, x)},
            {{"Selu"}, {"Celu", -1, 1, 0.5f}, {"Mish"}, {"Softsign"}, {"ThresholdedRelu", -1, 1, 0.2f}}),
      chain("[7] scalar first", {input(dt, {7}), input(dt, {})}, {{"Sub", 1, 0}, {"Div", 1, 0}, {"Mul", 1}}),
      chain(dims_str(big) + " channel", {input(dt, big), weight(dt, {16, 1, 1})},
            {{"Mul", 1}, {"Add", 1}, {"Elu", -1, 1, 1.f}}),
  };
}

KILN_SWEEP_CASES(
    {.domain = "kiln", .ops = {"ElementwiseChain"}, .dtypes = float_dtypes(), .cases = chain_cases});

}  // namespace
}  // namespace kiln::sweep
