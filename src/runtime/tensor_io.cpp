// Tensor files: numpy .npy (read and write) and ONNX TensorProto .pb (read).
//
// .npy layout: "\x93NUMPY", major, minor, header length (u16 in v1, u32 in v2/v3), then a Python dict literal
// such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces to a multiple of 64
// bytes and ended by '\n', then the raw elements.
#include "kiln/tensor_io.h"
#include "ir/file_util.h"

#include <unistd.h>

#include <bit>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <onnx/onnx_pb.h>
#include <optional>
#include <sstream>
#include <string_view>

#include "kiln/error.h"
#include "kiln/graph.h"

namespace kiln {
namespace {

// Elements are copied as they lie in the file; npy and ONNX raw_data are both little-endian.
static_assert(std::endian::native == std::endian::little, "tensor files are read without byte swapping");

constexpr char kNpyMagic[] = "\x93NUMPY";
constexpr size_t kNpyMagicLen = 6;

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a tensor file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": cannot open the file: " + ec.message());
  check_memory(size, path + ": reading the file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open the file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(path + ": cannot read the file");
  return ss.str();
}

struct NpyType {
  char kind;  // 'f', 'i', 'u', 'b', 'c'
  int bytes;
  DType dtype;
};
constexpr NpyType kNpyTypes[] = {
    {'f', 2, DType::Float16}, {'f', 4, DType::Float},      {'f', 8, DType::Double},
    {'c', 8, DType::Complex64}, {'c', 16, DType::Complex128}, {'i', 1, DType::Int8},
    {'i', 2, DType::Int16},   {'i', 4, DType::Int32},      {'i', 8, DType::Int64},
    {'u', 1, DType::UInt8},   {'u', 2, DType::UInt16},     {'u', 4, DType::UInt32},
    {'u', 8, DType::UInt64},  {'b', 1, DType::Bool},
};

DType npy_dtype(const std::string& path, const std::string& descr) {
  auto fail = [&](const std::string& why) {
    return Error(path + ": unsupported dtype '" + descr + "'" + why +
                 " (supported: f2 f4 f8 c8 c16 i1 i2 i4 i8 u1 u2 u4 u8 b1)");
  };
  if (descr.size() < 2) throw fail("");
  size_t k = 0;
  char order = '=';
  if (std::strchr("<>|=", descr[0])) order = descr[k++];
  const char kind = descr[k++];
  int bytes = 0;
  for (; k < descr.size(); ++k) {
    if (!std::isdigit(static_cast<unsigned char>(descr[k])) || bytes > 64) throw fail("");
    bytes = bytes * 10 + (descr[k] - '0');
  }
  for (const NpyType& t : kNpyTypes) {
    if (t.kind != kind || t.bytes != bytes) continue;
    if (order == '>' && bytes > 1)
      throw Error(path + ": big-endian data ('" + descr + "') is not supported; save it with arr.astype('<" +
                  descr.substr(1) + "')");
    return t.dtype;
  }
  throw fail("");
}

std::string npy_descr(const std::string& path, DType dtype) {
  for (const NpyType& t : kNpyTypes)
    if (t.dtype == dtype) return std::string(t.bytes == 1 ? "|" : "<") + t.kind + std::to_string(t.bytes);
  throw Error(path + ": cannot write " + dtype_name(dtype) + " tensors as .npy (numpy has no such dtype)");
}

// The value of `key` in the header dict: the text from after its ':' to the end of the header; nullopt if absent.
std::optional<std::string_view> dict_value(std::string_view header, std::string_view key) {
  for (char q : {'\'', '"'}) {
    const std::string quoted = q + std::string(key) + q;
    size_t at = header.find(quoted);
    if (at == std::string_view::npos) continue;
    at = header.find_first_not_of(" \t", at + quoted.size());
    if (at == std::string_view::npos || header[at] != ':') return std::nullopt;
    at = header.find_first_not_of(" \t", at + 1);
    return at == std::string_view::npos ? std::string_view() : header.substr(at);
  }
  return std::nullopt;
}

struct NpyHeader {
  DType dtype;
  std::vector<int64_t> dims;
  size_t data_offset;
};

NpyHeader parse_npy_header(const std::string& path, const std::string& bytes) {
  if (bytes.size() < kNpyMagicLen + 2 || bytes.compare(0, kNpyMagicLen, kNpyMagic, kNpyMagicLen) != 0)
    throw Error(path + ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  if (major < 1 || major > 3) throw Error(path + ": unsupported .npy format version " + std::to_string(major));
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + len_bytes) throw Error(path + ": truncated .npy header");
  size_t header_len = 0;
  for (size_t k = 0; k < len_bytes; ++k) header_len |= size_t{static_cast<unsigned char>(bytes[8 + k])} << (8 * k);
  const size_t start = 8 + len_bytes;
  if (bytes.size() - start < header_len) throw Error(path + ": truncated .npy header");
  const std::string_view header(bytes.data() + start, header_len);
  auto bad = [&](const std::string& what) { return Error(path + ": malformed .npy header (" + what + ")"); };

  NpyHeader h{DType::Undefined, {}, start + header_len};
  auto descr = dict_value(header, "descr");
  if (!descr || descr->empty()) throw bad("no 'descr'");
  if (descr->front() == '[') throw Error(path + ": structured dtypes are not supported");
  const char q = descr->front();
  const size_t end = descr->find(q, 1);
  if ((q != '\'' && q != '"') || end == std::string_view::npos) throw bad("'descr' is not a string");
  h.dtype = npy_dtype(path, std::string(descr->substr(1, end - 1)));

  auto fortran = dict_value(header, "fortran_order");
  if (!fortran) throw bad("no 'fortran_order'");
  if (fortran->starts_with("True"))
    throw Error(path + ": Fortran-order arrays are not supported; save np.ascontiguousarray(arr)");
  if (!fortran->starts_with("False")) throw bad("'fortran_order' is not True or False");

  auto shape = dict_value(header, "shape");
  if (!shape || shape->empty() || shape->front() != '(') throw bad("no 'shape' tuple");
  const size_t close = shape->find(')');
  if (close == std::string_view::npos) throw bad("unterminated 'shape'");
  std::string_view items = shape->substr(1, close - 1);
  while (!items.empty()) {
    const size_t b = items.find_first_not_of(" ,");
    if (b == std::string_view::npos) break;
    items.remove_prefix(b);
    int64_t d = 0;
    size_t n = 0;
    for (; n < items.size() && std::isdigit(static_cast<unsigned char>(items[n])); ++n) {
      if (d > (int64_t{1} << 50)) throw bad("dimension too large");
      d = d * 10 + (items[n] - '0');
    }
    if (n == 0) throw bad("'shape' holds a non-integer");
    if (n < items.size() && items[n] == 'L') ++n;  // Python 2 longs
    h.dims.push_back(d);
    items.remove_prefix(n);
  }
  return h;
}


template <typename Dst, typename Field>
void copy_field(const Field& field, TensorData& out) {
  Dst* d = static_cast<Dst*>(out.raw());
  for (int i = 0; i < field.size(); ++i) d[i] = static_cast<Dst>(field.Get(i));
}

}  // namespace

