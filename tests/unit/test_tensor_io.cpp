// .npy and TensorProto files: round trips, files written by numpy (or by hand, byte for byte), and errors
// that name the file.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "kiln/error.h"
#include "kiln/tensor_io.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

class TensorIo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("kiln_tensor_io_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  fs::path dir_;
};

TensorData random_bytes(DType dtype, std::vector<int64_t> dims, uint32_t seed) {
  TensorData t(dtype, std::move(dims));
  std::mt19937 rng(seed);
  auto* p = static_cast<unsigned char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>(dtype == DType::Bool ? rng() % 2 : rng());
  return t;
}

// A hand-made v1 file: magic, version, u16 header length, dict padded to 64 bytes with '\n', then data.
std::string npy_bytes(const std::string& dict, const std::string& data, char major = 1) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  header.append(63 - (prefix + header.size()) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + major + '\0';
  for (size_t k = 0; k < prefix - 8; ++k) out += static_cast<char>((header.size() >> (8 * k)) & 0xff);
  return out + header + data;
}

std::string expect_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no kiln::Error thrown";
  return "";
}

TEST_F(TensorIo, NpyRoundTripsEveryDtype) {
  const std::vector<std::vector<int64_t>> shapes = {{2, 3, 4}, {7}, {}, {3, 0, 2}, {1, 1, 5, 1}};
  uint32_t seed = 1;
  for (DType dt : {DType::Float, DType::Double, DType::Float16, DType::Int8, DType::Int16, DType::Int32,
                   DType::Int64, DType::UInt8, DType::UInt16, DType::UInt32, DType::UInt64, DType::Bool,
                   DType::Complex64}) {
    for (const auto& dims : shapes) {
      const TensorData t = random_bytes(dt, dims, seed++);
      const std::string p = path(std::string("t_") + dtype_name(dt) + ".npy");
      write_npy(p, t);
      const TensorData back = read_npy(p);
      EXPECT_TRUE(back.same_values(t)) << dtype_name(dt) << " " << dims.size() << "-D";
      // numpy aligns the data to 64 bytes; so do we.
      EXPECT_EQ((fs::file_size(p) - t.nbytes()) % 64, 0u);
    }
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 13);  // no temp files left
}

