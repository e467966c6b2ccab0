// cuda.conv_transpose: ONNX ConvTranspose (1-D to 3-D, groups, strides, dilations, pads, output_padding,
// output_shape, auto_pad) as cuDNN's convolution backward data: ConvTranspose(x, W) is the gradient of the
// forward convolution whose input is y and whose output is x, with W [C_in, C_out/g, k...] read as that
// convolution's filter (K = C_in, C = C_out/g), so the descriptors are the forward Conv's (CudnnDescs).
//
// cuDNN pads symmetrically and sizes its output from the forward relation x = (y' + 2p - span) / s + 1.
// When ONNX's begin pad p and output size fit that relation (symmetric pads with output_padding < stride:
// every PyTorch export, and PP-OCR's 2x2 stride-2 upsampling) cuDNN writes y directly. Otherwise it writes a
// larger y' with a smaller pad into the workspace, and a crop kernel copies ONNX's window out of it.
// The begin pads are the reference's (ops/conv.cpp conv_geometry). Bias is added afterwards (float).
#include <algorithm>
#include <climits>
#include <cstdio>

#include "backends/cuda/conv_cuda.h"
#include "backends/cuda/conv_transpose_crop.h"
#include "kiln/build_options.h"

namespace kiln::cuda::conv {
namespace {

constexpr size_t kMaxWorkspace = size_t(256) << 20;  // cuDNN algorithms needing more are not considered

struct TransposeShape {
  ConvShape fwd;              // the forward convolution: in = cuDNN's output y', out = x, c = C_out, m = C_in
  std::vector<int64_t> y;     // ONNX's output spatial sizes
  std::vector<int64_t> crop;  // y[o] = y'[o + crop]; empty when cuDNN writes y directly
  bool bias = false, bias_constant = false;
};

// Reads the layer; false (no throw) for anything this kernel cannot run exactly.
bool read_layer(const backend::LayerDesc& d, TransposeShape& t) {
  const Node& node = *d.node;
  if (d.inputs.size() < 2 || !d.inputs[0].present || !d.inputs[1].present || !d.inputs[1].constant)
    return false;
  const auto &x = d.inputs[0], &w = d.inputs[1];
  if (!is_cuda_float(x.dtype) || w.dtype != x.dtype || x.dims.size() < 3 || x.dims.size() > 5 ||
      w.dims.size() != x.dims.size())
    return false;
  if (d.outputs.empty() || d.outputs[0].dtype != x.dtype || d.outputs[0].dims.size() != x.dims.size())
    return false;
  const size_t ns = x.dims.size() - 2;
  ConvShape& s = t.fwd;
  s.dtype = x.dtype;
  s.tf32 = d.options ? d.options->tf32 : true;
  s.n = x.dims[0];
  s.m = x.dims[1];  // forward output channels = ConvTranspose's input channels
  s.group = node.attrs.get_int("group", 1);
  if (s.group <= 0 || w.dims[0] != s.m || s.m % s.group) return false;
  s.c = w.dims[1] * s.group;
  if (d.outputs[0].dims[0] != s.n || d.outputs[0].dims[1] != s.c) return false;
  t.bias = d.inputs.size() > 2 && d.inputs[2].present;
  if (t.bias) {
    const auto& b = d.inputs[2];
    if (b.dtype != x.dtype || b.dims.size() != 1 || b.dims[0] != s.c) return false;
    t.bias_constant = b.constant != nullptr;
    if (!t.bias_constant && b.dtype != DType::Float) return false;  // read as float on the device
  }
  s.out.assign(x.dims.begin() + 2, x.dims.end());
  s.k.assign(w.dims.begin() + 2, w.dims.end());
  t.y.assign(d.outputs[0].dims.begin() + 2, d.outputs[0].dims.end());
  s.stride = node.attrs.get_ints("strides", std::vector<int64_t>(ns, 1));
  s.dil = node.attrs.get_ints("dilations", std::vector<int64_t>(ns, 1));
  const auto pads = node.attrs.get_ints("pads", std::vector<int64_t>(2 * ns, 0));
  const auto out_pad = node.attrs.get_ints("output_padding", std::vector<int64_t>(ns, 0));
  if (s.stride.size() != ns || s.dil.size() != ns || pads.size() != 2 * ns || out_pad.size() != ns)
    return false;
  const std::string auto_pad = node.attrs.get_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    return false;
  const bool derived = node.attrs.has("output_shape") || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  s.in.resize(ns);
  s.pad.resize(ns);
  std::vector<int64_t> crop(ns, 0);
  bool direct = true;
  for (size_t i = 0; i < ns; ++i) {
    const int64_t st = s.stride[i], in = s.out[i], y = t.y[i];
    if (st < 1 || s.dil[i] < 1 || in < 1 || y < 1 || s.k[i] < 1) return false;
    const int64_t span = (s.k[i] - 1) * s.dil[i] + 1, full = st * (in - 1) + span;
    int64_t begin = 0;  // as ops/conv.cpp's conv_geometry
    if (derived) {
      const int64_t total = std::max<int64_t>(0, full + out_pad[i] - y);
      begin = auto_pad == "SAME_LOWER" ? total - total / 2 : total / 2;
    } else if (auto_pad != "VALID") {
      begin = pads[i];
    }
    if (begin < 0) return false;
    // cuDNN with pad p computes y'[j] = full[j + p] for y' sizes in [full - 2p, full - 2p + st - 1].
    const int64_t extra = y - (full - 2 * begin);
    if (extra >= 0 && extra < st) {
      s.pad[i] = begin, s.in[i] = y;
    } else {
      // The largest pad <= begin whose largest y' still reaches y's last position (begin + y) or the end of
      // the full output; positions of y past y' are zeros there, as in the reference.
      const int64_t p = std::clamp<int64_t>(full + st - 1 - begin - y, 0, begin);
      s.pad[i] = p, s.in[i] = full - 2 * p + st - 1, crop[i] = begin - p;
      direct = false;
    }
    if (s.in[i] > INT32_MAX || s.pad[i] > INT32_MAX) return false;
  }
  if (!direct) t.crop = crop;
  s.has_bias = t.bias;
  return true;
}

// cuDNN's descriptors, algorithm and workspace for one layer.
class ConvTransposeKernel final : public CudaKernel {
 public:
  // algo < 0: ask cuDNN's heuristics.
  ConvTransposeKernel(const backend::LayerDesc& d, const TransposeShape& t, int algo) : t_(t) {
    handles();  // created now: creating them inside a CUDA graph capture would fail
    descs_ = std::make_unique<CudnnDescs>(t_.fwd, false);
    choose_algo(algo);
    weights_ = std::make_unique<DeviceBuffer>(d.inputs[1].constant->raw(), d.inputs[1].constant->nbytes());
    if (t_.bias_constant) {
      const TensorData b = convert_float(*d.inputs[2].constant, DType::Float);
      bias_ = std::make_unique<DeviceBuffer>(b.raw(), b.nbytes());
    }
  }

