// ONNX ModelProto → kiln::Graph.
//
// Each graph is imported in two phases so that files whose nodes are not in topological order work:
// first every name the graph defines (initializers, inputs, node outputs) becomes a tensor, then nodes are
// connected by name. Names a subgraph reads from an enclosing graph become producer-less Variables in the
// subgraph (Graph::is_outer_reference). Initializers load lazily: each TensorProto is moved out of the
// parsed model (no copy) and decoded on first Constant::values().
#include <fcntl.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "kiln/onnx.h"
#include "proto_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// Where an external tensor's bytes are: file, byte offset, byte count.
struct ExternalRef {
  fs::path file;    // canonical: symlinks resolved
  fs::path folder;  // the canonical model folder it must stay in
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string location;                         // as written in the model
  decltype(ImportOptions::read_external) read;  // set: the bytes come from it, not from `file`
};

// Whether canonical path `p` lies strictly inside canonical folder `dir`.
bool is_inside(const fs::path& p, const fs::path& dir) {
  auto [d, q] = std::mismatch(dir.begin(), dir.end(), p.begin(), p.end());
  // A trailing empty element ("dir/") matches anything.
  return (d == dir.end() || (std::next(d) == dir.end() && d->empty())) && q != p.end();
}

// External data offsets and lengths: decimal digits only, at most 2^63 - 1 (a file offset). std::stoull would
// accept "-1" (as 2^64 - 1), " 5", "+5" and "5x".
std::optional<uint64_t> parse_size(const std::string& s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return v;
}

// What import learns about a TensorProto before (maybe lazily) decoding it.
struct TensorInfo {
  std::string what;  // "initializer 'w'", for errors
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  int64_t numel = 1;
  std::optional<ExternalRef> external;
};

template <typename Dst, typename Field>
void copy_field(const Field& field, TensorData& out) {
  Dst* d = out.data<Dst>();
  for (int i = 0; i < field.size(); ++i) d[i] = static_cast<Dst>(field.Get(i));
}

// The typed field ONNX uses for a dtype, and how many values it must hold.
int typed_field_size(const onnx::TensorProto& tp, DType dt) {
  switch (dt) {
    case DType::Float: case DType::Complex64: return tp.float_data_size();
    case DType::Int32: case DType::Int16: case DType::Int8: case DType::UInt16: case DType::UInt8:
    case DType::Bool: case DType::Float16: case DType::BFloat16: return tp.int32_data_size();
    case DType::Int64: return tp.int64_data_size();
    case DType::String: return tp.string_data_size();
    case DType::Double: case DType::Complex128: return tp.double_data_size();
    case DType::UInt32: case DType::UInt64: return tp.uint64_data_size();
    case DType::Undefined: case DType::Sequence: case DType::Optional: return 0;  // not TensorProto types
  }
  return 0;
}

const char* typed_field_name(DType dt) {
  switch (dt) {
    case DType::Float: case DType::Complex64: return "float_data";
    case DType::Int64: return "int64_data";
    case DType::String: return "string_data";
    case DType::Double: case DType::Complex128: return "double_data";
    case DType::UInt32: case DType::UInt64: return "uint64_data";
    default: return "int32_data";
  }
}

int64_t values_per_element(DType dt) { return dt == DType::Complex64 || dt == DType::Complex128 ? 2 : 1; }