TensorData read_npy(const std::string& path) {
  const std::string bytes = read_file(path);
  const NpyHeader h = parse_npy_header(path, bytes);
  // The file's length is checked against the header's claim before anything is allocated: a 144-byte file
  // claiming 10^9 elements is an error, not a 4 GB allocation.
  const auto want = checked_nbytes(h.dtype, h.dims);
  if (!want) throw Error(path + ": .npy shape " + describe_tensor(h.dtype, h.dims) + " overflows 64 bits");
  const size_t have = bytes.size() - h.data_offset;
  if (have < *want)
    throw Error(path + ": truncated .npy data: " + std::to_string(*want) + " bytes expected for " +
                describe_tensor(h.dtype, h.dims) + ", " + std::to_string(have) + " found");
  if (have > *want) throw Error(path + ": " + std::to_string(have - *want) + " unexpected bytes after the .npy data");
  TensorData t(h.dtype, h.dims);
  if (t.nbytes()) std::memcpy(t.raw(), bytes.data() + h.data_offset, t.nbytes());
  return t;
}

void write_npy(const std::string& path, const TensorData& tensor) {
  std::string shape = "(";
  for (int64_t d : tensor.dims()) shape.append(std::to_string(d)).append(", ");
  if (tensor.rank() >= 1) shape.resize(shape.size() - (tensor.rank() == 1 ? 1 : 2));  // "(5,)", "(2, 3)"
  shape += ")";
  std::string dict = "{'descr': '" + npy_descr(path, tensor.dtype()) + "', 'fortran_order': False, 'shape': " +
                     shape + ", }";
  // numpy pads so the data starts 64-byte aligned; format 2.0 only when the header outgrows a u16 length.
  const bool v2 = dict.size() + 1 + 10 + 64 > 0xffff;
  const size_t prefix = v2 ? 12 : 10;
  dict.append(63 - (prefix + dict.size()) % 64, ' ');
  dict += '\n';
  std::string header(kNpyMagic, kNpyMagicLen);
  header += static_cast<char>(v2 ? 2 : 1);
  header += '\0';
  for (size_t k = 0; k < (v2 ? 4u : 2u); ++k) header += static_cast<char>((dict.size() >> (8 * k)) & 0xff);
  write_file_atomically(path, header + dict, tensor.raw(), tensor.nbytes(), ".npy file");
}

