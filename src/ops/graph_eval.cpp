// Subgraph evaluation and inference for the control-flow ops (see graph_eval.h).
#include "ops/graph_eval.h"

#include <cstring>
#include <unordered_map>

#include "ops/internal_ops.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

// Values at most this big are folded while inferring a subgraph (as the top-level propagation does).
constexpr size_t kFoldBytes = 64 << 10;

std::string where(const Graph& g) {
  return "subgraph '" + printable(g.name) + "': ";
}

bool small(const TensorData& v) {
  return v.dtype() != DType::String && !dtype_is_container(v.dtype()) && v.nbytes() <= kFoldBytes;
}

// Opset of a subgraph node: the enclosing op's for the default domain; other domains (kiln's own ops) take
// their latest (run_reference and infer_node read 0 so).
int64_t opset_of(const Node& n, int64_t enclosing) {
  return n.domain.empty() ? enclosing : 0;
}

template <class Ctx>
size_t captured_count_impl(const Ctx& ctx) {
  const int64_t k = ctx.node.attrs.get_int(internal_ops::kCaptured, 0);
  if (k < 0 || static_cast<size_t>(k) > ctx.node.inputs().size())
    ctx.fail(std::string(internal_ops::kCaptured) + " is " + std::to_string(k) + ", but the node has " +
             std::to_string(ctx.node.inputs().size()) + " inputs");
  return static_cast<size_t>(k);
}

template <class Ctx>
const Graph& subgraph_impl(const Ctx& ctx, const char* name, size_t n_inputs, int64_t n_outputs) {
  const Attribute* a = ctx.node.attrs.find(name);
  const GraphPtr* g = a ? std::get_if<GraphPtr>(&a->value) : nullptr;
  if (!g || !*g) ctx.fail(std::string("graph attribute '") + name + "' is required");
  if ((*g)->inputs.size() != n_inputs)
    ctx.fail(std::string("subgraph '") + name + "' has " + std::to_string((*g)->inputs.size()) +
             " inputs, expected " + std::to_string(n_inputs));
  if (n_outputs >= 0 && (*g)->outputs.size() != static_cast<size_t>(n_outputs))
    ctx.fail(std::string("subgraph '") + name + "' has " + std::to_string((*g)->outputs.size()) +
             " outputs, expected " + std::to_string(n_outputs));
  return **g;
}

}  // namespace

size_t captured_count(const InferContext& ctx) {
  return captured_count_impl(ctx);
}
size_t captured_count(const KernelContext& ctx) {
  return captured_count_impl(ctx);
}
const Graph& subgraph(const InferContext& ctx, const char* name, size_t n_inputs, int64_t n_outputs) {
  return subgraph_impl(ctx, name, n_inputs, n_outputs);
}
const Graph& subgraph(const KernelContext& ctx, const char* name, size_t n_inputs, int64_t n_outputs) {
  return subgraph_impl(ctx, name, n_inputs, n_outputs);
}

bool reads_uncaptured_outer(const Node& n) {
  for (const auto& [name, a] : n.attrs.items()) {
    if (const auto* g = std::get_if<GraphPtr>(&a.value); g && *g && !(*g)->outer_scope_names().empty())
      return true;
    if (const auto* gs = std::get_if<std::vector<GraphPtr>>(&a.value))
      for (const GraphPtr& g : *gs)
        if (g && !g->outer_scope_names().empty()) return true;
  }
  return false;
}

std::vector<InputInfo> captured_infos(const InferContext& ctx) {
  const size_t k = captured_count(ctx);
  return {ctx.in.end() - static_cast<std::ptrdiff_t>(k), ctx.in.end()};
}

std::optional<Shape> merge_shapes(const std::optional<Shape>& a, const std::optional<Shape>& b) {
  if (!a || !b || a->size() != b->size()) return std::nullopt;
  Shape out = *a;
  for (size_t k = 0; k < out.size(); ++k)
    if (!(out[k] == (*b)[k])) out[k] = Dim();
  return out;
}

