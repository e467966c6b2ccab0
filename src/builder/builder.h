// kiln — the builder: optimizes a copy of a graph for BuildOptions and plans it (Engine::build's work).
#pragma once
#include <memory>

#include "builder/planner.h"
#include "device/plan.h"

namespace kiln {

using ShapeMap = std::map<std::string, std::vector<int64_t>>;  // dims by input name

// `hints`: kernels to reuse where they fit (another specialization's choices, see KernelHints).
std::unique_ptr<EnginePlan> build_plan(const Graph& source, const BuildOptions& options,
                                       const KernelHints* hints = nullptr);

// Dynamic engines (BuildOptions::profiles). check_profiles validates them against the model: every named
// input exists and is not fixed by input_shapes, ranks agree, 0 < min <= opt <= max per dim, dims static in the
// model are equal throughout, and every input left dynamic is covered by every profile.
void check_profiles(const Graph& source, const BuildOptions& options);
// The shapes of profile `p` at one of its points (&ShapeRange::min, ::opt or ::max).
ShapeMap profile_point(const OptimizationProfile& p, std::vector<int64_t> ShapeRange::*point);
// The graph a dynamic engine keeps and specializes per input shape: a copy of `source` with the user's fixed
// input shapes applied and its weight-only subgraphs folded; dynamic dims stay open.
std::unique_ptr<Graph> generic_graph(const Graph& source, const BuildOptions& options);

}  // namespace kiln
