// Convolution on CUDA (Conv and kiln.FusedConv, 1-D to 3-D): cuDNN, or cuBLAS for 1x1 convolutions, with the
// tactic chosen by timing at build time. Tactics: cuDNN in NCHW; for fp16/bf16 also cuDNN in NHWC (tensor
// cores' native layout) with the conversions in and out counted in its time; for 1x1 stride-1 convolutions a
// cuBLAS GEMM. The winner (layout, algorithm) goes into the timing cache and the engine file, so a rebuild
// with a warm cache and a loaded engine neither re-time nor change numerics. Bias and the fused activation
// run in one epilogue pass (fused into the NHWC->NCHW conversion on the NHWC path).
//
// This header is internal to the convolution's files: the layer's shape, the tactic vocabulary, the shared
// cuDNN/cuBLAS handles and the kernel class. cuDNN's legacy API: conv_cudnn_legacy_cuda.cpp; its graph
// (backend) API: conv_cudnn_graph_cuda.cpp; the cuBLAS GEMMs: conv_cublas_cuda.cpp; the kernel that runs a
// tactic, and its weights: conv_kernel_cuda.cpp; reading the layer, timing the tactics and registration:
// conv_tactics_cuda.cpp.
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "backends/cuda/conv_epilogue.h"
#include "backends/cuda/cuda_common.h"
#include "ops/util.h"