// Decodes a tensor whose info was checked by Importer::inspect_tensor. Runs inside lazy loaders, so it
// may only use what it is given; `source` prefixes errors.
TensorData decode_tensor(const onnx::TensorProto& tp, const TensorInfo& info, const std::string& source) {
  auto fail = [&](const std::string& msg) { return Error(source + ": " + info.what + ": " + msg); };
  TensorData out(info.dtype, info.dims);
  if (info.external) {
    const ExternalRef& ext = *info.external;
    if (ext.read) {
      ext.read(ext.location, ext.offset, ext.length, out.raw());
      return out;
    }
    // Checked again now: a lazy load may come long after import, and the folder may have changed since.
    std::error_code ec;
    const fs::path real = fs::canonical(ext.file, ec);
    if (ec || !is_inside(real, ext.folder))
      throw fail("external data file '" + printable(ext.file.string()) +
                 "' is no longer inside the model's folder '" + printable(ext.folder.string()) + "'");
    std::ifstream in(real, std::ios::binary);
    if (!in) throw fail("cannot open external data file '" + printable(ext.file.string()) + "'");
    in.seekg(static_cast<std::streamoff>(ext.offset));
    in.read(static_cast<char*>(out.raw()), static_cast<std::streamsize>(ext.length));
    if (static_cast<uint64_t>(in.gcount()) != ext.length)
      throw fail("external data file '" + printable(ext.file.string()) + "' is too short (need " +
                 std::to_string(ext.offset + ext.length) + " bytes)");
    return out;
  }
  if (tp.has_raw_data()) {
    if (!tp.raw_data().empty()) std::memcpy(out.raw(), tp.raw_data().data(), tp.raw_data().size());
    return out;
  }
  switch (info.dtype) {
    case DType::Float: case DType::Complex64: copy_field<float>(tp.float_data(), out); break;
    case DType::Int32: copy_field<int32_t>(tp.int32_data(), out); break;
    case DType::Int16: copy_field<int16_t>(tp.int32_data(), out); break;
    case DType::Int8: copy_field<int8_t>(tp.int32_data(), out); break;
    // float16/bfloat16 travel as their bit patterns in the low 16 bits of int32_data.
    case DType::UInt16: case DType::Float16: case DType::BFloat16: copy_field<uint16_t>(tp.int32_data(), out); break;
    case DType::UInt8: copy_field<uint8_t>(tp.int32_data(), out); break;
    case DType::Bool: {
      uint8_t* d = out.data<uint8_t>();
      for (int i = 0; i < tp.int32_data_size(); ++i) d[i] = tp.int32_data(i) != 0;
      break;
    }
    case DType::Int64: copy_field<int64_t>(tp.int64_data(), out); break;
    case DType::Double: case DType::Complex128: copy_field<double>(tp.double_data(), out); break;
    case DType::UInt32: copy_field<uint32_t>(tp.uint64_data(), out); break;
    case DType::UInt64: copy_field<uint64_t>(tp.uint64_data(), out); break;
    case DType::String:
      for (int i = 0; i < tp.string_data_size(); ++i) out.strings()[i] = tp.string_data(i);
      break;
    case DType::Undefined: case DType::Sequence: case DType::Optional: break;  // not TensorProto types
  }
  return out;
}

std::string node_label(const onnx::NodeProto& n) {
  if (!n.name().empty()) return "'" + printable(n.name()) + "' (" + printable(n.op_type(), 64) + ")";
  return "(" + printable(n.op_type(), 64) +
         (n.output_size() ? " writing '" + printable(n.output(0)) + "'" : std::string()) + ")";
}

// The names an enclosing graph defines, for resolving a subgraph's outer references.
struct Scope {
  const std::unordered_map<std::string, Tensor*>* names;
  const Scope* parent;
  bool defines(const std::string& name) const {
    return names->count(name) || (parent && parent->defines(name));
  }
};

class Importer {
 public:
  Importer(std::string source, const std::string& base_dir, const ImportOptions& options)
      : source_(std::move(source)), base_dir_(fs::absolute(base_dir.empty() ? "." : base_dir)), options_(options) {}

  std::unique_ptr<Graph> import_model(onnx::ModelProto& m) {
    // Protobuf accepts much garbage (a parse of random bytes can succeed), so require a model's essentials.
    if (m.ir_version() <= 0 || !m.has_graph() || (m.ir_version() >= 3 && m.opset_import_size() == 0))
      fail("not a valid ONNX model (missing ir_version, graph or opset_import)");
    if (m.functions_size() > 0)
      fail("model-local functions are not supported (the model defines " +
           std::to_string(m.functions_size()) + ", first '" + printable(m.functions(0).name()) + "')");
    // Like ONNX Runtime: a model newer than the IR or the operator set we know is refused, not guessed at.
    if (m.ir_version() > kMaxIrVersion)
      fail("IR version " + std::to_string(m.ir_version()) + " is newer than the newest kiln reads (" +
           std::to_string(kMaxIrVersion) + ")");
    for (const auto& o : m.opset_import())
      if ((o.domain().empty() || o.domain() == "ai.onnx") && o.version() > kMaxOpset)
        fail("opset " + std::to_string(o.version()) +
             " of the default domain is newer than the newest kiln implements (" + std::to_string(kMaxOpset) +
             ")");
    ir_version_ = m.ir_version();
    std::unique_ptr<Graph> g = import_graph(*m.mutable_graph(), nullptr);
    g->ir_version = m.ir_version();
    for (const auto& o : m.opset_import()) g->opset_imports.push_back({o.domain(), o.version()});
    g->producer_name = m.producer_name();
    g->producer_version = m.producer_version();
    g->model_domain = m.domain();
    g->model_version = m.model_version();
    g->model_doc_string = m.doc_string();
    for (const auto& p : m.metadata_props()) g->metadata_props.emplace_back(p.key(), p.value());
    return g;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw Error(source_ + ": " + msg); }
  void warn(const std::string& msg) const {
    if (options_.on_warning) options_.on_warning(source_ + ": " + msg);
  }

