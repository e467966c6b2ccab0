#include "kiln/graph.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace kiln {

// ---------------------------------------------------------------------------------------------- shapes
std::string to_string(const Shape& shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (k) s += "x";
    const Dim& d = shape[k];
    s += d.is_static() ? std::to_string(d.value) : (d.symbol.empty() ? "?" : d.symbol);
  }
  return s;
}

bool is_static(const Shape& shape) {
  return std::all_of(shape.begin(), shape.end(), [](const Dim& d) { return d.is_static(); });
}

std::vector<int64_t> static_dims(const Shape& shape) {
  std::vector<int64_t> dims;
  for (const Dim& d : shape) {
    if (!d.is_static()) throw Error("shape " + to_string(shape) + " is not static");
    dims.push_back(d.value);
  }
  return dims;
}

Shape make_shape(const std::vector<int64_t>& dims) { return Shape(dims.begin(), dims.end()); }

// --------------------------------------------------------------------------------------------- tensors
std::vector<Node*> Tensor::consumers() const {
  std::vector<Node*> out;
  for (const auto& [node, slot] : uses_)
    if (std::find(out.begin(), out.end(), node) == out.end()) out.push_back(node);
  return out;
}

const TensorData& Constant::values() const {
  if (!values_) {
    if (!loader_) throw Error("constant '" + name + "' has no values");
    TensorData v = loader_();
    if (v.dtype() != dtype || (shape && make_shape(v.dims()) != *shape))
      throw Error("constant '" + name + "': loaded data does not match its declared type or shape");
    values_ = std::move(v);
    loader_ = nullptr;  // release whatever the loader captured (file handles, proto bytes)
  }
  return *values_;
}

void Constant::set_values(TensorData v) {
  dtype = v.dtype();
  shape = make_shape(v.dims());
  values_ = std::move(v);
  loader_ = nullptr;
}

void Constant::set_loader(DType dt, std::vector<int64_t> dims, Loader loader) {
  dtype = dt;
  shape = make_shape(dims);
  values_.reset();
  loader_ = std::move(loader);
}

// ------------------------------------------------------------------------------------------ attributes
const Attribute* Attributes::find(const std::string& name) const {
  for (const auto& [n, a] : items_)
    if (n == name) return &a;
  return nullptr;
}

void Attributes::set(const std::string& name, AttributeValue value) {
  Attribute a;
  a.value = std::move(value);
  set(name, std::move(a));
}

void Attributes::set(const std::string& name, Attribute attr) {
  for (auto& [n, a] : items_)
    if (n == name) {
      a = std::move(attr);
      return;
    }
  items_.emplace_back(name, std::move(attr));
}

bool Attributes::erase(const std::string& name) {
  auto it = std::find_if(items_.begin(), items_.end(), [&](const auto& p) { return p.first == name; });
  if (it == items_.end()) return false;
  items_.erase(it);
  return true;
}

namespace {
template <typename T>
const T& typed_attr(const Attribute& a, const std::string& name, const char* type_name) {
  if (const T* v = std::get_if<T>(&a.value)) return *v;
  throw Error("attribute '" + name + "' is not of type " + type_name);
}
}  // namespace

int64_t Attributes::get_int(const std::string& name, int64_t def) const {
  const Attribute* a = find(name);
  return a ? typed_attr<int64_t>(*a, name, "int") : def;
}
float Attributes::get_float(const std::string& name, float def) const {
  const Attribute* a = find(name);
  return a ? typed_attr<float>(*a, name, "float") : def;
}
std::string Attributes::get_string(const std::string& name, const std::string& def) const {
  const Attribute* a = find(name);
  return a ? typed_attr<std::string>(*a, name, "string") : def;
}
std::vector<int64_t> Attributes::get_ints(const std::string& name, const std::vector<int64_t>& def) const {
  const Attribute* a = find(name);
  return a ? typed_attr<std::vector<int64_t>>(*a, name, "ints") : def;
}
std::vector<float> Attributes::get_floats(const std::string& name, const std::vector<float>& def) const {
  const Attribute* a = find(name);
  return a ? typed_attr<std::vector<float>>(*a, name, "floats") : def;
}
const TensorData* Attributes::get_tensor(const std::string& name) const {
  const Attribute* a = find(name);
  return a ? &typed_attr<TensorData>(*a, name, "tensor") : nullptr;
}

