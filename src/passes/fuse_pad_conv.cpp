// Convolution fusions run by the builder after constant folding:
//   fuse_pad_into_conv:   zero Pad on spatial axes → Conv's own pads (PyTorch exports ConstantPad2d + Conv).
//   fuse_conv_activation: Conv → Relu/Elu/Sigmoid  → kiln.FusedConv (Conv with an eltwise post-op).
// Both record the original node names in the "kiln_fused" strings attribute of the surviving node so the
// builder can report them. Anything not provably equivalent is left alone.
#include <algorithm>
#include <cstring>

#include "kiln/passes.h"

namespace kiln {
namespace {

bool is_graph_output(const Graph& g, const Tensor* t) {
  return std::find(g.outputs.begin(), g.outputs.end(), t) != g.outputs.end();
}

std::string name_of(const Node* n) { return n->name.empty() ? n->op : n->name; }

// The node's kiln_fused list, or just its own name when it has none yet.
std::vector<std::string> fused_names(const Node* n) {
  if (const Attribute* a = n->attrs.find("kiln_fused"))
    if (const auto* v = std::get_if<std::vector<std::string>>(&a->value)) return *v;
  return {name_of(n)};
}

// The only consumer of `t` when it has exactly one use, reading it as input 0, and is not a graph output.
Node* sole_consumer(const Graph& g, const Tensor* t) {
  if (!t || is_graph_output(g, t) || t->uses().size() != 1 || t->uses()[0].second != 0) return nullptr;
  return t->uses()[0].first;
}

const TensorData* constant_value(const Tensor* t) {
  const auto* c = dynamic_cast<const Constant*>(t);
  return c ? &c->values() : nullptr;
}

std::optional<std::vector<int64_t>> int_list(const Tensor* t) {
  const TensorData* v = constant_value(t);
  if (!v || v->rank() != 1) return std::nullopt;
  std::vector<int64_t> out(static_cast<size_t>(v->numel()));
  if (v->dtype() == DType::Int64) std::copy_n(v->data<int64_t>(), out.size(), out.begin());
  else if (v->dtype() == DType::Int32) std::copy_n(v->data<int32_t>(), out.size(), out.begin());
  else return std::nullopt;
  return out;
}

// Full pads of a constant-mode, zero-valued Pad (rank begins, then rank ends), or nullopt if the Pad is
// anything else or not fully known.
std::optional<std::vector<int64_t>> zero_pad_amounts(const Graph& g, const Node* pad, size_t rank) {
  if (pad->attrs.get_string("mode", "constant") != "constant") return std::nullopt;
  int64_t opset = g.opset("");
  if (opset <= 0) opset = 18;  // no import: read as the latest opset, as the op registry does
  std::vector<int64_t> pads;
  if (opset < 11) {
    if (pad->attrs.get_float("value", 0.0f) != 0.0f) return std::nullopt;
    pads = pad->attrs.get_ints("pads");
  } else {
    auto p = int_list(pad->input(1));
    if (!p) return std::nullopt;
    pads = *p;
    if (Tensor* value = pad->input(2)) {
      // Zero means all-zero bytes: this also rejects -0.0, which is not what Conv's implicit padding adds.
      const TensorData* v = constant_value(value);
      if (!v || v->numel() != 1) return std::nullopt;
      const auto* bytes = static_cast<const unsigned char*>(v->raw());
      if (std::any_of(bytes, bytes + v->nbytes(), [](unsigned char b) { return b != 0; })) return std::nullopt;
    }
    if (Tensor* axes_t = pad->input(3)) {  // opset 18: pads apply to these axes only
      auto axes = int_list(axes_t);
      if (!axes || pads.size() != 2 * axes->size()) return std::nullopt;
      std::vector<int64_t> full(2 * rank, 0);
      std::vector<bool> seen(rank, false);
      for (size_t j = 0; j < axes->size(); ++j) {
        int64_t a = (*axes)[j];
        if (a < 0) a += static_cast<int64_t>(rank);
        if (a < 0 || a >= static_cast<int64_t>(rank) || seen[a]) return std::nullopt;
        seen[a] = true;
        full[a] = pads[j];
        full[a + rank] = pads[j + axes->size()];
      }
      pads = full;
    }
  }
  if (pads.size() != 2 * rank) return std::nullopt;
  return pads;
}

}  // namespace

size_t fuse_pad_into_conv(Graph& g) {
  struct Match {
    Node *pad, *conv;
    std::vector<int64_t> conv_pads;
  };
  std::vector<Match> matches;
  for (const auto& up : g.nodes()) {
    Node* pad = up.get();
    if (pad->op != "Pad" || !(pad->domain.empty() || pad->domain == "ai.onnx")) continue;
    if (pad->outputs().size() != 1) continue;
    Node* conv = sole_consumer(g, pad->output(0));
    if (!conv || conv->op != "Conv" || !(conv->domain.empty() || conv->domain == "ai.onnx")) continue;
    if (conv->attrs.get_string("auto_pad", "NOTSET") != "NOTSET") continue;
    const Tensor* w = conv->input(1);
    if (!w || !w->shape || w->shape->size() < 3) continue;
    const size_t rank = w->shape->size(), n = rank - 2;
    auto pads = zero_pad_amounts(g, pad, rank);
    if (!pads) continue;
    // Batch and channel axes must be untouched; negative pads crop, which Conv's pads cannot express.
    if ((*pads)[0] || (*pads)[1] || (*pads)[rank] || (*pads)[rank + 1]) continue;
    if (std::any_of(pads->begin(), pads->end(), [](int64_t p) { return p < 0; })) continue;
    auto conv_pads = conv->attrs.get_ints("pads", std::vector<int64_t>(2 * n, 0));
    if (conv_pads.size() != 2 * n) continue;
    for (size_t i = 0; i < n; ++i) {
      conv_pads[i] += (*pads)[2 + i];
      conv_pads[n + i] += (*pads)[rank + 2 + i];
    }
    matches.push_back({pad, conv, std::move(conv_pads)});
  }
  for (Match& m : matches) {
    std::vector<std::string> names = fused_names(m.conv);
    names.insert(names.begin(), name_of(m.pad));
    m.conv->attrs.set("pads", std::move(m.conv_pads));
    m.conv->attrs.set("kiln_fused", std::move(names));
    g.bypass(m.pad);  // the Conv now reads the Pad's input
  }
  return matches.size();
}

size_t fuse_conv_activation(Graph& g) {
  std::vector<std::pair<Node*, Node*>> matches;
  for (const auto& up : g.nodes()) {
    Node* conv = up.get();
    if (conv->op != "Conv" || !(conv->domain.empty() || conv->domain == "ai.onnx")) continue;
    if (conv->outputs().size() != 1) continue;
    Node* act = sole_consumer(g, conv->output(0));
    if (!act || !(act->domain.empty() || act->domain == "ai.onnx") || act->outputs().size() != 1) continue;
    if (act->op != "Relu" && act->op != "Elu" && act->op != "Sigmoid") continue;
    matches.emplace_back(conv, act);
  }
  for (auto [conv, act] : matches) {
    Attributes attrs = conv->attrs;
    std::vector<std::string> names = fused_names(conv);
    names.push_back(name_of(act));
    attrs.set("kiln_post_op", act->op);
    if (act->op == "Elu") attrs.set("kiln_post_alpha", act->attrs.get_float("alpha", 1.0f));
    attrs.set("kiln_fused", std::move(names));
    const std::vector<Tensor*> inputs = conv->inputs();
    Tensor* out = act->output(0);
    const std::string name = conv->name;
    Node* fused = g.replace_nodes({conv, act}, "FusedConv", inputs, {out}, name, "kiln");
    fused->attrs = std::move(attrs);
  }
  if (!matches.empty()) {
    if (g.opset("kiln") == 0) g.set_opset("kiln", 1);  // exported engines must import the kiln domain
    g.toposort();  // replace_nodes appends the fused node at the end
  }
  return matches.size();
}

}  // namespace kiln
