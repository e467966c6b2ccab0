// kiln_backend_sweep: the generator and variant registries, operand builders, and build_case — a case made
// concrete as a one-node graph, the LayerDesc a backend sees for it (what builder/planner.cpp fills for an
// engine), random inputs from the case's seed, and the reference kernel's outputs.
#include <cstring>
#include <deque>
#include <map>
#include <random>

#include "ops/op.h"
#include "sweep.h"

namespace kiln::sweep {
namespace {

std::string canonical(const std::string& domain) {
  return domain == "ai.onnx" ? "" : domain;
}

std::deque<Generator>& generators() {
  static std::deque<Generator> g;
  return g;
}

std::map<std::string, VariantSource>& variant_sources() {
  static std::map<std::string, VariantSource> m;
  return m;
}

// Element i of t set to the whole number v (small enough for t's dtype).
void put_whole(TensorData& t, int64_t i, int64_t v) {
  switch (t.dtype()) {
    case DType::Float:
      t.data<float>()[i] = static_cast<float>(v);
      break;
    case DType::Double:
      t.data<double>()[i] = static_cast<double>(v);
      break;
    case DType::Float16:
      t.data<uint16_t>()[i] = float_to_half(static_cast<float>(v));
      break;
    case DType::BFloat16:
      t.data<uint16_t>()[i] = float_to_bfloat16(static_cast<float>(v));
      break;
    case DType::Int8:
      t.data<int8_t>()[i] = static_cast<int8_t>(v);
      break;
    case DType::UInt8:
      t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
      break;
    case DType::Int16:
      t.data<int16_t>()[i] = static_cast<int16_t>(v);
      break;
    case DType::UInt16:
      t.data<uint16_t>()[i] = static_cast<uint16_t>(v);
      break;
    case DType::Int32:
      t.data<int32_t>()[i] = static_cast<int32_t>(v);
      break;
    case DType::UInt32:
      t.data<uint32_t>()[i] = static_cast<uint32_t>(v);
      break;
    case DType::Int64:
      t.data<int64_t>()[i] = v;
      break;
    case DType::UInt64:
      t.data<uint64_t>()[i] = static_cast<uint64_t>(v);
      break;
    default:
      throw Error(std::string("sweep: no whole-number fill for ") + dtype_name(t.dtype()));
  }
}

TensorData random_tensor(DType dtype, const std::vector<int64_t>& dims, const Fill& f, std::mt19937_64& rng) {
  TensorData t(dtype, dims);
  const int64_t n = t.numel();
  if (f.whole && dtype != DType::Bool) {
    std::uniform_int_distribution<int64_t> pick(static_cast<int64_t>(f.lo), static_cast<int64_t>(f.hi));
    for (int64_t i = 0; i < n; ++i) put_whole(t, i, pick(rng));
    return t;
  }
  if (dtype_is_integer(dtype) || dtype == DType::Bool) {
    // Wide, distinct-ish values so a misplaced element shows; small types stay in range.
    const int64_t hi = dtype_size(dtype) >= 4 ? (int64_t{1} << 20) : 100;
    std::uniform_int_distribution<int64_t> mag(1, hi);
    for (int64_t i = 0; i < n; ++i) {
      const bool negative = !f.positive && (rng() & 1);
      const int64_t v = negative ? -mag(rng) : mag(rng);
      switch (dtype) {
        case DType::Bool:
          t.data<uint8_t>()[i] = static_cast<uint8_t>(rng() & 1);
          break;
        case DType::Int8:
          t.data<int8_t>()[i] = static_cast<int8_t>(v);
          break;
        case DType::UInt8:
          t.data<uint8_t>()[i] = static_cast<uint8_t>(mag(rng));
          break;
        case DType::Int16:
          t.data<int16_t>()[i] = static_cast<int16_t>(v);
          break;
        case DType::UInt16:
          t.data<uint16_t>()[i] = static_cast<uint16_t>(mag(rng));
          break;
        case DType::Int32:
          t.data<int32_t>()[i] = static_cast<int32_t>(v);
          break;
        case DType::UInt32:
          t.data<uint32_t>()[i] = static_cast<uint32_t>(mag(rng));
          break;
        case DType::Int64:
          t.data<int64_t>()[i] = v;
          break;
        case DType::UInt64:
          t.data<uint64_t>()[i] = static_cast<uint64_t>(mag(rng));
          break;
        default:
          throw Error(std::string("sweep: no random fill for ") + dtype_name(dtype));
      }
    }
    return t;
  }
  std::uniform_real_distribution<double> mag(f.lo, f.hi);
  for (int64_t i = 0; i < n; ++i) {
    double v = mag(rng);
    if (!f.positive && (rng() & 1)) v = -v;
    switch (dtype) {
      case DType::Float:
        t.data<float>()[i] = static_cast<float>(v);
        break;
      case DType::Double:
        t.data<double>()[i] = v;
        break;
      case DType::Float16:
        t.data<uint16_t>()[i] = float_to_half(static_cast<float>(v));
        break;
      case DType::BFloat16:
        t.data<uint16_t>()[i] = float_to_bfloat16(static_cast<float>(v));
        break;
      default:
        throw Error(std::string("sweep: no random fill for ") + dtype_name(dtype));
    }
  }
  return t;
}

backend::TensorView view_of(const TensorData& t) {
  if (t.empty_type()) return {};
  return {t.dtype(), t.dims(), const_cast<void*>(t.raw())};
}

}  // namespace

// ---------------------------------------------------------------------------------------- registries
bool register_generator(Generator g) {
  g.domain = canonical(g.domain);
  generators().push_back(std::move(g));
  return true;
}

const Generator* find_generator(const std::string& domain, const std::string& op) {
  for (const Generator& g : generators())
    if (g.domain == canonical(domain))
      for (const std::string& o : g.ops)
        if (o == op) return &g;
  return nullptr;
}

std::vector<const Generator*> find_generators(const std::string& domain, const std::string& op) {
  std::vector<const Generator*> out;
  for (const Generator& g : generators())
    if (g.domain == canonical(domain))
      for (const std::string& o : g.ops)
        if (o == op) out.push_back(&g);
  return out;
}

bool register_variants(const std::string& device, const std::string& factory_name, VariantSource source) {
  variant_sources()[device + "|" + factory_name] = std::move(source);
  return true;
}

std::vector<Variant> variants_for(const backend::KernelFactory& f, const backend::LayerDesc& desc) {
  std::vector<Variant> out{{"", f.create}};
  auto it = variant_sources().find(f.device + "|" + f.name);
  if (it != variant_sources().end())
    for (Variant& v : it->second(desc)) out.push_back(std::move(v));
  return out;
}

// ------------------------------------------------------------------------------------------ operands
Operand input(DType dtype, std::vector<int64_t> dims, Fill fill) {
  return {Operand::Kind::Input, dtype, std::move(dims), fill, std::nullopt};
}
Operand weight(DType dtype, std::vector<int64_t> dims, Fill fill) {
  return {Operand::Kind::Weight, dtype, std::move(dims), fill, std::nullopt};
}
Operand fixed(TensorData value) {
  Operand o;
  o.kind = Operand::Kind::Fixed;
  o.dtype = value.dtype();
  o.dims = value.dims();
  o.value = std::move(value);
  return o;
}
Operand ints(const std::vector<int64_t>& values) {
  return fixed(TensorData::vector_int64(values));
}
Operand scalar(DType dtype, double value, bool rank0) {
  TensorData t(dtype, rank0 ? std::vector<int64_t>{} : std::vector<int64_t>{1});
  switch (dtype) {
    case DType::Float:
      t.data<float>()[0] = static_cast<float>(value);
      break;
    case DType::Double:
      t.data<double>()[0] = value;
      break;
    case DType::Float16:
      t.data<uint16_t>()[0] = float_to_half(static_cast<float>(value));
      break;
    case DType::BFloat16:
      t.data<uint16_t>()[0] = float_to_bfloat16(static_cast<float>(value));
      break;
    case DType::Int32:
      t.data<int32_t>()[0] = static_cast<int32_t>(value);
      break;
    case DType::Int64:
      t.data<int64_t>()[0] = static_cast<int64_t>(value);
      break;
    case DType::Bool:
      t.data<uint8_t>()[0] = value != 0;
      break;
    default:
      throw Error(std::string("sweep: no scalar of ") + dtype_name(dtype));
  }
  return fixed(std::move(t));
}
Operand absent() {
  Operand o;
  o.kind = Operand::Kind::Absent;
  o.dtype = DType::Undefined;
  return o;
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t k = 0; k < dims.size(); ++k) {
    if (k) s += ',';
    s += std::to_string(dims[k]);
  }
  return s + "]";
}

