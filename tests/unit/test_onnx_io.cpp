// ONNX import/export: metadata, every attribute type, every initializer storage, external data, subgraphs,
// unsorted graphs, error messages; and (when Python is available) onnx.checker and onnxruntime on exports.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "kiln/graph.h"
#include "kiln/onnx.h"
#include "onnx_test_util.h"

namespace kiln {
namespace {


using namespace onnx_test;  // NOLINT: shared ONNX test helpers

// ----------------------------------------------------------------------------------------- metadata
TEST_F(OnnxTest, MetadataValueInfoAndOpsetsRoundTrip) {
  onnx::ModelProto m = new_model(13);
  auto* op = m.add_opset_import();
  op->set_domain("com.example");
  op->set_version(3);
  m.set_producer_name("kiln-test");
  m.set_producer_version("1.2");
  m.set_domain("org.kiln");
  m.set_model_version(42);
  m.set_doc_string("model doc");
  auto* p = m.add_metadata_props();
  p->set_key("author");
  p->set_value("me");
  auto* g = m.mutable_graph();
  g->set_doc_string("graph doc");
  set_type(g->add_input(), "x", onnx::TensorProto::FLOAT, {-2, 3, -1}, {"N"});
  g->mutable_input(0)->set_doc_string("input doc");
  g->add_input()->set_name("no_type");
  set_type(g->add_output(), "y", onnx::TensorProto::FLOAT, {-2, 3, -1}, {"N"});
  set_type(g->add_value_info(), "a", onnx::TensorProto::FLOAT, {-2, 3, 7}, {"N"});
  g->mutable_value_info(0)->set_doc_string("intermediate");
  set_type(g->add_value_info(), "stale", onnx::TensorProto::FLOAT, {1});  // names nothing: dropped
  auto* n = add_node(g, "Relu", {"x"}, {"a"}, "relu");
  n->set_doc_string("node doc");
  add_node(g, "MyOp", {"a", "no_type"}, {"y"}, "custom")->set_domain("com.example");
  save(m, path("m.onnx"));

  auto gr = expect_round_trip(path("m.onnx"), path("out.onnx"));
  EXPECT_EQ(gr->ir_version, 8);
  EXPECT_EQ(gr->opset(""), 13);
  EXPECT_EQ(gr->opset("com.example"), 3);
  EXPECT_EQ(gr->producer_name, "kiln-test");
  EXPECT_EQ(gr->producer_version, "1.2");
  EXPECT_EQ(gr->model_domain, "org.kiln");
  EXPECT_EQ(gr->model_version, 42);
  EXPECT_EQ(gr->model_doc_string, "model doc");
  ASSERT_EQ(gr->metadata_props.size(), 1u);
  EXPECT_EQ(gr->metadata_props[0].second, "me");
  EXPECT_EQ(gr->name, "g");
  EXPECT_EQ(gr->doc_string, "graph doc");
  EXPECT_EQ(gr->source, path("m.onnx"));
  Tensor* x = gr->tensor("x");
  EXPECT_EQ(x->dtype, DType::Float);
  EXPECT_EQ(*x->shape, (Shape{Dim::symbolic("N"), 3, Dim()}));
  EXPECT_EQ(x->doc_string, "input doc");
  EXPECT_FALSE(gr->tensor("no_type")->shape.has_value());
  EXPECT_EQ(gr->tensor("no_type")->dtype, DType::Undefined);
  EXPECT_EQ(*gr->tensor("a")->shape, (Shape{Dim::symbolic("N"), 3, 7}));
  EXPECT_EQ(gr->tensor("a")->doc_string, "intermediate");
  EXPECT_EQ(gr->find_tensor("stale"), nullptr);
  EXPECT_EQ(gr->find_node("relu")->doc_string, "node doc");
  EXPECT_EQ(gr->find_node("custom")->domain, "com.example");
}

// --------------------------------------------------------------------------------------- attributes
TEST_F(OnnxTest, EveryAttributeTypeRoundTrip) {
  onnx::ModelProto m = new_model();
  auto* op = m.add_opset_import();
  op->set_domain("com.example");
  op->set_version(1);
  auto* g = m.mutable_graph();
  set_type(g->add_input(), "x", onnx::TensorProto::FLOAT, {2});
  set_type(g->add_output(), "y", onnx::TensorProto::FLOAT, {2});
  auto* n = add_node(g, "Everything", {"x"}, {"y"}, "all");
  n->set_domain("com.example");

  auto attr = [&](const std::string& name, A::AttributeType type) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return a;
  };
  onnx::GraphProto body;
  body.set_name("body");
  set_type(body.add_output(), "b_out", onnx::TensorProto::FLOAT, {1});
  *body.add_initializer() = float_tensor("b_out", {1}, {7.f});
  onnx::SparseTensorProto sparse;
  *sparse.mutable_values() = float_tensor("", {2}, {1.f, 2.f});
  onnx::TensorProto idx;
  idx.set_data_type(onnx::TensorProto::INT64);
  idx.add_dims(2);
  idx.add_int64_data(0);
  idx.add_int64_data(3);
  *sparse.mutable_indices() = idx;
  sparse.add_dims(4);
  onnx::TypeProto type;
  type.mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);

