// kiln — the builder: optimizes a copy of a graph for BuildOptions and plans it (Engine::build's work).
#pragma once
#include <memory>

#include "device/plan.h"

namespace kiln {

std::unique_ptr<EnginePlan> build_plan(const Graph& source, const BuildOptions& options);

}  // namespace kiln