  DType dtype_of(int64_t v, const std::string& what) const {
    if (v < 0 || v > static_cast<int64_t>(DType::BFloat16))
      fail(what + " has unsupported data type " + std::to_string(v));
    return static_cast<DType>(v);
  }

  std::optional<Shape> shape_of(const onnx::TypeProto_Tensor& tt, const std::string& what) const {
    if (!tt.has_shape()) return std::nullopt;
    Shape shape;
    for (const auto& d : tt.shape().dim()) {
      // A dim is a size, a symbol or nothing (unknown); ONNX gives negative sizes no meaning, but exporters
      // (PaddlePaddle: every PP-OCR model) write -1 for a dynamic dim, and ONNX Runtime reads it as unknown.
      if (d.has_dim_value() && d.dim_value() == -1) {
        warn(what + " has dimension -1 (dimension " + std::to_string(shape.size()) + "); read as unknown");
        shape.emplace_back();
        continue;
      }
      if (d.has_dim_value() && d.dim_value() < 0)
        fail(what + " has negative dimension " + std::to_string(d.dim_value()) + " (dimension " +
             std::to_string(shape.size()) + "); leave an unknown dimension without dim_value");
      if (d.has_dim_value())
        shape.emplace_back(d.dim_value());
      else if (d.has_dim_param() && !d.dim_param().empty()) shape.push_back(Dim::symbolic(d.dim_param()));
      else shape.emplace_back();
    }
    return shape;
  }

  // A tensor, sequence or optional type (maps and sparse tensors have no IR representation: nullopt, and the
  // value stays untyped). Sequences and optionals are rank-0 values whose element type is kept.
  std::optional<ElementType> type_of(const onnx::TypeProto& tp, const std::string& what, int depth = 0) const {
    if (depth > 16) fail(what + " nests sequence and optional types more than 16 deep");
    ElementType e;
    if (tp.has_tensor_type()) {
      e.dtype = dtype_of(tp.tensor_type().elem_type(), what);
      e.shape = shape_of(tp.tensor_type(), what);
      return e;
    }
    const bool seq = tp.has_sequence_type();
    if (!seq && !tp.has_optional_type()) return std::nullopt;
    e.dtype = seq ? DType::Sequence : DType::Optional;
    e.shape = Shape{};
    const bool has_elem = seq ? tp.sequence_type().has_elem_type() : tp.optional_type().has_elem_type();
    if (has_elem)
      if (auto inner = type_of(seq ? tp.sequence_type().elem_type() : tp.optional_type().elem_type(), what, depth + 1))
        e.element = std::make_shared<const ElementType>(std::move(*inner));
    return e;
  }

  void apply_type(Tensor* t, const onnx::ValueInfoProto& vi) const {
    if (!vi.doc_string().empty()) t->doc_string = vi.doc_string();
    if (!vi.has_type()) return;
    std::optional<ElementType> type = type_of(vi.type(), "value '" + printable(vi.name()) + "'");
    if (!type) return;
    t->dtype = type->dtype;
    t->shape = std::move(type->shape);
    t->element = std::move(type->element);
  }