namespace kiln::cuda::conv {

#define KILN_CUDNN_CHECK(expr)                                                                           \
  do {                                                                                                   \
    const cudnnStatus_t kiln_cudnn_status_ = (expr);                                                     \
    if (kiln_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                                      \
      throw Error(std::string("cuDNN error ") + cudnnGetErrorString(kiln_cudnn_status_) + " in " #expr); \
  } while (0)
#define KILN_CUBLAS_CHECK(expr)                                                                              \
  do {                                                                                                       \
    const cublasStatus_t kiln_cublas_status_ = (expr);                                                       \
    if (kiln_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                        \
      throw Error(std::string("cuBLAS error ") + cublasGetStatusString(kiln_cublas_status_) + " in " #expr); \
  } while (0)

// One cuDNN and one cuBLAS handle for the process; calls are serialized because the stream is handle state.
struct Handles {
  std::mutex mutex;
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  DeviceBuffer cublas_workspace;  // given explicitly so cuBLAS allocates nothing inside a CUDA graph capture
  Handles() {
    KILN_CUDNN_CHECK(cudnnCreate(&cudnn));
    KILN_CUBLAS_CHECK(cublasCreate(&cublas));
    cublas_workspace = DeviceBuffer(32 << 20);
    KILN_CUBLAS_CHECK(cublasSetWorkspace(cublas, cublas_workspace.ptr, cublas_workspace.bytes));
  }
};
// Created on first use (conv_kernel_cuda.cpp), never destroyed.
Handles& handles();

// cuDNN's data type of a float dtype (conv_cudnn_legacy_cuda.cpp).
cudnnDataType_t cudnn_type(DType t);

// Everything about one convolution layer that the kernel and its tactics need.
struct ConvShape {
  DType dtype = DType::Float;
  bool tf32 = true;
  int64_t n = 0, c = 0, m = 0, group = 1;
  std::vector<int64_t> in, out, k, stride, dil, pad;  // spatial
  ops::ActivationParams post;  // the fused activation (kiln.FusedConv), applied in the epilogue
  bool has_bias = false;
  // Pads cuDNN cannot express (begin != end on some axis, as TensorFlow's SAME with stride 2 gives): the
  // kernel first copies the input into a zero-padded buffer of dims `in` (the layer's input has dims
  // `in_unpadded`, placed at offset `pre_begin`) and convolves that with the symmetric `pad`. Empty: no copy.
  std::vector<int64_t> in_unpadded, pre_begin;
  bool pre_padded() const { return !pre_begin.empty(); }

  // cuDNN wants at least 4-D tensors: a 1-D convolution as a 2-D one with a unit height.
  ConvShape at_least_2d() const {
    ConvShape p = *this;
    if (p.in.size() == 1) {
      for (auto* v : {&p.in, &p.out, &p.k, &p.stride, &p.dil}) v->insert(v->begin(), 1);
      p.pad.insert(p.pad.begin(), 0);
    }
    return p;
  }
  int64_t in_spatial() const { return ops::numel(in); }
  int64_t out_spatial() const { return ops::numel(out); }
  // The shape an NHWC tactic runs: 16-bit tensor cores want channel counts in multiples of 8, so input and
  // output channels are padded with zeros (weights too) by the layout conversions around the convolution.
  ConvShape padded() const {
    ConvShape p = *this;
    if (dtype != DType::Float && group == 1) p.c = (c + 7) / 8 * 8, p.m = (m + 7) / 8 * 8;
    return p;
  }
  bool is_1x1() const {
    for (size_t i = 0; i < k.size(); ++i)
      if (k[i] != 1 || stride[i] != 1 || pad[i] != 0) return false;
    return group == 1;
  }
  std::string key() const {
    std::ostringstream s;
    s << "conv|" << dtype_name(dtype) << (dtype == DType::Float ? (tf32 ? "|tf32" : "|fp32") : "") << "|n"
      << n << "|c" << c << "|m" << m << "|g" << group;
    for (const auto* v : {&in, &k, &stride, &dil, &pad}) {
      s << "|";
      for (int64_t d : *v) s << d << ",";
    }
    return s.str();
  }
};

// cudnn.*: cuDNN's legacy convolution API, algo = cudnnConvolutionFwdAlgo_t. graph.*: cuDNN's graph (backend)
// API, which reaches the newer (Hopper) kernels; algo = index into heuristic mode A's engine configs, stable
// for one cuDNN version and GPU (engine files record both and refuse others).
// gemm.im2col: columns of the im2col matrix in chunks of `algo` output positions, each chunk one cuBLAS GEMM
// (the large-K, small-spatial layers where a GEMM splits K better than cuDNN).
// graph.nchw8: graph.nchw on a copy whose channel counts are padded to multiples of 8 (zero planes), for the
// layers tensor cores handle badly otherwise (PackNet's 129- and 3-channel inputs, 1-channel heads).
enum class ConvEngine { CudnnNchw, CudnnNhwc, Cublas, GraphNchw, GraphNhwc, Im2colGemm, GraphNchwPadded };
inline const char* engine_name(ConvEngine e) {
  switch (e) {
    case ConvEngine::CudnnNchw:
      return "cudnn.nchw";
    case ConvEngine::CudnnNhwc:
      return "cudnn.nhwc";
    case ConvEngine::Cublas:
      return "cublas";
    case ConvEngine::GraphNchw:
      return "graph.nchw";
    case ConvEngine::GraphNhwc:
      return "graph.nhwc";
    case ConvEngine::Im2colGemm:
      return "gemm.im2col";
    case ConvEngine::GraphNchwPadded:
      return "graph.nchw8";
  }
  return "?";
}
inline bool is_nhwc(ConvEngine e) {
  return e == ConvEngine::CudnnNhwc || e == ConvEngine::GraphNhwc;
}
inline bool is_graph(ConvEngine e) {
  return e == ConvEngine::GraphNchw || e == ConvEngine::GraphNhwc || e == ConvEngine::GraphNchwPadded;
}
inline bool is_padded(ConvEngine e) {
  return is_nhwc(e) || e == ConvEngine::GraphNchwPadded;
}

struct Tactic {
  ConvEngine engine = ConvEngine::CudnnNchw;
  int algo = 0;
  size_t workspace = 0;  // cuDNN's, for this algorithm
  std::string str() const {
    return std::string("engine=") + engine_name(engine) + ";algo=" + std::to_string(algo) +
           ";ws=" + std::to_string(workspace);
  }
  static std::optional<Tactic> parse(const std::string& s) {
    char name[32] = {};
    int algo = 0;
    unsigned long long ws = 0;
    if (std::sscanf(s.c_str(), "engine=%31[^;];algo=%d;ws=%llu", name, &algo, &ws) != 3) return std::nullopt;
    Tactic t;
    const std::string e = name;
    if (e == "cudnn.nchw")
      t.engine = ConvEngine::CudnnNchw;
    else if (e == "cudnn.nhwc")
      t.engine = ConvEngine::CudnnNhwc;
    else if (e == "cublas")
      t.engine = ConvEngine::Cublas;
    else if (e == "graph.nchw")
      t.engine = ConvEngine::GraphNchw;
    else if (e == "graph.nhwc")
      t.engine = ConvEngine::GraphNhwc;
    else if (e == "gemm.im2col")
      t.engine = ConvEngine::Im2colGemm;
    else if (e == "graph.nchw8")
      t.engine = ConvEngine::GraphNchwPadded;
    else
      return std::nullopt;
    t.algo = algo;
    t.workspace = ws;
    return t;
  }
};

// Dims [N, C, spatial...] and strides of a tensor stored NCHW or NHWC (channels innermost).
void layout_of(int64_t n, int64_t c, const std::vector<int64_t>& sp, bool nhwc, std::vector<int64_t>& dims,
               std::vector<int64_t>& strides);

// cuDNN descriptors of one layout.
struct CudnnDescs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  CudnnDescs(const ConvShape& s, bool nhwc);
  ~CudnnDescs();
  CudnnDescs(const CudnnDescs&) = delete;
  CudnnDescs& operator=(const CudnnDescs&) = delete;

 private:
  static void set_tensor(cudnnTensorDescriptor_t t, DType dtype, int64_t n, int64_t c,
                         const std::vector<int64_t>& sp, bool nhwc);
};

// ---- cuDNN graph (backend) API: one convolution as an operation graph, executed through an execution plan.
class BackendDesc;  // a cuDNN backend descriptor (conv_cudnn_graph_cuda.cpp)

class GraphConv {
 public:
  // Builds the operation graph and the execution plan of engine config `index` (heuristic mode A order).
  // Throws when the config cannot be finalized for this problem.
  GraphConv(const ConvShape& s, bool nhwc, int index, cudnnHandle_t handle);
  ~GraphConv();

  size_t workspace() const { return workspace_; }
  int64_t configs() const { return configs_; }

  // Called with the handle mutex held. The variant pack of the last pointer set is kept: a context enqueues
  // the same pointers every time, so only the first call (or a capture) pays for building it.
  void execute(cudnnHandle_t handle, const void* x, const void* w, void* y, void* workspace) const;

  // Number of engine configs heuristic mode A offers for this problem.
  static int64_t count_configs(const ConvShape& s, bool nhwc, cudnnHandle_t handle);

 private:
  static BackendDesc tensor(cudnnDataType_t dt, int64_t n, int64_t c, const std::vector<int64_t>& sp,
                            bool nhwc, int64_t uid);

  std::unique_ptr<BackendDesc> plan_;
  size_t workspace_ = 0;
  int64_t configs_ = 0;
  mutable std::unique_ptr<BackendDesc> pack_;
  mutable void* last_ptrs_[3] = {};
  mutable void* last_workspace_ = nullptr;
};

// Weights on the device in the layout a tactic reads: ONNX's [M, C/g, k...], channel-padded [Mp, Cp, k...]
// (graph.nchw8) or [Mp, k..., Cp/g] (NHWC tactics); bias as float. Shared by the tactics timed for one layer.
struct ConvWeights {
  std::shared_ptr<const DeviceBuffer> weights, bias;
};

enum class WeightLayout { Kcrs, KcrsPadded, Krsc };
WeightLayout weight_layout(ConvEngine e);
ConvWeights upload(const backend::LayerDesc& d, const ConvShape& s, WeightLayout layout);

class ConvKernel final : public CudaKernel {
 public:
  // `w` holds the weights in this tactic's layout (see weight_layout).
  ConvKernel(const ConvShape& s, const Tactic& t, ConvWeights w);

  bool owns_constant_input(size_t index) const override { return index == 1 || index == 2; }
  size_t workspace_bytes() const override;
  // The part of the workspace holding the zero-padded input copy (ConvShape::pre_padded), 0 without one.
  size_t pre_pad_bytes() const {
    return s_.pre_padded() ? align(static_cast<size_t>(s_.n * s_.c * s_.in_spatial()) * dtype_size(s_.dtype))
                           : 0;
  }
  std::string serialize() const override { return tactic_.str(); }
  std::string describe() const override;

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    if (!s_.pre_padded()) return enqueue_raw(in[0].data, out[0].data, rc.workspace, rc.stream);
    auto* padded = static_cast<unsigned char*>(rc.workspace);
    launch_pad_spatial(s_.dtype, in[0].data, padded, s_.n * s_.c, s_.in_unpadded, s_.in, s_.pre_begin,
                       rc.stream);
    enqueue_raw(padded, out[0].data, padded + pre_pad_bytes(), rc.stream);
  }

  // Also used by the tactic timer, with scratch buffers.
  void enqueue_raw(const void* x, void* y, void* workspace, cudaStream_t stream) const;

  const Tactic& tactic() const { return tactic_; }
  // Bytes of the NHWC copies (padded channels).
  size_t in_bytes() const {
    return static_cast<size_t>(sp_.n * sp_.c * sp_.in_spatial()) * dtype_size(s_.dtype);
  }
  size_t out_bytes() const {
    return static_cast<size_t>(sp_.n * sp_.m * sp_.out_spatial()) * dtype_size(s_.dtype);
  }

 private:
  static size_t align(size_t n) { return (n + 255) / 256 * 256; }

  // The cuBLAS tactics (conv_cublas_cuda.cpp).
  void im2col_gemm(const void* x, void* y, void* col, cudaStream_t stream) const;
  cublasComputeType_t compute_type() const;
  void gemm_1x1(const void* x, void* y, cudaStream_t stream) const;

  ConvShape s_, sp_;  // the layer, and the shape its tactic runs (channel-padded for NHWC)
  Tactic tactic_;
  ConvWeights w_;
  std::unique_ptr<CudnnDescs> descs_;
  std::unique_ptr<GraphConv> graph_;
};

}  // namespace kiln::cuda::conv
