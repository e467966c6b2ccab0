// Sizes a file or a user controls: checked arithmetic, the memory limit, size checks before allocation, and
// messages that stay one short printable line whatever the input held.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>

#include "kiln/engine.h"
#include "kiln/error.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"
#include "kiln/tensor_io.h"
#include "test_util.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using test::error_of;

constexpr int64_t k2e31 = int64_t{1} << 31;

// Restores the default limit whatever a test did.
struct MemoryLimit {
  explicit MemoryLimit(uint64_t bytes) { set_max_memory(bytes); }
  ~MemoryLimit() { set_max_memory(0); }
};

TEST(CheckedSizes, NumelAndBytes) {
  EXPECT_EQ(checked_numel({2, 3, 4}), 24);
  EXPECT_EQ(checked_numel({}), 1);
  EXPECT_EQ(checked_numel({0, 5}), 0);
  EXPECT_EQ(checked_numel({k2e31, k2e31}), int64_t{1} << 62);
  EXPECT_EQ(checked_numel({k2e31, k2e31, 2}), std::nullopt);  // 2^63 does not fit
  EXPECT_EQ(checked_numel({INT64_MAX}), INT64_MAX);
  EXPECT_EQ(checked_numel({-1, 3}), std::nullopt);
  // A zero dim does not hide an overflow among the others: every sub-product of an accepted shape fits.
  EXPECT_EQ(checked_numel({0, k2e31, k2e31, 4}), std::nullopt);
  EXPECT_EQ(checked_nbytes(DType::Float, {k2e31, k2e31}), std::nullopt);  // 2^62 elements x 4 bytes
  EXPECT_EQ(checked_nbytes(DType::Float, {k2e31, 2}), uint64_t{1} << 34);
  EXPECT_EQ(checked_add(UINT64_MAX - 7, 8), std::nullopt);
  EXPECT_EQ(checked_add(UINT64_MAX - 8, 8), UINT64_MAX);
  EXPECT_EQ(checked_mul(uint64_t{1} << 32, uint64_t{1} << 32), std::nullopt);
}

TEST(CheckedSizes, TensorOfWrappingSizeIsAnErrorNotATinyBuffer) {
  // [2^31, 2^31] float: the byte count 2^64 wraps to 0 without checks.
  const std::string e = error_of([] { TensorData t(DType::Float, {k2e31, k2e31}); });
  EXPECT_NE(e.find("float32 [2147483648, 2147483648]"), std::string::npos) << e;
  EXPECT_NE(e.find("overflows"), std::string::npos) << e;
  EXPECT_NE(error_of([] { TensorData t(DType::Float, {-3}); }).find("negative"), std::string::npos);
  EXPECT_NE(error_of([] {
              TensorData::view(DType::Float, {INT64_MAX, 2}, nullptr);
            }).find("overflows"),
            std::string::npos);
}

TEST(MemoryLimit, RefusedUpFrontWithTheSize) {
  EXPECT_GT(max_memory(), uint64_t{1} << 26);  // the default is the machine's memory
  MemoryLimit limit(1 << 18);
  EXPECT_EQ(max_memory(), uint64_t{1} << 18);
  TensorData ok(DType::Float, {256, 256});  // exactly 256 KiB
  const std::string e = error_of([] { TensorData t(DType::Float, {257, 256}); });
  EXPECT_NE(e.find("float32 [257, 256]"), std::string::npos) << e;
  EXPECT_NE(e.find("memory limit"), std::string::npos) << e;
  // Strings count their objects, not one byte each.
  EXPECT_NE(error_of([] { TensorData t(DType::String, {1 << 14}); }).find("memory limit"), std::string::npos);
}

TEST(Printable, EscapesAndTruncates) {
  EXPECT_EQ(printable("plain text"), "plain text");
  EXPECT_EQ(printable(std::string("a\x1b[2Jb\n\xff", 8)), "a\\x1b[2Jb\\x0a\\xff");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x86\x92"), "caf\xc3\xa9 \xe2\x86\x92");  // valid UTF-8 stays
  EXPECT_EQ(printable("\xc2\x9b"), "\\xc2\\x9b");                                // a C1 control does not
  EXPECT_EQ(printable("\xe2\x86"), "\\xe2\\x86");                                // truncated sequence
  const std::string big(5 << 20, 'x');
  const std::string p = printable(big);
  EXPECT_LT(p.size(), 260u);
  EXPECT_NE(p.find("more bytes"), std::string::npos);
}

class FileLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("kiln_limits_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  fs::path dir_;
};

std::string npy_claiming(const std::string& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  dict.append(117 - dict.size(), ' ');
  dict += '\n';
  return std::string("\x93NUMPY\x01\x00", 8) + std::string(1, static_cast<char>(dict.size())) + '\0' + dict;
}

TEST_F(FileLimits, NpyClaimingMoreThanItHoldsIsRefusedBeforeAllocating) {
  // 10^9 floats claimed by a 128-byte file: with a 64 MiB limit, an allocation first would be refused for the
  // size instead; checking the length first says what is wrong with the file.
  MemoryLimit limit(64 << 20);
  const std::string p = write("huge.npy", npy_claiming("(1000000000,)"));
  const std::string e = error_of([&] { read_npy(p); });
  EXPECT_NE(e.find("truncated .npy data"), std::string::npos) << e;
  EXPECT_NE(e.find("4000000000 bytes expected"), std::string::npos) << e;
  // A shape whose byte count wraps.
  const std::string w = write("wrap.npy", npy_claiming("(4294967296, 1073741824)"));
  EXPECT_NE(error_of([&] { read_npy(w); }).find("overflows"), std::string::npos);
}

TEST_F(FileLimits, TensorProtoClaimingMoreThanItHoldsIsRefusedBeforeAllocating) {
  MemoryLimit limit(64 << 20);
  onnx::TensorProto tp;
  tp.set_data_type(onnx::TensorProto::FLOAT);
  tp.add_dims(1000000000);
  tp.add_float_data(1.f);
  const std::string p = write("huge.pb", tp.SerializeAsString());
  const std::string e = error_of([&] { read_tensor_proto(p); });
  EXPECT_NE(e.find("float_data holds 1, 1000000000 expected"), std::string::npos) << e;
  tp.clear_float_data();
  tp.set_raw_data("abcd");
  const std::string r = write("huge_raw.pb", tp.SerializeAsString());
  EXPECT_NE(error_of([&] { read_tensor_proto(r); }).find("raw_data bytes holds 4"), std::string::npos);
  tp.clear_dims();
  tp.add_dims(k2e31);
  tp.add_dims(k2e31);
  const std::string w = write("wrap.pb", tp.SerializeAsString());
  EXPECT_NE(error_of([&] { read_tensor_proto(w); }).find("overflows"), std::string::npos);
}

// A one-node model: `op` named `name` reading `inputs`, writing "y" (the graph output).
struct OneNodeModel {
  onnx::ModelProto m;
  onnx::GraphProto* g;
  OneNodeModel(const std::string& op, const std::string& name, const std::vector<std::string>& inputs) {
    m.set_ir_version(8);
    m.add_opset_import()->set_version(13);
    g = m.mutable_graph();
    onnx::NodeProto* n = g->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output("y");
    g->add_output()->set_name("y");
  }
  // A float graph input with static dims (none: unknown rank).
  OneNodeModel& input(const std::string& name, const std::vector<int64_t>& dims) {
    onnx::ValueInfoProto* x = g->add_input();
    x->set_name(name);
    auto* tt = x->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
    return *this;
  }
  std::string bytes() const { return m.SerializeAsString(); }
};

std::string constant_of_shape_model(const std::vector<int64_t>& shape) {
  OneNodeModel model("ConstantOfShape", "fill", {"shape"});
  onnx::TensorProto* s = model.g->add_initializer();
  s->set_name("shape");
  s->set_data_type(onnx::TensorProto::INT64);
  s->add_dims(static_cast<int64_t>(shape.size()));
  for (int64_t d : shape) s->add_int64_data(d);
  return model.bytes();
}