  // Where an external tensor's bytes are. Keys: location (required), offset, length, checksum (ONNX's
  // optional SHA-1, not verified); a repeated or unknown key is an error, as in ONNX Runtime. The location
  // must be a relative path that stays inside the model's folder once `..` and symlinks are resolved (ONNX
  // Runtime's rule), name a regular file, and hold [offset, offset + length).
  ExternalRef external_ref(const onnx::TensorProto& tp, const std::string& what, uint64_t nbytes) const {
    ExternalRef ext;
    ext.length = nbytes;
    std::optional<std::string> location;
    std::unordered_set<std::string> seen;
    for (const auto& kv : tp.external_data()) {
      const std::string key = "'" + printable(kv.key(), 64) + "'";
      if (!seen.insert(kv.key()).second) fail(what + ": external data key " + key + " is given twice");
      if (kv.key() == "location") {
        location = kv.value();
      } else if (kv.key() == "offset" || kv.key() == "length") {
        std::optional<uint64_t> v = parse_size(kv.value());
        if (!v)
          fail(what + ": external data " + kv.key() + " '" + printable(kv.value(), 64) +
               "' is not a decimal byte count below 2^63");
        (kv.key() == "offset" ? ext.offset : ext.length) = *v;
      } else if (kv.key() != "checksum") {
        fail(what + ": unknown external data key " + key + " (known: location, offset, length, checksum)");
      }
    }
    if (!location || location->empty()) fail(what + ": external data has no location");
    const std::string loc = "'" + printable(*location) + "'";
    if (ext.length != nbytes)
      fail(what + ": external data length " + std::to_string(ext.length) + " does not match its " +
           std::to_string(nbytes) + " bytes");
    ext.location = *location;
    if (options_.read_external) {  // memory the caller holds: no file to check
      ext.read = options_.read_external;
      return ext;
    }
    if (location->find('\0') != std::string::npos)
      fail(what + ": external data location " + loc + " contains a NUL byte");
    const fs::path rel(*location);
    if (rel.has_root_path())
      fail(what + ": external data location " + loc +
           " is an absolute path; it must be relative to the model's folder");
    const fs::path norm = rel.lexically_normal();
    if (norm.empty() || *norm.begin() == "..")
      fail(what + ": external data location " + loc + " leaves the model's folder");
    std::error_code ec;
    ext.folder = fs::canonical(base_dir_, ec);
    if (ec)
      fail(what + ": cannot resolve the model's folder '" + printable(base_dir_.string()) +
           "': " + ec.message());
    ext.file = fs::weakly_canonical(ext.folder / rel, ec);
    if (ec) fail(what + ": cannot resolve external data location " + loc + ": " + ec.message());
    if (!is_inside(ext.file, ext.folder))
      fail(what + ": external data location " + loc + " resolves to '" + printable(ext.file.string()) +
           "', outside the model's folder (through a symlink)");
    const fs::file_status st = fs::status(ext.file, ec);
    if (ec || !fs::exists(st))
      fail(what + ": cannot read external data file '" + printable(ext.file.string()) +
           "': " + (ec ? ec.message() : "no such file"));
    if (!fs::is_regular_file(st)) fail(what + ": external data location " + loc + " is not a regular file");
    const uintmax_t size = fs::file_size(ext.file, ec);
    if (ec)
      fail(what + ": cannot read external data file '" + printable(ext.file.string()) + "': " + ec.message());
    uint64_t end = 0;
    if (__builtin_add_overflow(ext.offset, ext.length, &end) || end > size)
      fail(what + ": external data file '" + printable(ext.file.string()) + "' is too short (" +
           std::to_string(size) + " bytes, need " + std::to_string(ext.length) + " at offset " +
           std::to_string(ext.offset) + ")");
    return ext;
  }

