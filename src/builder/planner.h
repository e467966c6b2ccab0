// kiln — the planner: from an optimized graph's layer list to an executable plan. Engine::build (kernels
// chosen now) and Engine::load (kernels as an engine file recorded them) both finish through finish_plan.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "device/device_backend.h"
#include "device/plan.h"

namespace kiln {

// "<model file>: " (or "" for a graph not read from a file): how build errors start.
inline std::string model_prefix(const Graph& g) {
  return g.source.empty() ? "" : g.source + ": ";
}
// A "[build] ..." progress line through BuildOptions::log.
inline void build_log(const BuildOptions& o, const std::string& message) {
  if (o.log) o.log("[build] " + message);
}

// BuildOptions::skip_rewrites name that keeps every Concat a copying layer (see finish_plan).
inline constexpr const char* kConcatInPlace = "concat_in_place";

// The device backend for o.device; throws naming the model when it is unknown or unusable, or when the
// options are out of range (precision, threads).
const DeviceBackend& check_device(const Graph& source, const BuildOptions& o);

// Kernels as an engine file recorded them: per layer its kernel name (PlannedLayer::info.kernel, kAliasKernel
// for an alias) and its serialized state ("" for none).
struct RecordedKernels {
  std::string file;  // for errors
  std::vector<std::string> states;
};

// Kernels another specialization of the same engine chose (a dynamic engine's plan at the opt shape), by layer
// name: kernel name and serialized state. A layer with a hint re-creates that kernel from its state when the
// kernel supports the layer's new shapes, so a new input shape is planned without timing anything again
// (TensorRT likewise picks tactics once, at the opt shape).
using KernelHints = std::map<std::string, std::pair<std::string, std::string>>;
KernelHints kernel_hints(const EnginePlan& plan);

// plan.graph, plan.options and plan.layers (one per node, in order) are set. Indexes the values, gives each
// layer an alias or a kernel (chosen by priority and supports(), taken from `hints`, or restored from
// `recorded`), plans memory, prepares the device and fills plan.layer_infos.
void finish_plan(EnginePlan& plan, const RecordedKernels* recorded = nullptr, const KernelHints* hints = nullptr);

}  // namespace kiln
