// Scaled-dot-product attention as PyTorch exports it (nn.MultiheadAttention, nn.TransformerEncoderLayer,
// torchvision's ViT; opsets 13-17), collapsed into one kiln.Attention:
//
//        Q ─ [Mul/Div(scale)] ─ MatMul ─ [Mul/Div(scale)] ─ [Add(mask)] ─ Softmax(last axis) ─ MatMul ─ Y
//       Kt ─ [Mul/Div(scale)] ────┘                                                        V ──┘
//
// Kt is the tensor the first MatMul reads: K already transposed to [..., Dh, Skv] (the exporter's Transpose
// stays a layer of its own), so the rewrite inserts nothing. Every scale must be a float scalar constant
// (a Div becomes its reciprocal), the mask must broadcast to the scores without widening them, Q, Kt and V
// must have static shapes of one rank with equal batch dims (no MatMul broadcasting), and every
// intermediate (scaled Q, scores, probabilities) must be read by the chain alone. kiln.Attention has no CPU
// kernel of its own, so the builder runs this rewrite only on devices that bring one (Rewrite::needs).
#include <cmath>

#include "passes/pattern.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

using pattern::constant_value;

// The single use of t when it is the only one and t is not a graph output, else null.
Node* sole_user(const Graph& g, const Tensor* t) {
  return t->uses().size() == 1 && !pattern::is_graph_output(g, t) ? t->uses()[0].first : nullptr;
}

// A Mul or Div of `data` by a constant: the factor it multiplies by (Div: 1/c). `scalar` false: a constant
// operand, but not a float scalar. nullopt: not such a scale node.
struct Scale {
  Tensor* data = nullptr;
  double factor = 1;
  bool scalar = true;
};
std::optional<Scale> scale_node(const Node* n) {
  if (!n || !pattern::is_onnx(n) || (n->op != "Mul" && n->op != "Div") || n->inputs().size() != 2) return {};
  const bool div = n->op == "Div";
  for (size_t slot : {size_t{1}, size_t{0}}) {
    if (div && slot == 0) break;  // c / Q is no scale
    const TensorData* c = constant_value(n->input(slot));
    if (!c) continue;
    Scale s{n->input(1 - slot), 1, c->numel() == 1 && dtype_is_float(c->dtype())};
    if (s.scalar) s.factor = div ? 1.0 / c->as_double(0) : c->as_double(0);
    s.scalar = s.scalar && std::isfinite(s.factor);
    return s;
  }
  return {};
}

struct Match {
  std::vector<Node*> nodes;  // every node replaced, the output MatMul last
  Tensor *q = nullptr, *kt = nullptr, *v = nullptr, *mask = nullptr;
  Tensor* raw_scores = nullptr;  // with a mask: the Add's other operand
  double scale = 1;
};

std::vector<int64_t> dims_of(const Tensor* t) {
  return t && t->has_static_shape() ? static_dims(*t->shape) : std::vector<int64_t>{};
}

