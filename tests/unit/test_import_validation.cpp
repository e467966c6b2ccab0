// Import validation (issue 9): external data stays inside the model's folder and its offset/length parse
// strictly; models newer than kiln, untyped attributes, negative dims, declared dtypes that contradict the
// graph, and constant out-of-range Gather indices are one-line errors naming the file and the culprit; what
// ONNX Runtime accepts (no outputs, an output listed twice) is a warning.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "kiln/graph.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class ImportValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ =
        fs::temp_directory_path() / ("kiln_validation_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(root_);
    dir_ = root_ / "model";
    fs::create_directories(dir_);
    fs::create_directories(root_ / "outside");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path root_, dir_;
};

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

onnx::ModelProto new_model(int64_t opset = 13, int64_t ir = 8) {
  onnx::ModelProto m;
  m.set_ir_version(ir);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

void set_type(onnx::ValueInfoProto* vi, const std::string& name, int elem, const std::vector<int64_t>& dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, std::vector<std::string> ins,
                          std::vector<std::string> outs, const std::string& name) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& s : ins) n->add_input(s);
  for (auto& s : outs) n->add_output(s);
  return n;
}

// x[2] -> Relu 'relu' -> y[2]
onnx::ModelProto relu_model(int64_t opset = 13, int64_t ir = 8) {
  onnx::ModelProto m = new_model(opset, ir);
  auto* g = m.mutable_graph();
  set_type(g->add_input(), "x", onnx::TensorProto::FLOAT, {2});
  add_node(g, "Relu", {"x"}, {"y"}, "relu");
  set_type(g->add_output(), "y", onnx::TensorProto::FLOAT, {2});
  return m;
}

// A model whose float[2] initializer 'w' (8 bytes) is external with the given key/value pairs, read by Add.
onnx::ModelProto external_model(const std::vector<std::pair<std::string, std::string>>& kv) {
  onnx::ModelProto m = relu_model();
  auto* g = m.mutable_graph();
  g->mutable_node(0)->set_op_type("Add");
  g->mutable_node(0)->add_input("w");
  auto* t = g->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(2);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  for (const auto& [k, v] : kv) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  }
  return m;
}

void save(const onnx::ModelProto& m, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  m.SerializeToOstream(&out);
}

// The error of infer_shapes or fold_constants on g, or "(no error)".
std::string pass_error(Graph& g, bool fold = false) {
  try {
    if (fold)
      fold_constants(g);
    else
      infer_shapes(g);
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    return e.what();
  }
  return "(no error)";
}