TEST_F(TensorIo, ReadsHandWrittenNpy) {
  const std::vector<int16_t> v = {1, -2, 300, -400, 5, 6};
  std::string data(reinterpret_cast<const char*>(v.data()), v.size() * 2);
  write("v1.npy", npy_bytes("{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }", data));
  write("v2.npy", npy_bytes("{\"descr\":\"<i2\",\"shape\":(6,),\"fortran_order\":False}", data, 2));
  write("u8.npy", npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (3L,), }", "\x01\x02\x03"));
  const TensorData a = read_npy(path("v1.npy"));
  EXPECT_EQ(a.dtype(), DType::Int16);
  EXPECT_EQ(a.dims(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.data<int16_t>()[3], -400);
  const TensorData b = read_npy(path("v2.npy"));
  EXPECT_EQ(b.dims(), (std::vector<int64_t>{6}));
  EXPECT_EQ(b.data<int16_t>()[2], 300);
  const TensorData c = read_tensor_file(path("u8.npy"));
  EXPECT_EQ(c.dtype(), DType::UInt8);
  EXPECT_EQ(c.data<uint8_t>()[2], 3);
}

TEST_F(TensorIo, InteroperatesWithNumpy) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no numpy";
  const std::string script =
      "import numpy as np; "
      "np.save('" + path("np_f4.npy") + "', np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7); "
      "np.save('" + path("np_b1.npy") + "', np.array([True, False, True])); "
      "np.save('" + path("np_i8.npy") + "', np.int64(-5)); "
      "k = np.load('" + path("kiln.npy") + "'); "
      "assert k.dtype == np.float64 and k.shape == (2, 2) and k[1, 0] == 2.5, (k.dtype, k.shape, k)";
  write_npy(path("kiln.npy"), TensorData::from_vector<double>(DType::Double, {2, 2}, {0.5, 1.5, 2.5, 3.5}));
  ASSERT_EQ(std::system(("/usr/bin/python3 -c \"" + script + "\"").c_str()), 0);
  const TensorData f = read_npy(path("np_f4.npy"));
  EXPECT_EQ(f.dtype(), DType::Float);
  EXPECT_EQ(f.dims(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_FLOAT_EQ(f.data<float>()[23], 23.f / 7);
  const TensorData b = read_npy(path("np_b1.npy"));
  EXPECT_EQ(b.dtype(), DType::Bool);
  EXPECT_EQ(b.data<uint8_t>()[1], 0);
  EXPECT_EQ(b.data<uint8_t>()[2], 1);
  const TensorData s = read_npy(path("np_i8.npy"));
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.data<int64_t>()[0], -5);
}

TEST_F(TensorIo, ReadsTensorProtos) {
  onnx::TensorProto raw;
  raw.set_data_type(onnx::TensorProto::FLOAT);
  raw.add_dims(2);
  raw.add_dims(2);
  const std::vector<float> v = {1.f, -2.f, 3.5f, 4.f};
  raw.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), 16));
  write("raw.pb", raw.SerializeAsString());
  const TensorData a = read_tensor_file(path("raw.pb"));
  EXPECT_TRUE(a.same_values(TensorData::from_vector<float>(DType::Float, {2, 2}, v)));

  onnx::TensorProto typed;
  typed.set_data_type(onnx::TensorProto::INT64);
  typed.add_dims(3);
  for (int64_t x : {int64_t{7}, int64_t{-8}, int64_t{1} << 40}) typed.add_int64_data(x);
  write("i64.pb", typed.SerializeAsString());
  EXPECT_TRUE(read_tensor_proto(path("i64.pb")).same_values(
      TensorData::from_vector<int64_t>(DType::Int64, {3}, {7, -8, int64_t{1} << 40})));

  onnx::TensorProto i8;
  i8.set_data_type(onnx::TensorProto::INT8);
  i8.add_dims(2);
  i8.add_int32_data(-3);
  i8.add_int32_data(100);
  write("i8.pb", i8.SerializeAsString());
  EXPECT_TRUE(read_tensor_proto(path("i8.pb")).same_values(TensorData::from_vector<int8_t>(DType::Int8, {2}, {-3, 100})));

  onnx::TensorProto f;
  f.set_data_type(onnx::TensorProto::FLOAT);
  f.add_float_data(0.25f);  // scalar
  write("scalar.pb", f.SerializeAsString());
  const TensorData s = read_tensor_proto(path("scalar.pb"));
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.data<float>()[0], 0.25f);

  f.add_float_data(0.5f);  // two values for a scalar
  write("bad_count.pb", f.SerializeAsString());
  EXPECT_NE(expect_error([&] { read_tensor_proto(path("bad_count.pb")); }).find(path("bad_count.pb")), std::string::npos);
}

TEST_F(TensorIo, ErrorsNameTheFile) {
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  struct Case {
    const char* file;
    std::string bytes;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"truncated.npy", npy_bytes(f4, std::string(20, '\0')), "truncated"},
      {"fortran.npy", npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", std::string(24, '\0')),
       "Fortran"},
      {"magic.npy", "PK\x03\x04 this is a zip", "bad magic"},
      {"big.npy", npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "abcd"), "big-endian"},
      {"unicode.npy", npy_bytes("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", std::string(12, 'a')),
       "unsupported dtype"},
      {"header.npy", std::string("\x93NUMPY\x01\x00\xff\x00{'descr'", 17), "truncated .npy header"},
      {"noshape.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, }", ""), "shape"},
      {"trailing.npy", npy_bytes(f4, std::string(28, '\0')), "unexpected bytes"},
      {"notproto.pb", "\xff\xff\xff\xff garbage", "TensorProto"},
      {"empty.pb", "", "no data_type"},
      {"tensor.txt", "1 2 3", "unknown tensor file type"},
  };
  for (const Case& c : cases) {
    write(c.file, c.bytes);
    const std::string msg = expect_error([&] { read_tensor_file(path(c.file)); });
    EXPECT_TRUE(msg.starts_with(path(c.file) + ": ")) << msg;
    EXPECT_NE(msg.find(c.says), std::string::npos) << c.file << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_NE(expect_error([&] { read_npy(path("missing.npy")); }).find("missing.npy: cannot open"), std::string::npos);
  EXPECT_NE(expect_error([&] { write_npy(path("bf16.npy"), TensorData(DType::BFloat16, {2})); }).find("bf16.npy"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { write_npy(path("no/such/dir/x.npy"), TensorData(DType::Float, {2})); })
                .find("x.npy: cannot write"),
            std::string::npos);
}

}  // namespace
}  // namespace kiln
