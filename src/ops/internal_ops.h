// kiln — the kiln-internal ops (domain "kiln") the rewrites produce and backends run: their names and
// attribute contracts, in one place. Rewrites write these attributes, op schemas (src/ops) check them,
// kernels read them. A model exported after optimization carries them, so they are a file format too: change
// them only with care.
#pragma once

namespace kiln::internal_ops {

inline constexpr const char* kDomain = "kiln";

// Every fused node records the names of the nodes it replaced (strings; informational: profiles, engine
// files).
inline constexpr const char* kFusedNames = "kiln_fused";

// The activations, their attributes and defaults: ops/activation.h. A fused node without an alpha / beta
// attribute uses its activation's ONNX default.

// kiln.FusedConv: a Conv (all Conv attributes, inputs X, W[, B]) followed by an element-wise activation.
namespace fused_conv {
inline constexpr const char* kOp = "FusedConv";
inline constexpr const char* kPostOp = "kiln_post_op";        // string: the activation's ONNX op name
inline constexpr const char* kPostAlpha = "kiln_post_alpha";  // float: its alpha, where it has one
inline constexpr const char* kPostBeta = "kiln_post_beta";    // float: its second parameter, where it has one
}  // namespace fused_conv

// kiln.GroupNorm: inputs X [N, C, ...], scale [C], bias [C]; y = act(scale[c] * normalized + bias[c]).
namespace group_norm {
inline constexpr const char* kOp = "GroupNorm";
inline constexpr const char* kNumGroups = "num_groups";   // int, divides C
inline constexpr const char* kEpsilon = "epsilon";        // float, default 1e-5
inline constexpr const char* kActivation = "activation";  // string: "" or the activation's ONNX op name
inline constexpr const char* kAlpha = "alpha";            // float: its alpha
inline constexpr const char* kBeta = "beta";              // float: its second parameter
}  // namespace group_norm

// kiln.ElementwiseChain: element-wise steps applied to input 0; inputs [x, extra operands...].
namespace elementwise_chain {
inline constexpr const char* kOp = "ElementwiseChain";
inline constexpr const char* kSteps = "steps";      // strings: ONNX op names, one per step
inline constexpr const char* kOperand = "operand";  // ints: input index of a binary step's operand, or -1
inline constexpr const char* kDataFirst = "data_first";  // ints: 1 when the chain value is the left operand
inline constexpr const char* kAlpha = "alpha";           // floats: a step's alpha, 0 where it has none
inline constexpr const char* kBeta = "beta";             // floats, optional: a step's second parameter
}  // namespace elementwise_chain

// kiln.LayerNormalization: ONNX's LayerNormalization (opset 17 semantics: axis, epsilon, Scale, B) for graphs of
// an older opset, where fuse_layernorm finds the chain exporters write instead (an ONNX LayerNormalization there
// would be invalid to other tools). Same schema, reference and kernels as the ONNX op.
namespace layer_norm {
inline constexpr const char* kOp = "LayerNormalization";
}  // namespace layer_norm

// kiln.Attention: scaled-dot-product attention, the MatMul -> [Add mask] -> Softmax -> MatMul chain exporters
// write (src/passes/fuse_attention.cpp). Inputs Q [..., S, Dh], Kt [..., Dh, Skv] (K already transposed, as
// the exported first MatMul reads it), V [..., Skv, Dv], optional mask broadcasting to [..., S, Skv]; Q, Kt,
// V share their batch dims. Output [..., S, Dv] = softmax_last(scale * Q @ Kt + mask) @ V.
namespace attention {
inline constexpr const char* kOp = "Attention";
inline constexpr const char* kScale = "scale";  // float, default 1
}  // namespace attention

// Control flow (If, Loop, Scan) after capture_outer_references (src/passes/capture_outer_refs.cpp): the node's
// last kCaptured inputs are the values its subgraphs read from enclosing scopes (ONNX Runtime's "implicit
// inputs"), and every subgraph has the same number of extra trailing inputs, bound to them by position. Such a
// node is kiln's execution form (engine files carry it), not standard ONNX.
inline constexpr const char* kCaptured = "kiln_captured";  // int: how many trailing inputs are captured

}  // namespace kiln::internal_ops
