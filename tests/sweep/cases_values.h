// kiln_backend_sweep: constant tensors with chosen values (NaN, infinities, ties, exact rounding ties), for
// the generators whose ops random values would not reach.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/error.h"
#include "sweep.h"

namespace kiln::sweep {

// A tensor of `dtype` holding `values` (converted as a C++ cast does; float16/bfloat16 round to nearest).
inline TensorData tensor_of(DType dtype, std::vector<int64_t> dims, const std::vector<double>& values) {
  TensorData t(dtype, std::move(dims));
  if (static_cast<size_t>(t.numel()) != values.size()) throw Error("tensor_of: values do not fill the shape");
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    switch (dtype) {
      case DType::Float:
        t.data<float>()[i] = static_cast<float>(v);
        break;
      case DType::Float16:
        t.data<uint16_t>()[i] = float_to_half(static_cast<float>(v));
        break;
      case DType::BFloat16:
        t.data<uint16_t>()[i] = float_to_bfloat16(static_cast<float>(v));
        break;
      case DType::Int32:
        t.data<int32_t>()[i] = static_cast<int32_t>(v);
        break;
      case DType::Int64:
        t.data<int64_t>()[i] = static_cast<int64_t>(v);
        break;
      case DType::Int8:
        t.data<int8_t>()[i] = static_cast<int8_t>(v);
        break;
      case DType::UInt8:
      case DType::Bool:
        t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
        break;
      default:
        throw Error(std::string("tensor_of: no values for ") + dtype_name(dtype));
    }
  }
  return t;
}

// n values cycling through `pattern`.
inline std::vector<double> cycle(const std::vector<double>& pattern, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = pattern[(i * 7 + i / pattern.size()) % pattern.size()];
  return v;
}

}  // namespace kiln::sweep
