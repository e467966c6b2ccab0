// The CUDA convolution kernel: runs one tactic (its engine's call, plus the layout conversions, channel
// padding and bias/activation epilogue around it) on weights uploaded in that tactic's layout.
#include <cstring>

#include "backends/cuda/conv_cuda.h"

namespace kiln::cuda::conv {

Handles& handles() {
  static Handles* h = new Handles();  // never destroyed: kernels may outlive static destruction order
  return *h;
}

WeightLayout weight_layout(ConvEngine e) {
  return is_nhwc(e)                         ? WeightLayout::Krsc
         : e == ConvEngine::GraphNchwPadded ? WeightLayout::KcrsPadded
                                            : WeightLayout::Kcrs;
}

namespace {

std::shared_ptr<const DeviceBuffer> upload_weights(const TensorData& w, const ConvShape& s,
                                                   WeightLayout layout) {
  const TensorData converted = convert_float(w, s.dtype);
  const auto* src = static_cast<const unsigned char*>(converted.raw());
  const size_t elem = dtype_size(s.dtype);
  const ConvShape p = s.padded();
  const int64_t cg = s.c / s.group, cpg = p.c / p.group, ks = ops::numel(s.k);
  std::vector<unsigned char> out;
  if (layout == WeightLayout::Kcrs) return std::make_shared<const DeviceBuffer>(src, converted.nbytes());
  if (layout == WeightLayout::KcrsPadded) {  // group 1
    const size_t row = static_cast<size_t>(s.c * ks) * elem, prow = static_cast<size_t>(p.c * ks) * elem;
    out.assign(static_cast<size_t>(p.m) * prow, 0);
    for (int64_t m = 0; m < s.m; ++m)
      std::memcpy(&out[static_cast<size_t>(m) * prow], &src[static_cast<size_t>(m) * row], row);
  } else {
    out.assign(static_cast<size_t>(p.m * cpg * ks) * elem, 0);
    for (int64_t m = 0; m < s.m; ++m)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t q = 0; q < ks; ++q)
          std::memcpy(&out[static_cast<size_t>((m * ks + q) * cpg + c) * elem],
                      &src[static_cast<size_t>((m * cg + c) * ks + q) * elem], elem);
  }
  return std::make_shared<const DeviceBuffer>(out.data(), out.size());
}

}  // namespace

ConvWeights upload(const backend::LayerDesc& d, const ConvShape& s, WeightLayout layout) {
  ConvWeights w;
  w.weights = upload_weights(*d.inputs[1].constant, s, layout);
  if (s.has_bias) {
    const TensorData b = convert_float(*d.inputs[2].constant, DType::Float);
    w.bias = std::make_shared<const DeviceBuffer>(b.raw(), b.nbytes());
  }
  return w;
}

ConvKernel::ConvKernel(const ConvShape& s, const Tactic& t, ConvWeights w)
    : s_(s), sp_(is_padded(t.engine) ? s.padded() : s), tactic_(t), w_(std::move(w)) {
  handles();  // created now: creating them inside a CUDA graph capture would fail
  if (t.engine == ConvEngine::CudnnNchw || t.engine == ConvEngine::CudnnNhwc)
    descs_ = std::make_unique<CudnnDescs>(sp_, t.engine == ConvEngine::CudnnNhwc);
  if (is_graph(t.engine)) {
    std::lock_guard<std::mutex> lock(handles().mutex);
    graph_ = std::make_unique<GraphConv>(sp_, t.engine == ConvEngine::GraphNhwc, t.algo, handles().cudnn);
    tactic_.workspace = graph_->workspace();
  }
}

size_t ConvKernel::workspace_bytes() const {
  size_t ws = tactic_.workspace + pre_pad_bytes();
  if (is_nhwc(tactic_.engine)) ws += align(in_bytes()) + align(out_bytes());
  if (tactic_.engine == ConvEngine::GraphNchwPadded)
    ws += (sp_.c != s_.c ? align(in_bytes()) : 0) + (sp_.m != s_.m ? align(out_bytes()) : 0);
  return ws;
}

