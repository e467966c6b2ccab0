// The rewrite pipeline: what the builder runs, in order, and what --skipRewrites can name.
#include "ops/internal_ops.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

// Logs why a rewrite left each match alone (verbose builds) and passes its count through.
size_t with_reasons(const RewriteContext& c, const char* what, const std::vector<NotFolded>& rejected, size_t n) {
  if (c.verbose)
    for (const NotFolded& r : rejected) c.log(std::string(what) + " not fused at " + r.node + ": " + r.reason);
  return n;
}
size_t run_groupnorm(Graph& g, const RewriteContext& c) {
  std::vector<NotFolded> rejected;
  const size_t n = fuse_groupnorm(g, &rejected);
  return with_reasons(c, "GroupNorm", rejected, n);
}
size_t run_layernorm(Graph& g, const RewriteContext& c) {
  std::vector<NotFolded> rejected;
  const size_t n = fuse_layernorm(g, &rejected);
  return with_reasons(c, "LayerNorm", rejected, n);
}

size_t run_attention(Graph& g, const RewriteContext& c) {
  std::vector<NotFolded> rejected;
  const size_t n = fuse_attention(g, &rejected);
  return with_reasons(c, "Attention", rejected, n);
}

template <size_t (*rewrite)(Graph&, const PropagateOptions&, std::vector<NotFolded>*)>
size_t run_control_flow(Graph& g, const RewriteContext& c) {
  std::vector<NotFolded> rejected;
  const size_t n = rewrite(g, c.fold, &rejected);
  return with_reasons(c, "control flow", rejected, n);
}

size_t run_pad_into_conv(Graph& g, const RewriteContext&) {
  return fuse_pad_into_conv(g);
}
size_t run_batchnorm_into_conv(Graph& g, const RewriteContext&) {
  return fuse_batchnorm_into_conv(g);
}
size_t run_conv_activation(Graph& g, const RewriteContext&) {
  return fuse_conv_activation(g);
}
size_t run_elementwise(Graph& g, const RewriteContext&) {
  return fuse_elementwise_chains(g);
}

}  // namespace

const std::vector<Rewrite>& rewrite_pipeline() {
  static const std::vector<Rewrite> pipeline = {
      // First: the inlined nodes are plain layers the fusions below may take.
      {"inline_if", "", "If -> both branches + Where", run_control_flow<inline_if>, "If"},
      {"unroll_scan", "", "Scan -> the body per iteration", run_control_flow<unroll_scan>, "Scan"},
      {"groupnorm", internal_ops::group_norm::kOp,
       "PyTorch's GroupNorm subgraph (+ Relu/Elu) -> kiln.GroupNorm", run_groupnorm},
      {"layernorm", internal_ops::layer_norm::kOp,
       "ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div[/Mul/Add] -> LayerNormalization (kiln's before opset 17)",
       run_layernorm},
      {"attention", internal_ops::attention::kOp,
       "MatMul(Q, Kt) [*scale] [+mask] -> Softmax -> MatMul(V) -> kiln.Attention", run_attention},
      {"pad_into_conv", "", "zero Pad on spatial axes -> the Conv's own pads", run_pad_into_conv},
      {"batchnorm_into_conv", "", "Conv -> BatchNormalization -> one Conv (weights rescaled, bias added)",
       run_batchnorm_into_conv},
      {"conv_activation", internal_ops::fused_conv::kOp, "Conv -> Relu/Elu/Sigmoid -> kiln.FusedConv",
       run_conv_activation},
      {"elementwise", internal_ops::elementwise_chain::kOp,
       "chains of element-wise ops -> one kiln.ElementwiseChain pass over memory", run_elementwise},
  };
  return pipeline;
}

}  // namespace kiln