// The import error of `path` (one line, starting with the path), or "(no error)".
std::string import_error(const std::string& path, ImportOptions options = {}) {
  try {
    import_onnx(path, options);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  return "(no error)";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << (msg)

// ------------------------------------------------------------------------------------- external data
TEST_F(ImportValidation, ExternalDataParentEscapeIsRefused) {
  for (const std::string loc : {"../../../../etc/passwd", "../outside/w.bin", "sub/../../outside/w.bin"}) {
    write_file(root_ / "outside" / "w.bin", std::string(8, '\1'));
    save(external_model({{"location", loc}}), path("m.onnx"));
    const std::string msg = import_error(path("m.onnx"));
    EXPECT_HAS(msg, "initializer 'w'");
    EXPECT_HAS(msg, "leaves the model's folder");
  }
}

TEST_F(ImportValidation, ExternalDataAbsolutePathIsRefused) {
  write_file(root_ / "outside" / "w.bin", std::string(8, '\1'));
  for (const std::string loc : {std::string("/etc/passwd"), (root_ / "outside" / "w.bin").string()}) {
    save(external_model({{"location", loc}}), path("m.onnx"));
    const std::string msg = import_error(path("m.onnx"));
    EXPECT_HAS(msg, "initializer 'w'");
    EXPECT_HAS(msg, "absolute path");
  }
}

TEST_F(ImportValidation, ExternalDataSymlinkOutOfTheFolderIsRefused) {
  write_file(root_ / "outside" / "w.bin", std::string(8, '\1'));
  fs::create_symlink(root_ / "outside" / "w.bin", dir_ / "link.bin");
  fs::create_directory_symlink(root_ / "outside", dir_ / "linkdir");
  for (const std::string loc : {"link.bin", "linkdir/w.bin"}) {
    save(external_model({{"location", loc}}), path("m.onnx"));
    const std::string msg = import_error(path("m.onnx"));
    EXPECT_HAS(msg, "initializer 'w'");
    EXPECT_HAS(msg, "outside the model's folder");
  }
  // A symlink that stays inside is fine, and so is a `..` that comes back in.
  write_file(dir_ / "real.bin", std::string(8, '\0'));
  fs::create_directory(dir_ / "sub");
  fs::create_symlink(dir_ / "real.bin", dir_ / "sub" / "inside.bin");
  for (const std::string loc : {"sub/inside.bin", "sub/../real.bin", "./real.bin"}) {
    save(external_model({{"location", loc}}), path("m.onnx"));
    auto g = import_onnx(path("m.onnx"));
    EXPECT_EQ(static_cast<Constant*>(g->tensor("w"))->values().data<float>()[1], 0.f) << loc;
  }
}

TEST_F(ImportValidation, ExternalDataSwappedForASymlinkBeforeALazyLoadIsRefused) {
  write_file(dir_ / "w.bin", std::string(8, '\0'));
  write_file(root_ / "outside" / "secret.bin", std::string(8, '\1'));
  save(external_model({{"location", "w.bin"}}), path("m.onnx"));
  auto g = import_onnx(path("m.onnx"));
  fs::remove(dir_ / "w.bin");
  fs::create_symlink(root_ / "outside" / "secret.bin", dir_ / "w.bin");
  try {
    static_cast<Constant*>(g->tensor("w"))->values();
    ADD_FAILURE() << "read through a symlink out of the model's folder";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "initializer 'w'");
    EXPECT_HAS(std::string(e.what()), "no longer inside the model's folder");
  }
}

TEST_F(ImportValidation, ExternalDataFromACallerReaderOpensNoFileAndReadsLazily) {
  // kiln.gs hands weights it holds in memory this way: locations are names, no file exists, and the reader is
  // called only when the values are wanted, with the tensor's exact byte count.
  save(external_model({{"location", "../../weights/w"}, {"offset", "8"}}), path("m.onnx"));
  std::vector<std::string> calls;
  ImportOptions options;
  options.read_external = [&calls](const std::string& location, uint64_t offset, uint64_t length, void* dst) {
    calls.push_back(location + "@" + std::to_string(offset) + "+" + std::to_string(length));
    const float values[2] = {1.5f, -2.f};
    ASSERT_EQ(length, sizeof(values));
    std::memcpy(dst, values, sizeof(values));
  };
  auto g = import_onnx(path("m.onnx"), options);
  EXPECT_TRUE(calls.empty()) << "read before the values were wanted";
  const TensorData& w = static_cast<Constant*>(g->tensor("w"))->values();
  ASSERT_EQ(calls, std::vector<std::string>{"../../weights/w@8+8"});
  EXPECT_EQ(w.data<float>()[0], 1.5f);
  EXPECT_EQ(w.data<float>()[1], -2.f);
  // A reader's error is the import's error (the loader runs inside values()).
  options.read_external = [](const std::string&, uint64_t, uint64_t, void*) {
    throw Error("reader says no");
  };
  auto failing = import_onnx(path("m.onnx"), options);
  EXPECT_THROW(static_cast<Constant*>(failing->tensor("w"))->values(), Error);
}

TEST_F(ImportValidation, ExternalDataOffsetAndLengthParseStrictly) {
  write_file(dir_ / "w.bin", std::string(64, '\0'));
  const std::string huge = "18446744073709551608";  // 2^64 - 8: offset + 8 wraps to 0
  const std::vector<std::pair<std::string, std::string>> bad = {{"offset", huge},
                                                                {"offset", "-1"},
                                                                {"offset", "+5"},
                                                                {"offset", " 5"},
                                                                {"offset", "5x"},
                                                                {"offset", ""},
                                                                {"offset", "9223372036854775808"},  // 2^63
                                                                {"offset", "0x10"},
                                                                {"length", "8 "},
                                                                {"length", "18446744073709551615"},
                                                                {"length", "-8"}};
  for (const auto& [key, value] : bad) {
    save(external_model({{"location", "w.bin"}, {key, value}}), path("m.onnx"));
    const std::string msg = import_error(path("m.onnx"));
    EXPECT_HAS(msg, "initializer 'w'");
    EXPECT_HAS(msg, "external data " + key + " '" + value + "' is not a decimal byte count")
        << key << "=" << value;
  }
  // Valid ones still work; past the end of the file is an error.
  save(external_model({{"location", "w.bin"}, {"offset", "56"}, {"length", "8"}}), path("m.onnx"));
  EXPECT_EQ(import_error(path("m.onnx")), "(no error)");
  save(external_model({{"location", "w.bin"}, {"offset", "57"}}), path("m.onnx"));
  EXPECT_HAS(import_error(path("m.onnx")), "too short");
  save(external_model({{"location", "w.bin"}, {"offset", "9223372036854775807"}, {"length", "8"}}),
       path("m.onnx"));
  EXPECT_HAS(import_error(path("m.onnx")), "too short");
}

TEST_F(ImportValidation, ExternalDataKeys) {
  write_file(dir_ / "w.bin", std::string(8, '\0'));
  write_file(root_ / "outside" / "w.bin", std::string(8, '\1'));
  // A repeated key is ambiguous (which location wins?).
  save(external_model({{"location", "w.bin"}, {"location", "../outside/w.bin"}}), path("m.onnx"));
  EXPECT_HAS(import_error(path("m.onnx")), "external data key 'location' is given twice");
  save(external_model({{"location", "w.bin"}, {"offset", "0"}, {"offset", "0"}}), path("m.onnx"));
  EXPECT_HAS(import_error(path("m.onnx")), "'offset' is given twice");
  // Unknown keys are refused as ONNX Runtime does; the name is escaped.
  save(external_model({{"location", "w.bin"}, {"bas\x1b[2Jepath", "x"}}), path("m.onnx"));
  const std::string msg = import_error(path("m.onnx"));
  EXPECT_HAS(msg, "unknown external data key 'bas\\x1b[2Jepath'");
  // checksum is ONNX's optional key.
  save(external_model({{"location", "w.bin"}, {"checksum", "da39a3ee"}}), path("m.onnx"));
  EXPECT_EQ(import_error(path("m.onnx")), "(no error)");
  // Not a regular file.
  fs::create_directory(dir_ / "d");
  save(external_model({{"location", "d"}}), path("m.onnx"));
  EXPECT_HAS(import_error(path("m.onnx")), "not a regular file");
  save(external_model({{"location", std::string("w.bin\0x", 7)}}), path("m.onnx"));
  EXPECT_HAS(import_error(path("m.onnx")), "NUL");
}

TEST_F(ImportValidation, LongAndBinaryNamesAreEscapedAndCut) {
  save(external_model({{"location", std::string(5000, 'a') + "\n\x07"}}), path("m.onnx"));
  const std::string msg = import_error(path("m.onnx"));
  EXPECT_LT(msg.size(), path("m.onnx").size() + 600) << msg;
  EXPECT_HAS(msg, "more bytes");
}

TEST_F(ImportValidation, ExportKeepsExternalDataInTheModelsFolder) {
  Graph g;
  g.set_opset("", 13);
  auto* x = g.add_variable("x", DType::Float, Shape{4});
  auto* w = g.add_constant("w", TensorData::from_vector<float>(DType::Float, {4}, {1, 2, 3, 4}));
  auto* y = g.add_variable("y", DType::Float, Shape{4});
  g.add_node("Add", {x, w}, {y}, "add");
  g.inputs = {x};
  g.outputs = {y};
  ExportOptions opt;
  opt.external_data = true;
  opt.external_threshold = 1;
  for (const std::string file : {"../escape.bin", "/tmp/kiln_escape.bin", "a/../../escape.bin"}) {
    opt.external_file = file;
    try {
      export_onnx(g, path("out.onnx"), opt);
      ADD_FAILURE() << file << " was accepted";
    } catch (const Error& e) {
      EXPECT_HAS(std::string(e.what()), "must be a relative path inside the model's folder");
    }
    EXPECT_FALSE(fs::exists(root_ / "escape.bin"));
  }
  opt.external_file = "w.bin";
  export_onnx(g, path("out.onnx"), opt);
  EXPECT_TRUE(
      static_cast<Constant*>(import_onnx(path("out.onnx"))->tensor("w"))->values().same_values(w->values()));
}

// ------------------------------------------------------------------------------------- model versions
TEST_F(ImportValidation, NewerIrVersionOrOpsetIsRefused) {
  save(relu_model(13, kMaxIrVersion + 1), path("ir.onnx"));
  EXPECT_HAS(import_error(path("ir.onnx")), "IR version " + std::to_string(kMaxIrVersion + 1) + " is newer");
  // Current exporters write IR versions newer than the libonnx kiln is built with: those import.
  save(relu_model(13, kMaxIrVersion), path("ir_max.onnx"));
  EXPECT_EQ(import_error(path("ir_max.onnx")), "(no error)");
  save(relu_model(kMaxOpset + 1), path("opset.onnx"));
  EXPECT_HAS(import_error(path("opset.onnx")),
             "opset " + std::to_string(kMaxOpset + 1) + " of the default domain");
  onnx::ModelProto m = relu_model();
  m.mutable_opset_import(0)->set_domain("ai.onnx");
  m.mutable_opset_import(0)->set_version(1000);
  save(m, path("ai.onnx"));
  EXPECT_HAS(import_error(path("ai.onnx")), "opset 1000");
  // The newest supported ones import; other domains are not kiln's to judge.
  save(relu_model(kMaxOpset, onnx::Version::IR_VERSION), path("ok.onnx"));
  EXPECT_EQ(import_error(path("ok.onnx")), "(no error)");
  m = relu_model();
  auto* other = m.add_opset_import();
  other->set_domain("com.example");
  other->set_version(1000);
  save(m, path("other.onnx"));
  EXPECT_EQ(import_error(path("other.onnx")), "(no error)");
}

// ------------------------------------------------------------------------------------- graph structure
TEST_F(ImportValidation, AttributeWithoutTypeIsRefusedSinceIrVersion2) {
  onnx::ModelProto m = relu_model();
  auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("alpha");
  a->set_f(0.5f);  // a value but no type
  save(m, path("m.onnx"));
  const std::string msg = import_error(path("m.onnx"));
  EXPECT_HAS(msg, "attribute 'alpha' of node 'relu' (Relu)");
  EXPECT_HAS(msg, "UNDEFINED");
  // IR version 1 had no type field: the type comes from the value.
  m.set_ir_version(1);
  m.clear_opset_import();
  save(m, path("v1.onnx"));
  auto g = import_onnx(path("v1.onnx"));
  EXPECT_EQ(g->find_node("relu")->attrs.get_float("alpha", 0), 0.5f);
  // ... and export writes it with its type.
  onnx::ModelProto out;
  ASSERT_TRUE(out.ParseFromString(export_onnx_bytes(*g)));
  EXPECT_EQ(out.graph().node(0).attribute(0).type(), onnx::AttributeProto::FLOAT);
}

TEST_F(ImportValidation, NegativeDimsAreRefusedNamingTheTensorButMinusOneIsUnknown) {
  onnx::ModelProto m = relu_model();
  auto* dim0 = m.mutable_graph()
                   ->mutable_input(0)
                   ->mutable_type()
                   ->mutable_tensor_type()
                   ->mutable_shape()
                   ->mutable_dim(0);
  dim0->set_dim_value(-1);  // PaddlePaddle's dynamic dim: unknown, with a warning (ONNX Runtime accepts it)
  save(m, path("in.onnx"));
  std::vector<std::string> warnings;
  ImportOptions opt;
  opt.on_warning = [&](const std::string& w) { warnings.push_back(w); };
  auto g = import_onnx(path("in.onnx"), opt);
  ASSERT_TRUE(g->inputs[0]->shape);
  EXPECT_FALSE((*g->inputs[0]->shape)[0].is_static());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_HAS(warnings[0], "value 'x' has dimension -1 (dimension 0); read as unknown");
  dim0->set_dim_value(-2);
  save(m, path("in.onnx"));
  EXPECT_HAS(import_error(path("in.onnx")), "value 'x' has negative dimension -2");
  m = relu_model();
  set_type(m.mutable_graph()->add_value_info(), "y", onnx::TensorProto::FLOAT, {-7});
  m.mutable_graph()->mutable_output(0)->clear_type();
  save(m, path("vi.onnx"));
  EXPECT_HAS(import_error(path("vi.onnx")), "value 'y' has negative dimension -7");
}

TEST_F(ImportValidation, NoOutputsAndRepeatedOutputsWarnLikeOnnxRuntimeAccepts) {
  std::vector<std::string> warnings;
  ImportOptions opt;
  opt.on_warning = [&](const std::string& w) { warnings.push_back(w); };
  onnx::ModelProto m = relu_model();
  *m.mutable_graph()->add_output() = m.graph().output(0);
  save(m, path("twice.onnx"));
  auto g = import_onnx(path("twice.onnx"), opt);
  EXPECT_EQ(g->outputs.size(), 2u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], path("twice.onnx") + ": graph output 'y' is listed more than once");
  m.mutable_graph()->clear_output();
  save(m, path("none.onnx"));
  import_onnx(path("none.onnx"), opt);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[1], path("none.onnx") + ": graph 'g' has no outputs");
  opt.on_warning = nullptr;  // ignored
  import_onnx(path("none.onnx"), opt);
}

