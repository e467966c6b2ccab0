// kiln.FusedConv (domain "kiln"): Conv followed by an optional element-wise activation, produced by the
// fuse_conv_activation pass. Attributes: every Conv attribute, plus
//   kiln_post_op    (string) an activation of ops/activation.h (Relu, Elu, Sigmoid, ...); absent = plain Conv
//   kiln_post_alpha (float)  its alpha, kiln_post_beta (float) its second parameter, where it has them
//                            (absent: the ONNX defaults, e.g. Elu's alpha 1)
//   kiln_fused      (strings) names of the original nodes (informational)
// Inference and the reference kernel delegate to Conv's and to the activation's own reference kernel, so the
// fused node computes exactly what the unfused pair did and the oracle for optimized kernels stays intact.
#include "ops/activation.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

const OpSchema& conv_schema() {
  static const OpSchema* s = find_op("", "Conv");
  if (!s) throw Error("kiln.FusedConv: the Conv schema is not registered");
  return *s;
}

ActivationParams post_op(const Node& node, const auto& fail) {
  const std::optional<ActivationParams> post = fused_activation(node.attrs, kFusedConvActivation);
  if (!post)
    fail("unsupported kiln_post_op '" + node.attrs.get_string(internal_ops::fused_conv::kPostOp, "") + "' (not an activation)");
  return *post;
}

void infer_fused_conv(InferContext& ctx) {
  post_op(ctx.node, [&](const std::string& m) { ctx.fail(m); });
  // Conv's inference reads only the node's Conv attributes, which FusedConv carries unchanged.
  InferContext conv(ctx.node, ctx.opset);
  conv.in = ctx.in;
  conv.out.resize(ctx.out.size());
  infer_node(conv_schema(), conv);
  ctx.out = std::move(conv.out);
}

void fused_conv_kernel(KernelContext& ctx) {
  const ActivationParams post = post_op(ctx.node, [&](const std::string& m) { ctx.fail(m); });
  run_reference(conv_schema(), ctx);
  if (post.act == Activation::None) return;
  // Run the activation's own reference on the Conv result (a one-node scratch graph carries its attributes).
  const std::string op = activation_name(post.act);
  Graph scratch;
  Node* act = scratch.add_node(op, {scratch.add_variable("x")}, {scratch.add_variable("y")}, "post");
  set_activation_attributes(act->attrs, post);
  const OpSchema* schema = find_op("", op);
  if (!schema) ctx.fail("activation " + op + " is not registered");
  KernelContext a(*act, 0);  // 0: latest opset; these activations have not changed meaning
  a.in = {&ctx.out[0]};
  run_reference(*schema, a);
  ctx.out[0] = std::move(a.out[0]);
}

KILN_REGISTER_OP({.op = internal_ops::fused_conv::kOp, .domain = internal_ops::kDomain, .min_inputs = 2, .max_inputs = 3, .infer = infer_fused_conv,
                  .reference = fused_conv_kernel});

}  // namespace
}  // namespace kiln::ops
