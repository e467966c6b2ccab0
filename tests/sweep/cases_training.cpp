// kiln_backend_sweep cases: the ai.onnx.preview.training optimizers (Adagrad, Momentum standard and
// nesterov, Adam with and without norm_coefficient_post) with R and T as graph inputs (T from 0, the
// first-step rules, up), R and T as constants of other dtypes, one to three optimized tensors per node of
// different sizes (one large enough for many blocks, odd tails); and BatchNormalization with training_mode =
// 1 (batch statistics; all three outputs or only Y; ranks 2 to 5; channels large enough for block-long
// strides; data whose mean dwarfs its spread; float32 statistics for 16-bit data).
#include <string>

#include "cases_util.h"

namespace kiln::sweep {
namespace {

const Fill kPositive{0.1, 2.0, true};  // Adagrad's and Adam's squared-gradient states

std::vector<Case> optimizer_cases(const std::string& op, DType dt) {
  const size_t states = op == "Adam" ? 2 : 1;
  const Operand rate = input(DType::Float, {}, Fill{0.01, 0.5, true});
  const Operand step = input(DType::Int64, {}, Fill{.lo = 0, .hi = 6, .whole = true});
  // R, T, then the n tensors X, the n gradients and the n of each state; outputs the n X and the states.
  auto make = [&](const std::string& label, const std::vector<std::vector<int64_t>>& shapes, Attributes a,
                  Operand r, Operand t) {
    std::vector<Operand> ops{std::move(r), std::move(t)};
    for (size_t g = 0; g < 2 + states; ++g)
      for (const auto& s : shapes)
        ops.push_back(input(dt, s, g >= 2 && op != "Momentum" ? kPositive : Fill{}));
    std::string dims;
    for (const auto& s : shapes) dims += dims_str(s);
    Case c = make_case(label + " " + dims, std::move(ops), std::move(a), 1);
    c.outputs = shapes.size() * (1 + states);
    return c;
  };
  Attributes base;
  if (op == "Adagrad")
    base = attrs({{"decay_factor", 0.1f}, {"epsilon", 1e-5f}, {"norm_coefficient", 1e-3f}});
  else if (op == "Momentum")
    base = attrs(
        {{"alpha", 0.95f}, {"beta", 0.85f}, {"mode", std::string("standard")}, {"norm_coefficient", 1e-3f}});
  else
    base = attrs({{"alpha", 0.95f}, {"beta", 0.1f}, {"epsilon", 1e-7f}, {"norm_coefficient", 1e-3f}});
  std::vector<Case> out{
      make("one", {{2}}, base, rate, step),
      make("two", {{1}, {3, 5}}, base, rate, step),
      make("three", {{257}, {2, 3, 4}, {1000, 301}}, base, rate, step),
      make("T=0", {{33}, {7}}, base, rate, scalar(DType::Int64, 0)),
      make("R double [1], T int32 [1]", {{5, 9}}, base, scalar(DType::Double, 0.05, false),
           scalar(DType::Int32, 3, false)),
  };
  if (op == "Momentum") {
    Attributes nesterov = base;
    nesterov.set("mode", std::string("nesterov"));
    nesterov.set("beta", 1.0f);
    nesterov.set("norm_coefficient", 1e-2f);
    out.push_back(make("nesterov", {{2}, {65, 3}}, nesterov, rate, step));
    out.push_back(make("nesterov T=0", {{40}}, nesterov, rate, scalar(DType::Int64, 0)));
  } else {
    Attributes defaults;  // every attribute at its default
    out.push_back(make("defaults", {{3, 70}}, defaults, rate, step));
  }
  if (op == "Adam") {
    Attributes post = base;
    post.set("norm_coefficient_post", 0.05f);
    out.push_back(make("norm_coefficient_post", {{4, 33}, {9}}, post, rate, step));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "ai.onnx.preview.training",
                  .ops = {"Adagrad", "Momentum", "Adam"},
                  .dtypes = {DType::Float, DType::Float16, DType::BFloat16, DType::Double},
                  .cases = optimizer_cases});

std::vector<Case> batch_norm_training_cases(const std::string&, DType dt) {
  const Fill positive{0.2, 2.0, true}, shifted{100.0, 101.0, true};
  auto make = [&](const std::vector<int64_t>& x, size_t outputs, Attributes a, DType stats = DType::Undefined,
                  Fill fill = {}) {
    const DType p = stats == DType::Undefined ? dt : stats;
    const std::vector<int64_t> c{x[1]};
    a.set("training_mode", int64_t{1});
    Case k = make_case(
        dims_str(x) + " outputs " + std::to_string(outputs) +
            (stats == DType::Undefined ? "" : " float32 params") + (fill.lo == shifted.lo ? " shifted" : ""),
        {input(dt, x, fill), input(p, c), input(p, c), input(p, c), input(p, c, positive)}, std::move(a), 15);
    k.outputs = outputs;
    return k;
  };
  std::vector<Case> out{
      make({2, 3, 4, 5}, 3, attrs({{"epsilon", 1e-2f}})),
      make({2, 3, 4, 5}, 1, {}),
      make({4, 6}, 3, attrs({{"momentum", 0.6f}})),
      make({3, 5, 17}, 2, {}),
      make({1, 3, 4, 5, 6}, 3, attrs({{"epsilon", 1e-3f}})),
      make({16, 4, 33, 35}, 3, {}),
      make({2, 300, 7, 3}, 3, attrs({{"momentum", 0.99f}})),
      make({8, 3, 40, 41}, 3, {}, DType::Undefined, shifted),
  };
  if (dt != DType::Float) out.push_back(make({2, 4, 5, 5}, 3, {}, DType::Float));
  return out;
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"BatchNormalization"},
                  .dtypes = float_dtypes(),
                  .cases = batch_norm_training_cases});

}  // namespace
}  // namespace kiln::sweep
