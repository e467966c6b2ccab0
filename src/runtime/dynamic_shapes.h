// kiln — dynamic engines: one engine for a range of input shapes (optimization profiles). The engine keeps
// its generic graph (weights folded, dynamic dims open) and plans each combination of input shapes it meets
// once: the builder's pipeline on a copy with those shapes fixed, so shape-dependent layers (Shape, Reshape
// with -1, Resize with sizes, Range) fold to constants for that shape, and every kernel is the one chosen
// (timed) at the opt shape wherever it supports the new shapes. Plans are cached by shape; contexts hold
// theirs.
#pragma once
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "builder/builder.h"
#include "device/plan.h"

namespace kiln {

struct DynamicShapes {
  std::unique_ptr<Graph> generic;
  std::vector<OptimizationProfile> profiles;
  BuildOptions options;                 // as built, without profiles or input shapes
  KernelHints hints;                    // the kernels of the plan at the first profile's opt shape
  std::shared_ptr<EnginePlan> primary;  // that plan
  std::string primary_key;
  size_t max_arena_bytes = 0, max_total_bytes = 0;  // over the plans at each profile's max shape
  std::mutex mutex;
  std::list<std::pair<std::string, std::shared_ptr<EnginePlan>>> plans;  // by shape key, most recent first
};

// Keeps this many specialized plans besides the opt-shape one (each holds kernels and folded shapes, not
// weights).
inline constexpr size_t kMaxSpecializedPlans = 16;

// "x:1x3x48x320;y:..." — the cache key of a combination of input shapes.
std::string shape_key(const ShapeMap& dims);

// Checks `dims` against the profiles: the index of the first profile holding every input's shape, or an error
// naming the input, the dim and the ranges allowed ("input 'x' dim 3 = 700 is outside every profile (profile
// 0: 160..640)").
size_t find_profile(const std::vector<OptimizationProfile>& profiles, const ShapeMap& dims);

// Builds a dynamic engine: its generic graph, the plan at the first profile's opt shape (returned; kernels
// chosen there), and plans at each profile's min and max (checked, cached; max sizes the memory report).
std::shared_ptr<EnginePlan> build_dynamic(const Graph& source, const BuildOptions& options, DynamicShapes& d);

// Plans d.primary at the first profile's opt shape (d.generic, profiles and options set), taking kernels from
// `recorded` where given (an engine file's), and sets d.hints from it.
void plan_primary(DynamicShapes& d, const KernelHints* recorded);

// The plan for `dims` from d's cache, specialized (and cached) on a miss. Thread-safe.
std::shared_ptr<EnginePlan> specialized_plan(DynamicShapes& d, const ShapeMap& dims);

}  // namespace kiln