// ---------------------------------------------------------------------------------------- build_case
Built build_case(const std::string& op, const std::string& domain, const Case& c, uint64_t seed, int threads,
                 const BuildOptions* options, bool reference) {
  Built b;
  b.graph = std::make_unique<Graph>();
  Graph& g = *b.graph;
  const std::string dom = canonical(domain);
  g.set_opset("", dom.empty() ? c.opset : 17);
  if (!dom.empty()) g.set_opset(dom, c.opset);
  if (c.oracle && !canonical(c.oracle->domain).empty()) g.set_opset(canonical(c.oracle->domain), 1);

  std::mt19937_64 rng(seed);
  const bool values = reference || c.dims_from_values;  // the sizes of such outputs need the values
  std::vector<Tensor*> ins;
  std::vector<const TensorData*> constants;
  for (size_t k = 0; k < c.inputs.size(); ++k) {
    const Operand& o = c.inputs[k];
    const std::string name = "in" + std::to_string(k);
    switch (o.kind) {
      case Operand::Kind::Absent:
        ins.push_back(nullptr);
        b.inputs.emplace_back();
        constants.push_back(nullptr);
        break;
      case Operand::Kind::Input: {
        Variable* v = g.add_variable(name, o.dtype, make_shape(o.dims));
        g.inputs.push_back(v);
        ins.push_back(v);
        b.inputs.push_back(values ? random_tensor(o.dtype, o.dims, o.fill, rng)
                                  : TensorData(o.dtype, o.dims));
        constants.push_back(nullptr);
        break;
      }
      case Operand::Kind::Weight:
      case Operand::Kind::Fixed: {
        TensorData t =
            o.kind == Operand::Kind::Fixed ? *o.value : random_tensor(o.dtype, o.dims, o.fill, rng);
        Constant* cst = g.add_constant(name, std::move(t));
        ins.push_back(cst);
        b.inputs.push_back(cst->values());
        constants.push_back(&cst->values());
        break;
      }
    }
  }
  auto add_node = [&](const std::string& node_op, const std::string& node_domain, const Attributes& attrs,
                      const std::string& stem) {
    std::vector<Tensor*> outs;
    for (size_t k = 0; k < c.outputs; ++k) outs.push_back(g.add_variable(stem + "_out" + std::to_string(k)));
    Node* n = g.add_node(node_op, ins, outs, stem, canonical(node_domain));
    n->attrs = attrs;
    return n;
  };
  Node* node = add_node(op, dom, c.attrs, "the_" + op);
  b.node = node;

  // Output types and shapes as the builder infers them.
  const ops::OpSchema* schema = ops::find_op(dom, op);
  if (!schema) throw Error("no schema for op " + op);
  ops::InferContext ictx(*node, g.opset(dom));
  for (size_t k = 0; k < c.inputs.size(); ++k) {
    ops::InputInfo info;
    if (c.inputs[k].kind != Operand::Kind::Absent) {
      info.dtype = c.inputs[k].dtype;
      info.shape = make_shape(c.inputs[k].dims);
      info.value = constants[k];
      info.present = true;
    }
    ictx.in.push_back(info);
  }
  ictx.out.resize(c.outputs);
  ops::infer_node(*schema, ictx);

  backend::LayerDesc& d = b.desc;
  d.node = node;
  d.opset = g.opset(dom);
  d.threads = threads;
  d.options = options;
  for (size_t k = 0; k < c.inputs.size(); ++k) {
    backend::LayerDesc::Operand o;
    if (c.inputs[k].kind != Operand::Kind::Absent) {
      o.dtype = c.inputs[k].dtype;
      o.dims = c.inputs[k].dims;
      o.constant = constants[k];
      o.present = true;
    }
    d.inputs.push_back(std::move(o));
  }
  std::vector<std::vector<int64_t>> value_dims;  // dims_from_values: the reference's output dims
  if (c.dims_from_values) {
    ops::KernelContext kctx(*node, g.opset(dom));
    for (const TensorData& t : b.inputs) kctx.in.push_back(t.empty_type() ? nullptr : &t);
    kctx.out.resize(c.outputs);
    ops::run_reference(*schema, kctx);
    for (const TensorData& t : kctx.out) value_dims.push_back(t.dims());
  }
  for (size_t k = 0; k < c.outputs; ++k) {
    ops::OutputInfo out = ictx.out[k];
    if (c.dims_from_values && (!out.shape || !is_static(*out.shape))) out.shape = make_shape(value_dims[k]);
    if (!out.shape || !is_static(*out.shape))
      throw Error("output " + std::to_string(k) + " of " + op + " has no static shape after inference");
    backend::LayerDesc::Operand o;
    o.dtype = out.dtype;
    o.dims = static_dims(*out.shape);
    o.present = true;
    d.outputs.push_back(o);
    b.expected.emplace_back(o.dtype, o.dims);
  }

  for (const TensorData& t : b.inputs) b.bytes += static_cast<int64_t>(t.empty_type() ? 0 : t.nbytes());
  for (const TensorData& t : b.expected) b.bytes += static_cast<int64_t>(t.nbytes());
  if (!reference) return b;

  // The oracle: the op's own reference kernel, or the named oracle op's on the same operands.
  backend::LayerDesc ref = d;
  if (c.oracle) {
    ref.node = add_node(c.oracle->op, c.oracle->domain, c.oracle->attrs, "oracle");
    ref.opset = g.opset(canonical(c.oracle->domain));
  }
  std::vector<backend::TensorView> in_views, out_views;
  for (const TensorData& t : b.inputs) in_views.push_back(view_of(t));
  for (TensorData& t : b.expected) out_views.push_back(view_of(t));
  backend::make_reference_kernel(ref)->run(in_views, out_views);
  return b;
}

}  // namespace kiln::sweep
