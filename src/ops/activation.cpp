// The host side of ops/activation.h: activations by ONNX op name and in node attributes.
#include "ops/activation.h"

#include <variant>

#include "kiln/graph.h"

namespace kiln::ops {

std::optional<Activation> activation_of(const std::string& op) {
  for (const ActivationInfo& info : kActivations)
    if (info.act != Activation::None && op == info.op) return info.act;
  return std::nullopt;
}

bool is_activation(const std::string& op) {
  return activation_of(op).has_value();
}

std::optional<ActivationParams> activation_of(const Node& node) {
  if (!(node.domain.empty() || node.domain == "ai.onnx")) return std::nullopt;
  const std::optional<Activation> act = activation_of(node.op);
  if (!act) return std::nullopt;
  const ActivationInfo& info = activation_info(*act);
  for (const auto& [name, attr] : node.attrs.items()) {
    const bool known =
        (*info.alpha_attr && name == info.alpha_attr) || (*info.beta_attr && name == info.beta_attr);
    if (!known || !std::holds_alternative<float>(attr.value)) return std::nullopt;
  }
  return activation_params(*act, node.attrs);
}

ActivationParams activation_params(Activation a, const Attributes& attrs) {
  const ActivationInfo& info = activation_info(a);
  ActivationParams p{a, info.alpha, info.beta};
  if (*info.alpha_attr) p.alpha = attrs.get_float(info.alpha_attr, info.alpha);
  if (*info.beta_attr) p.beta = attrs.get_float(info.beta_attr, info.beta);
  return p;
}

void set_activation_attributes(Attributes& attrs, const ActivationParams& p) {
  const ActivationInfo& info = activation_info(p.act);
  if (*info.alpha_attr) attrs.set(info.alpha_attr, p.alpha);
  if (*info.beta_attr) attrs.set(info.beta_attr, p.beta);
}

std::optional<ActivationParams> fused_activation(const Attributes& attrs, const FusedActivationKeys& keys) {
  const std::string op = attrs.get_string(keys.op, "");
  if (op.empty()) return ActivationParams{};
  const std::optional<Activation> act = activation_of(op);
  if (!act) return std::nullopt;
  // Only the parameters the activation has: a stray kiln_post_alpha on a Relu must not make it leaky.
  const ActivationInfo& info = activation_info(*act);
  ActivationParams p{*act, info.alpha, info.beta};
  if (*info.alpha_attr) p.alpha = attrs.get_float(keys.alpha, info.alpha);
  if (*info.beta_attr) p.beta = attrs.get_float(keys.beta, info.beta);
  return p;
}

void set_fused_activation(Attributes& attrs, const FusedActivationKeys& keys, const ActivationParams& p) {
  if (p.act == Activation::None) return;
  const ActivationInfo& info = activation_info(p.act);
  attrs.set(keys.op, std::string(info.op));
  if (*info.alpha_attr) attrs.set(keys.alpha, p.alpha);
  if (*info.beta_attr) attrs.set(keys.beta, p.beta);
}

}  // namespace kiln::ops