std::string ConvKernel::describe() const {
  std::string d = std::string(engine_name(tactic_.engine));
  if (tactic_.engine != ConvEngine::Cublas) d += "#" + std::to_string(tactic_.algo);
  if (is_padded(tactic_.engine)) {
    if (is_nhwc(tactic_.engine)) d += " NHWC";
    if (sp_.c != s_.c || sp_.m != s_.m)
      d += " C" + std::to_string(s_.c) + "->" + std::to_string(sp_.c) + " M" + std::to_string(s_.m) + "->" +
           std::to_string(sp_.m);
  }
  return d;
}

void ConvKernel::enqueue_raw(const void* x, void* y, void* workspace, cudaStream_t stream) const {
  const float one = 1.f, zero = 0.f;
  const float* bias = w_.bias ? w_.bias->as<float>() : nullptr;
  const void* weights = w_.weights->ptr;
  if (tactic_.engine == ConvEngine::Cublas) {
    gemm_1x1(x, y, stream);
    launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, stream);
    return;
  }
  if (tactic_.engine == ConvEngine::Im2colGemm) {
    im2col_gemm(x, y, workspace, stream);
    launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, stream);
    return;
  }
  Handles& h = handles();
  std::lock_guard<std::mutex> lock(h.mutex);
  KILN_CUDNN_CHECK(cudnnSetStream(h.cudnn, stream));
  if (tactic_.engine == ConvEngine::CudnnNchw) {
    KILN_CUDNN_CHECK(cudnnConvolutionForward(h.cudnn, &one, descs_->x, x, descs_->w, weights, descs_->conv,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(tactic_.algo), workspace,
                                             tactic_.workspace, &zero, descs_->y, y));
    launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, stream);
    return;
  }
  if (tactic_.engine == ConvEngine::GraphNchw) {
    graph_->execute(h.cudnn, x, weights, y, workspace);
    launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, stream);
    return;
  }
  if (tactic_.engine == ConvEngine::GraphNchwPadded) {
    const size_t e = dtype_size(s_.dtype), in_plane = s_.in_spatial() * e, out_plane = s_.out_spatial() * e;
    auto* base = static_cast<unsigned char*>(workspace);
    const void* xp = x;
    void* yp = y;
    if (sp_.c != s_.c) {  // images with zero planes appended: [n][cp][S]
      KILN_CUDA_CHECK(cudaMemcpy2DAsync(base, sp_.c * in_plane, x, s_.c * in_plane, s_.c * in_plane, s_.n,
                                        cudaMemcpyDeviceToDevice, stream));
      KILN_CUDA_CHECK(cudaMemset2DAsync(base + s_.c * in_plane, sp_.c * in_plane, 0,
                                        (sp_.c - s_.c) * in_plane, s_.n, stream));
      xp = base;
      base += align(in_bytes());
    }
    if (sp_.m != s_.m) {
      yp = base;
      base += align(out_bytes());
    }
    graph_->execute(h.cudnn, xp, weights, yp, base);
    if (yp != y)  // the first m channels of each image
      KILN_CUDA_CHECK(cudaMemcpy2DAsync(y, s_.m * out_plane, yp, sp_.m * out_plane, s_.m * out_plane, s_.n,
                                        cudaMemcpyDeviceToDevice, stream));
    launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, stream);
    return;
  }
  auto* base = static_cast<unsigned char*>(workspace);
  void* x_nhwc = base;
  void* y_nhwc = base + align(in_bytes());
  void* ws = base + align(in_bytes()) + align(out_bytes());
  launch_nchw_to_nhwc(s_.dtype, x, x_nhwc, s_.n, s_.c, s_.in_spatial(), sp_.c, stream);
  if (graph_)
    graph_->execute(h.cudnn, x_nhwc, weights, y_nhwc, ws);
  else
    KILN_CUDNN_CHECK(cudnnConvolutionForward(h.cudnn, &one, descs_->x, x_nhwc, descs_->w, weights,
                                             descs_->conv,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(tactic_.algo), ws,
                                             tactic_.workspace, &zero, descs_->y, y_nhwc));
  launch_nhwc_to_nchw_bias_activation(s_.dtype, y_nhwc, y, bias, s_.n, s_.m, s_.out_spatial(), sp_.m, s_.post,
                                      stream);
}

}  // namespace kiln::cuda::conv