// ----------------------------------------------------------------------------------------------- nodes
namespace {
void remove_use(Tensor* t, Node* n, size_t slot, std::vector<std::pair<Node*, size_t>>& uses) {
  auto it = std::find(uses.begin(), uses.end(), std::make_pair(n, slot));
  if (it != uses.end()) uses.erase(it);
}
}  // namespace

void Node::set_input(size_t k, Tensor* t) {
  if (k >= inputs_.size()) inputs_.resize(k + 1, nullptr);
  if (Tensor* old = inputs_[k]) remove_use(old, this, k, old->uses_);
  inputs_[k] = t;
  if (t) t->uses_.emplace_back(this, k);
}

void Node::set_inputs(const std::vector<Tensor*>& ts) {
  for (size_t k = 0; k < inputs_.size(); ++k)
    if (inputs_[k]) remove_use(inputs_[k], this, k, inputs_[k]->uses_);
  inputs_.clear();
  for (Tensor* t : ts) add_input(t);
}

void Node::set_output(size_t k, Tensor* t) {
  if (t && t->producer_ && !(t->producer_ == this && k < outputs_.size() && outputs_[k] == t))
    throw Error("tensor '" + t->name + "' is already produced by node " + t->producer_->label() +
                "; cannot also make it an output of " + label());
  if (k >= outputs_.size()) outputs_.resize(k + 1, nullptr);
  if (Tensor* old = outputs_[k]) old->producer_ = nullptr;
  outputs_[k] = t;
  if (t) t->producer_ = this;
}

void Node::set_outputs(const std::vector<Tensor*>& ts) {
  for (Tensor* t : outputs_)
    if (t) t->producer_ = nullptr;
  outputs_.clear();
  for (size_t k = 0; k < ts.size(); ++k) set_output(k, ts[k]);
}

void Node::clear_io() {
  set_inputs({});
  set_outputs({});
}

Node* Node::i(size_t tensor_idx, size_t producer_idx) const {
  Tensor* t = input(tensor_idx);
  return (t && producer_idx == 0) ? t->producer() : nullptr;
}

Node* Node::o(size_t consumer_idx, size_t tensor_idx) const {
  Tensor* t = output(tensor_idx);
  if (!t) return nullptr;
  std::vector<Node*> cs = t->consumers();
  return consumer_idx < cs.size() ? cs[consumer_idx] : nullptr;
}

std::string Node::label() const {
  // Names come from files: escaped and cut short, so an error message stays one readable line.
  if (!name.empty()) return "'" + printable(name) + "' (" + printable(op, 64) + ")";
  std::string out = outputs_.empty() || !outputs_[0] ? "" : " writing '" + printable(outputs_[0]->name) + "'";
  return "(" + printable(op, 64) + out + ")";
}

// ---------------------------------------------------------------------------------------------- graph
int64_t Graph::opset(const std::string& domain) const {
  const std::string d = domain == "ai.onnx" ? "" : domain;
  for (const auto& o : opset_imports)
    if ((o.domain == "ai.onnx" ? "" : o.domain) == d) return o.version;
  return 0;
}

void Graph::set_opset(const std::string& domain, int64_t version) {
  for (auto& o : opset_imports)
    if (o.domain == domain) {
      o.version = version;
      return;
    }
  opset_imports.push_back({domain, version});
}

Tensor* Graph::adopt(std::unique_ptr<Tensor> t) {
  if (t->name.empty()) t->name = unique_name("tensor");
  if (find_tensor(t->name)) throw Error("duplicate tensor name '" + t->name + "'");
  Tensor* raw = t.get();
  tensors_.push_back(std::move(t));
  raw->name.renames_ = &renames_;
  by_name_[raw->name] = raw;
  return raw;
}

Variable* Graph::add_variable(const std::string& name, DType dtype, std::optional<Shape> shape) {
  auto v = std::make_unique<Variable>();
  v->name = name;
  v->dtype = dtype;
  v->shape = std::move(shape);
  return static_cast<Variable*>(adopt(std::move(v)));
}

Constant* Graph::add_constant(const std::string& name, TensorData values) {
  auto c = std::make_unique<Constant>();
  c->name = name;
  c->set_values(std::move(values));
  return static_cast<Constant*>(adopt(std::move(c)));
}

