// kiln — the graph IR and its surgery API.
//
// One graph type serves the importer, user surgery, the optimizer passes and the builder. The API follows
// ONNX-GraphSurgeon: a Graph holds Nodes; Nodes read and write Tensors, which are Variables (values known
// at run time, dtype and possibly symbolic shape) or Constants (values known now, loaded lazily).
// Producer/consumer links are kept up to date by the Node mutators, so i()/o() walks are O(1).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "kiln/error.h"
#include "kiln/tensor_data.h"

namespace kiln {

class Graph;
class Node;

// One dimension: a known size, or a symbol ("N", "batch"), or unknown (value < 0 and no symbol).
struct Dim {
  int64_t value = -1;
  std::string symbol;

  Dim() = default;
  Dim(int64_t v) : value(v) {}  // NOLINT: implicit so {1, 3, 224, 224} reads naturally
  static Dim symbolic(std::string name) {
    Dim d;
    d.symbol = std::move(name);
    return d;
  }
  bool is_static() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
};
using Shape = std::vector<Dim>;

std::string to_string(const Shape& shape);          // "1x3x192x640", "Nx3x?x?"
bool is_static(const Shape& shape);                 // every dim known
std::vector<int64_t> static_dims(const Shape& shape);  // throws if not static
Shape make_shape(const std::vector<int64_t>& dims);

// What a sequence or optional value holds (ONNX's sequence_type / optional_type elem_type): a tensor type, or
// (nested) another sequence's or optional's.
struct ElementType {
  DType dtype = DType::Undefined;
  std::optional<Shape> shape;                  // a tensor's; nullopt when its rank is unknown
  std::shared_ptr<const ElementType> element;  // dtype Sequence/Optional: what that holds (null: unknown)
};

// ---------------------------------------------------------------------------------------------- tensors
// A tensor's name: a std::string that tells the graph owning the tensor when it is assigned (=, +=), so the
// graph's name index knows whether a lookup miss can be trusted. Mutating it through a plain std::string&
// (s[0] = 'x', s.append()) bypasses the notice; assign instead, or use Graph::rename_tensor.
class TensorName : public std::string {
 public:
  TensorName() = default;
  TensorName(const TensorName& o) : std::string(o) {}  // a copy belongs to no graph
  TensorName& operator=(const TensorName& o) { return set(std::string(o)); }
  TensorName& operator=(const std::string& s) { return set(std::string(s)); }
  TensorName& operator=(std::string&& s) { return set(std::move(s)); }
  TensorName& operator=(const char* s) { return set(std::string(s)); }
  TensorName& operator+=(const std::string& s) { return set(static_cast<const std::string&>(*this) + s); }
  TensorName& operator+=(const char* s) { return set(static_cast<const std::string&>(*this) + s); }
  TensorName& operator+=(char c) { return set(static_cast<const std::string&>(*this) + c); }

 private:
  friend class Graph;
  TensorName& set(std::string s) {
    std::string::operator=(std::move(s));
    if (renames_) ++*renames_;
    return *this;
  }
  uint64_t* renames_ = nullptr;  // the owning graph's rename counter
};

class Tensor {
 public:
  virtual ~Tensor() = default;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  TensorName name;  // editable: the graph's name index notices assignments
  DType dtype = DType::Undefined;
  std::optional<Shape> shape;  // nullopt: rank unknown
  // dtype Sequence/Optional (whose shape is rank 0: one value): the type held, null when unknown.
  std::shared_ptr<const ElementType> element;
  std::string doc_string;

  virtual bool is_constant() const = 0;
  bool has_shape() const { return shape.has_value(); }
  bool has_static_shape() const { return shape && is_static(*shape); }

  // The node that writes this tensor (nullptr for graph inputs, constants and outer-scope names).
  Node* producer() const { return producer_; }
  // Every (node, input slot) reading this tensor, one entry per use.
  const std::vector<std::pair<Node*, size_t>>& uses() const { return uses_; }
  // Distinct consuming nodes, in order of first use.
  std::vector<Node*> consumers() const;

 protected:
  Tensor() = default;

 private:
  friend class Node;
  friend class Graph;
  Node* producer_ = nullptr;
  std::vector<std::pair<Node*, size_t>> uses_;
};

class Variable final : public Tensor {
 public:
  bool is_constant() const override { return false; }
};

class Constant final : public Tensor {
 public:
  using Loader = std::function<TensorData()>;
  bool is_constant() const override { return true; }

  // Loads the values on first use (external data, large initializers).
  const TensorData& values() const;
  void set_values(TensorData values);  // also sets dtype and shape
  // Defers loading: dtype and dims must be given so shapes are known without reading data.
  void set_loader(DType dtype, std::vector<int64_t> dims, Loader loader);
  bool loaded() const { return values_.has_value(); }
  // The deferred loader (empty once loaded); copies of a graph share it.
  const Loader& pending_loader() const { return loader_; }
  // Where the data came from, when it was external (kept for round trips).
  std::vector<std::pair<std::string, std::string>> external_data;

