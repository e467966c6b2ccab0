// Scan: runs its body once per slice of the scan inputs, threading state values through.
//   Scan-9+(state..., scan_input..., captured...): T = the scan inputs' length along scan_input_axes;
//   iteration t reads slice t (or T-1-t, scan_input_directions = 1) and its scan outputs are stacked along
//   scan_output_axes (in reverse order for scan_output_directions = 1). Outputs: the final states, then the
//   stacked scan outputs. Scan-8(sequence_lens, state..., scan_input..., captured...): the same per batch
//   entry (axis 0 of everything), scan axis 1, `directions` for the inputs.
#include "ops/graph_eval.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

struct ScanArity {
  size_t states = 0, inputs = 0, outputs = 0, captured = 0;
  size_t first = 0;  // index of the first state input (1 in Scan-8, after sequence_lens)
};

template <class Ctx>
ScanArity scan_arity(const Ctx& ctx) {
  ScanArity a;
  a.first = ctx.opset < 9 ? 1 : 0;
  a.captured = captured_count(ctx);
  const int64_t m = ctx.node.attrs.get_int("num_scan_inputs", 0);
  if (m < 1) ctx.fail("num_scan_inputs must be >= 1, got " + std::to_string(m));
  a.inputs = static_cast<size_t>(m);
  if (ctx.in.size() < a.first + a.inputs + a.captured)  // (Scan-8's sequence_lens may be empty, not absent)
    ctx.fail("has " + std::to_string(ctx.in.size()) +
             " inputs, fewer than num_scan_inputs = " + std::to_string(m));
  a.states = ctx.in.size() - a.first - a.inputs - a.captured;
  const Graph& body = subgraph(ctx, "body", a.states + a.inputs + a.captured);
  if (body.outputs.size() < a.states)
    ctx.fail("body has " + std::to_string(body.outputs.size()) + " outputs, fewer than the " +
             std::to_string(a.states) + " state values");
  a.outputs = body.outputs.size() - a.states;
  if (ctx.out.size() != a.states + a.outputs)
    ctx.fail("has " + std::to_string(ctx.out.size()) + " outputs, but its body gives " +
             std::to_string(a.states) + " states and " + std::to_string(a.outputs) + " scan outputs");
  return a;
}

// An int-list attribute of `n` entries (default all `def`), each checked by `ok`.
template <class Ctx, class Ok>
std::vector<int64_t> list_attr(const Ctx& ctx, const char* name, size_t n, int64_t def, Ok ok) {
  std::vector<int64_t> v = ctx.node.attrs.get_ints(name, std::vector<int64_t>(n, def));
  if (v.size() != n)
    ctx.fail(std::string(name) + " has " + std::to_string(v.size()) + " entries, expected " +
             std::to_string(n));
  for (int64_t x : v)
    if (!ok(x)) ctx.fail(std::string(name) + " has invalid entry " + std::to_string(x));
  return v;
}
bool is_direction(int64_t d) {
  return d == 0 || d == 1;
}
bool any(int64_t) {
  return true;
}

template <class Ctx>
std::vector<int64_t> input_directions(const Ctx& ctx, const ScanArity& a) {
  return list_attr(ctx, ctx.opset < 9 ? "directions" : "scan_input_directions", a.inputs, 0, is_direction);
}