Node* Graph::add_node(const std::string& op, const std::vector<Tensor*>& inputs,
                      const std::vector<Tensor*>& outputs, const std::string& name, const std::string& domain) {
  auto n = std::unique_ptr<Node>(new Node(this));
  n->op = op;
  n->name = name;
  n->domain = domain;
  Node* raw = n.get();
  raw->index_ = nodes_.size();
  nodes_.push_back(std::move(n));
  try {
    raw->set_inputs(inputs);
    raw->set_outputs(outputs);
  } catch (...) {
    raw->clear_io();
    nodes_.pop_back();
    throw;
  }
  return raw;
}

std::string Graph::unique_name(const std::string& stem) {
  int& counter = name_counters_[stem];
  std::string candidate = counter == 0 ? stem : stem + "_" + std::to_string(counter);
  while (find_tensor(candidate) || find_node(candidate)) candidate = stem + "_" + std::to_string(++counter);
  ++counter;
  return candidate;
}

Tensor* Graph::find_tensor(const std::string& name) const {
  // The index is a cache: users may rename tensors by assignment, so a hit is verified, and a miss is trusted
  // only while no tensor was renamed since the index was last complete (TensorName counts assignments).
  auto it = by_name_.find(name);
  if (it != by_name_.end() && it->second->name == name) return it->second;
  if (indexed_renames_ == renames_) return nullptr;
  rebuild_index();
  it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

void Graph::rebuild_index() const {
  by_name_.clear();
  by_name_.reserve(tensors_.size());
  for (const auto& t : tensors_) by_name_.emplace(t->name, t.get());
  indexed_renames_ = renames_;
  ++index_rebuilds_;
}

void Graph::rename_tensor(Tensor* t, const std::string& new_name) {
  if (!t) throw Error("rename_tensor: null tensor");
  if (t->name == new_name) return;
  if (Tensor* other = find_tensor(new_name))
    throw Error("rename_tensor: cannot rename '" + printable(t->name) + "' to '" + printable(new_name) +
                "': tensor '" + printable(other->name) + "' already has that name");
  if (auto it = by_name_.find(t->name); it != by_name_.end() && it->second == t) by_name_.erase(it);
  static_cast<std::string&>(t->name) = new_name;  // quietly: the index is updated right here
  if (t->name.renames_ == &renames_) by_name_[t->name] = t;
}

Tensor* Graph::tensor(const std::string& name) const {
  Tensor* t = find_tensor(name);
  if (!t) throw Error("no tensor named '" + name + "' in graph '" + this->name + "'");
  return t;
}

Node* Graph::find_node(const std::string& name) const {
  compact();
  for (const auto& n : nodes_)
    if (n->name == name) return n.get();
  return nullptr;
}

std::map<std::string, Tensor*> Graph::tensors() const {
  std::map<std::string, Tensor*> out;
  for (const auto& t : tensors_)
    if (!out.emplace(t->name, t.get()).second)
      throw Error("graph '" + name + "' has two tensors named '" + t->name + "'");
  return out;
}

std::vector<Tensor*> Graph::all_tensors() const {
  std::vector<Tensor*> out;
  for (const auto& t : tensors_) out.push_back(t.get());
  return out;
}

void Graph::remove_node(Node* n) {
  // O(1): the slot is emptied now and the vector compacted on the next walk (a pass removing many nodes
  // one by one would otherwise move the whole vector each time).
  if (!n || n->graph_ != this || n->index_ >= nodes_.size() || nodes_[n->index_].get() != n)
    throw Error("remove_node: node " + (n ? n->label() : std::string("(null)")) + " is not in this graph");
  n->clear_io();
  nodes_[n->index_].reset();
  ++removed_;
}

void Graph::compact() const {
  if (removed_ == 0) return;
  std::erase_if(nodes_, [](const auto& n) { return !n; });
  removed_ = 0;
  renumber();
}

void Graph::renumber() const {
  for (size_t k = 0; k < nodes_.size(); ++k) nodes_[k]->index_ = k;
}

void Graph::replace_all_uses(Tensor* from, Tensor* to) {
  std::vector<std::pair<Node*, size_t>> uses = from->uses();
  for (const auto& [node, slot] : uses) node->set_input(slot, to);
  std::replace(outputs.begin(), outputs.end(), from, to);
}

void Graph::bypass(Node* n, size_t input_idx, size_t output_idx) {
  Tensor* in = n->input(input_idx);
  Tensor* out = n->output(output_idx);
  if (!in || !out) throw Error("bypass: node " + n->label() + " has no input " + std::to_string(input_idx) +
                               " or output " + std::to_string(output_idx));
  // A graph output keeps its name: if `out` is an output, rename `in` isn't safe, so keep a link.
  bool is_graph_output = std::find(outputs.begin(), outputs.end(), out) != outputs.end();
  if (is_graph_output && in->producer() == nullptr && !in->is_constant() &&
      std::find(inputs.begin(), inputs.end(), in) != inputs.end())
    throw Error("bypass: node " + n->label() + " connects a graph input straight to a graph output");
  replace_all_uses(out, in);
  remove_node(n);
}

Node* Graph::insert_after(Tensor* t, const std::string& op, const std::string& name,
                          const std::string& domain) {
  Variable* out = add_variable(unique_name(t->name + "_" + op), t->dtype, t->shape);
  std::vector<std::pair<Node*, size_t>> uses = t->uses();
  Node* n = add_node(op, {t}, {out}, name.empty() ? unique_name(op) : name, domain);
  for (const auto& [node, slot] : uses) node->set_input(slot, out);
  std::replace(outputs.begin(), outputs.end(), static_cast<Tensor*>(t), static_cast<Tensor*>(out));
  return n;
}

Node* Graph::replace_nodes(const std::vector<Node*>& old_nodes, const std::string& op,
                           const std::vector<Tensor*>& ins, const std::vector<Tensor*>& outs,
                           const std::string& name, const std::string& domain) {
  for (Node* n : old_nodes) n->set_outputs({});  // free the outputs so the new node may produce them
  for (Node* n : old_nodes) remove_node(n);
  return add_node(op, ins, outs, name, domain);
}

size_t Graph::cleanup(bool remove_unused_inputs) {
  compact();
  // Mark live nodes backwards from the outputs.
  std::unordered_set<const Tensor*> live_tensors(outputs.begin(), outputs.end());
  std::unordered_set<const Node*> live_nodes;
  std::unordered_map<std::string, Tensor*> by_name;
  for (const auto& t : tensors_) by_name[t->name] = t.get();
  std::vector<const Tensor*> stack(outputs.begin(), outputs.end());
  while (!stack.empty()) {
    const Tensor* t = stack.back();
    stack.pop_back();
    Node* p = t->producer();
    if (!p || !live_nodes.insert(p).second) continue;
    auto visit = [&](Tensor* in) {
      if (in && live_tensors.insert(in).second) stack.push_back(in);
    };
    for (Tensor* in : p->inputs()) visit(in);
    for (Tensor* out : p->outputs()) if (out) live_tensors.insert(out);
    for (const auto& [attr_name, attr] : p->attrs.items()) {  // subgraphs read outer tensors by name
      auto visit_graph = [&](const GraphPtr& g) {
        for (const std::string& n : g->outer_scope_names())
          if (auto it = by_name.find(n); it != by_name.end()) visit(it->second);
      };
      if (auto* g = std::get_if<GraphPtr>(&attr.value)) visit_graph(*g);
      if (auto* gs = std::get_if<std::vector<GraphPtr>>(&attr.value))
        for (const auto& g : *gs) visit_graph(g);
    }
  }
  size_t before = nodes_.size();
  for (auto& n : nodes_)
    if (!live_nodes.count(n.get())) n->clear_io();
  std::erase_if(nodes_, [&](const auto& n) { return !live_nodes.count(n.get()); });
  renumber();

  if (remove_unused_inputs)
    std::erase_if(inputs, [&](Tensor* t) { return !live_tensors.count(t) && t->uses().empty(); });
  for (Tensor* t : inputs) live_tensors.insert(t);
  for (const auto& n : nodes_)
    for (Tensor* t : n->outputs()) if (t) live_tensors.insert(t);
  // Removed tensors leave the index; while no rename is pending each is indexed under its current name.
  const bool index_current = indexed_renames_ == renames_;
  bool index_dirty = false;
  std::erase_if(tensors_, [&](const auto& t) {
    if (live_tensors.count(t.get())) return false;
    auto it = by_name_.find(t->name);
    if (it != by_name_.end() && it->second == t.get())
      by_name_.erase(it);
    else
      index_dirty = true;
    return true;
  });
  if (!index_current || index_dirty) {
    by_name_.clear();  // entries may point at deleted tensors: start over on the next miss
    indexed_renames_ = renames_ - 1;
  }
  return before - nodes_.size();
}

void Graph::toposort() {
  compact();
  // Kahn's algorithm, taking nodes in their current order when several are ready (stable).
  std::unordered_map<const Node*, size_t> index, pending;
  for (size_t k = 0; k < nodes_.size(); ++k) index[nodes_[k].get()] = k;
  std::unordered_map<std::string, Node*> producer_by_name;  // subgraph outer references
  for (const auto& n : nodes_)
    for (Tensor* t : n->outputs()) if (t) producer_by_name[t->name] = n.get();

  std::vector<std::vector<size_t>> successors(nodes_.size());
  for (size_t k = 0; k < nodes_.size(); ++k) {
    std::set<const Node*> deps;
    for (Tensor* in : nodes_[k]->inputs())
      if (in && in->producer() && index.count(in->producer())) deps.insert(in->producer());
    for (const auto& [attr_name, attr] : nodes_[k]->attrs.items()) {
      std::vector<GraphPtr> graphs;
      if (auto* g = std::get_if<GraphPtr>(&attr.value)) graphs.push_back(*g);
      if (auto* gs = std::get_if<std::vector<GraphPtr>>(&attr.value)) graphs = *gs;
      for (const auto& g : graphs)
        for (const std::string& n : g->outer_scope_names())
          if (auto it = producer_by_name.find(n); it != producer_by_name.end()) deps.insert(it->second);
    }
    pending[nodes_[k].get()] = deps.size();
    for (const Node* d : deps) successors[index[d]].push_back(k);
  }
  std::set<size_t> ready;
  for (size_t k = 0; k < nodes_.size(); ++k)
    if (pending[nodes_[k].get()] == 0) ready.insert(k);
  std::vector<size_t> order;
  while (!ready.empty()) {
    size_t k = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(k);
    for (size_t s : successors[k])
      if (--pending[nodes_[s].get()] == 0) ready.insert(s);
  }
  if (order.size() != nodes_.size()) {
    for (const auto& n : nodes_)
      if (pending[n.get()] > 0)
        throw Error((source.empty() ? "" : source + ": ") + "graph '" + name + "' has a cycle through node " +
                    n->label());
  }
  std::vector<std::unique_ptr<Node>> sorted;
  for (size_t k : order) sorted.push_back(std::move(nodes_[k]));
  nodes_ = std::move(sorted);
  renumber();
}

namespace {
AttributeValue copy_attr_value(const AttributeValue& v) {
  // Subgraphs are deep-copied so edits to a copy never reach the original.
  if (auto* g = std::get_if<GraphPtr>(&v)) return GraphPtr((*g)->copy());
  if (auto* gs = std::get_if<std::vector<GraphPtr>>(&v)) {
    std::vector<GraphPtr> out;
    for (const auto& g : *gs) out.push_back(GraphPtr(g->copy()));
    return out;
  }
  return v;
}
}  // namespace

std::unique_ptr<Graph> Graph::copy() const {
  auto g = std::make_unique<Graph>();
  g->name = name;
  g->doc_string = doc_string;
  g->ir_version = ir_version;
  g->opset_imports = opset_imports;
  g->producer_name = producer_name;
  g->producer_version = producer_version;
  g->model_domain = model_domain;
  g->model_doc_string = model_doc_string;
  g->model_version = model_version;
  g->metadata_props = metadata_props;
  g->source = source;

  std::unordered_map<const Tensor*, Tensor*> map;
  for (const auto& t : tensors_) {
    std::unique_ptr<Tensor> c;
    if (auto* k = dynamic_cast<const Constant*>(t.get())) {
      auto cc = std::make_unique<Constant>();
      cc->external_data = k->external_data;
      // Share loaded values; a not-yet-loaded constant loads through the original.
      if (k->loaded()) {
        cc->set_values(k->values());
      } else {
        std::vector<int64_t> dims = k->shape ? static_dims(*k->shape) : std::vector<int64_t>{};
        cc->set_loader(k->dtype, dims, k->pending_loader());
      }
      c = std::move(cc);
    } else {
      c = std::make_unique<Variable>();
    }
    c->name = t->name;
    c->dtype = t->dtype;
    c->shape = t->shape;
    c->element = t->element;
    c->doc_string = t->doc_string;
    c->name.renames_ = &g->renames_;
    map[t.get()] = c.get();
    g->tensors_.push_back(std::move(c));
  }
  g->rebuild_index();
  auto mapped = [&](const std::vector<Tensor*>& ts) {
    std::vector<Tensor*> out;
    for (Tensor* t : ts) out.push_back(t ? map.at(t) : nullptr);
    return out;
  };
  for (const auto& n : nodes()) {
    Node* c = g->add_node(n->op, mapped(n->inputs()), mapped(n->outputs()), n->name, n->domain);
    c->doc_string = n->doc_string;
    for (const auto& [attr_name, attr] : n->attrs.items()) {
      Attribute a = attr;
      a.value = copy_attr_value(attr.value);
      c->attrs.set(attr_name, std::move(a));
    }
  }
  g->inputs = mapped(inputs);
  g->outputs = mapped(outputs);
  return g;
}

std::unique_ptr<Graph> Graph::extract(const std::vector<std::string>& input_names,
                                      const std::vector<std::string>& output_names) const {
  auto g = copy();
  std::vector<Tensor*> new_inputs, new_outputs;
  for (const auto& n : input_names) {
    Tensor* t = g->tensor(n);
    if (Node* p = t->producer()) {
      // The new input cuts the graph here: its producer no longer writes it.
      auto outs = p->outputs();
      std::replace(outs.begin(), outs.end(), t, static_cast<Tensor*>(nullptr));
      p->set_outputs(outs);
    }
    new_inputs.push_back(t);
  }
  for (const auto& n : output_names) new_outputs.push_back(g->tensor(n));
  g->inputs = new_inputs;
  g->outputs = new_outputs;
  g->cleanup(true);
  // Inputs listed explicitly stay even if unused.
  g->inputs = new_inputs;
  for (const auto& node : g->nodes())
    for (Tensor* in : node->inputs())
      if (in && !in->producer() && !in->is_constant() &&
          std::find(new_inputs.begin(), new_inputs.end(), in) == new_inputs.end())
        throw Error("extract: output depends on '" + in->name + "', which is neither a listed input nor a constant");
  for (Tensor* out : new_outputs)
    if (!out->producer() && !out->is_constant() &&
        std::find(new_inputs.begin(), new_inputs.end(), out) == new_inputs.end())
      throw Error("extract: output '" + out->name + "' is not computed from the listed inputs");
  return g;
}

bool Graph::is_outer_reference(const Tensor* t) const {
  return !t->producer() && !t->is_constant() && std::find(inputs.begin(), inputs.end(), t) == inputs.end();
}

std::vector<std::string> Graph::outer_scope_names() const {
  std::set<std::string> names;
  for (const auto& t : tensors_)
    if (is_outer_reference(t.get()) &&
        (!t->uses().empty() || std::find(outputs.begin(), outputs.end(), t.get()) != outputs.end()))
      names.insert(t->name);  // read by a node, or passed straight through as an output (an If branch may)
  std::set<std::string> own;
  for (const auto& t : tensors_)
    if (!is_outer_reference(t.get())) own.insert(t->name);
  for (const auto& n : nodes())
    for (const auto& [attr_name, attr] : n->attrs.items()) {
      std::vector<GraphPtr> graphs;
      if (auto* g = std::get_if<GraphPtr>(&attr.value)) graphs.push_back(*g);
      if (auto* gs = std::get_if<std::vector<GraphPtr>>(&attr.value)) graphs = *gs;
      for (const auto& g : graphs)
        for (const std::string& s : g->outer_scope_names())
          if (!own.count(s)) names.insert(s);
    }
  return {names.begin(), names.end()};
}

void Graph::validate() const {
  std::unordered_set<const Tensor*> owned;
  std::unordered_set<std::string> names;
  for (const auto& t : tensors_) {
    owned.insert(t.get());
    if (!names.insert(t->name).second) throw Error("graph '" + name + "' has two tensors named '" + t->name + "'");
  }
  for (const auto& n : nodes()) {
    for (Tensor* t : n->inputs())
      if (t && !owned.count(t))
        throw Error("node " + n->label() + " reads a tensor that is not part of graph '" + name + "'");
    for (Tensor* t : n->outputs()) {
      if (t && !owned.count(t))
        throw Error("node " + n->label() + " writes a tensor that is not part of graph '" + name + "'");
      if (t && t->is_constant())
        throw Error("node " + n->label() + " writes constant '" + t->name + "'");
    }
  }
  for (const auto* list : {&inputs, &outputs})
    for (Tensor* t : *list)
      if (!t || !owned.count(t)) throw Error("graph '" + name + "' lists an input or output it does not own");
  for (Tensor* t : inputs)
    if (t->producer()) throw Error("graph input '" + t->name + "' is also written by node " + t->producer()->label());
}

}  // namespace kiln
