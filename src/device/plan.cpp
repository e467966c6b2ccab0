// Plan helpers every executor shares.
#include "device/plan.h"

namespace kiln {

size_t ValueSlot::nbytes() const {
  return checked_nbytes(dtype, dims).value_or(0);
}  // checked by the planner

backend::TensorView value_view(const EnginePlan& plan, int v, unsigned char* arena,
                               void* const* constant_data) {
  backend::TensorView t;
  if (v < 0) return t;
  const ValueSlot& slot = plan.values[static_cast<size_t>(v)];
  t.dtype = slot.dtype;
  t.dims = slot.dims;
  if (slot.kind != ValueSlot::Kind::Constant)
    t.data = arena + slot.offset;
  else
    t.data = constant_data ? constant_data[v] : const_cast<void*>(slot.constant->values().raw());
  return t;
}

}  // namespace kiln
