// kiln::Graph → ONNX ModelProto.
//
// Tensor values are written as raw_data (string_data for strings), or to the external data file when it is
// enabled and they are large enough. Files are written under a temporary name and renamed into place, the
// data file before the model, so a reader never sees a model whose data is missing or half written.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <onnx/onnx_pb.h>
#include <type_traits>
#include <unordered_set>

#include "kiln/onnx.h"
#include "proto_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// Protobuf cannot serialize messages of 2 GB or more; keep some room for everything but tensor bytes.
constexpr uint64_t kProtobufLimit = (uint64_t{1} << 31) - (uint64_t{64} << 20);

// A file written under a temporary name next to its target and renamed onto it by commit().
class AtomicFile {
 public:
  explicit AtomicFile(fs::path target) : target_(std::move(target)) {
    static std::atomic<int> counter{0};
    tmp_ = target_;
    tmp_ += ".tmp" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create");
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  int fd() const { return fd_; }
  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("cannot write");
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
  void commit() {
    // fsync first: without it a crash right after the rename can leave an empty file under the real name.
    if (::fsync(fd_) != 0) fail("cannot write");
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) fail("cannot write");
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) fail("cannot rename temporary file onto");
    committed_ = true;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(target_.string() + ": " + what + " '" + tmp_.string() + "': " + std::strerror(errno));
  }

 private:
  fs::path target_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

std::vector<GraphPtr> subgraphs_of(const Attribute& a) {
  if (auto* g = std::get_if<GraphPtr>(&a.value)) return {*g};
  if (auto* gs = std::get_if<std::vector<GraphPtr>>(&a.value)) return *gs;
  return {};
}

// Bytes of tensor data a graph holds (constants, attribute tensors, subgraphs), without loading anything.
uint64_t tensor_bytes(const Graph& g) {
  uint64_t total = 0;
  for (const Tensor* t : g.all_tensors())
    if (t->is_constant() && t->has_static_shape()) {
      uint64_t n = dtype_size(t->dtype);
      for (int64_t d : static_dims(*t->shape)) n *= static_cast<uint64_t>(d);
      total += n;
    }
  for (const auto& n : g.nodes())
    for (const auto& [name, a] : n->attrs.items()) {
      if (auto* t = std::get_if<TensorData>(&a.value)) total += t->nbytes();
      if (auto* ts = std::get_if<std::vector<TensorData>>(&a.value))
        for (const auto& t : *ts) total += t.nbytes();
      for (const auto& sub : subgraphs_of(a))
        if (sub) total += tensor_bytes(*sub);
    }
  return total;
}

bool contains(const std::vector<Tensor*>& list, const Tensor* t) {
  return std::find(list.begin(), list.end(), t) != list.end();
}

// Loads every not-yet-loaded constant whose external data lives in `file`, which is about to be replaced:
// afterwards their lazy loaders would read the new file at the old offsets.
void load_constants_reading(const Graph& g, const fs::path& file) {
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(file, ec);
  for (const Tensor* t : g.all_tensors()) {
    const auto* c = dynamic_cast<const Constant*>(t);
    if (!c || c->loaded()) continue;
    for (const auto& [key, value] : c->external_data)
      if (key == "location" && fs::weakly_canonical(fs::path(g.source).parent_path() / value, ec) == target)
        c->values();
  }
  for (const auto& n : g.nodes())
    for (const auto& [name, a] : n->attrs.items())
      for (const auto& sub : subgraphs_of(a))
        if (sub) load_constants_reading(*sub, file);
}

class Exporter {
 public:
  // `data_path` empty: everything inline. Otherwise tensors of `threshold` bytes or more go to that file,
  // which the model names as `location`.
  Exporter(std::string where, fs::path data_path = {}, std::string location = {}, size_t threshold = 0)
      : where_(std::move(where)), data_path_(std::move(data_path)), location_(std::move(location)),
        threshold_(threshold) {}

