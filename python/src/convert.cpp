// numpy/DLPack <-> TensorData. Inputs are viewed in place (ExecutionContext::set_input copies them once into
// the engine's memory); outputs are copied out, because the next run() reuses the engine's output buffers.
// (CUDA arrays go to ExecutionContext's device-memory calls directly: engine_py.cpp.)
#include "convert.h"

#include <cstring>
#include <memory>
#include <utility>

#include "kiln/error.h"

namespace nb = nanobind;

namespace kiln::py {
namespace {

using Code = nb::dlpack::dtype_code;

// kiln's dtypes and their DLPack type codes, one table for both directions (the bit width is the dtype's
// size).
constexpr std::pair<DType, Code> kDLPackCodes[] = {
    {DType::Bool, Code::Bool},    {DType::Float16, Code::Float},     {DType::Float, Code::Float},
    {DType::Double, Code::Float}, {DType::BFloat16, Code::Bfloat},   {DType::Int8, Code::Int},
    {DType::Int16, Code::Int},    {DType::Int32, Code::Int},         {DType::Int64, Code::Int},
    {DType::UInt8, Code::UInt},   {DType::UInt16, Code::UInt},       {DType::UInt32, Code::UInt},
    {DType::UInt64, Code::UInt},  {DType::Complex64, Code::Complex}, {DType::Complex128, Code::Complex},
};

}  // namespace

DType dtype_of(nb::dlpack::dtype t) {
  if (t.lanes != 1) throw Error("arrays with vector lanes are not supported");
  for (const auto& [dtype, code] : kDLPackCodes)
    if (static_cast<uint8_t>(code) == t.code && dtype_size(dtype) * 8 == t.bits) return dtype;
  throw Error("array element type (DLPack code " + std::to_string(t.code) + ", " + std::to_string(t.bits) +
              " bits) has no kiln dtype");
}

namespace {

// Only numpy's dtypes reach here: to_python turns bfloat16 into float32 first.
nb::dlpack::dtype dlpack_of(DType t) {
  for (const auto& [dtype, code] : kDLPackCodes)
    if (dtype == t && t != DType::BFloat16) {
      nb::dlpack::dtype d{};
      d.lanes = 1;
      d.bits = static_cast<uint8_t>(dtype_size(t) * 8);
      d.code = static_cast<uint8_t>(code);
      return d;
    }
  throw Error(std::string("outputs of dtype ") + dtype_name(t) + " cannot become numpy arrays");
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
