#include "kiln/stats.h"

#include <algorithm>
#include <unordered_set>


namespace kiln {

namespace {

bool shape_is_known(const Tensor& t) {
  if (!t.shape) return false;
  for (const Dim& d : *t.shape)
    if (!d.is_static() && d.symbol.empty()) return false;
  return true;
}

}  // namespace

size_t count_unknown_shapes(const Graph& graph) {
  size_t n = 0;
  for (const Tensor* t : graph.all_tensors())
    if (!shape_is_known(*t)) ++n;
  return n;
}
namespace {

std::optional<std::vector<int64_t>> dims_of(const Tensor* t) {
  if (!t || !t->has_static_shape()) return std::nullopt;
  return static_dims(*t->shape);
}

// Statistics saturate instead of wrapping: a model whose declared sizes overflow still gets a report
// (its counts read 18446744073709551615), and no arithmetic here is undefined.
uint64_t sat_mul(uint64_t a, uint64_t b) { return checked_mul(a, b).value_or(UINT64_MAX); }
uint64_t sat_add(uint64_t a, uint64_t b) { return checked_add(a, b).value_or(UINT64_MAX); }

uint64_t product(const std::vector<int64_t>& v, size_t from = 0, size_t to = SIZE_MAX) {
  uint64_t p = 1;
  for (size_t k = from; k < std::min(to, v.size()); ++k) p = sat_mul(p, static_cast<uint64_t>(std::max<int64_t>(v[k], 0)));
  return p;
}

// Multiply-accumulates of one node, or nullopt when its shapes are unknown.
std::optional<uint64_t> node_macs(const Node& n) {
  if (n.op == "Conv" || n.op == "ConvTranspose") {
    auto w = dims_of(n.input(1));
    auto y = dims_of(n.output(0));
    auto x = dims_of(n.input(0));
    if (!w || !y || !x || w->size() < 3) return std::nullopt;
    // Conv weight [Cout, Cin/g, k...]: each output element takes Cin/g * prod(k) MACs.
    if (n.op == "Conv") return sat_mul(product(*y), product(*w, 1));
    // ConvTranspose weight [Cin, Cout/g, k...]: each input element scatters into Cout/g * prod(k) outputs.
    return sat_mul(product(*x), product(*w, 1));
  }
  if (n.op == "Gemm") {
    auto a = dims_of(n.input(0));
    auto y = dims_of(n.output(0));
    if (!a || !y || a->size() != 2) return std::nullopt;
    int64_t k = n.attrs.get_int("transA", 0) ? (*a)[0] : (*a)[1];
    return sat_mul(product(*y), static_cast<uint64_t>(std::max<int64_t>(k, 0)));
  }
  if (n.op == "MatMul") {
    auto a = dims_of(n.input(0));
    auto y = dims_of(n.output(0));
    if (!a || !y || a->empty()) return std::nullopt;
    return sat_mul(product(*y), static_cast<uint64_t>(std::max<int64_t>(a->back(), 0)));
  }
  return 0;
}

}  // namespace

GraphStats compute_stats(const Graph& graph) {
  GraphStats s;
  s.nodes = graph.num_nodes();
  std::unordered_set<const Tensor*> counted;
  for (const auto& node : graph.nodes()) {
    s.op_histogram[(node->domain.empty() || node->domain == "ai.onnx" ? "" : node->domain + ".") + node->op]++;
    for (const Tensor* t : node->inputs()) {
      if (!t || !t->is_constant() || !counted.insert(t).second) continue;
      auto dims = dims_of(t);
      if (!dims) continue;
      const uint64_t n = product(*dims);
      s.param_bytes = sat_add(s.param_bytes, sat_mul(n, dtype_size(t->dtype)));
      if (dtype_is_float(t->dtype)) s.params = sat_add(s.params, n);
    }
    if (auto m = node_macs(*node))
      s.macs = sat_add(s.macs, *m);
    else
      ++s.macs_unknown_nodes;
  }
  s.tensors = graph.all_tensors().size();
  s.unknown_shapes = count_unknown_shapes(graph);
  return s;
}

}  // namespace kiln