  auto* f = attr("f", A::FLOAT);
  f->set_f(0.5f);
  f->set_doc_string("a float");
  attr("i", A::INT)->set_i(-7);
  attr("s", A::STRING)->set_s(std::string("bytes\0x", 7));
  *attr("t", A::TENSOR)->mutable_t() = float_tensor("", {2}, {1.f, -1.f});
  *attr("g", A::GRAPH)->mutable_g() = body;
  *attr("sp", A::SPARSE_TENSOR)->mutable_sparse_tensor() = sparse;
  *attr("tp", A::TYPE_PROTO)->mutable_tp() = type;
  auto* fs_ = attr("fs", A::FLOATS);
  fs_->add_floats(1.5f);
  fs_->add_floats(-2.f);
  auto* is = attr("is", A::INTS);
  is->add_ints(1);
  is->add_ints(INT64_MAX);
  auto* ss = attr("ss", A::STRINGS);
  ss->add_strings("a");
  ss->add_strings("");
  auto* ts = attr("ts", A::TENSORS);
  *ts->add_tensors() = float_tensor("", {1}, {3.f});
  *ts->add_tensors() = idx;
  auto* gs = attr("gs", A::GRAPHS);
  *gs->add_graphs() = body;
  *gs->add_graphs() = body;
  *attr("sps", A::SPARSE_TENSORS)->add_sparse_tensors() = sparse;
  *attr("tps", A::TYPE_PROTOS)->add_type_protos() = type;
  attr("empty_ints", A::INTS);
  auto* ref = attr("ref", A::INT);
  ref->set_ref_attr_name("outer_attr");
  save(m, path("m.onnx"));

