// kiln_backend_sweep: small helpers the case generators share.
#pragma once
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "sweep.h"

namespace kiln::sweep {

inline Attributes attrs(std::initializer_list<std::pair<std::string, AttributeValue>> items) {
  Attributes a;
  for (const auto& [name, value] : items) a.set(name, value);
  return a;
}

inline Case make_case(std::string label, std::vector<Operand> inputs, Attributes a = {}, int64_t opset = 17) {
  Case c;
  c.label = std::move(label);
  c.inputs = std::move(inputs);
  c.attrs = std::move(a);
  c.opset = opset;
  return c;
}

// The float dtypes every compute kernel is tried with, and those plus integers for data movement.
inline const std::vector<DType>& float_dtypes() {
  static const std::vector<DType> v{DType::Float, DType::Float16, DType::BFloat16};
  return v;
}
inline const std::vector<DType>& movement_dtypes() {
  static const std::vector<DType> v{DType::Float, DType::Float16, DType::BFloat16, DType::Int32,
                                    DType::Int64};
  return v;
}

inline int64_t product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace kiln::sweep
