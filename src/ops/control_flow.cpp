// If and Loop: shape inference through their subgraphs and reference kernels that run them (graph_eval.h).
// Both take captured outer-scope values as trailing inputs (internal_ops::kCaptured).
//   If(cond, captured...): runs then_branch or else_branch; outputs are the branch's outputs.
//   Loop(M, cond, v_initial..., captured...): body(i, cond, v...) -> (cond, v..., scan...) while i < M and
//   cond; outputs are the final v and each scan value stacked along a new first axis.
#include "ops/graph_eval.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

InputInfo info(DType dtype, std::optional<Shape> shape) {
  InputInfo i;
  i.present = true;
  i.dtype = dtype;
  i.shape = std::move(shape);
  return i;
}

// Output k as the node's inference sees it given the kernel's input values.
OutputInfo infer_output(const KernelContext& ctx, size_t k) {
  InferContext ictx(ctx.node, ctx.opset);
  for (const TensorData* t : ctx.in)
    ictx.in.push_back(t ? InputInfo{t->dtype(), make_shape(t->dims()), t, true, nullptr} : InputInfo{});
  ictx.out.resize(ctx.out.size());
  infer_node(*find_op(ctx.node.domain, ctx.node.op), ictx);
  return ictx.out.at(k);
}

// ------------------------------------------------------------------------------------------------- If
void infer_if(InferContext& ctx) {
  const size_t k = captured_count(ctx);
  if (ctx.in.size() != 1 + k)
    ctx.fail("takes cond and " + std::to_string(k) + " captured values, got " +
             std::to_string(ctx.in.size()) + " inputs");
  check_cond(ctx, ctx.input(0), "cond");
  const auto n = static_cast<int64_t>(ctx.out.size());
  const std::vector<InputInfo> captured = captured_infos(ctx);
  const std::vector<OutputInfo> then_out = infer_graph(ctx, subgraph(ctx, "then_branch", k, n), captured);
  const std::vector<OutputInfo> else_out = infer_graph(ctx, subgraph(ctx, "else_branch", k, n), captured);
  const TensorData* cond = ctx.value(0);
  for (size_t i = 0; i < ctx.out.size(); ++i) {
    const OutputInfo &t = then_out[i], &e = else_out[i];
    if (t.dtype != DType::Undefined && e.dtype != DType::Undefined && t.dtype != e.dtype)
      ctx.fail("output " + std::to_string(i) + " is " + dtype_name(t.dtype) + " in then_branch but " +
               dtype_name(e.dtype) + " in else_branch");
    if (cond && cond->numel() == 1) {  // the branch is known: it is the output
      ctx.out[i] = cond->as_int64(0) ? t : e;
      continue;
    }
    set_out(ctx, i, t.dtype != DType::Undefined ? t.dtype : e.dtype, merge_shapes(t.shape, e.shape));
    ctx.out[i].element = t.element ? t.element : e.element;
  }
}

void if_kernel(KernelContext& ctx) {
  const size_t k = captured_count(ctx);
  if (ctx.in.size() != 1 + k)
    ctx.fail("takes cond and " + std::to_string(k) + " captured values, got " +
             std::to_string(ctx.in.size()) + " inputs");
  const bool cond = read_cond(ctx, ctx.input(0), "cond");
  const Graph& branch =
      subgraph(ctx, cond ? "then_branch" : "else_branch", k, static_cast<int64_t>(ctx.out.size()));
  std::vector<TensorData> captured;
  for (size_t j = 1; j <= k; ++j) captured.push_back(ctx.input(j));
  std::vector<TensorData> out = run_graph(ctx, branch, captured);
  for (size_t i = 0; i < out.size(); ++i) ctx.out[i] = std::move(out[i]);
}

KILN_REGISTER_OP({.op = "If",
                  .min_inputs = 1,
                  .max_inputs = kVariadic,
                  .min_outputs = 1,
                  .max_outputs = kVariadic,
                  .infer = infer_if,
                  .reference = if_kernel});

// ----------------------------------------------------------------------------------------------- Loop
struct LoopArity {
  size_t carried = 0, scans = 0, captured = 0;
};

