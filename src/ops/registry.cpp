// The op registry and the contexts' checks. Registration runs from static initializers in this shared
// library, so the table is a function-local static (constructed on first use, whatever the file order).
#include <cstdio>
#include <cstdlib>
#include <map>

#include "ops/util.h"

namespace kiln::ops {
namespace {

std::map<std::pair<std::string, std::string>, OpSchema>& table() {
  static std::map<std::pair<std::string, std::string>, OpSchema> t;
  return t;
}

std::string canonical_domain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }

std::string count_range(int lo, int hi) {
  if (hi >= kVariadic) return "at least " + std::to_string(lo);
  if (lo == hi) return std::to_string(lo);
  return std::to_string(lo) + " to " + std::to_string(hi);
}

// Arity checks shared by infer_node and run_reference. Trailing omitted optional inputs count as absent.
template <class Ctx>
void check_counts(const OpSchema& s, const Ctx& ctx, size_t n_in, size_t n_out) {
  if (static_cast<int>(n_in) > s.max_inputs)
    ctx.fail("takes " + count_range(s.min_inputs, s.max_inputs) + " inputs, got " + std::to_string(n_in));
  for (int k = 0; k < s.min_inputs; ++k)
    if (!ctx.has_input(k))
      ctx.fail("takes " + count_range(s.min_inputs, s.max_inputs) + " inputs, but required input " +
               std::to_string(k) + (static_cast<size_t>(k) < n_in ? " is empty (no tensor name)" : " is missing"));
  if (static_cast<int>(n_out) < s.min_outputs || static_cast<int>(n_out) > s.max_outputs)
    ctx.fail("has " + count_range(s.min_outputs, s.max_outputs) + " outputs, got " + std::to_string(n_out));
}

std::string node_prefix(const Node& n) { return "node " + n.label() + ": "; }

// Errors raised below an op (a TensorData that refuses its size, a helper's check) get the node's name.
[[noreturn]] void rethrow_naming(const Node& n, const Error& e) {
  const std::string what = e.what();
  if (what.find(node_prefix(n)) != std::string::npos) throw;
  throw Error(node_prefix(n) + what);
}

// Every shape inference computes passes through here: one whose element count or byte size cannot be
// represented is refused at its source, so no later size computation (plans, kernels, stats) can wrap.
void check_output_sizes(const InferContext& ctx) {
  for (size_t k = 0; k < ctx.out.size(); ++k) {
    const std::optional<Shape>& shape = ctx.out[k].shape;
    if (!shape || static_size_fits(ctx.out[k].dtype, *shape)) continue;
    const Tensor* t = k < ctx.node.outputs().size() ? ctx.node.output(k) : nullptr;
    ctx.fail("output '" + (t ? std::string(t->name) : std::to_string(k)) + "' would have shape " + to_string(*shape) +
             (ctx.out[k].dtype == DType::Undefined ? "" : std::string(" ") + dtype_name(ctx.out[k].dtype)) +
             ", whose size overflows 64 bits");
  }
}

}  // namespace

const InputInfo& InferContext::input(size_t k) const {
  if (!has_input(k)) fail("input " + std::to_string(k) + " is missing");
  return in[k];
}

int64_t InferContext::rank(size_t k) const {
  auto s = in_shape(*this, k);
  return s ? static_cast<int64_t>(s->size()) : -1;
}

void InferContext::fail(const std::string& message) const { throw Error(node_prefix(node) + message); }

const TensorData& KernelContext::input(size_t k) const {
  if (!has_input(k)) fail("input " + std::to_string(k) + " is missing");
  return *in[k];
}

void KernelContext::fail(const std::string& message) const { throw Error(node_prefix(node) + message); }

const OpSchema* find_op(const std::string& domain, const std::string& op) {
  auto it = table().find({canonical_domain(domain), op});
  return it == table().end() ? nullptr : &it->second;
}

std::vector<const OpSchema*> all_ops() {
  std::vector<const OpSchema*> v;
  for (const auto& [key, s] : table()) v.push_back(&s);
  return v;
}

bool register_op(OpSchema schema) {
  schema.domain = canonical_domain(schema.domain);
  auto key = std::make_pair(schema.domain, schema.op);
  // Two files registering the same op is a programming error; nothing sensible can continue.
  if (table().count(key) || !schema.infer) {
    std::fprintf(stderr, "kiln: op '%s%s%s' %s\n", schema.domain.c_str(), schema.domain.empty() ? "" : ".",
                 schema.op.c_str(), schema.infer ? "is registered twice" : "has no infer function");
    std::abort();
  }
  table().emplace(key, std::move(schema));
  return true;
}

void infer_node(const OpSchema& schema, InferContext& ctx) {
  if (ctx.opset <= 0) ctx.opset = kLatestOpset;
  if (ctx.out.size() < ctx.node.outputs().size()) ctx.out.resize(ctx.node.outputs().size());
  check_counts(schema, ctx, ctx.in.size(), ctx.out.size());
  try {
    schema.infer(ctx);
  } catch (const Error& e) {
    rethrow_naming(ctx.node, e);
  }
  check_output_sizes(ctx);
}

void run_reference(const OpSchema& schema, KernelContext& ctx) {
  if (ctx.opset <= 0) ctx.opset = kLatestOpset;
  if (ctx.out.size() < ctx.node.outputs().size()) ctx.out.resize(ctx.node.outputs().size());
  check_counts(schema, ctx, ctx.in.size(), ctx.out.size());
  if (!schema.reference) ctx.fail("has no reference kernel");
  try {
    schema.reference(ctx);
  } catch (const Error& e) {
    rethrow_naming(ctx.node, e);
  }
  for (size_t k = 0; k < ctx.out.size(); ++k)
    if (ctx.out[k].empty_type() && ctx.node.output(k))
      ctx.fail("reference kernel did not produce output " + std::to_string(k));
}

}  // namespace kiln::ops
