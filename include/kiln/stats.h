// kiln — what `kiln inspect` reports about a graph.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "kiln/graph.h"

namespace kiln {

// Number of tensors whose shape is not fully known (rank unknown, or a dim neither static nor symbolic).
size_t count_unknown_shapes(const Graph& graph);

struct GraphStats {
  size_t nodes = 0;
  std::map<std::string, size_t> op_histogram;  // "Conv", "com.example.MyOp"
  uint64_t params = 0;       // elements of floating-point constants read by nodes
  uint64_t param_bytes = 0;  // bytes of every constant read by nodes
  uint64_t macs = 0;         // multiply-accumulates of Conv, ConvTranspose, Gemm, MatMul with known shapes
  size_t macs_unknown_nodes = 0;  // such nodes whose shapes were not known (their MACs are missing)
  size_t tensors = 0;
  size_t unknown_shapes = 0;
};

GraphStats compute_stats(const Graph& graph);

}  // namespace kiln