  void export_model(const Graph& g, onnx::ModelProto& m) {
    // Names only a subgraph may leave undefined (they come from outside); in the model they make a broken file.
    if (std::vector<std::string> undefined = g.outer_scope_names(); !undefined.empty())
      fail("tensor '" + undefined.front() + "' is read but no node, graph input or constant defines it");
    for (const Tensor* t : g.outputs)
      if (g.is_outer_reference(t)) fail("graph output '" + t->name + "' is not defined by any node, input or constant");
    m.set_ir_version(g.ir_version);
    for (const auto& o : g.opset_imports) {
      auto* op = m.add_opset_import();
      op->set_domain(o.domain);
      op->set_version(o.version);
    }
    if (!g.producer_name.empty()) m.set_producer_name(g.producer_name);
    if (!g.producer_version.empty()) m.set_producer_version(g.producer_version);
    if (!g.model_domain.empty()) m.set_domain(g.model_domain);
    if (g.model_version != 0) m.set_model_version(g.model_version);
    if (!g.model_doc_string.empty()) m.set_doc_string(g.model_doc_string);
    for (const auto& [k, v] : g.metadata_props) {
      auto* p = m.add_metadata_props();
      p->set_key(k);
      p->set_value(v);
    }
    export_graph(g, *m.mutable_graph());
  }

