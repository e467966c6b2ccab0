// kiln — graph passes a user may call directly (the builder runs them too).
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "kiln/graph.h"

namespace kiln {

struct PropagateOptions {
  // Fail on an op with no registered schema (the default: such a graph cannot be optimized).
  // When false the op's outputs are left unknown and reported.
  bool allow_unknown_ops = false;
  // Largest tensor (bytes) computed at build time. Folding never creates a constant larger than this.
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
};

// Infers every tensor's dtype and shape, evaluating constant subgraphs (Shape→Gather→Concat→Reshape
// chains, padded Slice arithmetic, ...) with the reference kernels on the way. The graph's structure is
// not changed. Throws kiln::Error naming the file, node and op on inconsistent input.
PropagateReport infer_shapes(Graph& graph, const PropagateOptions& options = {});

// infer_shapes, then replaces every node whose outputs are all known at build time by Constant tensors
// (dtypes kept exactly), and removes what no longer reaches an output.
PropagateReport fold_constants(Graph& graph, const PropagateOptions& options = {});

// Number of tensors whose shape is not fully known (rank unknown, or a dim neither static nor symbolic).
size_t count_unknown_shapes(const Graph& graph);

// Folds a zero, constant-mode Pad on spatial axes into the Conv that is its only consumer (explicit pads
// only) and bypasses the Pad. Every constant is validated; anything else is left alone. Returns the count.
// The Conv records the original node names in its "kiln_fused" strings attribute.
size_t fuse_pad_into_conv(Graph& graph);

// Replaces Conv → Relu/Elu/Sigmoid (the Conv output read only by the activation) by one kiln.FusedConv node
// (domain "kiln": Conv attributes plus kiln_post_op, kiln_post_alpha, kiln_fused). Returns the count.
size_t fuse_conv_activation(Graph& graph);

// Collapses PyTorch's exported GroupNorm subgraph — Reshape[0,G,-1] → InstanceNormalization(scale 1, bias 0)
// → Reshape(shape of X) → Mul(γ) → Add(β), and a following Elu/Relu — into one kiln.GroupNorm node (domain
// "kiln"; inputs X, γ[C], β[C]; attributes num_groups, epsilon, activation, alpha). Run after fold_constants.
// Matches whose constants don't fit are left alone and, if `rejected` is given, listed with the reason.
// With GroupNormTarget::Plugin the layer is a GroupNormalizationPlugin node instead (TensorRT's contract: eps,
// num_groups, plugin_version "1", plugin_namespace ""), and a following activation stays a separate node.
enum class GroupNormTarget { Native, Plugin };
size_t fuse_groupnorm(Graph& graph, std::vector<NotFolded>* rejected = nullptr,
                      GroupNormTarget target = GroupNormTarget::Native);

// Replaces maximal chains (>= 2 nodes) of fp32 element-wise nodes — Relu, Elu, Sigmoid, Tanh, LeakyRelu, Neg,
// Abs, Sqrt, Exp, Add, Sub, Mul, Div — whose link tensors have one use and are not graph outputs by one
// kiln.ElementwiseChain node (domain "kiln"; inputs x and the binary steps' other operands, each a scalar
// constant, a per-channel [C,1,..,1] constant or a tensor of x's shape; attributes steps, operand, data_first,
// alpha, kiln_fused). The output keeps x's shape. Returns the number of chains.
size_t fuse_elementwise_chains(Graph& graph);

// Converts a float32 graph to run in `to` (Float16 or BFloat16): every fp32 activation and weight changes type,
// except operands ONNX types as float whatever the data (Resize roi/scales); the graph's fp32 inputs and
// outputs keep their type and name behind inserted Cast nodes. Returns the number of tensors converted.
size_t lower_float_precision(Graph& graph, DType to);

}  // namespace kiln
