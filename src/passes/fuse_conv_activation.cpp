// fuse_conv_activation: Conv → activation (the Conv's output read only by it) becomes one kiln.FusedConv, a
// Conv with an element-wise post-op that backends apply in the convolution's epilogue.
#include "ops/activation.h"
#include "passes/pattern.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

namespace fc = internal_ops::fused_conv;

// The activations every FusedConv kernel applies (ops/activation.h: fusable_into_conv).
bool is_conv_activation(const Node* n) {
  const std::optional<ops::ActivationParams> a = ops::activation_of(*n);
  return n->outputs().size() == 1 && a && ops::fusable_into_conv(a->act);
}

}  // namespace

size_t fuse_conv_activation(Graph& g) {
  std::vector<std::pair<Node*, Node*>> matches;
  for (const auto& up : g.nodes()) {
    Node* conv = up.get();
    if (conv->op != "Conv" || !pattern::is_onnx(conv) || conv->outputs().size() != 1) continue;
    const std::vector<Node*> chain =
        pattern::match_chain(g, conv, {{"Conv"}, {.op = nullptr, .accepts = is_conv_activation}});
    if (!chain.empty()) matches.emplace_back(chain[0], chain[1]);
  }
  for (auto [conv, act] : matches) {
    Attributes attrs = conv->attrs;
    std::vector<std::string> names = pattern::fused_names(conv);
    names.push_back(pattern::name_of(act));
    ops::set_fused_activation(attrs, ops::kFusedConvActivation, *ops::activation_of(*act));
    attrs.set(internal_ops::kFusedNames, std::move(names));
    const std::vector<Tensor*> inputs = conv->inputs();
    Tensor* out = act->output(0);
    const std::string name = conv->name;
    Node* fused = g.replace_nodes({conv, act}, fc::kOp, inputs, {out}, name, internal_ops::kDomain);
    fused->attrs = std::move(attrs);
  }
  if (!matches.empty()) {
    pattern::use_kiln_domain(g);
    g.toposort();  // replace_nodes appends the fused node at the end
  }
  return matches.size();
}

}  // namespace kiln
