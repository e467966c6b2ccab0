// Shared by the ONNX import/export tests: a temporary directory per test and ModelProto builders.
#pragma once
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/graph.h"
#include "kiln/onnx.h"

namespace kiln::onnx_test {

namespace fs = std::filesystem;
using A = onnx::AttributeProto;

// ------------------------------------------------------------------------------------------- helpers
// A fresh directory per test, removed afterwards.
class OnnxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("kiln_onnx_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
inline void save(const onnx::ModelProto& m, const std::string& path) { write_file(path, m.SerializeAsString()); }

// dims: >= 0 a size, -1 unknown, anything else via `params` (a symbolic name per -2 entry, in order).
inline void set_type(onnx::ValueInfoProto* vi, const std::string& name, int elem, std::vector<int64_t> dims,
              std::vector<std::string> params = {}) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  size_t p = 0;
  for (int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d >= 0) dim->set_dim_value(d);
    else if (d == -2) dim->set_dim_param(params.at(p++));
  }
}

inline onnx::ModelProto new_model(int64_t opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

inline onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, std::vector<std::string> ins,
                          std::vector<std::string> outs, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  if (!name.empty()) n->set_name(name);
  for (auto& s : ins) n->add_input(s);
  for (auto& s : outs) n->add_output(s);
  return n;
}

inline onnx::TensorProto float_tensor(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return t;
}

// Structural equality: metadata, I/O, nodes, attributes (subgraphs recursively), tensor types and values.
inline void expect_same_tensor(const Tensor* a, const Tensor* b) {
  ASSERT_TRUE(b) << "missing tensor " << a->name;
  EXPECT_EQ(a->is_constant(), b->is_constant()) << a->name;
  EXPECT_EQ(a->dtype, b->dtype) << a->name;
  EXPECT_EQ(a->shape, b->shape) << a->name;
  EXPECT_EQ(a->doc_string, b->doc_string) << a->name;
  if (a->is_constant() && b->is_constant())
    EXPECT_TRUE(static_cast<const Constant*>(a)->values().same_values(static_cast<const Constant*>(b)->values()))
        << "values of " << a->name;
}

inline void expect_same_graph(const Graph& a, const Graph& b);

inline void expect_same_attr(const std::string& name, const Attribute& x, const Attribute& y) {
  SCOPED_TRACE("attribute " + name);
  EXPECT_EQ(x.doc_string, y.doc_string);
  EXPECT_EQ(x.ref_attr_name, y.ref_attr_name);
  ASSERT_EQ(x.value.index(), y.value.index());
  if (auto* t = std::get_if<TensorData>(&x.value)) {
    EXPECT_TRUE(t->same_values(std::get<TensorData>(y.value)));
  } else if (auto* ts = std::get_if<std::vector<TensorData>>(&x.value)) {
    const auto& us = std::get<std::vector<TensorData>>(y.value);
    ASSERT_EQ(ts->size(), us.size());
    for (size_t k = 0; k < ts->size(); ++k) EXPECT_TRUE((*ts)[k].same_values(us[k]));
  } else if (auto* g = std::get_if<GraphPtr>(&x.value)) {
    expect_same_graph(**g, *std::get<GraphPtr>(y.value));
  } else if (auto* gs = std::get_if<std::vector<GraphPtr>>(&x.value)) {
    const auto& hs = std::get<std::vector<GraphPtr>>(y.value);
    ASSERT_EQ(gs->size(), hs.size());
    for (size_t k = 0; k < gs->size(); ++k) expect_same_graph(*(*gs)[k], *hs[k]);
  } else {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (!std::is_same_v<T, TensorData> && !std::is_same_v<T, std::vector<TensorData>> &&
                        !std::is_same_v<T, GraphPtr> && !std::is_same_v<T, std::vector<GraphPtr>>)
            EXPECT_TRUE(v == std::get<T>(y.value));
        },
        x.value);
  }
}

inline std::vector<std::string> names(const std::vector<Tensor*>& ts) {
  std::vector<std::string> out;
  for (const Tensor* t : ts) out.push_back(t ? std::string(t->name) : std::string());
  return out;
}

