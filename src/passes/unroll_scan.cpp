// unroll_scan: a Scan of static shapes and at most kMaxCopies body runs becomes a body copy per iteration,
// for devices without a Scan kernel (a captured CUDA graph cannot run a subgraph per iteration):
//   x_t = Gather(x, t or T-1-t, axis)   (scan_input_axes, _directions; a scalar index drops the axis)
//   states, y_t = body(states, x_t..., captured...);  y = Concat(Unsqueeze(y_t, axis)..., axis)
// (scan_output_axes; reversed for scan_output_directions 1). Scan-8 unrolls each batch entry (axis 0 of
// states and scan inputs) and stacks the results: static batch, no sequence_lens (shorter ones would need
// masking). Refused: shapes not static, a body changing a state's shape or type, sequences, optionals,
// strings, nested control flow, more copies than kMaxCopies (each grows the graph).
#include "passes/inline_body.h"
#include "passes/rewrites.h"

namespace kiln {
namespace {

constexpr int64_t kMaxCopies = 64;

struct Match {
  Node* node = nullptr;
  std::unique_ptr<Graph> body;
  size_t first = 0, states = 0, scans = 0;  // input layout; first: 1 after Scan-8's sequence_lens
  int64_t batch = 0, length = 0;            // batch 0: Scan-9 (no batch axis)
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

std::string match_at(Graph& g, Node* n, Match& m, bool& ok, const PropagateOptions& fold) {
  const bool v8 = g.opset("") < 9;
  const auto captured = static_cast<size_t>(n->attrs.get_int(internal_ops::kCaptured, 0));
  m.node = n;
  m.first = v8 ? 1 : 0;
  m.scans = static_cast<size_t>(std::max<int64_t>(0, n->attrs.get_int("num_scan_inputs", 0)));
  if (m.scans == 0 || n->inputs().size() < m.first + m.scans + captured) return "num_scan_inputs is invalid";
  if (v8 && n->input(0)) return "Scan-8 with sequence_lens";
  m.states = n->inputs().size() - m.first - m.scans - captured;
  const size_t outs = n->outputs().size() - std::min(m.states, n->outputs().size());
  // Scan-8 has only `directions`; the other lists' defaults mean Scan-8's scan axis 0 and forward outputs.
  auto list = [&](const char* name, size_t count, std::vector<int64_t>& out, bool direction) {
    out = n->attrs.get_ints(name, std::vector<int64_t>(count, 0));
    return out.size() == count &&
           (!direction || std::all_of(out.begin(), out.end(), [](int64_t d) { return d == 0 || d == 1; }));
  };
  if (!list(v8 ? "directions" : "scan_input_directions", m.scans, m.in_dirs, true) ||
      !list("scan_output_directions", outs, m.out_dirs, true) ||
      !list("scan_input_axes", m.scans, m.in_axes, false) ||
      !list("scan_output_axes", outs, m.out_axes, false) || n->outputs().size() < m.states)
    return "an attribute list has the wrong length or a direction not 0 or 1, or outputs are missing";
  auto axis_in = [](int64_t& a, int64_t r) { return (a += a < 0 ? r : 0) >= 0 && a < r; };  // normalizes a
  std::vector<inline_body::Type> types;  // the body's inputs
  for (size_t k = m.first; k < n->inputs().size(); ++k) {
    if (!inline_body::plain_static(n->input(k))) return "an input is no tensor of static shape";
    std::vector<int64_t> d = static_dims(*n->input(k)->shape);
    const size_t j = k - m.first - m.states;  // the scan input's index when j < m.scans (wraps for states)
    if (v8 && (k - m.first < m.states || j < m.scans)) {
      if (d.empty() || d[0] < 1 || (m.batch && d[0] != m.batch)) return "no batch axis shared by the values";
      m.batch = d[0];
      d.erase(d.begin());
    }
    if (j < m.scans) {
      if (!axis_in(m.in_axes[j], static_cast<int64_t>(d.size()))) return "scan_input_axes is out of range";
      if (j > 0 && d[static_cast<size_t>(m.in_axes[j])] != m.length) return "scan inputs differ in length";
      m.length = d[static_cast<size_t>(m.in_axes[j])];
      d.erase(d.begin() + m.in_axes[j]);
    }
    types.push_back({n->input(k)->dtype, make_shape(d)});
  }
  if (const int64_t runs = m.length * std::max<int64_t>(m.batch, 1); runs < 1 || runs > kMaxCopies)
    return "the body runs " + std::to_string(runs) + " times, not 1 to " + std::to_string(kMaxCopies);
  if (std::string why = inline_body::typed_copy(n, "body", types, fold, m.body); !why.empty()) return why;
  for (size_t i = 0; i < m.body->outputs.size(); ++i) {
    const Tensor* o = m.body->outputs[i];
    if (!inline_body::plain_static(o) ||
        (i < m.states && (o->dtype != types[i].first || *o->shape != *types[i].second)) ||
        (i >= m.states && !axis_in(m.out_axes[i - m.states], static_cast<int64_t>(o->shape->size()) + 1)))
      return "body output " + std::to_string(i) + ": no static tensor, a changed state or a bad output axis";
  }
  ok = true;
  return "";
}

}  // namespace

size_t unroll_scan(Graph& g, const PropagateOptions& fold, std::vector<NotFolded>* rejected) {
  return inline_body::rewrite_all<Match>(g, "Scan", fold, rejected, match_at, [&](Match& m) {
    const std::string stem = pattern::name_of(m.node);
    auto fresh = [&](const char* what) { return g.add_variable(g.unique_name(stem + "/" + what)); };
    auto node = [&](const char* op, const std::vector<Tensor*>& ins, Tensor* out) {
      return g.add_node(op, ins, {out}, g.unique_name(stem + "/" + op));
    };
    auto take = [&](Tensor* x, int64_t i, int64_t axis) {  // x's slice i along axis, the axis dropped
      Tensor *y = fresh("slice"),
             *index = g.add_constant(g.unique_name(stem + "/index"), TensorData::scalar_int64(i));
      node("Gather", {x, index}, y)->attrs.set("axis", axis);
      return y;
    };
    auto stack = [&](const std::vector<Tensor*>& parts, int64_t axis) {  // joined along a new axis
      std::vector<Tensor*> ins;
      for (Tensor* p : parts) {
        Node* u = node("Unsqueeze", {p}, ins.emplace_back(fresh("part")));
        if (g.opset("") >= 13)  // axes became an input in opset 13
          u->add_input(g.add_constant(g.unique_name(stem + "/axes"), TensorData::vector_int64({axis})));
        else
          u->attrs.set("axes", std::vector<int64_t>{axis});
      }
      Tensor* out = fresh("stacked");
      node("Concat", ins, out)->attrs.set("axis", axis);
      return out;
    };
    // The final states, then the stacked scan outputs, of the scan over `in` (states, scan inputs, captured).
    auto unroll = [&](std::vector<Tensor*> in) {
      const std::vector<Tensor*> xs(in.begin() + m.states, in.begin() + m.states + m.scans);
      std::vector<std::vector<Tensor*>> ys(m.out_axes.size());
      for (int64_t t = 0; t < m.length; ++t) {
        for (size_t j = 0; j < m.scans; ++j)
          in[m.states + j] = take(xs[j], m.in_dirs[j] ? m.length - 1 - t : t, m.in_axes[j]);
        const auto out = inline_body::copy_into(g, *m.body, in, stem + "/iter" + std::to_string(t));
        std::copy(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(m.states), in.begin());
        for (size_t j = 0; j < ys.size(); ++j)  // scan_output_directions 1: the parts in reverse
          ys[j].insert(m.out_dirs[j] ? ys[j].begin() : ys[j].end(), out[m.states + j]);
      }
      in.resize(m.states);
      for (size_t j = 0; j < ys.size(); ++j) in.push_back(stack(ys[j], m.out_axes[j]));
      return in;
    };
    std::vector<Tensor*> in = m.node->inputs(), outputs = m.node->outputs();
    in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(m.first));  // Scan-8's sequence_lens
    g.remove_node(m.node);                                      // its outputs stay, written below
    std::vector<std::vector<Tensor*>> results(outputs.size());  // per output, one per batch entry
    for (int64_t b = 0; b < std::max<int64_t>(m.batch, 1); ++b) {
      std::vector<Tensor*> entry = in;
      for (size_t k = 0; m.batch && k < m.states + m.scans; ++k) entry[k] = take(in[k], b, 0);
      const std::vector<Tensor*> r = unroll(entry);
      for (size_t k = 0; k < r.size(); ++k) results[k].push_back(r[k]);
    }
    for (size_t k = 0; k < outputs.size(); ++k)  // an Identity keeps each output's name and graph-output role
      if (outputs[k]) node("Identity", {m.batch ? stack(results[k], 0) : results[k][0]}, outputs[k]);
  });
}

}  // namespace kiln
