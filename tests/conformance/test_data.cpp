// kiln_conformance: reading the ONNX node tests' files (test_data.h). Moved out of conformance.cpp unchanged.
#include "test_data.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <type_traits>

namespace kiln_conformance {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string type_name(int elem_type) {
  if (elem_type >= 0 && elem_type <= static_cast<int>(kiln::DType::BFloat16))
    return kiln::dtype_name(static_cast<kiln::DType>(elem_type));
  if (onnx::TensorProto_DataType_IsValid(elem_type))
    return lower(onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(elem_type)));
  return "data type " + std::to_string(elem_type);
}

bool read_file(const fs::path& p, std::string& out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

kiln::TensorData tensor_from_proto(const onnx::TensorProto& tp, int declared) {
  int dt = tp.data_type();
  if (dt == onnx::TensorProto::UINT16 && declared == onnx::TensorProto::BFLOAT16) dt = onnx::TensorProto::BFLOAT16;
  if (dt <= 0 || dt > static_cast<int>(kiln::DType::BFloat16))
    throw Unrepresentable("tensor '" + tp.name() + "' has type " + type_name(dt) + ", which kiln does not support");
  if (tp.data_location() == onnx::TensorProto::EXTERNAL)
    throw std::runtime_error("tensor '" + tp.name() + "' uses external data (not handled by the runner)");
  const auto dtype = static_cast<kiln::DType>(dt);
  std::vector<int64_t> dims(tp.dims().begin(), tp.dims().end());
  kiln::TensorData t(dtype, dims);
  const int64_t n = t.numel();
  auto size_error = [&](const char* field, int64_t have, int64_t want) {
    return std::runtime_error("tensor '" + tp.name() + "': " + field + " has " + std::to_string(have) +
                              " entries, expected " + std::to_string(want));
  };
  if (dtype == kiln::DType::String) {
    if (tp.string_data_size() != n) throw size_error("string_data", tp.string_data_size(), n);
    for (int64_t i = 0; i < n; ++i) t.strings()[static_cast<size_t>(i)] = tp.string_data(static_cast<int>(i));
    return t;
  }
  if (!tp.raw_data().empty() || n == 0) {
    if (tp.raw_data().size() != t.nbytes())
      throw size_error("raw_data (bytes)", static_cast<int64_t>(tp.raw_data().size()),
                       static_cast<int64_t>(t.nbytes()));
    if (n) std::memcpy(t.raw(), tp.raw_data().data(), t.nbytes());
    return t;
  }
  auto fill_from_int32 = [&](auto* dst) {
    if (tp.int32_data_size() != n) throw size_error("int32_data", tp.int32_data_size(), n);
    using T = std::remove_pointer_t<decltype(dst)>;
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(tp.int32_data(static_cast<int>(i)));
  };
  switch (dtype) {
    case kiln::DType::Float:
    case kiln::DType::Complex64: {
      const int64_t want = dtype == kiln::DType::Float ? n : 2 * n;
      if (tp.float_data_size() != want) throw size_error("float_data", tp.float_data_size(), want);
      std::copy(tp.float_data().begin(), tp.float_data().end(), t.data<float>());
      break;
    }
    case kiln::DType::Double:
    case kiln::DType::Complex128: {
      const int64_t want = dtype == kiln::DType::Double ? n : 2 * n;
      if (tp.double_data_size() != want) throw size_error("double_data", tp.double_data_size(), want);
      std::copy(tp.double_data().begin(), tp.double_data().end(), t.data<double>());
      break;
    }
    case kiln::DType::Int32: fill_from_int32(t.data<int32_t>()); break;
    case kiln::DType::Int16: fill_from_int32(t.data<int16_t>()); break;
    case kiln::DType::Int8: fill_from_int32(t.data<int8_t>()); break;
    case kiln::DType::UInt16:
    case kiln::DType::Float16:
    case kiln::DType::BFloat16: fill_from_int32(t.data<uint16_t>()); break;
    case kiln::DType::UInt8:
    case kiln::DType::Bool: fill_from_int32(t.data<uint8_t>()); break;
    case kiln::DType::Int64:
      if (tp.int64_data_size() != n) throw size_error("int64_data", tp.int64_data_size(), n);
      std::copy(tp.int64_data().begin(), tp.int64_data().end(), t.data<int64_t>());
      break;
    case kiln::DType::UInt32:
      if (tp.uint64_data_size() != n) throw size_error("uint64_data", tp.uint64_data_size(), n);
      for (int64_t i = 0; i < n; ++i) t.data<uint32_t>()[i] = static_cast<uint32_t>(tp.uint64_data(static_cast<int>(i)));
      break;
    case kiln::DType::UInt64:
      if (tp.uint64_data_size() != n) throw size_error("uint64_data", tp.uint64_data_size(), n);
      std::copy(tp.uint64_data().begin(), tp.uint64_data().end(), t.data<uint64_t>());
      break;
    default: throw Unrepresentable("tensor '" + tp.name() + "' has type " + type_name(dt));
  }
  return t;
}

namespace {
kiln::DType declared_dtype(int declared) {
  return declared > 0 && declared <= static_cast<int>(kiln::DType::BFloat16) ? static_cast<kiln::DType>(declared)
                                                                            : kiln::DType::Undefined;
}

kiln::TensorData optional_from_proto(const onnx::OptionalProto& op, int declared);

kiln::TensorData sequence_from_proto(const onnx::SequenceProto& sp, int declared) {
  std::vector<kiln::TensorData> items;
  kiln::DType dtype = declared_dtype(declared);
  switch (sp.elem_type()) {
    case onnx::SequenceProto::TENSOR:
    case onnx::SequenceProto::UNDEFINED:
      for (const auto& tp : sp.tensor_values()) items.push_back(tensor_from_proto(tp, declared));
      break;
    case onnx::SequenceProto::SEQUENCE:
      dtype = kiln::DType::Sequence;
      for (const auto& s : sp.sequence_values()) items.push_back(sequence_from_proto(s, declared));
      break;
    case onnx::SequenceProto::OPTIONAL:
      dtype = kiln::DType::Optional;
      for (const auto& o : sp.optional_values()) items.push_back(optional_from_proto(o, declared));
      break;
    default: throw Unrepresentable("sequence '" + sp.name() + "' holds maps or sparse tensors");
  }
  if (!items.empty()) dtype = items[0].dtype();
  return kiln::TensorData::sequence(dtype, std::move(items));
}

kiln::TensorData optional_from_proto(const onnx::OptionalProto& op, int declared) {
  switch (op.elem_type()) {
    case onnx::OptionalProto::TENSOR:
      if (!op.has_tensor_value()) return kiln::TensorData::optional(declared_dtype(declared), std::nullopt);
      {
        kiln::TensorData t = tensor_from_proto(op.tensor_value(), declared);
        return kiln::TensorData::optional(t.dtype(), t);
      }
    case onnx::OptionalProto::SEQUENCE:
      if (!op.has_sequence_value()) return kiln::TensorData::optional(kiln::DType::Sequence, std::nullopt);
      return kiln::TensorData::optional(kiln::DType::Sequence, sequence_from_proto(op.sequence_value(), declared));
    case onnx::OptionalProto::UNDEFINED: return kiln::TensorData::optional(kiln::DType::Undefined, std::nullopt);
    default: throw Unrepresentable("optional '" + op.name() + "' holds a map, sparse tensor or optional");
  }
}

template <class Proto>
Proto parse_pb(const fs::path& p, const char* what) {
  std::string bytes;
  Proto proto;
  if (!read_file(p, bytes)) throw std::runtime_error("cannot read " + p.string());
  if (!proto.ParseFromString(bytes)) throw std::runtime_error("cannot parse " + p.string() + " as a " + what);
  return proto;
}
}  // namespace

NamedTensor load_pb(const fs::path& p, int declared, const std::string& kind) {
  if (kind == "sequence") {
    const auto sp = parse_pb<onnx::SequenceProto>(p, "SequenceProto");
    return {sp.name(), sequence_from_proto(sp, declared)};
  }
  if (kind == "optional") {
    const auto op = parse_pb<onnx::OptionalProto>(p, "OptionalProto");
    return {op.name(), optional_from_proto(op, declared)};
  }
  const auto tp = parse_pb<onnx::TensorProto>(p, "TensorProto");
  return {tp.name(), tensor_from_proto(tp, declared)};
}

std::vector<fs::path> numbered(const fs::path& dir, const std::string& stem) {
  std::vector<fs::path> out;
  for (int k = 0;; ++k) {
    fs::path p = dir / (stem + "_" + std::to_string(k) + ".pb");
    if (!fs::exists(p)) break;
    out.push_back(p);
  }
  return out;
}

}  // namespace kiln_conformance