  auto gr = expect_round_trip(path("m.onnx"), path("out.onnx"));
  const Attributes& at = gr->find_node("all")->attrs;
  ASSERT_EQ(at.size(), 16u);
  EXPECT_EQ(at.get_float("f", 0), 0.5f);
  EXPECT_EQ(at.find("f")->doc_string, "a float");
  EXPECT_EQ(at.get_int("i", 0), -7);
  EXPECT_EQ(at.get_string("s", ""), std::string("bytes\0x", 7));
  EXPECT_EQ(at.get_tensor("t")->data<float>()[1], -1.f);
  const Graph& sub = *std::get<GraphPtr>(at.find("g")->value);
  EXPECT_EQ(sub.name, "body");
  EXPECT_EQ(static_cast<Constant*>(sub.tensor("b_out"))->values().data<float>()[0], 7.f);
  EXPECT_EQ(std::get<OpaqueProto>(at.find("sp")->value).kind, "sparse_tensor");
  EXPECT_EQ(std::get<OpaqueProto>(at.find("tp")->value).kind, "type_proto");
  onnx::TypeProto back;
  ASSERT_TRUE(back.ParseFromString(std::get<OpaqueProto>(at.find("tp")->value).bytes));
  EXPECT_EQ(back.tensor_type().elem_type(), onnx::TensorProto::INT64);
  EXPECT_EQ(at.get_floats("fs"), (std::vector<float>{1.5f, -2.f}));
  EXPECT_EQ(at.get_ints("is"), (std::vector<int64_t>{1, INT64_MAX}));
  EXPECT_EQ(std::get<std::vector<std::string>>(at.find("ss")->value), (std::vector<std::string>{"a", ""}));
  const auto& tensors = std::get<std::vector<TensorData>>(at.find("ts")->value);
  ASSERT_EQ(tensors.size(), 2u);
  EXPECT_EQ(tensors[1].to_int64_vector(), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(std::get<std::vector<GraphPtr>>(at.find("gs")->value).size(), 2u);
  EXPECT_EQ(std::get<std::vector<OpaqueProto>>(at.find("sps")->value)[0].kind, "sparse_tensor");
  EXPECT_EQ(std::get<std::vector<OpaqueProto>>(at.find("tps")->value)[0].kind, "type_proto");
  EXPECT_TRUE(at.get_ints("empty_ints", {9}).empty());
  EXPECT_EQ(at.find("ref")->ref_attr_name, "outer_attr");

  // The exported attributes carry their types (an untyped one is refused since IR version 2; IR version 1
  // models are covered in test_import_validation.cpp).
  onnx::ModelProto out;
  ASSERT_TRUE(out.ParseFromString(read_file(path("out.onnx"))));
  for (const auto& a : out.graph().node(0).attribute()) EXPECT_NE(a.type(), A::UNDEFINED) << a.name();
}

// -------------------------------------------------------------------------------------- initializers
template <typename T>
std::vector<T> values_of(const Graph& g, const std::string& name) {
  const TensorData& v = static_cast<Constant*>(g.tensor(name))->values();
  return std::vector<T>(v.data<T>(), v.data<T>() + v.numel() * (v.nbytes() / v.numel() / sizeof(T)));
}

TEST_F(OnnxTest, InitializersInEveryStorageField) {
  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  auto init = [&](const std::string& name, int dtype, std::vector<int64_t> dims) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(dtype);
    for (int64_t d : dims) t->add_dims(d);
    set_type(g->add_output(), name, dtype, dims);
    return t;
  };
  using T = onnx::TensorProto;
  *g->add_initializer() = float_tensor("f_raw", {2, 2}, {1, 2, 3, 4});
  set_type(g->add_output(), "f_raw", T::FLOAT, {2, 2});
  auto* f = init("f_typed", T::FLOAT, {3});
  for (float v : {0.5f, -1.f, 3.25f}) f->add_float_data(v);
  auto* i8 = init("i8", T::INT8, {3});
  for (int v : {-128, 0, 127}) i8->add_int32_data(v);
  auto* u8 = init("u8", T::UINT8, {2});
  for (int v : {0, 255}) u8->add_int32_data(v);
  auto* i16 = init("i16", T::INT16, {2});
  for (int v : {-32768, 32767}) i16->add_int32_data(v);
  auto* u16 = init("u16", T::UINT16, {1});
  u16->add_int32_data(65535);
  auto* b = init("b", T::BOOL, {3});
  for (int v : {1, 0, 1}) b->add_int32_data(v);
  auto* h = init("h", T::FLOAT16, {2});
  h->add_int32_data(float_to_half(1.5f));
  h->add_int32_data(float_to_half(-2.f));
  auto* bf = init("bf", T::BFLOAT16, {1});
  bf->add_int32_data(float_to_bfloat16(3.f));
  auto* i32 = init("i32", T::INT32, {2});
  for (int v : {-5, 7}) i32->add_int32_data(v);
  auto* i64 = init("i64", T::INT64, {2});
  for (int64_t v : {INT64_MIN, int64_t{9}}) i64->add_int64_data(v);
  auto* d = init("d", T::DOUBLE, {2});
  for (double v : {1e300, -0.125}) d->add_double_data(v);
  auto* u64 = init("u64", T::UINT64, {1});
  u64->add_uint64_data(UINT64_MAX);
  auto* u32 = init("u32", T::UINT32, {1});
  u32->add_uint64_data(4000000000u);
  auto* s = init("s", T::STRING, {2});
  s->add_string_data("hello");
  s->add_string_data(std::string("\0bin", 4));
  auto* c64 = init("c64", T::COMPLEX64, {1});
  c64->add_float_data(1.f);
  c64->add_float_data(-1.f);
  init("empty", T::FLOAT, {0, 3});
  auto* scalar = init("scalar", T::INT64, {});
  scalar->add_int64_data(11);
  save(m, path("m.onnx"));