 private:
  mutable std::optional<TensorData> values_;
  mutable Loader loader_;
};

// ----------------------------------------------------------------------------------------- attributes
// Serialized ONNX protos we carry without interpreting (TypeProto, SparseTensorProto attributes).
struct OpaqueProto {
  std::string kind;   // "type_proto" or "sparse_tensor"
  std::string bytes;  // the serialized message
  bool operator==(const OpaqueProto& o) const { return kind == o.kind && bytes == o.bytes; }
};

using GraphPtr = std::shared_ptr<Graph>;
using AttributeValue =
    std::variant<float, int64_t, std::string, TensorData, GraphPtr, OpaqueProto, std::vector<float>,
                 std::vector<int64_t>, std::vector<std::string>, std::vector<TensorData>, std::vector<GraphPtr>,
                 std::vector<OpaqueProto>>;

struct Attribute {
  AttributeValue value;
  std::string doc_string;
  std::string ref_attr_name;  // set inside function bodies; kept for round trips
};

// Attributes in insertion order (round trips keep the file's order).
class Attributes {
 public:
  bool has(const std::string& name) const { return find(name) != nullptr; }
  const Attribute* find(const std::string& name) const;
  void set(const std::string& name, AttributeValue value);
  void set(const std::string& name, Attribute attr);
  bool erase(const std::string& name);
  const std::vector<std::pair<std::string, Attribute>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

  // Typed getters with defaults; throw kiln::Error naming the attribute on a type mismatch.
  int64_t get_int(const std::string& name, int64_t def) const;
  float get_float(const std::string& name, float def) const;
  std::string get_string(const std::string& name, const std::string& def) const;
  std::vector<int64_t> get_ints(const std::string& name, const std::vector<int64_t>& def = {}) const;
  std::vector<float> get_floats(const std::string& name, const std::vector<float>& def = {}) const;
  const TensorData* get_tensor(const std::string& name) const;

 private:
  std::vector<std::pair<std::string, Attribute>> items_;
};

// ----------------------------------------------------------------------------------------------- nodes
class Node {
 public:
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  std::string op;
  std::string domain;  // "" is the default ONNX domain ("ai.onnx")
  std::string name;
  std::string doc_string;
  Attributes attrs;

  // Inputs may hold nullptr for an omitted optional input (ONNX's empty name).
  const std::vector<Tensor*>& inputs() const { return inputs_; }
  const std::vector<Tensor*>& outputs() const { return outputs_; }
  Tensor* input(size_t k) const { return k < inputs_.size() ? inputs_[k] : nullptr; }
  Tensor* output(size_t k) const { return k < outputs_.size() ? outputs_[k] : nullptr; }

  void set_input(size_t k, Tensor* t);  // grows the list with nullptr if needed
  void add_input(Tensor* t) { set_input(inputs_.size(), t); }
  void set_inputs(const std::vector<Tensor*>& ts);
  void set_output(size_t k, Tensor* t);  // t must not already have another producer
  void set_outputs(const std::vector<Tensor*>& ts);
  void clear_io();  // disconnect from every tensor

  // GraphSurgeon-style walks. i(k): the producer of input k (nullptr if none);
  // o(k, t): the k-th consumer of output t (nullptr if none).
  Node* i(size_t tensor_idx = 0, size_t producer_idx = 0) const;
  Node* o(size_t consumer_idx = 0, size_t tensor_idx = 0) const;

  // "'name' (Op)" or "(Op #index)" — the way errors name a node.
  std::string label() const;
  Graph* graph() const { return graph_; }

 private:
  friend class Graph;
  explicit Node(Graph* g) : graph_(g) {}
  Graph* graph_;
  size_t index_ = 0;  // position in graph_->nodes_
  std::vector<Tensor*> inputs_;
  std::vector<Tensor*> outputs_;
};

// ---------------------------------------------------------------------------------------------- graph
struct OpsetImport {
  std::string domain;
  int64_t version = 0;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Model-level information (kept for round trips; used only on the top-level graph).
  std::string name;
  std::string doc_string;
  int64_t ir_version = 8;
  std::vector<OpsetImport> opset_imports;  // empty domain = ai.onnx
  std::string producer_name, producer_version, model_domain, model_doc_string;
  int64_t model_version = 0;
  std::vector<std::pair<std::string, std::string>> metadata_props;
  std::string source;  // the file it came from, for error messages

  std::vector<Tensor*> inputs;   // graph inputs (initializers listed as inputs are Constants here)
  std::vector<Tensor*> outputs;  // graph outputs

  // Opset version of a domain ("" or "ai.onnx" for the default), or 0 if not imported.
  int64_t opset(const std::string& domain = "") const;
  void set_opset(const std::string& domain, int64_t version);

