// kiln — the CUDA executor for plans whose shapes depend on values computed while running
// (EnginePlan::data_dependent): a Range over a computed limit, a Reshape to a computed shape, NonZero.
#pragma once
#include <memory>

#include "device/device_backend.h"

namespace kiln::cuda {

std::unique_ptr<Executor> make_per_run_executor(const EnginePlan& plan);

}  // namespace kiln::cuda
