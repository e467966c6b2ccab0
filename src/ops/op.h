// kiln — operator schemas: what each op accepts, how it infers output types/shapes, and its reference kernel.
//
// One file per op (or small family) under src/ops registers an OpSchema with KILN_REGISTER_OP. The reference
// kernel is written once, simply, and is the oracle every optimized kernel is tested against; constant
// folding and shape propagation run it too.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/graph.h"

namespace kiln::ops {

// What shape inference knows about one input: dtype, shape (maybe unknown), and its value when it is a
// constant or was computed from constants/static shapes (e.g. the output of Shape on a static tensor).
struct InputInfo {
  DType dtype = DType::Undefined;
  std::optional<Shape> shape;
  const TensorData* value = nullptr;
  bool present = false;  // false for an omitted optional input
  std::shared_ptr<const ElementType> element;  // dtype Sequence/Optional: what it holds, when known
};

struct OutputInfo {
  DType dtype = DType::Undefined;
  std::optional<Shape> shape;
  std::optional<TensorData> value;  // set by ops that know their value without a kernel (Shape, Size)
  std::shared_ptr<const ElementType> element;  // dtype Sequence/Optional: what it holds, when known
};

class InferContext {
 public:
  InferContext(const Node& node, int64_t opset) : node(node), opset(opset) {}
  const Node& node;
  int64_t opset;
  std::vector<InputInfo> in;
  std::vector<OutputInfo> out;

  size_t num_inputs() const { return in.size(); }
  bool has_input(size_t k) const { return k < in.size() && in[k].present; }
  const InputInfo& input(size_t k) const;  // throws naming the node if absent
  // Rank of input k, or -1 if unknown.
  int64_t rank(size_t k) const;
  const TensorData* value(size_t k) const { return has_input(k) ? in[k].value : nullptr; }
  [[noreturn]] void fail(const std::string& message) const;
};

// Operands of a reference kernel: every input value is known, outputs are to be produced.
class KernelContext {
 public:
  KernelContext(const Node& node, int64_t opset) : node(node), opset(opset) {}
  const Node& node;
  int64_t opset;
  std::vector<const TensorData*> in;  // nullptr for an omitted optional input
  std::vector<TensorData> out;        // sized to the node's outputs; kernels assign them

  const TensorData& input(size_t k) const;  // throws naming the node if absent
  bool has_input(size_t k) const { return k < in.size() && in[k] != nullptr; }
  [[noreturn]] void fail(const std::string& message) const;
};

using InferFn = void (*)(InferContext&);
using KernelFn = void (*)(KernelContext&);

struct OpSchema {
  std::string op;
  std::string domain;       // "" = ai.onnx
  int64_t since_opset = 1;  // the oldest opset whose semantics we implement
  int min_inputs = 1, max_inputs = 1;
  int min_outputs = 1, max_outputs = 1;
  InferFn infer = nullptr;
  KernelFn reference = nullptr;  // nullptr: shapes only, no reference kernel yet
  bool from_plugin = false;      // registered for a plugin library's layer (src/plugins), not one of kiln's ops
};

// Registry. Lookups use the op type and domain ("ai.onnx" is treated as "").
const OpSchema* find_op(const std::string& domain, const std::string& op);
std::vector<const OpSchema*> all_ops();
bool register_op(OpSchema schema);

// Runs schema->infer after checking input/output counts. Throws kiln::Error naming the node.
void infer_node(const OpSchema& schema, InferContext& ctx);
// Runs the reference kernel after checking counts; fills ctx.out. Throws kiln::Error naming the node.
void run_reference(const OpSchema& schema, KernelContext& ctx);

}  // namespace kiln::ops

#define KILN_OP_CONCAT_INNER(a, b) a##b
#define KILN_OP_CONCAT(a, b) KILN_OP_CONCAT_INNER(a, b)
// Registers an OpSchema at load time: KILN_REGISTER_OP({.op = "Relu", ...});
// (Designated initializers may leave fields at their defaults; GCC's -Wextra would warn about each.)
#define KILN_REGISTER_OP(...)                                                                             \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wmissing-field-initializers\"")     \
  static const bool KILN_OP_CONCAT(kiln_op_registered_, __COUNTER__) = ::kiln::ops::register_op(__VA_ARGS__); \
  _Pragma("GCC diagnostic pop")
