// Internal to cpu.conv_onednn, fp32 Conv (1-D/2-D/3-D) and kiln.FusedConv: the layer as oneDNN sees it
// (ConvSetup), the tactic interface, and the tactics each file builds. oneDNN's tactics: conv_onednn_cpu.cpp;
// kiln's own kernels (AVX-512): conv_avx512_cpu.cpp; reading the layer, choosing a tactic (by timing) and the
// kernel's registration: conv_cpu.cpp. Tests and tools use conv_tactics.h instead. Only with oneDNN built in.
#pragma once
#include <cstdint>
#include <dnnl.hpp>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/onednn_engine.h"
#include "device/kernel.h"
#include "ops/activation.h"

namespace kiln::backend::conv_onednn {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// Everything the primitive needs, derived from the layer; `ok` is false (with no throw) when the layer is
// outside what this kernel handles.
struct ConvSetup {
  bool ok = false;
  int64_t group = 1;
  dnnl::memory::desc src, weights_plain, weights_any, bias, dst;
  dnnl::memory::dims strides, dilations, pad_l, pad_r;
  ops::ActivationParams post;  // the fused activation (kiln.FusedConv); one onednn_eltwise maps
  std::vector<int64_t> x_dims, w_dims, y_dims;  // as ONNX has them (weights without the group split)
  double flops = 0;                             // multiply-adds counted as 2
};

// The convolution with activations in `act` layout (plain NC[D]HW, nhwc, or any = oneDNN's choice); the
// output in `dst_act` (undef: the same as the input's).
dnnl::convolution_forward::primitive_desc make_pd(const ConvSetup& s, tag act = tag::undef,
                                                  dnnl::algorithm alg = dnnl::algorithm::convolution_direct,
                                                  tag dst_act = tag::undef);

// The oneDNN eltwise post-op computing activation `a` (alpha and beta as ActivationParams holds them), or
// undef: None, or no such post-op (then the layer is not this kernel's). conv_onednn_cpu.cpp.
dnnl::algorithm onednn_eltwise(ops::Activation a);

// Tactics: interchangeable implementations of one layer, all reading and writing plain NC[D]HW.

class Tactic {
 public:
  virtual ~Tactic() = default;
  virtual void run(const float* x, float* y) const = 0;
  virtual std::string name() const = 0;
};

// Whether this CPU runs AVX-512F (kiln's own kernels need it, or use it when there).
bool have_avx512();
// Plain [N, C, S] to channels-last [N, S, C] (faster than oneDNN's reorder; conv_avx512_cpu.cpp).
void to_channels_last(const float* x, float* y, int64_t n, int64_t c, int64_t sp, int threads);

// oneDNN's tactics (conv_onednn_cpu.cpp) by name: gemm_nchw, matmul_1x1, direct_nhwc, direct_blocked,
// direct_nchw16c, direct_plain_in, winograd. nullptr when the tactic does not apply or would duplicate
// another candidate; throws dnnl::error when oneDNN declines the layer.
bool is_pointwise(const ConvSetup& s);  // matmul_1x1 can run it
std::unique_ptr<Tactic> make_onednn_tactic(const LayerDesc& d, const ConvSetup& s, const std::string& name);

// kiln's own tactics (conv_avx512_cpu.cpp), each for the layers its predicate accepts: direct3d_cin1 (also
// needs AVX-512) and direct_cout1.
bool is_direct3d_cin1(const ConvSetup& s);
std::unique_ptr<Tactic> make_direct3d_tactic(const LayerDesc& d, const ConvSetup& s);
bool is_single_output_2d(const ConvSetup& s);
std::unique_ptr<Tactic> make_single_output_tactic(const LayerDesc& d, const ConvSetup& s);

}  // namespace kiln::backend::conv_onednn