  // Validates a tensor's header and data sizes without reading its values.
  TensorInfo inspect_tensor(const onnx::TensorProto& tp, const std::string& what) const {
    TensorInfo info;
    info.what = what;
    info.dtype = dtype_of(tp.data_type(), what);
    if (info.dtype == DType::Undefined) fail(what + " has no data type");
    for (int64_t d : tp.dims()) {
      if (d < 0) fail(what + " has negative dimension " + std::to_string(d));
      if (d > 0 && info.numel > std::numeric_limits<int64_t>::max() / 16 / d) fail(what + " is impossibly large");
      info.numel *= d;
      info.dims.push_back(d);
    }
    const uint64_t nbytes = static_cast<uint64_t>(info.numel) * dtype_size(info.dtype);
    if (tp.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
      if (info.dtype == DType::String) fail(what + ": string tensors cannot use external data");
      if (!options_.allow_external_data) fail(what + ": external data is not allowed here");
      info.external = external_ref(tp, what, nbytes);
    } else if (tp.has_raw_data()) {
      if (info.dtype == DType::String) fail(what + ": string tensors cannot use raw_data");
      if (tp.raw_data().size() != nbytes)
        fail(what + ": raw_data has " + std::to_string(tp.raw_data().size()) + " bytes, expected " +
             std::to_string(nbytes));
    } else {
      const int64_t want = info.numel * values_per_element(info.dtype);
      if (typed_field_size(tp, info.dtype) != want)
        fail(what + " has " + std::to_string(info.numel) + " elements but its " + typed_field_name(info.dtype) +
             " holds " + std::to_string(typed_field_size(tp, info.dtype)) + " values");
    }
    return info;
  }

  // Attribute tensors are small and live in a variant, so they are decoded now.
  TensorData import_tensor_now(const onnx::TensorProto& tp, const std::string& what) const {
    return decode_tensor(tp, inspect_tensor(tp, what), source_);
  }

  std::unique_ptr<Graph> import_graph(onnx::GraphProto& gp, const Scope* parent) {
    auto g = std::make_unique<Graph>();
    g->name = gp.name();
    g->doc_string = gp.doc_string();
    g->source = source_;
    const std::string where = parent ? "subgraph '" + printable(gp.name()) + "': " : "";
    if (gp.sparse_initializer_size() > 0)
      fail(where + "sparse initializers are not supported ('" +
           printable(gp.sparse_initializer(0).values().name()) + "')");

    // Phase 1: every defined name becomes a tensor; `defined_by` names the definer for duplicate errors.
    std::unordered_map<std::string, Tensor*> local;
    std::unordered_map<std::string, std::string> defined_by;
    auto define = [&](const std::string& name, const std::string& by) {
      auto [it, fresh] = defined_by.emplace(name, by);
      if (!fresh)
        fail(where + "tensor '" + printable(name) + "' is defined twice: by " + it->second + " and by " + by);
    };
    for (int k = 0; k < gp.initializer_size(); ++k) {
      auto tp = std::make_shared<onnx::TensorProto>();
      tp->Swap(gp.mutable_initializer(k));  // takes the bytes without copying them
      if (tp->name().empty()) fail(where + "initializer #" + std::to_string(k) + " has no name");
      define(tp->name(), "initializer");
      local[tp->name()] = add_initializer(*g, tp, where);
    }
    std::unordered_set<std::string> input_names;
    for (const auto& vi : gp.input()) {
      if (vi.name().empty()) fail(where + "a graph input has no name");
      if (!input_names.insert(vi.name()).second)
        fail(where + "graph input '" + printable(vi.name()) + "' is listed twice");
      auto it = local.find(vi.name());
      if (it != local.end() && it->second->is_constant()) {  // an initializer that is also an input
        if (!vi.doc_string().empty()) it->second->doc_string = vi.doc_string();
        g->inputs.push_back(it->second);
        continue;
      }
      define(vi.name(), "graph input");
      Variable* v = g->add_variable(vi.name());
      apply_type(v, vi);
      local[vi.name()] = v;
      g->inputs.push_back(v);
    }
    for (const auto& n : gp.node()) {
      if (n.op_type().empty()) fail(where + "node " + node_label(n) + " has no op_type");
      for (const std::string& out : n.output()) {
        if (out.empty()) continue;  // an omitted optional output
        define(out, "node " + node_label(n));
        local[out] = g->add_variable(out);
      }
    }
    // Types of intermediate values and outputs; entries for names nothing defines are stale and dropped.
    const std::unordered_set<const Tensor*> input_set(g->inputs.begin(), g->inputs.end());
    auto is_input = [&](Tensor* t) { return input_set.count(t) > 0; };
    for (const auto& vi : gp.value_info())
      if (auto it = local.find(vi.name()); it != local.end() && !it->second->is_constant() && !is_input(it->second))
        apply_type(it->second, vi);

    // Phase 2: connect. A name missing here may come from an enclosing graph.
    const Scope scope{&local, parent};
    auto resolve = [&](const std::string& name) -> Tensor* {
      if (auto it = local.find(name); it != local.end()) return it->second;
      if (!parent || !parent->defines(name)) return nullptr;
      return local[name] = g->add_variable(name);
    };
    for (auto& n : *gp.mutable_node()) {
      std::vector<Tensor*> ins, outs;
      for (const std::string& in : n.input()) {
        if (in.empty()) {
          ins.push_back(nullptr);
          continue;
        }
        Tensor* t = resolve(in);
        if (!t)
          fail(where + "node " + node_label(n) + " reads tensor '" + printable(in) +
               "', which is never defined");
        ins.push_back(t);
      }
      for (const std::string& out : n.output()) outs.push_back(out.empty() ? nullptr : local.at(out));
      Node* node = g->add_node(n.op_type(), ins, outs, n.name(), n.domain());
      node->doc_string = n.doc_string();
      for (auto& a : *n.mutable_attribute()) node->attrs.set(a.name(), import_attribute(a, *node, where, scope));
    }
    // ONNX Runtime accepts a graph without outputs and one listing an output twice: warnings, not errors.
    if (gp.output_size() == 0) warn(where + "graph '" + printable(gp.name()) + "' has no outputs");
    std::unordered_set<std::string> output_names;
    for (const auto& vi : gp.output()) {
      if (!output_names.insert(vi.name()).second)
        warn(where + "graph output '" + printable(vi.name()) + "' is listed more than once");
      Tensor* t = resolve(vi.name());
      if (!t) fail(where + "graph output '" + printable(vi.name()) + "' is never defined");
      if (!t->is_constant() && !is_input(t)) apply_type(t, vi);
      else if (!vi.doc_string().empty()) t->doc_string = vi.doc_string();
      g->outputs.push_back(t);
    }
    try {
      g->validate();
    } catch (const Error& e) {
      fail(where + e.what());
    }
    return g;
  }