// ------------------------------------------------------------------------------------------- inference
void infer_scan(InferContext& ctx) {
  const ScanArity a = scan_arity(ctx);
  const Graph& body = subgraph(ctx, "body", a.states + a.inputs + a.captured);
  input_directions(ctx, a);
  const bool v8 = ctx.opset < 9;
  std::vector<int64_t> in_axes(a.inputs, v8 ? 1 : 0), out_axes(a.outputs, 0);
  if (!v8) {
    in_axes = list_attr(ctx, "scan_input_axes", a.inputs, 0, any);
    out_axes = list_attr(ctx, "scan_output_axes", a.outputs, 0, any);
    list_attr(ctx, "scan_output_directions", a.outputs, 0, is_direction);
  }
  auto drop = [&](std::optional<Shape> s, size_t axis) -> std::optional<Shape> {
    if (s && axis < s->size()) s->erase(s->begin() + static_cast<std::ptrdiff_t>(axis));
    return s;
  };
  auto drop_batch = [&](std::optional<Shape> s) { return v8 ? drop(std::move(s), 0) : s; };
  Dim length, batch;
  std::vector<InputInfo> in;
  for (size_t i = 0; i < a.states; ++i) {
    in.push_back(ctx.input(a.first + i));
    in.back().value = nullptr;  // states change between iterations
    if (v8 && in.back().shape && !in.back().shape->empty()) batch = (*in.back().shape)[0];
    in.back().shape = drop_batch(in_shape(ctx, a.first + i));
  }
  for (size_t j = 0; j < a.inputs; ++j) {
    InputInfo x = ctx.input(a.first + a.states + j);
    x.value = nullptr;
    if (std::optional<Shape> s = in_shape(ctx, a.first + a.states + j)) {
      const int64_t axis =
          normalize_axis(ctx, in_axes[j], static_cast<int64_t>(s->size()), "scan_input_axes");
      if (v8 && s->size() < 2) ctx.fail("scan inputs must be [batch, sequence, ...]");
      const Dim& d = (*s)[static_cast<size_t>(axis)];
      if (d.is_static() && length.is_static() && d.value != length.value)
        ctx.fail("scan inputs have different lengths " + std::to_string(length.value) + " and " +
                 std::to_string(d.value));
      if (d.is_static()) length = d;
      x.shape = drop_batch(drop(s, static_cast<size_t>(axis)));
    }
    in.push_back(x);
  }
  for (const InputInfo& c : captured_infos(ctx)) in.push_back(c);
  std::vector<OutputInfo> out;
  for (bool changed = true; changed;) {  // states may change shape: iterate to a fixpoint (see Loop)
    out = infer_graph(ctx, body, in);
    changed = false;
    for (size_t i = 0; i < a.states; ++i) {
      std::optional<Shape> merged = merge_shapes(in[i].shape, out[i].shape);
      if (merged != in[i].shape || (in[i].dtype == DType::Undefined && out[i].dtype != DType::Undefined)) {
        in[i].shape = merged;
        in[i].dtype = out[i].dtype;
        changed = true;
      }
    }
  }
  auto with_batch = [&](std::optional<Shape> s) {
    if (s && v8) s->insert(s->begin(), batch);
    return s;
  };
  for (size_t i = 0; i < a.states; ++i) set_out(ctx, i, in[i].dtype, with_batch(in[i].shape));
  for (size_t j = 0; j < a.outputs; ++j) {
    std::optional<Shape> s = out[a.states + j].shape;
    if (s) {
      const auto rank = static_cast<int64_t>(s->size()) + 1;
      const int64_t axis = normalize_axis(ctx, out_axes[j], rank, "scan_output_axes");
      s->insert(s->begin() + axis, length);
    }
    set_out(ctx, a.states + j, out[a.states + j].dtype, with_batch(s));
  }
}

