// kiln — the builder's rewrites: the pipeline Engine::build walks, and the rewrites into kiln-internal ops
// (src/ops/internal_ops.h) that users do not call directly. The rewrites users do call (they produce graphs
// any ONNX tool reads: fuse_pad_into_conv, fuse_groupnorm) are declared in the public kiln/passes.h.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "kiln/passes.h"

namespace kiln {

// Folds an inference BatchNormalization into the Conv that is its only producer's only consumer (weights
// rescaled, bias added; see fuse_batchnorm_conv.cpp). Returns the count.
size_t fuse_batchnorm_into_conv(Graph& graph);

// Replaces the pre-opset-17 layer-norm subgraph (ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div
// [, Mul γ [, Add β]]) over X's trailing axes by one LayerNormalization (ONNX's at opset >= 17, else
// kiln.LayerNormalization); see fuse_layernorm.cpp. Returns the count; reasons for rejects in `rejected`.
size_t fuse_layernorm(Graph& graph, std::vector<NotFolded>* rejected = nullptr);

// Replaces attention (MatMul(Q, Kt) [scaled] [+ mask] → Softmax(last axis) → MatMul(·, V)) by one
// kiln.Attention node reading Q, Kt, V[, mask]; see fuse_attention.cpp. Returns the count; reasons for
// rejects in `rejected`.
size_t fuse_attention(Graph& graph, std::vector<NotFolded>* rejected = nullptr);

// Replaces Conv → Relu/Elu/Sigmoid (the Conv output read only by the activation) by one kiln.FusedConv node
// (Conv attributes plus kiln_post_op, kiln_post_alpha, kiln_fused). Returns the count.
size_t fuse_conv_activation(Graph& graph);

// Replaces maximal chains (>= 2 nodes) of fp32 element-wise nodes — Relu, Elu, Sigmoid, Tanh, LeakyRelu, Neg,
// Abs, Sqrt, Exp, Add, Sub, Mul, Div — whose link tensors have one use and are not graph outputs by one
// kiln.ElementwiseChain node (inputs x and the binary steps' other operands, each a scalar constant, a
// per-channel [C,1,..,1] constant or a tensor of x's shape). The output keeps x's shape. Returns the count.
size_t fuse_elementwise_chains(Graph& graph);

// Converts a float32 graph to run in `to` (Float16 or BFloat16): every fp32 activation and weight changes
// type, except operands ONNX types as float whatever the data (Resize roi/scales); the graph's fp32 inputs
// and outputs keep their type and name behind inserted Cast nodes. Returns the number of tensors converted.
size_t lower_float_precision(Graph& graph, DType to);

// Appends the values each If/Loop/Scan subgraph reads from enclosing scopes as trailing inputs of the node and
// of its subgraphs (attribute kiln_captured = their count), recursively; see capture_outer_refs.cpp. The engine
// needs this form: its kernels see only their inputs. Returns the number of values captured.
size_t capture_outer_references(Graph& graph);

// If -> both branches + Where; Scan -> the body per iteration: see inline_if.cpp, unroll_scan.cpp. Return counts.
size_t inline_if(Graph& graph, const PropagateOptions& fold = {}, std::vector<NotFolded>* rejected = nullptr);
size_t unroll_scan(Graph& graph, const PropagateOptions& fold = {}, std::vector<NotFolded>* rejected = nullptr);

// What a rewrite may ask of the build it runs in.
struct RewriteContext {
  bool verbose = false;
  PropagateOptions fold;  // the build's, for rewrites that infer what they insert
  std::function<void(const std::string&)> log;  // never null inside the pipeline
};

// One entry of the pipeline. `needs` names the kiln-internal op the rewrite produces: the builder runs it
// only when the target device has a kernel of its own for that op ("" = produces standard ONNX, always
// runs). The host's reference kernel does not count: it would replace the unfused ops' tuned kernels.
struct Rewrite {
  const char* name;     // what BuildOptions::skip_rewrites / --skipRewrites name
  const char* needs;    // a kiln-domain op, or ""
  const char* summary;  // one line, for logs and --help
  size_t (*apply)(Graph& graph, const RewriteContext& context);  // returns how many matches it rewrote
  // An ONNX op the rewrite removes, or "": it runs only on devices with no kernel at all for that op (on the
  // CPU the reference kernel counts, so the CPU graph keeps the op).
  const char* unless_kernel_for = "";
};

// The graph rewrites Engine::build runs, in order, after constant folding and before precision lowering.
// Order matters: GroupNorm subgraphs and attention's scale and mask hold Mul/Div/Add that element-wise
// chains would otherwise take; Pads and BatchNormalizations fold into Convs before Conv+activation fuses them.
const std::vector<Rewrite>& rewrite_pipeline();

}  // namespace kiln