TEST(GraphSizes, ConstantOfShapeWhoseSizeWrapsNamesTheNodeAndTensor) {
  auto graph = import_onnx_bytes(constant_of_shape_model({k2e31, k2e31}), "cos.onnx");
  const std::string e = error_of([&] { infer_shapes(*graph); });
  EXPECT_NE(e.find("cos.onnx"), std::string::npos) << e;
  EXPECT_NE(e.find("'fill'"), std::string::npos) << e;
  EXPECT_NE(e.find("'y'"), std::string::npos) << e;
  EXPECT_NE(e.find("overflows"), std::string::npos) << e;
  auto folded = import_onnx_bytes(constant_of_shape_model({k2e31, k2e31}), "cos.onnx");
  EXPECT_NE(error_of([&] { fold_constants(*folded); }).find("overflows"), std::string::npos);
}

TEST(GraphSizes, ConstantOfShapeOverTheMemoryLimitIsNotFoldedAndNotAllocated) {
  MemoryLimit limit(1 << 20);
  // 2^30 floats: representable, but over the limit. Folding skips it (fold cap); building refuses it.
  auto graph = import_onnx_bytes(constant_of_shape_model({1 << 15, 1 << 15}), "big.onnx");
  EXPECT_NO_THROW(fold_constants(*graph));
  auto again = import_onnx_bytes(constant_of_shape_model({1 << 15, 1 << 15}), "big.onnx");
  const std::string e = error_of([&] { Engine::build(*again, BuildOptions{}); });
  EXPECT_NE(e.find("memory limit"), std::string::npos) << e;
  EXPECT_NE(e.find("'y'"), std::string::npos) << e;
}

// x -> Relu -> y with a declared input shape.
std::string relu_model(const std::vector<int64_t>& dims) {
  return OneNodeModel("Relu", "relu", {"x"}).input("x", dims).bytes();
}

TEST(GraphSizes, InputWhoseElementCountWrapsToZeroIsRefused) {
  // [2^32, 2^32]: the product wraps to exactly 0 in 64 bits, which ran "successfully" in microseconds.
  auto graph = import_onnx_bytes(relu_model({int64_t{1} << 32, int64_t{1} << 32}), "wrap.onnx");
  const std::string e = error_of([&] { Engine::build(*graph, BuildOptions{}); });
  EXPECT_NE(e.find("wrap.onnx"), std::string::npos) << e;
  EXPECT_NE(e.find("overflows"), std::string::npos) << e;
}

TEST(GraphSizes, HugeInputIsRefusedWithItsName) {
  auto graph = import_onnx_bytes(relu_model({INT64_MAX}), "huge.onnx");
  const std::string e = error_of([&] { Engine::build(*graph, BuildOptions{}); });
  EXPECT_NE(e.find("'x'"), std::string::npos) << e;
  EXPECT_TRUE(e.find("overflows") != std::string::npos || e.find("memory limit") != std::string::npos) << e;
}

TEST(BuildOptionsLimits, ThreadsOutOfRange) {
  auto graph = import_onnx_bytes(relu_model({2, 3}), "relu.onnx");
  BuildOptions o;
  o.threads = 1000000;
  EXPECT_NE(error_of([&] { Engine::build(*graph, o); }).find("threads 1000000 is out of range"),
            std::string::npos);
  o.threads = -1;
  EXPECT_NE(error_of([&] { Engine::build(*graph, o); }).find("out of range"), std::string::npos);
  o.threads = 2;
  EXPECT_NO_THROW(Engine::build(*graph, o));
}

TEST(Messages, EmptyRequiredInputSaysSo) {
  // An empty name is an omitted input, which Add does not allow; x has unknown rank.
  const std::string m = OneNodeModel("Add", "add", {"x", ""}).input("x", {}).bytes();
  auto graph = import_onnx_bytes(m, "add.onnx");
  const std::string e = error_of([&] { infer_shapes(*graph); });
  EXPECT_NE(e.find("required input 1 is empty"), std::string::npos) << e;
  EXPECT_EQ(e.find("got 2"), std::string::npos) << e;
}

}  // namespace
}  // namespace kiln