  Constant* add_initializer(Graph& g, const std::shared_ptr<onnx::TensorProto>& tp, const std::string& where) {
    TensorInfo info = inspect_tensor(*tp, where + "initializer '" + printable(tp->name()) + "'");
    // add_constant wants values; create it empty-handed and give it a loader instead.
    Constant* c = g.add_constant(tp->name(), TensorData(DType::Float, {0}));
    c->doc_string = tp->doc_string();
    for (const auto& kv : tp->external_data()) c->external_data.emplace_back(kv.key(), kv.value());
    if (!options_.load_external_data_lazily) {
      c->set_values(decode_tensor(*tp, info, source_));
    } else {
      std::vector<int64_t> dims = info.dims;
      c->set_loader(info.dtype, std::move(dims),
                    [tp, info = std::move(info), source = source_] { return decode_tensor(*tp, info, source); });
    }
    return c;
  }

  // An enum value outside AttributeType is parsed by proto2 into the unknown fields, leaving type() UNDEFINED.
  std::optional<uint64_t> unknown_attribute_type(const onnx::AttributeProto& a) const {
    const auto& unknown = a.GetReflection()->GetUnknownFields(a);
    for (int k = 0; k < unknown.field_count(); ++k)
      if (unknown.field(k).number() == onnx::AttributeProto::kTypeFieldNumber &&
          unknown.field(k).type() == google::protobuf::UnknownField::TYPE_VARINT)
        return unknown.field(k).varint();
    return std::nullopt;
  }