// ----------------------------------------------------------------------------------------------- kernel
struct ScanPlan {
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

// One Scan-9 run over states and scan inputs (captured values appended to every body call).
std::vector<TensorData> run_scan(const KernelContext& ctx, const Graph& body, const ScanArity& a,
                                 const ScanPlan& p, std::vector<TensorData> states,
                                 const std::vector<TensorData>& xs, const std::vector<TensorData>& captured) {
  int64_t length = -1;
  std::vector<int64_t> axes(a.inputs);
  for (size_t j = 0; j < a.inputs; ++j) {
    axes[j] = normalize_axis(ctx, p.in_axes[j], xs[j].rank(), "scan_input_axes");
    const int64_t n = xs[j].dims()[static_cast<size_t>(axes[j])];
    if (length >= 0 && n != length)
      ctx.fail("scan inputs have different lengths " + std::to_string(length) + " and " + std::to_string(n));
    length = n;
  }
  std::vector<std::vector<TensorData>> scans(a.outputs);
  for (int64_t t = 0; t < length; ++t) {
    std::vector<TensorData> in = states;
    for (size_t j = 0; j < a.inputs; ++j)
      in.push_back(take(ctx, xs[j], axes[j], p.in_dirs[j] ? length - 1 - t : t));
    in.insert(in.end(), captured.begin(), captured.end());
    std::vector<TensorData> out = run_graph(ctx, body, in);
    for (size_t i = 0; i < a.states; ++i) {
      if (out[i].dtype() != states[i].dtype() || out[i].dims() != states[i].dims())
        ctx.fail("body changes state " + std::to_string(i) + " from " +
                 describe_tensor(states[i].dtype(), states[i].dims()) + " to " +
                 describe_tensor(out[i].dtype(), out[i].dims()));
      states[i] = std::move(out[i]);
    }
    for (size_t j = 0; j < a.outputs; ++j) {
      TensorData& v = out[a.states + j];
      if (!scans[j].empty() && (v.dtype() != scans[j][0].dtype() || v.dims() != scans[j][0].dims()))
        ctx.fail("scan output " + std::to_string(j) + " is " + describe_tensor(v.dtype(), v.dims()) +
                 " at iteration " + std::to_string(t) + " but was " +
                 describe_tensor(scans[j][0].dtype(), scans[j][0].dims()));
      scans[j].push_back(std::move(v));
    }
  }
  std::vector<TensorData> result = std::move(states);
  for (size_t j = 0; j < a.outputs; ++j) {
    if (p.out_dirs[j]) std::reverse(scans[j].begin(), scans[j].end());
    const Tensor* decl = body.outputs[a.states + j];  // zero iterations: the body's declaration
    if (scans[j].empty() && (decl->dtype == DType::Undefined || !decl->has_static_shape()))
      ctx.fail("the scan inputs are empty and scan output " + std::to_string(j) + " has no declared type");
    const std::vector<int64_t> item = scans[j].empty() ? static_dims(*decl->shape) : scans[j][0].dims();
    const int64_t axis =
        normalize_axis(ctx, p.out_axes[j], static_cast<int64_t>(item.size()) + 1, "scan_output_axes");
    result.push_back(stack(ctx, scans[j], axis, scans[j].empty() ? decl->dtype : scans[j][0].dtype(), item));
  }
  return result;
}

void scan_kernel(KernelContext& ctx) {
  const ScanArity a = scan_arity(ctx);
  const Graph& body = subgraph(ctx, "body", a.states + a.inputs + a.captured);
  const bool v8 = ctx.opset < 9;
  ScanPlan p;
  p.in_dirs = input_directions(ctx, a);
  p.in_axes = v8 ? std::vector<int64_t>(a.inputs, 0) : list_attr(ctx, "scan_input_axes", a.inputs, 0, any);
  p.out_axes =
      v8 ? std::vector<int64_t>(a.outputs, 0) : list_attr(ctx, "scan_output_axes", a.outputs, 0, any);
  p.out_dirs = v8 ? std::vector<int64_t>(a.outputs, 0)
                  : list_attr(ctx, "scan_output_directions", a.outputs, 0, is_direction);
  std::vector<TensorData> states, xs, captured;
  for (size_t i = 0; i < a.states; ++i) states.push_back(ctx.input(a.first + i));
  for (size_t j = 0; j < a.inputs; ++j) xs.push_back(ctx.input(a.first + a.states + j));
  for (size_t c = 0; c < a.captured; ++c) captured.push_back(ctx.input(ctx.in.size() - a.captured + c));
  if (!v8) {
    std::vector<TensorData> out = run_scan(ctx, body, a, p, std::move(states), xs, captured);
    for (size_t k = 0; k < out.size(); ++k) ctx.out[k] = std::move(out[k]);
    return;
  }
  // Scan-8: every state and scan input has a leading batch axis; each batch entry is an independent Scan-9
  // run.
  int64_t batch = -1;
  for (const TensorData& t : states.empty() ? xs : states) {
    if (t.rank() < 1 || (batch >= 0 && t.dims()[0] != batch))
      ctx.fail("states and scan inputs must share a leading batch axis");
    batch = t.dims()[0];
  }
  for (const TensorData& x : xs)
    if (x.rank() < 2 || x.dims()[0] != batch) ctx.fail("scan inputs must be [batch, sequence, ...]");
  if (ctx.has_input(0)) {
    const TensorData& lens = ctx.input(0);
    if (lens.numel() != batch) ctx.fail("sequence_lens must have one entry per batch entry");
    for (int64_t b = 0; b < batch; ++b)
      if (lens.as_int64(b) != xs[0].dims()[1])
        ctx.fail("sequence_lens shorter than the sequence axis is not supported");
  }
  std::vector<std::vector<TensorData>> per_batch(ctx.out.size());
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<TensorData> s, x;
    for (const TensorData& t : states) s.push_back(take(ctx, t, 0, b));
    for (const TensorData& t : xs) x.push_back(take(ctx, t, 0, b));
    std::vector<TensorData> out = run_scan(ctx, body, a, p, std::move(s), x, captured);
    for (size_t k = 0; k < out.size(); ++k) per_batch[k].push_back(std::move(out[k]));
  }
  for (size_t k = 0; k < ctx.out.size(); ++k) {
    if (per_batch[k].empty()) ctx.fail("batch size 0 is not supported");
    ctx.out[k] = stack(ctx, per_batch[k], 0, per_batch[k][0].dtype(), per_batch[k][0].dims());
  }
}

KILN_REGISTER_OP({.op = "Scan",
                  .since_opset = 8,
                  .min_inputs = 0,
                  .max_inputs = kVariadic,
                  .min_outputs = 1,
                  .max_outputs = kVariadic,
                  .infer = infer_scan,
                  .reference = scan_kernel});

}  // namespace
}  // namespace kiln::ops
