// kiln — the CPU executor for plans whose shapes depend on computed values (EnginePlan::data_dependent).
#pragma once
#include <memory>

#include "device/device_backend.h"

namespace kiln::cpu {

// Runs the plan's graph node by node: each node's output shapes are inferred from the values it gets; a node
// whose shapes are then known runs the kernel the builder would pick for them (created once per shape and
// kept), one whose shapes only its computation tells (NonZero, Unique, Loop, ...) runs its reference kernel.
// Values live in their own buffers, freed after their last use.
std::unique_ptr<Executor> make_per_run_executor(const EnginePlan& plan);

}  // namespace kiln::cpu