  Attribute import_attribute(onnx::AttributeProto& a, const Node& node, const std::string& where,
                             const Scope& scope) {
    using A = onnx::AttributeProto;
    const std::string what = where + "attribute '" + printable(a.name()) + "' of node " + node.label();
    A::AttributeType type = a.type();
    if (type == A::UNDEFINED) {
      if (auto bad = unknown_attribute_type(a)) fail(what + " has unknown attribute type " + std::to_string(*bad));
      // Since IR version 2 the type is required (ONNX Runtime refuses such a model too).
      if (ir_version_ >= 2)
        fail(what + " has attribute type UNDEFINED (the type field is required since IR version 2)");
      // IR version 1 had no type field: infer it from the field in use.
      type = a.has_f() ? A::FLOAT : a.has_i() ? A::INT : a.has_s() ? A::STRING : a.has_t() ? A::TENSOR
           : a.has_g() ? A::GRAPH : a.has_sparse_tensor() ? A::SPARSE_TENSOR : a.has_tp() ? A::TYPE_PROTO
           : a.floats_size() ? A::FLOATS : a.ints_size() ? A::INTS : a.strings_size() ? A::STRINGS
           : a.tensors_size() ? A::TENSORS : a.graphs_size() ? A::GRAPHS : a.sparse_tensors_size() ? A::SPARSE_TENSORS
           : a.type_protos_size() ? A::TYPE_PROTOS : A::UNDEFINED;
      if (type == A::UNDEFINED) fail(what + " has no type and no value");
    }
    auto subgraph = [&](onnx::GraphProto& gp) { return GraphPtr(import_graph(gp, &scope)); };
    auto opaque = [](const std::string& kind, const google::protobuf::Message& m) {
      return OpaqueProto{kind, m.SerializeAsString()};
    };
    Attribute out;
    out.doc_string = a.doc_string();
    out.ref_attr_name = a.ref_attr_name();
    switch (type) {
      case A::FLOAT: out.value = a.f(); break;
      case A::INT: out.value = static_cast<int64_t>(a.i()); break;
      case A::STRING: out.value = a.s(); break;
      case A::TENSOR: out.value = import_tensor_now(a.t(), what); break;
      case A::GRAPH: out.value = subgraph(*a.mutable_g()); break;
      case A::SPARSE_TENSOR: out.value = opaque("sparse_tensor", a.sparse_tensor()); break;
      case A::TYPE_PROTO: out.value = opaque("type_proto", a.tp()); break;
      case A::FLOATS: out.value = std::vector<float>(a.floats().begin(), a.floats().end()); break;
      case A::INTS: out.value = std::vector<int64_t>(a.ints().begin(), a.ints().end()); break;
      case A::STRINGS: out.value = std::vector<std::string>(a.strings().begin(), a.strings().end()); break;
      case A::TENSORS: {
        std::vector<TensorData> ts;
        for (int k = 0; k < a.tensors_size(); ++k)
          ts.push_back(import_tensor_now(a.tensors(k), what + " tensor #" + std::to_string(k)));
        out.value = std::move(ts);
        break;
      }
      case A::GRAPHS: {
        std::vector<GraphPtr> gs;
        for (auto& gp : *a.mutable_graphs()) gs.push_back(subgraph(gp));
        out.value = std::move(gs);
        break;
      }
      case A::SPARSE_TENSORS: case A::TYPE_PROTOS: {
        std::vector<OpaqueProto> ps;
        for (const auto& s : a.sparse_tensors()) ps.push_back(opaque("sparse_tensor", s));
        for (const auto& t : a.type_protos()) ps.push_back(opaque("type_proto", t));
        out.value = std::move(ps);
        break;
      }
      default: fail(what + " has unknown attribute type " + std::to_string(static_cast<int>(type)));
    }
    return out;
  }

  std::string source_;
  int64_t ir_version_ = 0;
  fs::path base_dir_;
  ImportOptions options_;
};

}  // namespace

void ImportOptions::default_warning(const std::string& message) {
  std::fprintf(stderr, "kiln: warning: %s\n", printable(message, 1000).c_str());
}

std::unique_ptr<Graph> import_onnx_bytes(const std::string& bytes, const std::string& source_name,
                                         const std::string& base_dir, const ImportOptions& options) {
  return onnx_io::guarded(source_name, [&] {
    onnx::ModelProto model;
    if (!model.ParseFromString(bytes)) throw Error(source_name + ": not a valid ONNX model (protobuf parse failed)");
    return Importer(source_name, base_dir, options).import_model(model);
  });
}

std::unique_ptr<Graph> import_onnx(const std::string& path, const ImportOptions& options) {
  return onnx_io::guarded(path, [&] {
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw Error(path + ": is a directory, not an ONNX model");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    onnx::ModelProto model;
    // Parsing from the descriptor avoids holding the whole file in memory next to the parsed model.
    const bool ok = model.ParseFromFileDescriptor(fd);
    ::close(fd);
    if (!ok) throw Error(path + ": not a valid ONNX model (protobuf parse failed)");
    fs::path dir = fs::path(path).parent_path();
    return Importer(path, dir.empty() ? "." : dir.string(), options).import_model(model);
  });
}

}  // namespace kiln
