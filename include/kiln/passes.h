// kiln — graph passes a user calls directly: inference, folding, and the surgery helpers whose result any ONNX
// tool reads (the builder runs them too). Rewrites into kiln-internal ops live in src/passes/rewrites.h.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "kiln/graph.h"
#include "kiln/stats.h"  // count_unknown_shapes

namespace kiln {

struct PropagateOptions {
  // Fail on an op with no registered schema (the default: such a graph cannot be optimized).
  // When false the op's outputs are left unknown and reported.
  bool allow_unknown_ops = false;
  // Largest tensor (bytes) computed at build time. A value used only as a weight operand (Conv/Gemm/MatMul
  // weights and bias, which kernels prepack) may reach 16 times this: otherwise it would be recomputed on every
  // run into an activation buffer of the same size.
  size_t max_folded_bytes = size_t{64} << 20;
};

struct NotFolded {
  std::string node;    // Node::label()
  std::string reason;  // one line
};

struct PropagateReport {
  size_t nodes_visited = 0;
  size_t values_computed = 0;      // tensors whose value became known at build time
  size_t unknown_shapes = 0;       // tensors whose rank or some dimension is still unknown
  size_t folded_nodes = 0;         // fold_constants only
  std::vector<NotFolded> not_folded;  // nodes whose inputs were all known but were not folded
  std::vector<std::string> unknown_ops;
  // Intermediate tensors whose declared shape (the file's value_info) contradicted the computed one: the
  // computed shape wins, as in ONNX Runtime (exporters leave stale value_info when a dim is made dynamic).
  // A graph output's declared shape is a contract and stays an error.
  std::vector<std::string> overridden_value_info;
};

// Infers every tensor's dtype and shape, evaluating constant subgraphs (Shape→Gather→Concat→Reshape
// chains, padded Slice arithmetic, ...) with the reference kernels on the way. The graph's structure is
// not changed. Throws kiln::Error naming the file, node and op on inconsistent input.
PropagateReport infer_shapes(Graph& graph, const PropagateOptions& options = {});

// infer_shapes, then replaces every node whose outputs are all known at build time by Constant tensors
// (dtypes kept exactly), and removes what no longer reaches an output.
PropagateReport fold_constants(Graph& graph, const PropagateOptions& options = {});

// Folds a zero, constant-mode Pad on spatial axes into the Conv that is its only consumer (explicit pads
// only) and bypasses the Pad. Every constant is validated; anything else is left alone. Returns the count.
// The Conv records the original node names in its "kiln_fused" strings attribute.
size_t fuse_pad_into_conv(Graph& graph);

// Collapses PyTorch's exported GroupNorm subgraph — Reshape[0,G,-1] → InstanceNormalization(scale 1, bias 0)
// → Reshape(shape of X) → Mul(γ) → Add(β), and a following Elu/Relu — into one kiln.GroupNorm node (domain
// "kiln"; inputs X, γ[C], β[C]; attributes num_groups, epsilon, activation, alpha). Run after fold_constants.
// Matches whose constants don't fit are left alone and, if `rejected` is given, listed with the reason.
// With GroupNormTarget::Plugin the layer is a GroupNormalizationPlugin node instead (TensorRT's contract: eps,
// num_groups, plugin_version "1", plugin_namespace ""), and a following activation stays a separate node.
enum class GroupNormTarget { Native, Plugin };
size_t fuse_groupnorm(Graph& graph, std::vector<NotFolded>* rejected = nullptr,
                      GroupNormTarget target = GroupNormTarget::Native);

}  // namespace kiln
