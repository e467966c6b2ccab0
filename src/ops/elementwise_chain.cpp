// kiln.ElementwiseChain (domain "kiln"): a chain of element-wise ops applied to input 0, produced by the
// fuse_elementwise_chains pass. Inputs: [x, extra operands...]. Attributes, one entry per step:
//   steps      (strings) an activation of ops/activation.h (Relu, Elu, Sigmoid, Tanh, LeakyRelu, ...), or
//                        the arithmetic Neg, Abs, Sqrt, Exp (unary), Add, Sub, Mul, Div (binary)
//   operand    (ints)    input index of a binary step's other operand; -1 for a unary step
//   data_first (ints)    1 if the chain value is the left operand (matters for Sub/Div), else 0
//   alpha      (floats)  an activation step's alpha (Elu's, LeakyRelu's, ...); 0 for the others
//   beta       (floats, optional) an activation step's second parameter (HardSigmoid's beta); absent: the
//                        ONNX defaults
//   kiln_fused (strings) names of the original nodes (informational)
// The output has input 0's dtype and shape (operands never broadcast the data to a larger shape). The
// reference kernel runs each member op's own reference kernel on a scratch node, so the fused node computes
// exactly what the unfused chain did.
#include "ops/activation.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

bool is_unary(const std::string& op) {
  return is_activation(op) || op == "Neg" || op == "Abs" || op == "Sqrt" || op == "Exp";
}
bool is_binary(const std::string& op) { return op == "Add" || op == "Sub" || op == "Mul" || op == "Div"; }

struct Plan {
  std::vector<std::string> steps;
  std::vector<int64_t> operand, data_first;
  std::vector<float> alpha, beta;
};

template <class Ctx>
Plan read_plan(const Ctx& ctx, size_t num_inputs) {
  const Attributes& a = ctx.node.attrs;
  Plan p;
  const Attribute* steps = a.find("steps");
  const auto* names = steps ? std::get_if<std::vector<std::string>>(&steps->value) : nullptr;
  if (!names || names->empty()) ctx.fail("attribute 'steps' must be a non-empty list of strings");
  p.steps = *names;
  p.operand = a.get_ints("operand");
  p.data_first = a.get_ints("data_first");
  p.alpha = a.get_floats("alpha");
  const size_t n = p.steps.size();
  if (a.has("beta")) {
    p.beta = a.get_floats("beta");
  } else {
    for (const std::string& s : p.steps) {
      const std::optional<Activation> act = activation_of(s);
      p.beta.push_back(act ? activation_info(*act).beta : 0.f);
    }
  }
  if (p.operand.size() != n || p.data_first.size() != n || p.alpha.size() != n || p.beta.size() != n)
    ctx.fail("attributes 'operand', 'data_first', 'alpha' and 'beta' must have one entry per step (" +
             std::to_string(n) + ")");
  for (size_t k = 0; k < n; ++k) {
    const std::string& s = p.steps[k];
    if (is_unary(s)) {
      if (p.operand[k] != -1) ctx.fail("unary step " + std::to_string(k) + " (" + s + ") must have operand -1");
    } else if (is_binary(s)) {
      if (p.operand[k] < 0 || p.operand[k] >= static_cast<int64_t>(num_inputs))
        ctx.fail("step " + std::to_string(k) + " (" + s + ") has operand " + std::to_string(p.operand[k]) +
                 ", not an input index");
    } else {
      ctx.fail("unsupported step '" + s + "'");
    }
  }
  return p;
}

void infer_chain(InferContext& ctx) {
  read_plan(ctx, ctx.num_inputs());
  set_out(ctx, 0, ctx.input(0).dtype, in_shape(ctx, 0));
}

void chain_kernel(KernelContext& ctx) {
  const Plan p = read_plan(ctx, ctx.in.size());
  TensorData cur = ctx.input(0);
  for (size_t k = 0; k < p.steps.size(); ++k) {
    const std::string& op = p.steps[k];
    const OpSchema* schema = find_op("", op);
    if (!schema) ctx.fail("step op " + op + " is not registered");
    // A one-node scratch graph carries the step's attributes; the member op's own reference computes it.
    Graph scratch;
    std::vector<Tensor*> ins{scratch.add_variable("a")};
    if (is_binary(op)) ins.push_back(scratch.add_variable("b"));
    Node* n = scratch.add_node(op, ins, {scratch.add_variable("y")}, "step");
    if (const std::optional<Activation> act = activation_of(op))
      set_activation_attributes(n->attrs, {*act, p.alpha[k], p.beta[k]});
    KernelContext s(*n, 0);  // 0: latest opset; these ops have not changed meaning for plain operands
    if (is_binary(op)) {
      const TensorData* other = &ctx.input(static_cast<size_t>(p.operand[k]));
      s.in = p.data_first[k] ? std::vector<const TensorData*>{&cur, other} : std::vector<const TensorData*>{other, &cur};
    } else {
      s.in = {&cur};
    }
    run_reference(*schema, s);
    if (s.out[0].dims() != ctx.input(0).dims())
      ctx.fail("step " + std::to_string(k) + " (" + op + ") changes the data's shape");
    cur = std::move(s.out[0]);
  }
  ctx.out[0] = std::move(cur);
}

KILN_REGISTER_OP({.op = internal_ops::elementwise_chain::kOp, .domain = internal_ops::kDomain, .min_inputs = 1, .max_inputs = kVariadic,
                  .infer = infer_chain, .reference = chain_kernel});

}  // namespace
}  // namespace kiln::ops