  // The external data file, if any tensor went there (commit it before the model).
  AtomicFile* data_file() { return data_ ? data_.get() : nullptr; }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw Error(where_ + ": " + msg); }

  void export_value_info(const Tensor& t, onnx::ValueInfoProto& vi) const {
    vi.set_name(t.name);
    if (!t.doc_string.empty()) vi.set_doc_string(t.doc_string);
    if (t.dtype == DType::Undefined) return;  // ONNX has no tensor type without an element type
    export_type(t.dtype, t.shape, t.element.get(), *vi.mutable_type());
  }

  // A tensor type, or a sequence/optional type and (when known) what it holds.
  static void export_type(DType dtype, const std::optional<Shape>& shape, const ElementType* element,
                          onnx::TypeProto& tp) {
    if (dtype_is_container(dtype)) {
      onnx::TypeProto* inner = dtype == DType::Sequence ? tp.mutable_sequence_type()->mutable_elem_type()
                                                        : tp.mutable_optional_type()->mutable_elem_type();
      if (element && element->dtype != DType::Undefined)
        export_type(element->dtype, element->shape, element->element.get(), *inner);
      return;
    }
    auto* tt = tp.mutable_tensor_type();
    tt->set_elem_type(static_cast<int32_t>(dtype));
    if (!shape) return;
    auto* dims = tt->mutable_shape();
    for (const Dim& d : *shape) {
      auto* dim = dims->add_dim();
      if (d.is_static()) dim->set_dim_value(d.value);
      else if (!d.symbol.empty()) dim->set_dim_param(d.symbol);
    }
  }

  void export_tensor(const TensorData& td, onnx::TensorProto& tp, bool may_externalize) {
    if (td.empty_type()) fail("tensor '" + tp.name() + "' has no data type");
    if (dtype_is_container(td.dtype()))
      fail("tensor '" + tp.name() + "' holds a " + dtype_name(td.dtype()) + " value; ONNX tensors cannot");
    tp.set_data_type(static_cast<int32_t>(td.dtype()));
    for (int64_t d : td.dims()) tp.add_dims(d);
    if (td.dtype() == DType::String) {
      for (const auto& s : td.strings()) tp.add_string_data(s);
      return;
    }
    const size_t n = td.nbytes();
    if (may_externalize && !data_path_.empty() && n >= threshold_) {
      if (!data_) data_ = std::make_unique<AtomicFile>(data_path_);
      data_->write(td.raw(), n);
      tp.set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
      const std::pair<const char*, std::string> entries[] = {
          {"location", location_}, {"offset", std::to_string(offset_)}, {"length", std::to_string(n)}};
      for (const auto& [k, v] : entries) {
        auto* e = tp.add_external_data();
        e->set_key(k);
        e->set_value(v);
      }
      offset_ += n;
      return;
    }
    tp.set_raw_data(td.raw() ? static_cast<const char*>(td.raw()) : "", n);
  }

  void export_graph(const Graph& g, onnx::GraphProto& gp) {
    gp.set_name(g.name);
    if (!g.doc_string.empty()) gp.set_doc_string(g.doc_string);

    // Constants are written if something reads them, including subgraphs reading them by name.
    std::unordered_set<std::string> subgraph_reads;
    for (const auto& n : g.nodes())
      for (const auto& [name, a] : n->attrs.items())
        for (const auto& sub : subgraphs_of(a))
          if (sub)
            for (const std::string& s : sub->outer_scope_names()) subgraph_reads.insert(s);
    for (const Tensor* t : g.all_tensors()) {
      if (!t->is_constant()) continue;
      if (t->uses().empty() && !contains(g.inputs, t) && !contains(g.outputs, t) && !subgraph_reads.count(t->name))
        continue;
      auto* tp = gp.add_initializer();
      tp->set_name(t->name);
      if (!t->doc_string.empty()) tp->set_doc_string(t->doc_string);
      export_tensor(static_cast<const Constant*>(t)->values(), *tp, true);
    }
    for (const Tensor* t : g.inputs) export_value_info(*t, *gp.add_input());
    for (const Tensor* t : g.outputs) export_value_info(*t, *gp.add_output());
    for (const Tensor* t : g.all_tensors())
      if (!t->is_constant() && t->producer() && t->dtype != DType::Undefined && !contains(g.inputs, t) &&
          !contains(g.outputs, t))
        export_value_info(*t, *gp.add_value_info());

    for (const auto& n : g.nodes()) {
      auto* np = gp.add_node();
      for (const Tensor* t : n->inputs()) np->add_input(t ? std::string(t->name) : std::string());
      for (const Tensor* t : n->outputs()) np->add_output(t ? std::string(t->name) : std::string());
      np->set_op_type(n->op);
      if (!n->name.empty()) np->set_name(n->name);
      if (!n->domain.empty()) np->set_domain(n->domain);
      if (!n->doc_string.empty()) np->set_doc_string(n->doc_string);
      for (const auto& [name, a] : n->attrs.items()) export_attribute(name, a, *n, *np->add_attribute());
    }
  }

  void export_attribute(const std::string& name, const Attribute& attr, const Node& node, onnx::AttributeProto& a) {
    using A = onnx::AttributeProto;
    const std::string what = "attribute '" + name + "' of node " + node.label();
    a.set_name(name);
    if (!attr.doc_string.empty()) a.set_doc_string(attr.doc_string);
    if (!attr.ref_attr_name.empty()) a.set_ref_attr_name(attr.ref_attr_name);
    auto graph = [&](const GraphPtr& g, onnx::GraphProto& gp) {
      if (!g) fail(what + " holds a null graph");
      export_graph(*g, gp);
    };
    auto opaque = [&](const OpaqueProto& o, google::protobuf::Message& m) {
      if (!m.ParseFromString(o.bytes)) fail(what + " holds an invalid serialized " + o.kind);
    };
    auto opaque_kind = [&](const std::string& kind) {
      if (kind != "sparse_tensor" && kind != "type_proto") fail(what + " holds opaque proto of unknown kind '" + kind + "'");
      return kind == "sparse_tensor";
    };
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, float>) {
            a.set_type(A::FLOAT);
            a.set_f(v);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            a.set_type(A::INT);
            a.set_i(v);
          } else if constexpr (std::is_same_v<T, std::string>) {
            a.set_type(A::STRING);
            a.set_s(v);
          } else if constexpr (std::is_same_v<T, TensorData>) {
            a.set_type(A::TENSOR);
            export_tensor(v, *a.mutable_t(), false);
          } else if constexpr (std::is_same_v<T, GraphPtr>) {
            a.set_type(A::GRAPH);
            graph(v, *a.mutable_g());
          } else if constexpr (std::is_same_v<T, OpaqueProto>) {
            const bool sparse = opaque_kind(v.kind);
            a.set_type(sparse ? A::SPARSE_TENSOR : A::TYPE_PROTO);
            if (sparse) opaque(v, *a.mutable_sparse_tensor());
            else opaque(v, *a.mutable_tp());
          } else if constexpr (std::is_same_v<T, std::vector<float>>) {
            a.set_type(A::FLOATS);
            a.mutable_floats()->Add(v.begin(), v.end());
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            a.set_type(A::INTS);
            a.mutable_ints()->Add(v.begin(), v.end());
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            a.set_type(A::STRINGS);
            for (const auto& s : v) a.add_strings(s);
          } else if constexpr (std::is_same_v<T, std::vector<TensorData>>) {
            a.set_type(A::TENSORS);
            for (const auto& t : v) export_tensor(t, *a.add_tensors(), false);
          } else if constexpr (std::is_same_v<T, std::vector<GraphPtr>>) {
            a.set_type(A::GRAPHS);
            for (const auto& g : v) graph(g, *a.add_graphs());
          } else if constexpr (std::is_same_v<T, std::vector<OpaqueProto>>) {
            // An empty list has no kind to tell; TYPE_PROTOS is as good as SPARSE_TENSORS then.
            const bool sparse = !v.empty() && opaque_kind(v.front().kind);
            a.set_type(sparse ? A::SPARSE_TENSORS : A::TYPE_PROTOS);
            for (const auto& o : v) {
              if (opaque_kind(o.kind) != sparse) fail(what + " mixes sparse tensors and type protos");
              if (sparse) opaque(o, *a.add_sparse_tensors());
              else opaque(o, *a.add_type_protos());
            }
          } else {
            static_assert(!sizeof(T*), "unhandled attribute type");
          }
        },
        attr.value);
  }

  std::string where_;
  fs::path data_path_;
  std::string location_;
  size_t threshold_;
  uint64_t offset_ = 0;
  std::unique_ptr<AtomicFile> data_;
};

}  // namespace

