// Shared by the per-run executors (per_run.h).
#include "device/per_run.h"

#include "ops/op.h"

namespace kiln::per_run {

bool held_as_value(DType t) {
  return t == DType::String || dtype_is_container(t);
}

std::optional<std::vector<backend::LayerDesc::Operand>> infer_outputs(const Node& node, int64_t opset,
                                                                      const std::vector<Operand>& inputs) {
  const ops::OpSchema* schema = ops::find_op(node.domain, node.op);
  if (!schema) return std::nullopt;
  ops::InferContext ctx(node, opset);
  for (const Operand& in : inputs) {
    ops::InputInfo info;
    if (in.present) info = {in.dtype, make_shape(in.dims), in.value, true, nullptr};
    ctx.in.push_back(info);
  }
  ctx.out.resize(node.outputs().size());
  ops::infer_node(*schema, ctx);
  std::vector<backend::LayerDesc::Operand> outs;
  for (size_t k = 0; k < node.outputs().size(); ++k) {
    backend::LayerDesc::Operand o;
    if (node.output(k)) {
      const ops::OutputInfo& info = ctx.out[k];
      if (info.dtype == DType::Undefined || !info.shape || !is_static(*info.shape)) return std::nullopt;
      o = {info.dtype, static_dims(*info.shape), nullptr, true};
    }
    outs.push_back(o);
  }
  return outs;
}

std::string kernel_key(const std::vector<Operand>& inputs, const std::vector<bool>& constant,
                       const std::vector<backend::LayerDesc::Operand>& outputs) {
  std::string key;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Operand& in = inputs[i];
    key += in.present ? std::to_string(static_cast<int>(in.dtype)) + ":" : "-";
    for (int64_t d : in.dims) key += std::to_string(d) + ",";
    if (i < constant.size() && constant[i] && in.value)
      key.append("=").append(static_cast<const char*>(in.value->raw()), in.value->nbytes());
    key += ";";
  }
  key += "->";
  for (const backend::LayerDesc::Operand& o : outputs) {
    for (int64_t d : o.dims) key += std::to_string(d) + ",";
    key += ";";
  }
  return key;
}

}  // namespace kiln::per_run
