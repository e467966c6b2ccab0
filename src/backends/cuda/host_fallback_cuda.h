// kiln — CUDA backend: a layer no CUDA kernel takes, run on the host when the build allows it
// (BuildOptions::allow_host_fallback, --allowHostFallback).
#pragma once
#include <memory>

#include "device/kernel.h"

namespace kiln::cuda {

// Copies the layer's inputs to pinned host memory, runs the op's reference kernel there from a host callback
// on the stream, copies the outputs back: all enqueued, so a captured CUDA graph replays it too.
std::unique_ptr<backend::Kernel> make_host_fallback_kernel(const backend::LayerDesc& desc);

}  // namespace kiln::cuda
