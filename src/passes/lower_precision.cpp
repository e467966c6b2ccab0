// lower_float_precision: runs a float32 graph in float16 or bfloat16, as TensorRT's --fp16 does. Every fp32
// activation and weight becomes `to`; the graph's inputs and outputs stay fp32 behind inserted Cast nodes, so
// callers bind the same tensors either way. Operands that ONNX types as float regardless of the data type
// (Resize's roi and scales, Upsample's scales) keep fp32.
#include <map>

#include "passes/rewrites.h"

namespace kiln {
namespace {

bool keeps_fp32(const Node& n, size_t slot) {
  const bool onnx = n.domain.empty() || n.domain == "ai.onnx";
  if (onnx && n.op == "Resize") return slot == 1 || slot == 2;
  if (onnx && n.op == "Upsample") return slot == 1;
  return false;
}

// Ops whose float output type comes from an attribute, not from a float input: left alone they would write
// fp32 tensors into an fp16 graph (a ConstantOfShape the fold cap kept, say). Returns whether it changed `n`.
bool lower_attribute_dtype(Node& n, DType to) {
  if (!n.domain.empty() && n.domain != "ai.onnx") return false;
  if (n.op == "ConstantOfShape" || n.op == "Constant") {
    const TensorData* v = n.attrs.get_tensor("value");
    if (n.op == "ConstantOfShape" && !v) {  // the default fill is float32 zero
      n.attrs.set("value", convert_float(TensorData(DType::Float, {1}), to));
      return true;
    }
    if (!v || v->dtype() != DType::Float) return false;
    n.attrs.set("value", convert_float(*v, to));
    return true;
  }
  static const char* const kDtypeAttrOps[] = {"EyeLike",          "RandomNormal",      "RandomUniform",
                                              "RandomNormalLike", "RandomUniformLike", "Bernoulli"};
  for (const char* op : kDtypeAttrOps) {
    if (n.op != op) continue;
    const bool float_by_default = n.op == "RandomNormal" || n.op == "RandomUniform";
    const int64_t dtype =
        n.attrs.get_int("dtype", float_by_default ? static_cast<int64_t>(DType::Float) : -1);
    if (dtype != static_cast<int64_t>(DType::Float)) return false;
    n.attrs.set("dtype", static_cast<int64_t>(to));
    return true;
  }
  return false;
}

}  // namespace

size_t lower_float_precision(Graph& g, DType to) {
  if (to == DType::Float) return 0;
  if (to != DType::Float16 && to != DType::BFloat16)
    throw Error(std::string("lower_float_precision: target must be float16 or bfloat16, not ") +
                dtype_name(to));
  size_t changed = 0;
  std::vector<Tensor*> boundary;  // fp32 graph inputs/outputs that stay fp32
  // Inputs: a Cast right after each fp32 input; its consumers read the cast.
  for (Tensor* in : std::vector<Tensor*>(g.inputs)) {
    if (in->is_constant() || in->dtype != DType::Float || in->uses().empty()) continue;
    Node* cast = g.insert_after(in, "Cast", g.unique_name(in->name + "_to_lowp"));
    cast->attrs.set("to", static_cast<int64_t>(to));
    cast->outputs()[0]->dtype = to;
    cast->outputs()[0]->shape = in->shape;
    boundary.push_back(in);
  }
  // Outputs: the producer writes a low-precision tensor, a Cast writes the fp32 output under its own name.
  for (Tensor* out : std::vector<Tensor*>(g.outputs)) {
    Node* producer = out->producer();
    if (!producer || out->dtype != DType::Float) continue;
    if (std::find(boundary.begin(), boundary.end(), out) != boundary.end()) continue;
    Variable* low = g.add_variable(g.unique_name(out->name + "_lowp"), to, out->shape);
    for (auto [node, slot] : std::vector<std::pair<Node*, size_t>>(out->uses())) node->set_input(slot, low);
    for (size_t k = 0; k < producer->outputs().size(); ++k)
      if (producer->outputs()[k] == out) producer->set_output(k, low);
    Node* cast = g.add_node("Cast", {low}, {out}, g.unique_name(out->name + "_to_fp32"));
    cast->attrs.set("to", static_cast<int64_t>(DType::Float));
    boundary.push_back(out);
  }
  // Activations.
  for (Tensor* t : g.all_tensors()) {
    if (t->is_constant() || t->dtype != DType::Float) continue;
    if (std::find(boundary.begin(), boundary.end(), t) != boundary.end()) continue;
    t->dtype = to;
    ++changed;
  }
  // Weights (a converted copy per constant, shared by its consumers) and Casts to float inside the graph.
  std::map<Constant*, Constant*> lowered;
  for (const auto& node : g.nodes()) {
    if ((node->domain.empty() || node->domain == "ai.onnx") && node->op == "Cast" &&
        node->attrs.get_int("to", 0) == static_cast<int64_t>(DType::Float) &&
        std::find(boundary.begin(), boundary.end(), node->outputs()[0]) == boundary.end())
      node->attrs.set("to", static_cast<int64_t>(to));
    if (std::find(boundary.begin(), boundary.end(), node->outputs()[0]) == boundary.end())
      changed += lower_attribute_dtype(*node, to);
    for (size_t k = 0; k < node->inputs().size(); ++k) {
      auto* c = dynamic_cast<Constant*>(node->inputs()[k]);
      if (!c || c->dtype != DType::Float || keeps_fp32(*node, k)) continue;
      Constant*& low = lowered[c];
      if (!low) {
        low = g.add_constant(g.unique_name(c->name + "_lowp"), convert_float(c->values(), to));
        ++changed;
      }
      node->set_input(k, low);
    }
  }
  g.cleanup();
  infer_shapes(g);  // re-derives every dtype and checks the lowered graph is consistent
  return changed;
}

}  // namespace kiln