// ------------------------------------------------------------------------------------- inference
TEST_F(ImportValidation, DeclaredDtypeContradictingTheGraphIsAnError) {
  onnx::ModelProto m = relu_model();
  m.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::INT64);
  save(m, path("out.onnx"));
  auto g = import_onnx(path("out.onnx"));
  try {
    infer_shapes(*g);
    ADD_FAILURE() << "int64 output of a float Relu accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path("out.onnx") + ": node 'relu' (Relu): output 'y' is declared int64 but computes float32");
  }
  // A value computed at build time (Shape of a static tensor) is checked too.
  m = relu_model();
  add_node(m.mutable_graph(), "Shape", {"x"}, {"s"}, "shape");
  set_type(m.mutable_graph()->add_output(), "s", onnx::TensorProto::FLOAT, {1});
  save(m, path("shape.onnx"));
  g = import_onnx(path("shape.onnx"));
  EXPECT_EQ(pass_error(*g),
            path("shape.onnx") + ": node 'shape' (Shape): output 's' is declared float32 but computes int64");
  // An intermediate value_info too; an undeclared (UNDEFINED) dtype is simply filled in.
  m = relu_model();
  set_type(m.mutable_graph()->add_value_info(), "y", onnx::TensorProto::FLOAT16, {2});
  m.mutable_graph()->mutable_output(0)->clear_type();
  save(m, path("vi.onnx"));
  g = import_onnx(path("vi.onnx"));
  EXPECT_NE(pass_error(*g).find("output 'y' is declared float16 but computes float32"), std::string::npos);
  m.mutable_graph()->clear_value_info();
  save(m, path("undeclared.onnx"));
  g = import_onnx(path("undeclared.onnx"));
  EXPECT_EQ(pass_error(*g), "(no error)");
  EXPECT_EQ(g->tensor("y")->dtype, DType::Float);
}

