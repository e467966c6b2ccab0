// kiln — evaluating a subgraph (If branches, Loop and Scan bodies) with the reference kernels, and inferring
// its output types. The control-flow ops are built on these two calls.
//
// A subgraph's inputs are bound by position: its declared inputs first, then the captured outer-scope values
// (internal_ops::kCaptured). A subgraph that still reads an enclosing scope by name was not captured; running
// it fails naming the value (shape inference resolves such names against the enclosing graph's tensors).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "ops/op.h"

namespace kiln::ops {

// How many trailing inputs of a control-flow node are captured outer-scope values (0 before capture).
// Fails when the attribute is negative or larger than the node's input count.
size_t captured_count(const InferContext& ctx);
size_t captured_count(const KernelContext& ctx);

// Runs `g` on `inputs` (one per g.inputs, in order) and returns its outputs' values. Nodes run in their
// stored order (ONNX requires subgraphs to be topologically sorted). Errors fail through ctx, naming the
// subgraph.
std::vector<TensorData> run_graph(const KernelContext& ctx, const Graph& g,
                                  const std::vector<TensorData>& inputs);

// Infers `g`'s outputs from what is known of its inputs (values included: constant parts fold). Outer-scope
// names that were not captured take the dtype and shape of the enclosing graph's tensor of that name.
std::vector<OutputInfo> infer_graph(const InferContext& ctx, const Graph& g,
                                    const std::vector<InputInfo>& inputs);

// The subgraph attribute `name` (required), checked to have `n_inputs` inputs and, when n_outputs >= 0, that
// many outputs.
const Graph& subgraph(const InferContext& ctx, const char* name, size_t n_inputs, int64_t n_outputs = -1);
const Graph& subgraph(const KernelContext& ctx, const char* name, size_t n_inputs, int64_t n_outputs = -1);

// Whether a subgraph of `n` still reads enclosing scopes by name (n was not captured): its kernel cannot run.
bool reads_uncaptured_outer(const Node& n);

// Input infos of a control-flow node's captured values, for infer_graph.
std::vector<InputInfo> captured_infos(const InferContext& ctx);

// Merges two inferred shapes of one value (branches, iterations): equal dims stay, others become unknown;
// nullopt when the ranks differ or either is unknown.
std::optional<Shape> merge_shapes(const std::optional<Shape>& a, const std::optional<Shape>& b);

// Data movement the loops share (any dtype but string). take: x's slice at `index` along `axis` (that axis
// removed). stack: the equally shaped `parts` joined along a new axis `axis` of the result; `item_dims` gives
// the part shape when there are no parts.
TensorData take(const KernelContext& ctx, const TensorData& x, int64_t axis, int64_t index);
TensorData stack(const KernelContext& ctx, const std::vector<TensorData>& parts, int64_t axis, DType dtype,
                 const std::vector<int64_t>& item_dims);

// A one-element bool operand (If's cond, Loop's cond) read as a bool; anything else fails naming `what`.
bool read_cond(const KernelContext& ctx, const TensorData& t, const std::string& what);
// Inference-time check of the same: dtype bool (if known) and at most one element (if the shape is static).
void check_cond(const InferContext& ctx, const InputInfo& in, const std::string& what);

}  // namespace kiln::ops
