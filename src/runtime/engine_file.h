// kiln — the engine file format (see engine_file.cpp for the layout).
#pragma once
#include <memory>
#include <string>

#include "device/plan.h"

namespace kiln {

// Atomic. `device_info` is the device backend's describe() ("" for none), checked again on load.
void write_engine_file(const EnginePlan& plan, const std::string& device_info, const std::string& path);
// Checks the header, checksum and every metadata field, then finishes the plan with the recorded kernels.
std::unique_ptr<EnginePlan> read_engine_file(const std::string& path, const BuildOptions& options);

}  // namespace kiln