std::vector<TensorData> run_graph(const KernelContext& ctx, const Graph& g,
                                  const std::vector<TensorData>& inputs) {
  if (inputs.size() != g.inputs.size())
    ctx.fail(where(g) + "takes " + std::to_string(g.inputs.size()) + " inputs, got " +
             std::to_string(inputs.size()));
  std::unordered_map<const Tensor*, TensorData> values;  // node-based: pointers into it stay valid
  for (size_t k = 0; k < inputs.size(); ++k) values[g.inputs[k]] = inputs[k];
  auto value_of = [&](const Tensor* t) -> const TensorData* {
    if (auto it = values.find(t); it != values.end()) return &it->second;
    if (t->is_constant()) return &static_cast<const Constant*>(t)->values();
    if (g.is_outer_reference(t))
      ctx.fail(where(g) + "reads outer-scope value '" + printable(t->name) +
               "', which was not captured as an input: not supported before capture_outer_references runs");
    ctx.fail(where(g) + "'" + printable(t->name) +
             "' is read before it is computed (nodes not in topological order)");
  };
  for (const auto& node : g.nodes()) {
    const OpSchema* schema = find_op(node->domain, node->op);
    if (!schema) ctx.fail(where(g) + "node " + node->label() + " has an unknown op");
    KernelContext kctx(*node, opset_of(*node, ctx.opset));
    for (const Tensor* t : node->inputs()) kctx.in.push_back(t ? value_of(t) : nullptr);
    try {
      run_reference(*schema, kctx);
    } catch (const Error& e) {
      ctx.fail(where(g) + e.what());
    }
    for (size_t k = 0; k < node->outputs().size(); ++k)
      if (const Tensor* t = node->output(k)) values[t] = std::move(kctx.out[k]);
  }
  std::vector<TensorData> out;
  for (const Tensor* t : g.outputs) out.push_back(*value_of(t));
  return out;
}

std::vector<OutputInfo> infer_graph(const InferContext& ctx, const Graph& g,
                                    const std::vector<InputInfo>& inputs) {
  if (inputs.size() != g.inputs.size())
    ctx.fail(where(g) + "takes " + std::to_string(g.inputs.size()) + " inputs, got " +
             std::to_string(inputs.size()));
  std::unordered_map<const Tensor*, OutputInfo> known;  // node-based: value pointers into it stay valid
  for (size_t k = 0; k < inputs.size(); ++k) {
    const InputInfo& in = inputs[k];
    const Tensor* t = g.inputs[k];
    OutputInfo& o = known[t];
    o.dtype =
        in.dtype != DType::Undefined ? in.dtype : t->dtype;  // what the caller knows, else the declaration
    o.shape = in.shape ? in.shape : t->shape;
    o.element = in.element ? in.element : t->element;
    if (in.value) o.value = *in.value;
  }
  const Graph* enclosing = ctx.node.graph();
  auto info_of = [&](const Tensor* t) {
    InputInfo i;
    i.present = true;
    if (auto it = known.find(t); it != known.end()) {
      i.dtype = it->second.dtype;
      i.shape = it->second.shape;
      i.element = it->second.element;
      i.value = it->second.value ? &*it->second.value : nullptr;
      return i;
    }
    const Tensor* source = t;  // an uncaptured outer name: what the enclosing graph knows of it
    if (g.is_outer_reference(t) && enclosing)
      if (const Tensor* o = enclosing->find_tensor(t->name)) source = o;
    i.dtype = source->dtype;
    i.shape = source->shape;
    i.element = source->element;
    if (auto* c = dynamic_cast<const Constant*>(source);
        c && c->has_static_shape() && c->dtype != DType::String &&
        checked_nbytes(c->dtype, static_dims(*c->shape)).value_or(kFoldBytes + 1) <= kFoldBytes)
      i.value = &c->values();
    return i;
  };
  for (const auto& node : g.nodes()) {
    const OpSchema* schema = find_op(node->domain, node->op);
    if (!schema) ctx.fail(where(g) + "node " + node->label() + " has an unknown op");
    const int64_t opset = opset_of(*node, ctx.opset);
    InferContext sctx(*node, opset);
    bool all_values = schema->reference && (!node->inputs().empty() || schema->min_inputs == 0) &&
                      !reads_uncaptured_outer(*node);
    for (const Tensor* t : node->inputs()) {
      sctx.in.push_back(t ? info_of(t) : InputInfo{});
      if (t && !sctx.in.back().value) all_values = false;
    }
    try {
      infer_node(*schema, sctx);
      if (all_values) {  // fold what is computable now, as the top-level propagation does
        KernelContext kctx(*node, opset);
        for (const InputInfo& i : sctx.in) kctx.in.push_back(i.present ? i.value : nullptr);
        run_reference(*schema, kctx);
        for (size_t k = 0; k < kctx.out.size(); ++k)
          if (k < sctx.out.size() && small(kctx.out[k])) sctx.out[k].value = std::move(kctx.out[k]);
      }
    } catch (const Error& e) {
      ctx.fail(where(g) + e.what());
    }
    for (size_t k = 0; k < node->outputs().size(); ++k) {
      const Tensor* t = node->output(k);
      if (!t) continue;
      OutputInfo& o = known[t] = std::move(sctx.out[k]);
      if (o.value) {
        o.dtype = o.value->dtype();
        o.shape = make_shape(o.value->dims());
      }
      if (o.dtype == DType::Undefined)
        o.dtype = t->dtype;  // the subgraph's declaration, when inference has none
      if (!o.shape) o.shape = t->shape;
      if (!o.element) o.element = t->element;
    }
  }
  std::vector<OutputInfo> out;
  for (const Tensor* t : g.outputs) {
    const InputInfo i = info_of(t);
    OutputInfo o;
    o.dtype = i.dtype;
    o.shape = i.shape;
    o.element = i.element;
    if (i.value) o.value = *i.value;
    out.push_back(std::move(o));
  }
  return out;
}

