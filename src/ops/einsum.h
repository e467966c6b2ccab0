// kiln — Einsum's equation, parsed in one place for the reference kernel (einsum.cpp) and device kernels.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::ops {

// Label ids: ASCII letters, then kEinsumEllipsis + position within the ellipsis dims.
inline constexpr int kEinsumEllipsis = 128;

struct EinsumEquation {
  std::vector<std::vector<int>> operands;  // one label per operand dim
  std::vector<int> output;
  int ellipsis_rank = 0;
};

// Parses `equation` (spaces ignored) for operands of these ranks; throws kiln::Error saying what is wrong.
EinsumEquation parse_einsum(const std::string& equation, const std::vector<int64_t>& ranks);

}  // namespace kiln::ops