void export_onnx(const Graph& graph, const std::string& path, const ExportOptions& options) {
  onnx_io::guarded(path, [&] {
    const fs::path target(path);
    // Past protobuf's limit external data is the only way to write the model at all.
    const bool external = options.external_data || tensor_bytes(graph) > kProtobufLimit;
    const std::string location =
        options.external_file.empty() ? target.filename().string() + ".data" : options.external_file;
    // The importer's rule: external data stays in the model's folder (a relative path without `..`).
    if (external) {
      const fs::path rel = fs::path(location).lexically_normal();
      if (location.empty() || fs::path(location).has_root_path() || rel.empty() || *rel.begin() == ".." ||
          rel.filename().empty() || location.find('\0') != std::string::npos)
        throw Error(path + ": external data file '" + printable(location) +
                    "' must be a relative path inside the model's folder");
    }
    Exporter exporter(path, external ? target.parent_path() / location : fs::path(), location,
                      options.external_threshold);
    onnx::ModelProto model;
    exporter.export_model(graph, model);
    if (model.ByteSizeLong() > static_cast<size_t>(INT_MAX))
      throw Error(path + ": the model exceeds protobuf's 2 GB limit even with its initializers in external data");
    AtomicFile file(target);
    if (!model.SerializeToFileDescriptor(file.fd())) file.fail("cannot write");
    if (AtomicFile* data = exporter.data_file()) {
      load_constants_reading(graph, target.parent_path() / location);
      data->commit();
    }
    file.commit();
  });
}

std::string export_onnx_bytes(const Graph& graph) {
  const std::string where = "export_onnx_bytes(graph '" + graph.name + "')";
  return onnx_io::guarded(where, [&] {
    if (tensor_bytes(graph) > kProtobufLimit)
      throw Error(where + ": the model's tensors exceed protobuf's 2 GB limit; use export_onnx with external data");
    onnx::ModelProto model;
    Exporter(where).export_model(graph, model);
    return model.SerializeAsString();
  });
}

}  // namespace kiln