  // ---- creation. Names must be unique among tensors; an empty tensor name gets a fresh one.
  Variable* add_variable(const std::string& name, DType dtype = DType::Undefined,
                         std::optional<Shape> shape = std::nullopt);
  Constant* add_constant(const std::string& name, TensorData values);
  Node* add_node(const std::string& op, const std::vector<Tensor*>& inputs,
                 const std::vector<Tensor*>& outputs, const std::string& name = "",
                 const std::string& domain = "");
  // A fresh tensor or node name with the given stem ("conv1_out", "conv1_out_1", ...).
  std::string unique_name(const std::string& stem);

  // ---- lookup
  const std::vector<std::unique_ptr<Node>>& nodes() const {
    compact();
    return nodes_;
  }
  size_t num_nodes() const { return nodes_.size() - removed_; }
  // nullptr if absent. O(1): the name index is a cache verified on every hit and rebuilt on a miss only
  // when a tensor was renamed by assignment since the last rebuild.
  Tensor* find_tensor(const std::string& name) const;
  Tensor* tensor(const std::string& name) const;       // throws if absent
  Node* find_node(const std::string& name) const;
  // Every live tensor by name (the GraphSurgeon call). Throws on duplicate names.
  std::map<std::string, Tensor*> tensors() const;
  std::vector<Tensor*> all_tensors() const;

  // How often the name index was rebuilt (a debug counter for complexity tests).
  size_t index_rebuilds() const { return index_rebuilds_; }

  // ---- surgery
  // Renames a tensor, keeping the name index current (assigning Tensor::name works too, but makes the next
  // lookup miss rebuild the index). Throws if another tensor already has the name.
  void rename_tensor(Tensor* t, const std::string& new_name);
  // Disconnects and deletes n (O(1)); its output tensors stay (without producer).
  void remove_node(Node* n);
  // Reroute every consumer (and graph output) of `from` to read `to` instead.
  void replace_all_uses(Tensor* from, Tensor* to);
  // Remove a single-input/single-output node, wiring its consumers to its input.
  void bypass(Node* n, size_t input_idx = 0, size_t output_idx = 0);
  // Insert a one-input node on tensor t: every current consumer of t (and the graph output, if t is one)
  // reads the new node's output instead. Returns the new node; its output is named after t.
  Node* insert_after(Tensor* t, const std::string& op, const std::string& name = "",
                     const std::string& domain = "");
  // Replace the nodes in `old_nodes` by one new node reading `inputs` and writing `outputs`.
  Node* replace_nodes(const std::vector<Node*>& old_nodes, const std::string& op,
                      const std::vector<Tensor*>& inputs, const std::vector<Tensor*>& outputs,
                      const std::string& name = "", const std::string& domain = "");

  // Drop nodes and tensors that don't contribute to a graph output (and unused graph inputs
  // if remove_unused_inputs). Returns the number of nodes removed.
  size_t cleanup(bool remove_unused_inputs = false);
  // Orders nodes so producers come before consumers (stable). Throws naming a node on a cycle.
  void toposort();
  // Deep copy (constants share their value buffers, which are immutable by convention).
  std::unique_ptr<Graph> copy() const;
  // The subgraph computing `output_names` from `input_names` (which become its inputs).
  // Throws if an output depends on a variable that is neither listed nor a constant.
  std::unique_ptr<Graph> extract(const std::vector<std::string>& input_names,
                                 const std::vector<std::string>& output_names) const;

  // Structural check: unique tensor names, every node input/output and graph input/output is owned by
  // this graph, no node writes a constant or a graph input. (Inputs nobody defines are legal here — they
  // are outer-scope names in subgraphs; the importer rejects them at the top level.)
  void validate() const;

  // Names a subgraph reads from enclosing scopes (recursively), for If/Loop/Scan bodies.
  std::vector<std::string> outer_scope_names() const;
  // Tensors this graph owns that no node produces and that are not inputs or constants
  // (legal in subgraphs: they come from the enclosing graph).
  bool is_outer_reference(const Tensor* t) const;

 private:
  friend class Node;
  Tensor* adopt(std::unique_ptr<Tensor> t);
  void rebuild_index() const;
  void compact() const;  // drops the slots remove_node emptied and renumbers Node::index_
  void renumber() const;
  mutable std::vector<std::unique_ptr<Node>> nodes_;
  mutable size_t removed_ = 0;  // empty slots in nodes_ left by remove_node
  std::vector<std::unique_ptr<Tensor>> tensors_;
  // Name index (a cache): complete and current while indexed_renames_ == renames_.
  mutable std::unordered_map<std::string, Tensor*> by_name_;
  uint64_t renames_ = 0;  // bumped by TensorName on every assignment to an owned tensor's name
  mutable uint64_t indexed_renames_ = 0;
  mutable size_t index_rebuilds_ = 0;
  std::map<std::string, int> name_counters_;
};

}  // namespace kiln