TensorData take(const KernelContext& ctx, const TensorData& x, int64_t axis, int64_t index) {
  const std::vector<int64_t>& d = x.dims();
  if (axis < 0 || axis >= x.rank() || index < 0 || index >= d[axis])
    ctx.fail("internal: slice " + std::to_string(index) + " along axis " + std::to_string(axis) + " of " +
             describe_tensor(x.dtype(), d));
  const size_t es = element_size(ctx, x);
  const int64_t outer = numel({d.begin(), d.begin() + axis}), inner = numel({d.begin() + axis + 1, d.end()});
  std::vector<int64_t> dims = d;
  dims.erase(dims.begin() + axis);
  TensorData out(x.dtype(), dims);
  const size_t row = static_cast<size_t>(inner) * es;
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(static_cast<char*>(out.raw()) + static_cast<size_t>(o) * row,
                static_cast<const char*>(x.raw()) + (static_cast<size_t>(o * d[axis] + index)) * row, row);
  return out;
}

TensorData stack(const KernelContext& ctx, const std::vector<TensorData>& parts, int64_t axis, DType dtype,
                 const std::vector<int64_t>& item_dims) {
  const std::vector<int64_t>& d = parts.empty() ? item_dims : parts[0].dims();
  if (axis < 0 || axis > static_cast<int64_t>(d.size()))
    ctx.fail("output axis " + std::to_string(axis) + " is out of range for rank " +
             std::to_string(d.size() + 1));
  std::vector<int64_t> dims = d;
  dims.insert(dims.begin() + axis, static_cast<int64_t>(parts.size()));
  TensorData out(dtype, dims);
  if (parts.empty()) return out;
  const size_t es = element_size(ctx, out);
  const int64_t outer = numel({d.begin(), d.begin() + axis}), inner = numel({d.begin() + axis, d.end()});
  const size_t row = static_cast<size_t>(inner) * es, n = parts.size();
  for (size_t p = 0; p < n; ++p)
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(static_cast<char*>(out.raw()) + (static_cast<size_t>(o) * n + p) * row,
                  static_cast<const char*>(parts[p].raw()) + static_cast<size_t>(o) * row, row);
  return out;
}

bool read_cond(const KernelContext& ctx, const TensorData& t, const std::string& what) {
  if (t.dtype() != DType::Bool || t.numel() != 1)
    ctx.fail(what + " must be a one-element bool tensor, got " + describe_tensor(t.dtype(), t.dims()));
  return t.data<uint8_t>()[0] != 0;
}

void check_cond(const InferContext& ctx, const InputInfo& in, const std::string& what) {
  if (in.dtype != DType::Undefined && in.dtype != DType::Bool)
    ctx.fail(what + " must be a bool tensor, not " + dtype_name(in.dtype));
  if (in.shape && is_static(*in.shape) && numel(static_dims(*in.shape)) != 1)
    ctx.fail(what + " must have one element, got shape " + to_string(*in.shape));
}

}  // namespace kiln::ops
