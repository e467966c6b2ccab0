// fuse_pad_into_conv: a zero, constant-mode Pad on spatial axes becomes the Conv's own pads (PyTorch exports
// ConstantPad2d + Conv). Run after constant folding (pad amounts are then constants). The Conv records the
// Pad's name in kiln_fused. Anything not provably equivalent is left alone.
#include <algorithm>

#include "kiln/passes.h"
#include "passes/pattern.h"

namespace kiln {
namespace {

using pattern::constant_value;
using pattern::int_list;

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
      if (std::any_of(bytes, bytes + v->nbytes(), [](unsigned char b) { return b != 0; }))
        return std::nullopt;
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
    if (pad->op != "Pad" || !pattern::is_onnx(pad) || pad->outputs().size() != 1) continue;
    const std::vector<Node*> chain = pattern::match_chain(g, pad, {{"Pad"}, {"Conv"}});
    if (chain.empty()) continue;
    Node* conv = chain[1];
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
    std::vector<std::string> names = pattern::fused_names(m.conv);
    names.insert(names.begin(), pattern::name_of(m.pad));
    m.conv->attrs.set("pads", std::move(m.conv_pads));
    m.conv->attrs.set(internal_ops::kFusedNames, std::move(names));
    g.bypass(m.pad);  // the Conv now reads the Pad's input
  }
  return matches.size();
}

}  // namespace kiln
