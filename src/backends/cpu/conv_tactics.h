// cpu.conv_onednn's tactics, for tests and tools: which implementations can run a layer, and a way to build
// the kernel with one of them forced (the factory's create() picks by timing; see conv_cpu.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "device/kernel.h"

namespace kiln::backend::conv_onednn {

// Names of the tactics that can run this layer, in the order create() prefers them when it does not time.
// Empty when the layer is outside cpu.conv_onednn or oneDNN is not built in.
std::vector<std::string> tactics_for(const LayerDesc& desc);
// The kernel with `tactic` forced (no timing); throws kiln::Error if the tactic cannot run the layer.
std::unique_ptr<Kernel> create_with_tactic(const LayerDesc& desc, const std::string& tactic);
// The tactic a cpu.conv_onednn kernel runs ("" for any other kernel).
std::string tactic_of(const Kernel& kernel);

}  // namespace kiln::backend::conv_onednn
