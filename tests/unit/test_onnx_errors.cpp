// ONNX import errors: missing, truncated and foreign files, bad attributes and initializers, dangling and
// duplicated tensors; each a one-line kiln::Error naming the file.
#include "onnx_test_util.h"

namespace kiln {
namespace {

using namespace onnx_test;  // NOLINT: shared ONNX test helpers

// ------------------------------------------------------------------------------------------- errors
TEST_F(OnnxTest, ErrorMissingFile) { expect_import_error(path("nope.onnx"), {"cannot open"}); }

TEST_F(OnnxTest, ErrorTruncatedFile) {
  const std::string bytes = if_model().SerializeAsString();
  write_file(path("cut.onnx"), bytes.substr(0, bytes.size() / 2));
  expect_import_error(path("cut.onnx"), {"not a valid ONNX model"});
}

TEST_F(OnnxTest, ErrorRandomBytesAndTextAndEmpty) {
  std::mt19937 rng(7);
  for (int k = 0; k < 20; ++k) {
    std::string junk(1000, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    write_file(path("junk.onnx"), junk);
    expect_import_error(path("junk.onnx"), {});
  }
  write_file(path("text.onnx"), "This is not a model.\nJust some text.\n");
  expect_import_error(path("text.onnx"), {"not a valid ONNX model"});
  write_file(path("empty.onnx"), "");
  expect_import_error(path("empty.onnx"), {"not a valid ONNX model"});
  expect_import_error(dir_.string(), {"directory"});
}

TEST_F(OnnxTest, ErrorUnknownAttributeType) {
  onnx::ModelProto m = if_model();
  auto* a = m.mutable_graph()->mutable_node(1)->add_attribute();
  a->set_name("weird");
  a->set_i(1);
  // set_type() asserts a known enum value, so write field 20 by hand, as a newer exporter's file would have it.
  a->GetReflection()->MutableUnknownFields(a)->AddVarint(A::kTypeFieldNumber, 99);
  save(m, path("m.onnx"));
  expect_import_error(path("m.onnx"), {"weird", "'greater'", "unknown attribute type 99"});
}

TEST_F(OnnxTest, ErrorMissingOrShortExternalData) {
  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  auto* t = g->add_initializer();
  t->set_name("weights");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(100);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = t->add_external_data();
  e->set_key("location");
  e->set_value("weights.bin");
  set_type(g->add_output(), "weights", onnx::TensorProto::FLOAT, {100});
  save(m, path("m.onnx"));
  expect_import_error(path("m.onnx"), {"'weights'", "weights.bin"});
  write_file(path("weights.bin"), std::string(40, '\0'));  // 40 of 400 bytes
  expect_import_error(path("m.onnx"), {"'weights'", "too short"});
  write_file(path("weights.bin"), std::string(400, '\0'));
  auto gr = import_onnx(path("m.onnx"));
  // The file shrinks after import: the lazy load fails with the model's name, not a crash.
  write_file(path("weights.bin"), std::string(4, '\0'));
  try {
    static_cast<Constant*>(gr->tensor("weights"))->values();
    ADD_FAILURE() << "load did not fail";
  } catch (const Error& err) {
    EXPECT_EQ(std::string(err.what()).rfind(path("m.onnx"), 0), 0u) << err.what();
  }
}

TEST_F(OnnxTest, ErrorDanglingInput) {
  onnx::ModelProto m = if_model();
  add_node(m.mutable_graph(), "Relu", {"ghost"}, {"r"}, "haunted");
  save(m, path("m.onnx"));
  expect_import_error(path("m.onnx"), {"'haunted'", "'ghost'", "never defined"});

  // Inside a subgraph, a name no enclosing graph defines is dangling too.
  onnx::ModelProto s = if_model();
  auto* then_g = s.mutable_graph()->mutable_node(0)->mutable_attribute(0)->mutable_g();
  then_g->mutable_node(0)->set_input(1, "nowhere");
  save(s, path("s.onnx"));
  expect_import_error(path("s.onnx"), {"then_body", "'then_add'", "'nowhere'"});
}

TEST_F(OnnxTest, ErrorDuplicateProducer) {
  onnx::ModelProto m = if_model();
  add_node(m.mutable_graph(), "Relu", {"x"}, {"cond"}, "second");
  save(m, path("m.onnx"));
  expect_import_error(path("m.onnx"), {"'cond'", "'greater'", "'second'"});
}

TEST_F(OnnxTest, ErrorModelFunctionsAndBadInitializers) {
  onnx::ModelProto m = if_model();
  m.add_functions()->set_name("MyFunc");
  save(m, path("f.onnx"));
  expect_import_error(path("f.onnx"), {"model-local functions are not supported", "MyFunc"});

  onnx::ModelProto r = if_model();
  r.mutable_graph()->mutable_initializer(0)->mutable_raw_data()->resize(5);
  save(r, path("r.onnx"));
  expect_import_error(path("r.onnx"), {"'c'", "raw_data"});

  onnx::ModelProto t = if_model();
  t.mutable_graph()->mutable_initializer(0)->set_data_type(77);
  save(t, path("t.onnx"));
  expect_import_error(path("t.onnx"), {"'c'", "data type 77"});
}

TEST_F(OnnxTest, ExportRejectsUndefinedTensors) {
  Graph g;
  g.set_opset("", 13);
  Variable* x = g.add_variable("x", DType::Float, Shape{2});
  Variable* y = g.add_variable("y", DType::Float, Shape{2});
  g.add_node("Relu", {x}, {y}, "relu");
  g.outputs = {y};  // x is not listed as an input
  try {
    export_onnx(g, path("bad.onnx"));
    ADD_FAILURE() << "export did not fail";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path("bad.onnx") + ": ", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path("bad.onnx")));
  EXPECT_TRUE(fs::is_empty(dir_));  // no temporary file left behind
  g.inputs = {x};
  EXPECT_NO_THROW(export_onnx(g, path("good.onnx")));
}

}  // namespace
}  // namespace kiln