// Matches backwards from a Softmax; "" when it is no attention at all, else why it does not fit (a match
// when `ok`).
std::string match_at(const Graph& g, Node* softmax, Match& m, bool& ok) {
  ok = false;
  Node* pv = sole_user(g, softmax->output(0));
  if (!pv || pv->op != "MatMul" || !pattern::is_onnx(pv) || pv->input(0) != softmax->output(0)) return "";
  m.nodes = {softmax, pv};
  m.v = pv->input(1);
  Node* n = softmax->input(0)->producer();  // walks back: [Add(mask)], [scale], MatMul
  if (n && n->op == "Add" && pattern::is_onnx(n) && sole_user(g, n->output(0)) == m.nodes.front()) {
    for (size_t slot : {size_t{0}, size_t{1}}) {  // the scores: the operand a MatMul (maybe scaled) writes
      Node* p = n->input(slot)->producer();
      const auto s = scale_node(p);
      Node* mm = s && s->data->producer() ? s->data->producer() : p;
      if (mm && mm->op == "MatMul" && sole_user(g, n->input(slot)) == n) {
        m.mask = n->input(1 - slot);
        m.raw_scores = n->input(slot);
        m.nodes.insert(m.nodes.begin(), n);
        n = p;
        break;
      }
    }
    if (!m.mask) return "";
  }
  if (const auto s = scale_node(n); s && sole_user(g, n->output(0)) == m.nodes.front()) {
    if (!s->scalar) return "the scale on the scores is not a float scalar constant";
    m.scale *= s->factor;
    m.nodes.insert(m.nodes.begin(), n);
    n = s->data->producer();
  }
  if (!n || n->op != "MatMul" || !pattern::is_onnx(n) || sole_user(g, n->output(0)) != m.nodes.front())
    return "";
  m.nodes.insert(m.nodes.begin(), n);
  m.q = n->input(0);
  m.kt = n->input(1);
  // From here on it is attention: say why when it does not fit.
  for (Tensor** operand : {&m.q, &m.kt})  // torch 2's SDPA export scales both Q and Kt by sqrt(scale)
    if (Node* p = (*operand)->producer(); p && sole_user(g, *operand) == n)
      if (const auto s = scale_node(p)) {
        if (!s->scalar) return "the scale on Q or Kt is not a float scalar constant";
        m.scale *= s->factor;
        m.nodes.insert(m.nodes.begin(), p);
        *operand = s->data;
      }
  const int64_t axis = softmax->attrs.get_int("axis", g.opset("") >= 13 ? -1 : 1);
  const std::vector<int64_t> q = dims_of(m.q), kt = dims_of(m.kt), v = dims_of(m.v),
                             scores = dims_of(softmax->input(0));
  const size_t r = q.size();
  if (r < 2 || kt.size() != r || v.size() != r || scores.size() != r)
    return "Q, Kt, V are not static, rank >= 2";
  if (axis != -1 && axis != static_cast<int64_t>(r) - 1) return "Softmax is not over the last axis";
  if (!dtype_is_float(m.q->dtype) || m.kt->dtype != m.q->dtype || m.v->dtype != m.q->dtype)
    return "Q, Kt, V are not of one float dtype";
  if (!std::equal(q.begin(), q.end() - 2, kt.begin()) || !std::equal(q.begin(), q.end() - 2, v.begin()))
    return "Q, Kt, V have different batch dims";
  if (q[r - 1] != kt[r - 2] || kt[r - 1] != v[r - 2]) return "Q, Kt, V do not fit";
  if (m.mask &&
      (!m.mask->has_static_shape() || dims_of(m.raw_scores) != scores || m.mask->dtype != m.q->dtype))
    return "the mask is not static, widens the scores or differs in dtype";
  ok = true;
  return "";
}

}  // namespace

size_t fuse_attention(Graph& g, std::vector<NotFolded>* rejected) {
  std::vector<Match> matches = pattern::collect_matches<Match>(g, "Softmax", match_at, rejected);
  for (Match& m : matches) {
    std::vector<std::string> names;
    for (Node* n : m.nodes) names.push_back(pattern::name_of(n));
    const std::string base = m.nodes.back()->name.empty() ? "attention" : m.nodes.back()->name + "_attention";
    std::vector<Tensor*> inputs{m.q, m.kt, m.v};
    if (m.mask) inputs.push_back(m.mask);
    Node* fused = g.replace_nodes(m.nodes, internal_ops::attention::kOp, inputs, {m.nodes.back()->output(0)},
                                  g.unique_name(base), internal_ops::kDomain);
    fused->attrs.set(internal_ops::attention::kScale, static_cast<float>(m.scale));
    fused->attrs.set(internal_ops::kFusedNames, names);
  }
  if (!matches.empty()) {
    pattern::use_kiln_domain(g);
    g.cleanup();   // the scale constants
    g.toposort();  // replace_nodes appends the fused node at the end
  }
  return matches.size();
}

}  // namespace kiln