  auto gr = import_onnx(path("m.onnx"));
  auto* fr = static_cast<Constant*>(gr->tensor("f_raw"));
  EXPECT_FALSE(fr->loaded());  // lazy: nothing decoded yet
  EXPECT_EQ(fr->dtype, DType::Float);
  EXPECT_EQ(*fr->shape, (Shape{2, 2}));
  EXPECT_EQ(values_of<float>(*gr, "f_raw"), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_TRUE(fr->loaded());
  EXPECT_EQ(values_of<float>(*gr, "f_typed"), (std::vector<float>{0.5f, -1.f, 3.25f}));
  EXPECT_EQ(values_of<int8_t>(*gr, "i8"), (std::vector<int8_t>{-128, 0, 127}));
  EXPECT_EQ(values_of<uint8_t>(*gr, "u8"), (std::vector<uint8_t>{0, 255}));
  EXPECT_EQ(values_of<int16_t>(*gr, "i16"), (std::vector<int16_t>{-32768, 32767}));
  EXPECT_EQ(values_of<uint16_t>(*gr, "u16"), (std::vector<uint16_t>{65535}));
  EXPECT_EQ(values_of<uint8_t>(*gr, "b"), (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_EQ(static_cast<Constant*>(gr->tensor("h"))->values().as_double(0), 1.5);
  EXPECT_EQ(static_cast<Constant*>(gr->tensor("h"))->values().as_double(1), -2.0);
  EXPECT_EQ(static_cast<Constant*>(gr->tensor("bf"))->values().as_double(0), 3.0);
  EXPECT_EQ(values_of<int32_t>(*gr, "i32"), (std::vector<int32_t>{-5, 7}));
  EXPECT_EQ(values_of<int64_t>(*gr, "i64"), (std::vector<int64_t>{INT64_MIN, 9}));
  EXPECT_EQ(values_of<double>(*gr, "d"), (std::vector<double>{1e300, -0.125}));
  EXPECT_EQ(values_of<uint64_t>(*gr, "u64"), (std::vector<uint64_t>{UINT64_MAX}));
  EXPECT_EQ(values_of<uint32_t>(*gr, "u32"), (std::vector<uint32_t>{4000000000u}));
  EXPECT_EQ(static_cast<Constant*>(gr->tensor("s"))->values().strings(),
            (std::vector<std::string>{"hello", std::string("\0bin", 4)}));
  EXPECT_EQ(values_of<float>(*gr, "c64"), (std::vector<float>{1.f, -1.f}));
  EXPECT_EQ(static_cast<Constant*>(gr->tensor("empty"))->values().numel(), 0);
  EXPECT_EQ(values_of<int64_t>(*gr, "scalar"), (std::vector<int64_t>{11}));

  expect_round_trip(path("m.onnx"), path("out.onnx"));
  // Eager loading decodes at import.
  auto eager = import_onnx(path("m.onnx"), ImportOptions{false});
  EXPECT_TRUE(static_cast<Constant*>(eager->tensor("f_raw"))->loaded());
}

TEST_F(OnnxTest, InitializerListedAsInputIsAConstantInput) {
  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  set_type(g->add_input(), "x", onnx::TensorProto::FLOAT, {2});
  set_type(g->add_input(), "w", onnx::TensorProto::FLOAT, {2});
  *g->add_initializer() = float_tensor("w", {2}, {1, 2});
  set_type(g->add_output(), "y", onnx::TensorProto::FLOAT, {2});
  add_node(g, "Add", {"x", "w"}, {"y"});
  save(m, path("m.onnx"));
  auto gr = expect_round_trip(path("m.onnx"), path("out.onnx"));
  ASSERT_EQ(gr->inputs.size(), 2u);
  EXPECT_TRUE(gr->inputs[1]->is_constant());
  EXPECT_EQ(gr->inputs[1], gr->tensor("w"));
}

// ------------------------------------------------------------------------------------- external data
TEST_F(OnnxTest, ExternalDataRoundTrip) {
  Graph g;
  g.set_opset("", 13);
  std::vector<float> big(5000);
  for (size_t k = 0; k < big.size(); ++k) big[k] = static_cast<float>(k) * 0.5f;
  Variable* x = g.add_variable("x", DType::Float, Shape{5000});
  Constant* w = g.add_constant("w", TensorData::from_vector<float>(DType::Float, {5000}, big));
  Constant* b = g.add_constant("b", TensorData::scalar_float(1.f));
  Variable* t = g.add_variable("t", DType::Float, Shape{5000});
  Variable* y = g.add_variable("y", DType::Float, Shape{5000});
  g.add_node("Mul", {x, w}, {t}, "mul");
  g.add_node("Add", {t, b}, {y}, "add");
  g.inputs = {x};
  g.outputs = {y};

  ExportOptions opt;
  opt.external_data = true;
  export_onnx(g, path("m.onnx"), opt);
  ASSERT_TRUE(fs::exists(path("m.onnx.data")));
  EXPECT_EQ(fs::file_size(path("m.onnx.data")), 5000u * 4);  // only the big tensor
  EXPECT_LT(fs::file_size(path("m.onnx")), 1000u);
  for (const auto& e : fs::directory_iterator(dir_))  // no temporary files left behind
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();

  auto h = import_onnx(path("m.onnx"));
  auto* hw = static_cast<Constant*>(h->tensor("w"));
  EXPECT_FALSE(hw->loaded());
  EXPECT_FALSE(hw->external_data.empty());
  EXPECT_TRUE(hw->values().same_values(w->values()));
  EXPECT_TRUE(static_cast<Constant*>(h->tensor("b"))->external_data.empty());

  // Export again into another directory with a custom data file name; the data moves along.
  fs::create_directories(dir_ / "sub");
  auto h2 = import_onnx(path("m.onnx"));
  opt.external_file = "weights.bin";
  opt.external_threshold = 1;
  export_onnx(*h2, path("sub/m2.onnx"), opt);
  EXPECT_TRUE(fs::exists(path("sub/weights.bin")));
  auto h3 = import_onnx(path("sub/m2.onnx"));
  expect_same_graph(*import_onnx(path("m.onnx")), *h3);

  // Overwriting the model and data file the graph lazily reads from: an unused constant (not exported)
  // must still see its original values afterwards.
  auto h4 = import_onnx(path("sub/m2.onnx"));
  Constant* spare = static_cast<Constant*>(h4->tensor("w"));
  h4->find_node("mul")->set_input(1, h4->tensor("b"));
  opt.external_threshold = 4;  // now "b" is the only tensor written, at offset 0 of the new file
  export_onnx(*h4, path("sub/m2.onnx"), opt);
  EXPECT_EQ(fs::file_size(path("sub/weights.bin")), 4u);
  EXPECT_TRUE(spare->values().same_values(w->values()));
}

TEST_F(OnnxTest, ExternalDataWithOffsetAndLength) {
  std::string blob(64, '\xEE');  // junk before, between and after the tensors
  const std::vector<float> a{1.f, 2.f, 3.f};
  const std::vector<int64_t> b{-1, 1ll << 40};
  blob.replace(8, 12, reinterpret_cast<const char*>(a.data()), 12);
  blob.replace(32, 16, reinterpret_cast<const char*>(b.data()), 16);
  write_file(path("blob.bin"), blob);

  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  auto ext = [&](const std::string& name, int dtype, int64_t n, const std::string& offset, const std::string& len) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(dtype);
    t->add_dims(n);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    const std::pair<std::string, std::string> kv[] = {{"location", "blob.bin"}, {"offset", offset}, {"length", len}};
    for (const auto& [k, v] : kv) {
      auto* e = t->add_external_data();
      e->set_key(k);
      e->set_value(v);
    }
    set_type(g->add_output(), name, dtype, {n});
  };
  ext("a", onnx::TensorProto::FLOAT, 3, "8", "12");
  ext("b", onnx::TensorProto::INT64, 2, "32", "16");
  save(m, path("m.onnx"));

  auto gr = import_onnx(path("m.onnx"));
  EXPECT_EQ(values_of<float>(*gr, "a"), a);
  EXPECT_EQ(values_of<int64_t>(*gr, "b"), b);
  expect_round_trip(path("m.onnx"), path("out.onnx"));
}

// Over 2 GB of tensors: protobuf cannot hold them, so export switches to external data by itself.
// Disabled by default (2 GB of memory and disk); run with --gtest_also_run_disabled_tests.
TEST_F(OnnxTest, DISABLED_HugeModelUsesExternalDataAutomatically) {
  Graph g;
  g.set_opset("", 13);
  TensorData big(DType::Float, {530'000'000});  // 2.12 GB
  big.data<float>()[0] = 1.f;
  big.data<float>()[big.numel() - 1] = 2.f;
  Constant* c = g.add_constant("big", big);
  g.outputs = {c};
  EXPECT_THROW(export_onnx_bytes(g), Error);
  export_onnx(g, path("huge.onnx"));
  EXPECT_LT(fs::file_size(path("huge.onnx")), 10000u);
  EXPECT_EQ(fs::file_size(path("huge.onnx.data")), big.nbytes());
  auto h = import_onnx(path("huge.onnx"));
  EXPECT_TRUE(static_cast<Constant*>(h->tensor("big"))->values().same_values(big));
}


// ---------------------------------------------------------------------------------------- subgraphs
TEST_F(OnnxTest, IfSubgraphsReadingOuterScopeRoundTrip) {
  save(if_model(), path("m.onnx"));
  auto gr = expect_round_trip(path("m.onnx"), path("out.onnx"));
  Node* n = gr->find_node("if");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->i(0), gr->find_node("greater"));
  const Graph& then_g = *std::get<GraphPtr>(n->attrs.find("then_branch")->value);
  EXPECT_TRUE(then_g.is_outer_reference(then_g.tensor("x")));
  EXPECT_TRUE(then_g.is_outer_reference(then_g.tensor("c")));
  EXPECT_EQ(then_g.outer_scope_names(), (std::vector<std::string>{"c", "x"}));
  EXPECT_EQ(gr->outer_scope_names(), std::vector<std::string>{});
  // "c" is only read by the subgraph, and must still be exported as an initializer.
  onnx::ModelProto out;
  ASSERT_TRUE(out.ParseFromString(read_file(path("out.onnx"))));
  ASSERT_EQ(out.graph().initializer_size(), 2);
  EXPECT_EQ(out.graph().initializer(0).name(), "c");
}

TEST_F(OnnxTest, OmittedOptionalInputsAndOutputs) {
  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  set_type(g->add_input(), "x", onnx::TensorProto::FLOAT, {1, 3, 4});
  set_type(g->add_output(), "y", onnx::TensorProto::FLOAT, {1, 3, 4});
  // Dropout(x, ratio="", training_mode="") -> (y, mask=""); LSTM-style "" outputs in the middle too.
  add_node(g, "Dropout", {"x", "", ""}, {"y", ""}, "drop");
  save(m, path("m.onnx"));
  auto gr = expect_round_trip(path("m.onnx"), path("out.onnx"));
  Node* n = gr->find_node("drop");
  ASSERT_EQ(n->inputs().size(), 3u);
  EXPECT_EQ(n->input(1), nullptr);
  ASSERT_EQ(n->outputs().size(), 2u);
  EXPECT_EQ(n->output(1), nullptr);
  onnx::ModelProto out;
  ASSERT_TRUE(out.ParseFromString(read_file(path("out.onnx"))));
  EXPECT_EQ(out.graph().node(0).input(2), "");
  EXPECT_EQ(out.graph().node(0).output(1), "");
}

// -------------------------------------------------------------------------- onnx checker, onnxruntime
int run(const std::string& cmd) { return std::system((cmd + " > /dev/null 2>&1").c_str()); }

// Pythons that can import `modules`: $KILN_PYTHON, the project's venv, the system python3.
std::vector<std::string> pythons_with(const std::string& modules) {
  std::vector<std::string> candidates, found;
  if (const char* p = std::getenv("KILN_PYTHON")) candidates.push_back(p);
  candidates.push_back(std::string(KILN_SOURCE_DIR) + "/.venv/bin/python");
  candidates.push_back("/usr/bin/python3");
  for (const auto& py : candidates)
    if (::access(py.c_str(), X_OK) == 0 && run("'" + py + "' -c 'import " + modules + "'") == 0) found.push_back(py);
  return found;
}

// A model exercising most export features: initializers (one external), value_info, If with outer reads.
std::unique_ptr<Graph> checker_graph(const std::string& dir) {
  onnx::ModelProto m = if_model();
  auto* g = m.mutable_graph();
  std::vector<float> w(300);
  for (size_t k = 0; k < w.size(); ++k) w[k] = std::sin(static_cast<float>(k));
  *g->add_initializer() = float_tensor("w", {3, 100}, w);
  g->mutable_output(0)->Clear();
  set_type(g->mutable_output(0), "z", onnx::TensorProto::FLOAT, {100});
  add_node(g, "Unsqueeze", {"y", "axes"}, {"y2"}, "unsq");
  auto* axes = g->add_initializer();
  axes->set_name("axes");
  axes->set_data_type(onnx::TensorProto::INT64);
  axes->add_dims(1);
  axes->add_int64_data(0);
  add_node(g, "MatMul", {"y2", "w"}, {"mm"}, "matmul");
  add_node(g, "Flatten", {"mm"}, {"flat"}, "flatten")->add_attribute()->set_name("axis");
  auto* axis = g->mutable_node(g->node_size() - 1)->mutable_attribute(0);
  axis->set_type(A::INT);
  axis->set_i(0);
  add_node(g, "Squeeze", {"flat", "axes"}, {"z"}, "squeeze");
  set_type(g->add_value_info(), "y", onnx::TensorProto::FLOAT, {3});
  save(m, dir + "/orig.onnx");
  return import_onnx(dir + "/orig.onnx");
}

TEST_F(OnnxTest, ExportPassesOnnxChecker) {
  const std::vector<std::string> pys = pythons_with("onnx");
  if (pys.empty()) GTEST_SKIP() << "no python with onnx";
  auto g = checker_graph(dir_.string());
  g->toposort();  // the source file is deliberately unsorted; export keeps the graph's node order
  ExportOptions opt;
  opt.external_data = true;
  opt.external_threshold = 100;
  export_onnx(*g, path("ext.onnx"), opt);
  export_onnx(*g, path("inline.onnx"));
  for (const auto& py : pys)  // the system onnx (1.12) and the venv's newer one check differently
    for (const char* name : {"ext.onnx", "inline.onnx"}) {
      const std::string cmd = "'" + py + "' -c 'import onnx, sys; onnx.checker.check_model(sys.argv[1], full_check=True)' '" +
                              path(name) + "'";
      EXPECT_EQ(std::system(cmd.c_str()), 0) << py << " " << name;
    }
}

TEST_F(OnnxTest, ExportedModelRunsInOnnxRuntimeLikeTheOriginal) {
  const std::vector<std::string> pys = pythons_with("onnxruntime, numpy");
  if (pys.empty()) GTEST_SKIP() << "no python with onnxruntime (set KILN_PYTHON)";
  const std::string& py = pys.front();
  auto g = checker_graph(dir_.string());
  ExportOptions opt;
  opt.external_data = true;
  export_onnx(*g, path("ext.onnx"), opt);
  write_file(path("cmp.py"), R"(
import sys, numpy as np, onnxruntime as ort
x = np.array([1.0, -2.0, 0.5], dtype=np.float32)
for flag in (1.0, -1.0):  # both If branches
    feeds = {"x": x, "flag": np.array(flag, dtype=np.float32)}
    a = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"]).run(None, feeds)
    b = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"]).run(None, feeds)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.shape == v.shape and np.allclose(u, v, rtol=0, atol=0), (u, v)
)");
  const std::string cmd = "'" + py + "' '" + path("cmp.py") + "' '" + path("orig.onnx") + "' '" + path("ext.onnx") + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

}  // namespace
}  // namespace kiln
