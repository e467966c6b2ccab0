// The one oneDNN CPU engine that every primitive and memory of the CPU kernels lives on (conv_onednn_cpu.cpp).
#pragma once
#if defined(KILN_HAVE_DNNL)
#include <dnnl.hpp>

namespace kiln::backend::conv_onednn {
const dnnl::engine& cpu_engine();
}  // namespace kiln::backend::conv_onednn
#endif
