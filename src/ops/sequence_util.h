// kiln — inference helpers shared by the sequence and optional ops (sequence.cpp, sequence_map.cpp,
// optional.cpp).
#pragma once
#include <memory>
#include <optional>

#include "ops/op.h"

namespace kiln::ops {

// A tensor element type of `dtype` and `shape`.
std::shared_ptr<const ElementType> element_type(DType dtype, std::optional<Shape> shape);
// Output k is a container (Sequence or Optional: rank 0) holding `element` (null: unknown).
void set_container_out(InferContext& ctx, size_t k, DType dtype, std::shared_ptr<const ElementType> element);

// The element type of sequence operand k as inference knows it: declared, or from its value; null if unknown.
std::shared_ptr<const ElementType> element_of(const InferContext& ctx, size_t k);

}  // namespace kiln::ops