template <class Ctx>
LoopArity loop_arity(const Ctx& ctx) {
  LoopArity a;
  a.captured = captured_count(ctx);
  if (ctx.in.size() < 2 + a.captured)
    ctx.fail("takes M, cond (either may be empty), the loop-carried values and " +
             std::to_string(a.captured) + " captured values; got " + std::to_string(ctx.in.size()) +
             " inputs");
  a.carried = ctx.in.size() - 2 - a.captured;
  const Graph& body = subgraph(ctx, "body", 2 + a.carried + a.captured);
  if (body.outputs.size() < 1 + a.carried)
    ctx.fail("body has " + std::to_string(body.outputs.size()) + " outputs; it needs cond and the " +
             std::to_string(a.carried) + " loop-carried values");
  a.scans = body.outputs.size() - 1 - a.carried;
  if (ctx.out.size() != a.carried + a.scans)
    ctx.fail("has " + std::to_string(ctx.out.size()) + " outputs, but its body gives " +
             std::to_string(a.carried) + " loop-carried and " + std::to_string(a.scans) + " scan outputs");
  return a;
}

// Whether a loop-carried optional came back as the value it holds (or would hold): ONNX's own tests pass an
// optional sequence in and get a sequence out (test_loop16_seq_none).
bool optional_unwrapped(const TensorData& before, const TensorData& after) {
  return before.dtype() == DType::Optional &&
         (before.element_dtype() == after.dtype() || before.element_dtype() == DType::Undefined);
}

// Whether the body's cond output is its cond input passed through (Identity), so the loop never stops early.
bool cond_passes_through(const Graph& body) {
  const Tensor* t = body.outputs[0];
  while (t->producer() && t->producer()->op == "Identity" && t->producer()->domain.empty())
    t = t->producer()->input(0);
  return t == body.inputs[1];
}

void infer_loop(InferContext& ctx) {
  const LoopArity a = loop_arity(ctx);
  const Graph& body = subgraph(ctx, "body", 2 + a.carried + a.captured);
  if (ctx.has_input(0)) {
    const InputInfo& m = ctx.input(0);
    if (m.dtype != DType::Undefined && m.dtype != DType::Int64)
      ctx.fail("M must be int64, not " + std::string(dtype_name(m.dtype)));
  }
  if (ctx.has_input(1)) check_cond(ctx, ctx.input(1), "cond");
  // Loop-carried shapes may change between iterations: iterate the body's inference until the shapes fed in
  // are the shapes that come out (each round only forgets dims, so this ends).
  std::vector<InputInfo> in = {info(DType::Int64, Shape{}), info(DType::Bool, Shape{})};
  for (size_t i = 0; i < a.carried; ++i) {
    in.push_back(info(ctx.input(2 + i).dtype, in_shape(ctx, 2 + i)));
    in.back().element = ctx.input(2 + i).element;
  }
  for (const InputInfo& c : captured_infos(ctx)) in.push_back(c);
  std::vector<OutputInfo> out;
  for (bool changed = true; changed;) {
    out = infer_graph(ctx, body, in);
    changed = false;
    for (size_t i = 0; i < a.carried; ++i) {
      InputInfo& v = in[2 + i];
      const OutputInfo& o = out[1 + i];
      if (v.dtype == DType::Optional && o.dtype != DType::Undefined && o.dtype != DType::Optional) {
        v.dtype = o.dtype;  // an optional value that the body replaces by what it holds (see optional_unwrapped)
        v.shape = o.shape;
        v.element = o.element;
        changed = true;
      }
      if (v.dtype != DType::Undefined && o.dtype != DType::Undefined && v.dtype != o.dtype)
        ctx.fail("body output " + std::to_string(1 + i) + " is " + dtype_name(o.dtype) +
                 ", but loop-carried value " + std::to_string(i) + " is " + dtype_name(v.dtype));
      if (v.dtype == DType::Undefined && o.dtype != DType::Undefined) {
        v.dtype = o.dtype;
        changed = true;
      }
      std::optional<Shape> merged = merge_shapes(v.shape, o.shape);
      if (merged != v.shape) {
        v.shape = merged;
        changed = true;
      }
    }
  }
  for (size_t i = 0; i < a.carried; ++i) {
    set_out(ctx, i, in[2 + i].dtype, in[2 + i].shape);
    ctx.out[i].element = in[2 + i].element;
  }
  // The iteration count is known when M is and cond can neither start false nor turn false.
  Dim trips;
  const TensorData *m = ctx.value(0), *cond = ctx.value(1);
  const bool cond_stays =
      !ctx.has_input(1) || (cond && cond->numel() == 1 && cond->as_int64(0) &&
                            (cond_passes_through(body) ||
                             (out[0].value && out[0].value->numel() == 1 && out[0].value->as_int64(0))));
  if (cond && cond->numel() == 1 && !cond->as_int64(0))
    trips = 0;
  else if (m && m->numel() == 1 && m->as_int64(0) >= 0 && cond_stays)
    trips = m->as_int64(0);
  for (size_t s = 0; s < a.scans; ++s) {
    const OutputInfo& o = out[1 + a.carried + s];
    std::optional<Shape> shape;
    if (o.shape) {
      shape = Shape{trips};
      shape->insert(shape->end(), o.shape->begin(), o.shape->end());
    }
    set_out(ctx, a.carried + s, o.dtype, shape);
  }
}

