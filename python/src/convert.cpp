// numpy/DLPack <-> TensorData. Inputs are viewed in place (ExecutionContext::set_input copies them once into
// the engine's memory); outputs are copied out, because the next run() reuses the engine's output buffers.
// (CUDA arrays go to ExecutionContext's device-memory calls directly: engine_py.cpp.)
#include "convert.h"

#include <cstring>
#include <memory>

#include "kiln/error.h"

namespace nb = nanobind;

namespace kiln::py {
namespace {

using Code = nb::dlpack::dtype_code;

}  // namespace

DType dtype_of(nb::dlpack::dtype t) {
  const auto code = static_cast<Code>(t.code);
  if (t.lanes != 1) throw Error("arrays with vector lanes are not supported");
  switch (code) {
    case Code::Bool:
      if (t.bits == 8) return DType::Bool;
      break;
    case Code::Float:
      if (t.bits == 16) return DType::Float16;
      if (t.bits == 32) return DType::Float;
      if (t.bits == 64) return DType::Double;
      break;
    case Code::Bfloat:
      if (t.bits == 16) return DType::BFloat16;
      break;
    case Code::Int:
      if (t.bits == 8) return DType::Int8;
      if (t.bits == 16) return DType::Int16;
      if (t.bits == 32) return DType::Int32;
      if (t.bits == 64) return DType::Int64;
      break;
    case Code::UInt:
      if (t.bits == 8) return DType::UInt8;
      if (t.bits == 16) return DType::UInt16;
      if (t.bits == 32) return DType::UInt32;
      if (t.bits == 64) return DType::UInt64;
      break;
    case Code::Complex:
      if (t.bits == 64) return DType::Complex64;
      if (t.bits == 128) return DType::Complex128;
      break;
    default:
      break;
  }
  throw Error("array element type (DLPack code " + std::to_string(t.code) + ", " + std::to_string(t.bits) +
              " bits) has no kiln dtype");
}

namespace {

nb::dlpack::dtype dlpack_of(DType t) {
  nb::dlpack::dtype d{};
  d.lanes = 1;
  d.bits = static_cast<uint8_t>(dtype_size(t) * 8);
  switch (t) {
    case DType::Bool:
      d.code = static_cast<uint8_t>(Code::Bool);
      break;
    case DType::Float16:
    case DType::Float:
    case DType::Double:
      d.code = static_cast<uint8_t>(Code::Float);
      break;
    case DType::Int8:
    case DType::Int16:
    case DType::Int32:
    case DType::Int64:
      d.code = static_cast<uint8_t>(Code::Int);
      break;
    case DType::UInt8:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
      d.code = static_cast<uint8_t>(Code::UInt);
      break;
    case DType::Complex64:
    case DType::Complex128:
      d.code = static_cast<uint8_t>(Code::Complex);
      break;
    default:
      throw Error(std::string("outputs of dtype ") + dtype_name(t) + " cannot become numpy arrays");
  }
  return d;
}

}  // namespace

TensorData view_of(const HostArray& array) {
  std::vector<int64_t> dims(array.ndim());
  for (size_t k = 0; k < array.ndim(); ++k) dims[k] = array.shape(k);
  return TensorData::view(dtype_of(array.dtype()), std::move(dims), const_cast<void*>(array.data()));
}

nb::object to_python(const TensorData& t) {
  if (dtype_is_container(t.dtype()))
    throw Error("sequence and optional values are not supported in Python yet");
  if (t.dtype() == DType::String) {
    nb::list out;
    for (const std::string& s : t.strings()) out.append(nb::str(s.data(), s.size()));
    return out;
  }
  // One owned copy per output, freed with the numpy array.
  auto owned =
      std::make_unique<TensorData>(t.dtype() == DType::BFloat16 ? convert_float(t, DType::Float) : t.clone());
  std::vector<size_t> shape(owned->dims().begin(), owned->dims().end());
  void* data = owned->raw();
  nb::capsule owner(owned.get(), [](void* p) noexcept { delete static_cast<TensorData*>(p); });
  const DType dtype = owned->dtype();
  owned.release();
  nb::ndarray<nb::numpy> array(data, shape.size(), shape.data(), owner, nullptr, dlpack_of(dtype));
  return array.cast();
}

std::string ort_type_name(DType t) {
  switch (t) {
    case DType::Float:
      return "tensor(float)";
    case DType::Double:
      return "tensor(double)";
    case DType::Float16:
      return "tensor(float16)";
    case DType::BFloat16:
      return "tensor(bfloat16)";
    case DType::Bool:
      return "tensor(bool)";
    case DType::String:
      return "tensor(string)";
    case DType::Int8:
      return "tensor(int8)";
    case DType::Int16:
      return "tensor(int16)";
    case DType::Int32:
      return "tensor(int32)";
    case DType::Int64:
      return "tensor(int64)";
    case DType::UInt8:
      return "tensor(uint8)";
    case DType::UInt16:
      return "tensor(uint16)";
    case DType::UInt32:
      return "tensor(uint32)";
    case DType::UInt64:
      return "tensor(uint64)";
    case DType::Complex64:
      return "tensor(complex64)";
    case DType::Complex128:
      return "tensor(complex128)";
    case DType::Sequence:
      return "seq";
    case DType::Optional:
      return "optional";
    default:
      return "tensor(undefined)";
  }
}

}  // namespace kiln::py
