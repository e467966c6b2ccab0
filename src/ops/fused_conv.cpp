// kiln.FusedConv (domain "kiln"): Conv followed by an optional element-wise activation, produced by the
// fuse_conv_activation pass. Attributes: every Conv attribute, plus
//   kiln_post_op    (string) "Relu", "Elu" or "Sigmoid"; absent = plain Conv
//   kiln_post_alpha (float)  Elu's alpha (default 1)
//   kiln_fused      (strings) names of the original nodes (informational)
// Inference and the reference kernel delegate to Conv's and to the activation's own reference kernel, so the
// fused node computes exactly what the unfused pair did and the oracle for optimized kernels stays intact.
#include "ops/util.h"

namespace kiln::ops {
namespace {

const OpSchema& conv_schema() {
  static const OpSchema* s = find_op("", "Conv");
  if (!s) throw Error("kiln.FusedConv: the Conv schema is not registered");
  return *s;
}

void check_post_op(const Node& node, const auto& fail) {
  const std::string post = node.attrs.get_string("kiln_post_op", "");
  if (!post.empty() && post != "Relu" && post != "Elu" && post != "Sigmoid")
    fail("unsupported kiln_post_op '" + post + "' (Relu, Elu or Sigmoid)");
}

void infer_fused_conv(InferContext& ctx) {
  check_post_op(ctx.node, [&](const std::string& m) { ctx.fail(m); });
  // Conv's inference reads only the node's Conv attributes, which FusedConv carries unchanged.
  InferContext conv(ctx.node, ctx.opset);
  conv.in = ctx.in;
  conv.out.resize(ctx.out.size());
  infer_node(conv_schema(), conv);
  ctx.out = std::move(conv.out);
}

void fused_conv_kernel(KernelContext& ctx) {
  check_post_op(ctx.node, [&](const std::string& m) { ctx.fail(m); });
  run_reference(conv_schema(), ctx);
  const std::string post = ctx.node.attrs.get_string("kiln_post_op", "");
  if (post.empty()) return;
  // Run the activation's own reference on the Conv result (a one-node scratch graph carries its attributes).
  Graph scratch;
  Node* act = scratch.add_node(post, {scratch.add_variable("x")}, {scratch.add_variable("y")}, "post");
  if (post == "Elu") act->attrs.set("alpha", ctx.node.attrs.get_float("kiln_post_alpha", 1.0f));
  const OpSchema* schema = find_op("", post);
  if (!schema) ctx.fail("activation " + post + " is not registered");
  KernelContext a(*act, 0);  // 0: latest opset; these activations have not changed meaning
  a.in = {&ctx.out[0]};
  run_reference(*schema, a);
  ctx.out[0] = std::move(a.out[0]);
}

KILN_REGISTER_OP({.op = "FusedConv", .domain = "kiln", .min_inputs = 2, .max_inputs = 3, .infer = infer_fused_conv,
                  .reference = fused_conv_kernel});

}  // namespace
}  // namespace kiln::ops