  bool owns_constant_input(size_t index) const override {
    return index == 1 || (index == 2 && t_.bias_constant);
  }
  size_t workspace_bytes() const override {
    return align(workspace_) + (t_.crop.empty() ? 0 : scratch_bytes());
  }
  std::string serialize() const override { return "algo=" + std::to_string(static_cast<int>(algo_)); }
  std::string describe() const override {
    return "cudnn.backward_data#" + std::to_string(static_cast<int>(algo_)) +
           (t_.crop.empty() ? "" : " +crop");
  }

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    const float one = 1.f, zero = 0.f;
    const float* bias = bias_     ? bias_->as<float>()
                        : t_.bias ? static_cast<const float*>(in[2].data)
                                  : nullptr;
    auto* ws = static_cast<unsigned char*>(rc.workspace);
    void* y = t_.crop.empty() ? out[0].data : ws + align(workspace_);
    {
      Handles& h = handles();
      std::lock_guard<std::mutex> lock(h.mutex);
      KILN_CUDNN_CHECK(cudnnSetStream(h.cudnn, rc.stream));
      KILN_CUDNN_CHECK(cudnnConvolutionBackwardData(h.cudnn, &one, descs_->w, weights_->ptr, descs_->y,
                                                    in[0].data, descs_->conv, algo_, ws, workspace_, &zero,
                                                    descs_->x, y));
    }
    const ConvShape& s = t_.fwd;
    if (t_.crop.empty()) {
      launch_bias_activation(s.dtype, y, bias, s.n, s.c, ops::numel(t_.y), ops::ActivationParams{},
                             rc.stream);
      return;
    }
    CropShape c;
    c.planes = s.n * s.c;
    c.c = s.c;
    const size_t o = 3 - t_.y.size();
    for (size_t i = 0; i < t_.y.size(); ++i)
      c.src[o + i] = s.in[i], c.dst[o + i] = t_.y[i], c.offset[o + i] = t_.crop[i];
    launch_crop_bias(s.dtype, y, out[0].data, bias, c, rc.stream);
  }