void loop_kernel(KernelContext& ctx) {
  const LoopArity a = loop_arity(ctx);
  const Graph& body = subgraph(ctx, "body", 2 + a.carried + a.captured);
  const bool has_m = ctx.has_input(0), has_cond = ctx.has_input(1);
  if (!has_m && !has_cond) ctx.fail("has neither a trip count M nor a cond input: it would never end");
  int64_t trip_count = 0;
  if (has_m) {
    const TensorData& m = ctx.input(0);
    if (m.dtype() != DType::Int64 || m.numel() != 1)
      ctx.fail("M must be a one-element int64 tensor, got " + describe_tensor(m.dtype(), m.dims()));
    trip_count = m.as_int64(0);
    if (trip_count < 0) ctx.fail("trip count M is " + std::to_string(trip_count) + "; it must be >= 0");
  }
  bool go = !has_cond || read_cond(ctx, ctx.input(1), "cond");
  std::vector<TensorData> carried;
  for (size_t i = 0; i < a.carried; ++i) carried.push_back(ctx.input(2 + i));
  std::vector<std::vector<TensorData>> scans(a.scans);
  for (int64_t it = 0; go && (!has_m || it < trip_count); ++it) {
    std::vector<TensorData> in = {TensorData::scalar_int64(it), TensorData(DType::Bool, {})};
    in[1].data<uint8_t>()[0] = 1;  // only reached while cond holds
    in.insert(in.end(), carried.begin(), carried.end());
    for (size_t j = 0; j < a.captured; ++j) in.push_back(ctx.input(2 + a.carried + j));
    std::vector<TensorData> out = run_graph(ctx, body, in);
    const bool next = read_cond(ctx, out[0], "body output 0 (cond)");
    if (has_cond) go = next;  // without a cond input the body's cond is ignored (a for loop)
    for (size_t i = 0; i < a.carried; ++i) {
      if (out[1 + i].dtype() != carried[i].dtype() && !optional_unwrapped(carried[i], out[1 + i]))
        ctx.fail("body changes loop-carried value " + std::to_string(i) + " from " +
                 dtype_name(carried[i].dtype()) + " to " + dtype_name(out[1 + i].dtype()));
      carried[i] = std::move(out[1 + i]);
    }
    for (size_t s = 0; s < a.scans; ++s) {
      TensorData& v = out[1 + a.carried + s];
      if (!scans[s].empty() && (v.dtype() != scans[s][0].dtype() || v.dims() != scans[s][0].dims()))
        ctx.fail("scan output " + std::to_string(s) + " is " + describe_tensor(v.dtype(), v.dims()) +
                 " at iteration " + std::to_string(it) + " but was " +
                 describe_tensor(scans[s][0].dtype(), scans[s][0].dims()));
      scans[s].push_back(std::move(v));
    }
  }
  for (size_t i = 0; i < a.carried; ++i) ctx.out[i] = std::move(carried[i]);
  for (size_t s = 0; s < a.scans; ++s) {
    if (scans[s].empty()) {  // no iteration ran: the item type and shape are what inference says
      const OutputInfo o = infer_output(ctx, a.carried + s);
      if (o.dtype == DType::Undefined)
        ctx.fail("ran no iteration and scan output " + std::to_string(s) + "'s dtype is unknown");
      std::vector<int64_t> item;
      if (o.shape && o.shape->size() > 1 && is_static(Shape(o.shape->begin() + 1, o.shape->end())))
        item = static_dims(Shape(o.shape->begin() + 1, o.shape->end()));
      ctx.out[a.carried + s] = stack(ctx, {}, 0, o.dtype, item);
      continue;
    }
    ctx.out[a.carried + s] = stack(ctx, scans[s], 0, scans[s][0].dtype(), scans[s][0].dims());
  }
}

KILN_REGISTER_OP({.op = "Loop",
                  .min_inputs = 0,
                  .max_inputs = kVariadic,
                  .min_outputs = 1,
                  .max_outputs = kVariadic,
                  .infer = infer_loop,
                  .reference = loop_kernel});

}  // namespace
}  // namespace kiln::ops
