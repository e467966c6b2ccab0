// kiln — the engine file format (see engine_file.cpp for the layout).
#pragma once
#include <memory>
#include <string>

#include "device/plan.h"

namespace kiln {

struct DynamicShapes;

struct LoadedEngine {
  std::shared_ptr<EnginePlan> plan;
  std::unique_ptr<DynamicShapes> dynamic;  // null for an engine with fixed shapes
};

// Atomic. `device_info` is the device backend's describe() ("" for none), checked again on load. A dynamic
// engine (`dynamic` not null) stores its generic graph and profiles; `plan` is its opt-shape plan, whose
// kernels the file records by layer name.
void write_engine_file(const EnginePlan& plan, const DynamicShapes* dynamic, const std::string& device_info,
                       const std::string& path);
// Checks the header, checksum and every metadata field, then finishes the plan with the recorded kernels.
LoadedEngine read_engine_file(const std::string& path, const BuildOptions& options);

}  // namespace kiln
