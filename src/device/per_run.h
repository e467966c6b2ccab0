// kiln — what the executors of data-dependent plans (EnginePlan::data_dependent) share: each layer's output
// shapes inferred from the actual inputs of this run, and the key under which a kernel made for them is kept.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "device/kernel.h"

namespace kiln::per_run {

// Strings, sequences and optionals are not bytes a kernel's TensorView can point at: only reference kernels,
// which take TensorData, run them.
bool held_as_value(DType t);

// One input of a layer in this run: its dtype and dims, and its value where the executor has it on the host
// (shape inference reads values: a Range's limit, a Reshape's shape).
struct Operand {
  bool present = false;
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  const TensorData* value = nullptr;
};

// The node's outputs (dtype, dims) as inference gives them from these inputs, or nullopt when some output's
// shape or dtype is known only by computing it (NonZero, Unique, a sequence).
std::optional<std::vector<backend::LayerDesc::Operand>> infer_outputs(const Node& node, int64_t opset,
                                                                      const std::vector<Operand>& inputs);

// Kernels are made for one set of shapes, and for the values of the inputs given to the factory as constants
// (`constant[i]` set): the key of that choice. Outputs count too: the same input dims can give other output
// dims (a Reshape whose target is a computed value).
std::string kernel_key(const std::vector<Operand>& inputs, const std::vector<bool>& constant,
                       const std::vector<backend::LayerDesc::Operand>& outputs);

}  // namespace kiln::per_run