inline void expect_same_graph(const Graph& a, const Graph& b) {
  SCOPED_TRACE("graph " + a.name);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.doc_string, b.doc_string);
  EXPECT_EQ(a.ir_version, b.ir_version);
  ASSERT_EQ(a.opset_imports.size(), b.opset_imports.size());
  for (size_t k = 0; k < a.opset_imports.size(); ++k) {
    EXPECT_EQ(a.opset_imports[k].domain, b.opset_imports[k].domain);
    EXPECT_EQ(a.opset_imports[k].version, b.opset_imports[k].version);
  }
  EXPECT_EQ(a.producer_name, b.producer_name);
  EXPECT_EQ(a.producer_version, b.producer_version);
  EXPECT_EQ(a.model_domain, b.model_domain);
  EXPECT_EQ(a.model_version, b.model_version);
  EXPECT_EQ(a.model_doc_string, b.model_doc_string);
  EXPECT_EQ(a.metadata_props, b.metadata_props);
  EXPECT_EQ(names(a.inputs), names(b.inputs));
  EXPECT_EQ(names(a.outputs), names(b.outputs));
  auto ta = a.tensors(), tb = b.tensors();
  EXPECT_EQ(ta.size(), tb.size());
  for (const auto& [name, t] : ta) expect_same_tensor(t, b.find_tensor(name));
  ASSERT_EQ(a.num_nodes(), b.num_nodes());
  for (size_t k = 0; k < a.num_nodes(); ++k) {
    const Node& x = *a.nodes()[k];
    const Node& y = *b.nodes()[k];
    SCOPED_TRACE("node " + x.label());
    EXPECT_EQ(x.op, y.op);
    EXPECT_EQ(x.domain, y.domain);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.doc_string, y.doc_string);
    EXPECT_EQ(names(x.inputs()), names(y.inputs()));
    EXPECT_EQ(names(x.outputs()), names(y.outputs()));
    ASSERT_EQ(x.attrs.size(), y.attrs.size());
    for (size_t j = 0; j < x.attrs.size(); ++j) {
      EXPECT_EQ(x.attrs.items()[j].first, y.attrs.items()[j].first);
      expect_same_attr(x.attrs.items()[j].first, x.attrs.items()[j].second, y.attrs.items()[j].second);
    }
  }
}

// import(m) vs import(export(import(m))), through a file and through bytes.
inline std::unique_ptr<Graph> expect_round_trip(const std::string& model_path, const std::string& out_path,
                                         const ExportOptions& options = {}) {
  auto g = import_onnx(model_path);
  export_onnx(*g, out_path, options);
  auto h = import_onnx(out_path);
  expect_same_graph(*g, *h);
  auto k = import_onnx_bytes(export_onnx_bytes(*h), "bytes");
  expect_same_graph(*g, *k);
  return g;
}

// Expects import of `path` to fail with a one-line message starting with the path and containing `parts`.
inline void expect_import_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    import_onnx(path);
    ADD_FAILURE() << "import of " << path << " did not fail";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// If(cond) then: x + c (outer input and outer initializer) else: Neg(x). Nodes in reverse order on purpose.
inline onnx::ModelProto if_model() {
  onnx::ModelProto m = new_model(13);
  auto* g = m.mutable_graph();
  set_type(g->add_input(), "x", onnx::TensorProto::FLOAT, {3});
  set_type(g->add_input(), "flag", onnx::TensorProto::FLOAT, {});
  *g->add_initializer() = float_tensor("c", {3}, {10.f, 20.f, 30.f});
  *g->add_initializer() = float_tensor("zero", {}, {0.f});
  set_type(g->add_output(), "y", onnx::TensorProto::FLOAT, {3});
  auto* node = add_node(g, "If", {"cond"}, {"y"}, "if");
  add_node(g, "Greater", {"flag", "zero"}, {"cond"}, "greater");  // defined after its use
  auto branch = [](const std::string& name, bool then) {
    onnx::GraphProto b;
    b.set_name(name);
    set_type(b.add_output(), name + "_out", onnx::TensorProto::FLOAT, {3});
    if (then) add_node(&b, "Add", {"x", "c"}, {name + "_out"}, "then_add");
    else add_node(&b, "Neg", {"x"}, {name + "_out"}, "else_neg");
    return b;
  };
  auto* then_attr = node->add_attribute();
  then_attr->set_name("then_branch");
  then_attr->set_type(A::GRAPH);
  *then_attr->mutable_g() = branch("then_body", true);
  auto* else_attr = node->add_attribute();
  else_attr->set_name("else_branch");
  else_attr->set_type(A::GRAPH);
  *else_attr->mutable_g() = branch("else_body", false);
  return m;
}

}  // namespace kiln::onnx_test