 private:
  static size_t align(size_t n) { return (n + 255) / 256 * 256; }
  size_t scratch_bytes() const {
    return static_cast<size_t>(t_.fwd.n * t_.fwd.c * t_.fwd.in_spatial()) * dtype_size(t_.fwd.dtype);
  }

  // The heuristics' fastest deterministic algorithm within the workspace limit (strict fp32: FMA math only),
  // or the engine file's; its workspace size also confirms cuDNN supports it for this problem.
  void choose_algo(int wanted) {
    Handles& h = handles();
    std::lock_guard<std::mutex> lock(h.mutex);
    std::vector<cudnnConvolutionBwdDataAlgo_t> order;
    if (wanted >= 0) {
      order.push_back(static_cast<cudnnConvolutionBwdDataAlgo_t>(wanted));
    } else {
      int count = 0;
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      KILN_CUDNN_CHECK(
          cudnnGetConvolutionBackwardDataAlgorithm_v7(h.cudnn, descs_->w, descs_->y, descs_->conv, descs_->x,
                                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf));
      const ConvShape& s = t_.fwd;
      for (bool deterministic : {true, false})
        for (int i = 0; i < count; ++i) {
          if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxWorkspace) continue;
          if ((perf[i].determinism == CUDNN_DETERMINISTIC) != deterministic) continue;
          if (s.dtype == DType::Float && !s.tf32 && perf[i].mathType != CUDNN_FMA_MATH &&
              perf[i].mathType != CUDNN_DEFAULT_MATH)
            continue;
          order.push_back(perf[i].algo);
        }
    }
    for (cudnnConvolutionBwdDataAlgo_t a : order) {
      size_t bytes = 0;
      if (cudnnGetConvolutionBackwardDataWorkspaceSize(h.cudnn, descs_->w, descs_->y, descs_->conv, descs_->x,
                                                       a, &bytes) != CUDNN_STATUS_SUCCESS ||
          bytes > kMaxWorkspace)
        continue;
      algo_ = a;
      workspace_ = bytes;
      return;
    }
    throw Error("ConvTranspose: no cuDNN backward-data algorithm supports this layer");
  }

  TransposeShape t_;
  std::unique_ptr<CudnnDescs> descs_;
  cudnnConvolutionBwdDataAlgo_t algo_ = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
  size_t workspace_ = 0;
  std::unique_ptr<DeviceBuffer> weights_, bias_;
};

bool supports(const backend::LayerDesc& d) {
  TransposeShape t;
  return read_layer(d, t);
}

TransposeShape read_or_throw(const backend::LayerDesc& d) {
  TransposeShape t;
  if (!read_layer(d, t)) throw Error("node " + d.node->label() + ": unsupported ConvTranspose");
  return t;
}

KILN_REGISTER_KERNEL(backend::KernelFactory{
    .name = "cuda.conv_transpose",
    .device = "cuda",
    .op = "ConvTranspose",
    .domain = "",
    .priority = 10,
    .supports = supports,
    .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<ConvTransposeKernel>(d, read_or_throw(d), -1);
    },
    .deserialize = [](const backend::LayerDesc& d,
                      const std::string& state) -> std::unique_ptr<backend::Kernel> {
      int algo = -1;
      if (std::sscanf(state.c_str(), "algo=%d", &algo) != 1 || algo < 0 ||
          algo >= CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT)
        throw Error("node " + d.node->label() + ": corrupt ConvTranspose state '" + printable(state) + "'");
      return std::make_unique<ConvTransposeKernel>(d, read_or_throw(d), algo);
    }});

}  // namespace
}  // namespace kiln::cuda::conv