TensorData read_tensor_proto(const std::string& path) {
  const std::string bytes = read_file(path);
  onnx::TensorProto tp;
  if (!tp.ParseFromString(bytes)) throw Error(path + ": not a serialized onnx TensorProto");
  const int32_t type = tp.data_type();
  if (type <= 0 || type > static_cast<int32_t>(DType::BFloat16))
    throw Error(path + ": " + (type == 0 ? std::string("not an onnx TensorProto (no data_type)")
                                         : "unsupported TensorProto data_type " + std::to_string(type)));
  const DType dtype = static_cast<DType>(type);
  if (tp.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
    throw Error(path + ": TensorProto with external data is not supported");
  std::vector<int64_t> dims(tp.dims().begin(), tp.dims().end());
  for (int64_t d : dims)
    if (d < 0) throw Error(path + ": TensorProto has negative dimension " + std::to_string(d));
  const auto numel = checked_numel(dims);
  const auto nbytes = checked_nbytes(dtype, dims);
  if (!numel || !nbytes) throw Error(path + ": TensorProto shape " + describe_tensor(dtype, dims) + " overflows 64 bits");
  auto mismatch = [&](const char* field, size_t got, size_t want) {
    return Error(path + ": TensorProto " + field + " holds " + std::to_string(got) + ", " + std::to_string(want) +
                 " expected for " + describe_tensor(dtype, dims));
  };
  // Every count is compared with the file's contents before the tensor is allocated.
  if (tp.has_raw_data()) {
    if (dtype == DType::String) throw Error(path + ": string TensorProto with raw_data");
    if (tp.raw_data().size() != *nbytes) throw mismatch("raw_data bytes", tp.raw_data().size(), *nbytes);
    TensorData t(dtype, dims);
    if (t.nbytes()) std::memcpy(t.raw(), tp.raw_data().data(), t.nbytes());
    return t;
  }
  const bool complex = dtype == DType::Complex64 || dtype == DType::Complex128;
  const size_t want = static_cast<size_t>(*numel) * (complex ? 2 : 1);
  auto check = [&](const char* field, int size) {
    if (static_cast<size_t>(size) != want) throw mismatch(field, static_cast<size_t>(size), want);
  };
  auto typed_count = [&]() -> std::pair<const char*, int> {
    switch (dtype) {
      case DType::Float: case DType::Complex64: return {"float_data", tp.float_data_size()};
      case DType::Double: case DType::Complex128: return {"double_data", tp.double_data_size()};
      case DType::Int64: return {"int64_data", tp.int64_data_size()};
      case DType::UInt32: case DType::UInt64: return {"uint64_data", tp.uint64_data_size()};
      case DType::String: return {"string_data", tp.string_data_size()};
      default: return {"int32_data", tp.int32_data_size()};
    }
  }();
  check(typed_count.first, typed_count.second);
  TensorData t(dtype, dims);
  switch (dtype) {
    case DType::Float: case DType::Complex64: check("float_data", tp.float_data_size()); copy_field<float>(tp.float_data(), t); break;
    case DType::Double: case DType::Complex128: check("double_data", tp.double_data_size()); copy_field<double>(tp.double_data(), t); break;
    case DType::Int64: check("int64_data", tp.int64_data_size()); copy_field<int64_t>(tp.int64_data(), t); break;
    case DType::UInt32: check("uint64_data", tp.uint64_data_size()); copy_field<uint32_t>(tp.uint64_data(), t); break;
    case DType::UInt64: check("uint64_data", tp.uint64_data_size()); copy_field<uint64_t>(tp.uint64_data(), t); break;
    case DType::Int32: check("int32_data", tp.int32_data_size()); copy_field<int32_t>(tp.int32_data(), t); break;
    case DType::Int16: check("int32_data", tp.int32_data_size()); copy_field<int16_t>(tp.int32_data(), t); break;
    case DType::Int8: check("int32_data", tp.int32_data_size()); copy_field<int8_t>(tp.int32_data(), t); break;
    case DType::UInt8: check("int32_data", tp.int32_data_size()); copy_field<uint8_t>(tp.int32_data(), t); break;
    // float16/bfloat16 travel as bit patterns in the low 16 bits of int32_data.
    case DType::UInt16: case DType::Float16: case DType::BFloat16:
      check("int32_data", tp.int32_data_size());
      copy_field<uint16_t>(tp.int32_data(), t);
      break;
    case DType::Bool:
      check("int32_data", tp.int32_data_size());
      for (int i = 0; i < tp.int32_data_size(); ++i) t.data<uint8_t>()[i] = tp.int32_data(i) != 0;
      break;
    case DType::String:
      check("string_data", tp.string_data_size());
      for (int i = 0; i < tp.string_data_size(); ++i) t.strings()[static_cast<size_t>(i)] = tp.string_data(i);
      break;
    case DType::Undefined: case DType::Sequence: case DType::Optional: break;  // not TensorProto types
  }
  return t;
}

TensorData read_tensor_file(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".npy") return read_npy(path);
  if (ext == ".pb") return read_tensor_proto(path);
  throw Error(path + ": unknown tensor file type '" + ext + "' (expected .npy or .pb)");
}

}  // namespace kiln