// Gather(data, constant indices): an index outside the axis is an error naming the node and the index, found
// by inference (inspect) as well as by folding (sanitize --fold-constants).
onnx::ModelProto gather_model(const std::vector<int64_t>& indices, bool constant_data) {
  onnx::ModelProto m = new_model();
  auto* g = m.mutable_graph();
  if (constant_data) {
    auto* d = g->add_initializer();
    d->set_name("data");
    d->set_data_type(onnx::TensorProto::FLOAT);
    d->add_dims(3);
    d->add_dims(4);
    for (int k = 0; k < 12; ++k) d->add_float_data(static_cast<float>(k));
  } else {
    set_type(g->add_input(), "data", onnx::TensorProto::FLOAT, {3, 4});
  }
  auto* i = g->add_initializer();
  i->set_name("idx");
  i->set_data_type(onnx::TensorProto::INT64);
  i->add_dims(static_cast<int64_t>(indices.size()));
  for (int64_t v : indices) i->add_int64_data(v);
  add_node(g, "Gather", {"data", "idx"}, {"y"}, "gather");
  auto* out = g->add_output();
  out->set_name("y");
  return m;
}

TEST_F(ImportValidation, GatherWithConstantOutOfRangeIndicesIsAnError) {
  for (bool constant_data : {false, true})
    for (const auto& [indices, bad] : std::vector<std::pair<std::vector<int64_t>, std::string>>{
             {{0, 3}, "index 3 (indices element 1)"},
             {{-4}, "index -4 (indices element 0)"},
             {{int64_t{1} << 62}, "index 4611686018427387904 (indices element 0)"}}) {
      save(gather_model(indices, constant_data), path("m.onnx"));
      for (bool fold : {false, true}) {
        auto g = import_onnx(path("m.onnx"));
        const std::string msg = pass_error(*g, fold);
        EXPECT_EQ(msg.rfind(path("m.onnx") + ": node 'gather' (Gather): ", 0), 0u) << msg;
        EXPECT_NE(msg.find(bad + " is out of range for axis 0 of size 3"), std::string::npos) << msg;
      }
    }
  // In range (negative counts from the end): fine, and folds.
  save(gather_model({2, -3}, true), path("ok.onnx"));
  auto g = import_onnx(path("ok.onnx"));
  EXPECT_EQ(pass_error(*g, true), "(no error)");
  const TensorData& y = static_cast<Constant*>(g->tensor("y"))->values();
  EXPECT_EQ(y.data<float>()[0], 8.f);
  EXPECT_EQ(y.data<float>()[4], 0.f);
}

}  // namespace
}  // namespace kiln
