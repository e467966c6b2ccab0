// Convolution on CUDA (Conv and kiln.FusedConv, 1-D to 3-D): cuDNN, or cuBLAS for 1x1 convolutions, with the
// tactic chosen by timing at build time. Tactics: cuDNN in NCHW; for fp16/bf16 also cuDNN in NHWC (tensor
// cores' native layout) with the conversions in and out counted in its time; for 1x1 stride-1 convolutions a
// cuBLAS GEMM. The winner (layout, algorithm) goes into the timing cache and the engine file, so a rebuild
// with a warm cache and a loaded engine neither re-time nor change numerics. Bias and the fused activation
// run in one epilogue pass (fused into the NHWC->NCHW conversion on the NHWC path).
#include <cublas_v2.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>

#include "backends/cuda/conv_epilogue.h"
#include "backends/cuda/cuda_common.h"
#include "device/timing_cache.h"
#include "kiln/engine.h"
#include "ops/util.h"

namespace kiln::cuda {
namespace {

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
Handles& handles() {
  static Handles* h = new Handles();  // never destroyed: kernels may outlive static destruction order
  return *h;
}

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::Float:
      return CUDNN_DATA_FLOAT;
    case DType::Float16:
      return CUDNN_DATA_HALF;
    case DType::BFloat16:
      return CUDNN_DATA_BFLOAT16;
    default:
      throw Error("conv: unsupported dtype");
  }
}
cudaDataType_t cuda_type(DType t) {
  return t == DType::Float ? CUDA_R_32F : t == DType::Float16 ? CUDA_R_16F : CUDA_R_16BF;
}

// Everything about one convolution layer that the kernel and its tactics need.
struct ConvShape {
  DType dtype = DType::Float;
  bool tf32 = true;
  int64_t n = 0, c = 0, m = 0, group = 1;
  std::vector<int64_t> in, out, k, stride, dil, pad;  // spatial
  PostOp post = PostOp::None;
  float alpha = 1.f;
  bool has_bias = false;

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

// Reads the layer; returns false (with no throw) for anything this kernel cannot run exactly.
bool read_conv(const backend::LayerDesc& d, ConvShape& s) {
  const Node& node = *d.node;
  if (d.inputs.size() < 2 || !d.inputs[0].present || !d.inputs[1].present || !d.inputs[1].constant)
    return false;
  const auto& x = d.inputs[0];
  const auto& w = d.inputs[1];
  if (!is_cuda_float(x.dtype) || x.dims.size() < 3 || x.dims.size() > 5 || w.dims.size() != x.dims.size())
    return false;
  if (d.outputs.empty() || d.outputs[0].dtype != x.dtype || d.outputs[0].dims.size() != x.dims.size())
    return false;
  if (!is_cuda_float(w.dtype)) return false;
  s.has_bias = d.inputs.size() > 2 && d.inputs[2].present;
  if (s.has_bias && (!d.inputs[2].constant || !is_cuda_float(d.inputs[2].dtype))) return false;
  s.dtype = x.dtype;
  s.tf32 = d.options ? d.options->tf32 : true;
  const size_t ns = x.dims.size() - 2;
  s.n = x.dims[0];
  s.c = x.dims[1];
  s.m = w.dims[0];
  s.group = node.attrs.get_int("group", 1);
  if (s.group <= 0 || s.c % s.group || w.dims[1] * s.group != s.c) return false;
  s.in.assign(x.dims.begin() + 2, x.dims.end());
  s.out.assign(d.outputs[0].dims.begin() + 2, d.outputs[0].dims.end());
  s.k.assign(w.dims.begin() + 2, w.dims.end());
  s.stride = node.attrs.get_ints("strides", std::vector<int64_t>(ns, 1));
  s.dil = node.attrs.get_ints("dilations", std::vector<int64_t>(ns, 1));
  std::vector<int64_t> pads = node.attrs.get_ints("pads", std::vector<int64_t>(2 * ns, 0));
  if (s.stride.size() != ns || s.dil.size() != ns || pads.size() != 2 * ns) return false;
  const std::string auto_pad = node.attrs.get_string("auto_pad", "NOTSET");
  s.pad.resize(ns);
  for (size_t i = 0; i < ns; ++i) {
    int64_t begin = pads[i], end = pads[i + ns];
    if (auto_pad == "VALID") {
      begin = end = 0;
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t total =
          std::max<int64_t>(0, (s.out[i] - 1) * s.stride[i] + (s.k[i] - 1) * s.dil[i] + 1 - s.in[i]);
      begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      end = total - begin;
    } else if (auto_pad != "NOTSET") {
      return false;
    }
    if (begin != end || begin < 0) return false;  // cuDNN pads symmetrically
    s.pad[i] = begin;
  }
  if (node.domain == "kiln") {
    const std::string post = node.attrs.get_string("kiln_post_op", "");
    s.post = post.empty()        ? PostOp::None
             : post == "Relu"    ? PostOp::Relu
             : post == "Elu"     ? PostOp::Elu
             : post == "Sigmoid" ? PostOp::Sigmoid
                                 : PostOp(-1);
    if (static_cast<int>(s.post) < 0) return false;
    s.alpha = node.attrs.get_float("kiln_post_alpha", 1.f);
  }
  return true;
}

// cudnn.*: cuDNN's legacy convolution API, algo = cudnnConvolutionFwdAlgo_t. graph.*: cuDNN's graph (backend)
// API, which reaches the newer (Hopper) kernels; algo = index into heuristic mode A's engine configs, stable
// for one cuDNN version and GPU (engine files record both and refuse others).
// gemm.im2col: columns of the im2col matrix in chunks of `algo` output positions, each chunk one cuBLAS GEMM
// (the large-K, small-spatial layers where a GEMM splits K better than cuDNN).
// graph.nchw8: graph.nchw on a copy whose channel counts are padded to multiples of 8 (zero planes), for the
// layers tensor cores handle badly otherwise (PackNet's 129- and 3-channel inputs, 1-channel heads).
enum class ConvEngine { CudnnNchw, CudnnNhwc, Cublas, GraphNchw, GraphNhwc, Im2colGemm, GraphNchwPadded };
const char* engine_name(ConvEngine e) {
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
bool is_nhwc(ConvEngine e) {
  return e == ConvEngine::CudnnNhwc || e == ConvEngine::GraphNhwc;
}
bool is_graph(ConvEngine e) {
  return e == ConvEngine::GraphNchw || e == ConvEngine::GraphNhwc || e == ConvEngine::GraphNchwPadded;
}
bool is_padded(ConvEngine e) {
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
               std::vector<int64_t>& strides) {
  dims = {n, c};
  dims.insert(dims.end(), sp.begin(), sp.end());
  strides.assign(dims.size(), 1);
  if (!nhwc) {
    for (size_t i = dims.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * dims[i + 1];
    return;
  }
  int64_t st = c;
  for (size_t i = dims.size(); i-- > 2;) strides[i] = st, st *= dims[i];
  strides[0] = st;  // c * spatial
}

// cuDNN descriptors of one layout.
struct CudnnDescs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  CudnnDescs(const ConvShape& s, bool nhwc) {
    KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    const ConvShape g = s.at_least_2d();
    const std::vector<int64_t>&in = g.in, &out = g.out, &k = g.k, &stride = g.stride, &dil = g.dil,
          &pad = g.pad;
    set_tensor(x, s.dtype, s.n, s.c, in, nhwc);
    set_tensor(y, s.dtype, s.n, s.m, out, nhwc);
    std::vector<int> wd{static_cast<int>(s.m), static_cast<int>(s.c / s.group)};
    for (int64_t v : k) wd.push_back(static_cast<int>(v));
    KILN_CUDNN_CHECK(cudnnSetFilterNdDescriptor(w, cudnn_type(s.dtype),
                                                nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                                static_cast<int>(wd.size()), wd.data()));
    std::vector<int> p(pad.begin(), pad.end()), st(stride.begin(), stride.end()), dl(dil.begin(), dil.end());
    KILN_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(conv, static_cast<int>(p.size()), p.data(), st.data(),
                                                     dl.data(), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, static_cast<int>(s.group)));
    // Strict fp32 forbids TF32 tensor cores; otherwise tensor cores are allowed (TF32 for fp32 data).
    const cudnnMathType_t math = s.dtype == DType::Float && !s.tf32 ? CUDNN_FMA_MATH
                                 : s.dtype == DType::Float          ? CUDNN_DEFAULT_MATH
                                                                    : CUDNN_TENSOR_OP_MATH;
    KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math));
  }
  ~CudnnDescs() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
  CudnnDescs(const CudnnDescs&) = delete;
  CudnnDescs& operator=(const CudnnDescs&) = delete;

 private:
  static void set_tensor(cudnnTensorDescriptor_t t, DType dtype, int64_t n, int64_t c,
                         const std::vector<int64_t>& sp, bool nhwc) {
    std::vector<int64_t> dims, strides;
    layout_of(n, c, sp, nhwc, dims, strides);
    const std::vector<int> d(dims.begin(), dims.end()), st(strides.begin(), strides.end());
    KILN_CUDNN_CHECK(
        cudnnSetTensorNdDescriptor(t, cudnn_type(dtype), static_cast<int>(d.size()), d.data(), st.data()));
  }
};

// ---- cuDNN graph (backend) API: one convolution as an operation graph, executed through an execution plan.
class BackendDesc {
 public:
  explicit BackendDesc(cudnnBackendDescriptorType_t type) {
    KILN_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d_));
  }
  ~BackendDesc() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  BackendDesc(BackendDesc&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }
  BackendDesc(const BackendDesc&) = delete;
  BackendDesc& operator=(const BackendDesc&) = delete;
  template <typename T>
  BackendDesc& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count,
                   const T* values) {
    KILN_CUDNN_CHECK(cudnnBackendSetAttribute(d_, name, type, count, values));
    return *this;
  }
  void finalize() { KILN_CUDNN_CHECK(cudnnBackendFinalize(d_)); }
  cudnnBackendDescriptor_t get() const { return d_; }
  cudnnBackendDescriptor_t* ptr() { return &d_; }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

constexpr int64_t kUidX = 1, kUidW = 2, kUidY = 3;

class GraphConv {
 public:
  // Builds the operation graph and the execution plan of engine config `index` (heuristic mode A order).
  // Throws when the config cannot be finalized for this problem.
  GraphConv(const ConvShape& s, bool nhwc, int index, cudnnHandle_t handle) {
    const ConvShape g = s.at_least_2d();
    std::vector<int64_t> in = g.in, out = g.out, k = g.k, stride = g.stride, dil = g.dil, pad = g.pad;
    const cudnnDataType_t dt = cudnn_type(s.dtype);
    BackendDesc x = tensor(dt, s.n, s.c, in, nhwc, kUidX), w = tensor(dt, s.m, s.c / s.group, k, nhwc, kUidW),
                y = tensor(dt, s.n, s.m, out, nhwc, kUidY);
    BackendDesc conv(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    const int64_t nsp = static_cast<int64_t>(in.size());
    conv.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute)
        .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode)
        .set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nsp)
        .set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, nsp, dil.data())
        .set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, nsp, stride.data())
        .set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, nsp, pad.data())
        .set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, nsp, pad.data());
    conv.finalize();
    BackendDesc op(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
    const float alpha = 1.f, beta = 0.f;
    op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, x.ptr())
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, w.ptr())
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, y.ptr())
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, conv.ptr())
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha)
        .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
    op.finalize();
    BackendDesc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, op.ptr())
        .set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
    graph.finalize();
    BackendDesc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    const cudnnBackendHeurMode_t heur_mode = CUDNN_HEUR_MODE_A;
    heur.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, graph.ptr())
        .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &heur_mode);
    heur.finalize();
    int64_t count = 0;
    KILN_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
    configs_ = count;
    if (index >= count)
      throw Error("cuDNN engine config " + std::to_string(index) + " of " + std::to_string(count));
    std::vector<BackendDesc> cfgs;
    std::vector<cudnnBackendDescriptor_t> raw;
    for (int64_t i = 0; i < count; ++i) {
      cfgs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      raw.push_back(cfgs.back().get());
    }
    int64_t got = 0;
    KILN_CUDNN_CHECK(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, raw.data()));
    plan_ = std::make_unique<BackendDesc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    plan_->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle)
        .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
             &raw[static_cast<size_t>(index)]);
    plan_->finalize();
    int64_t ws = 0, n = 0;
    KILN_CUDNN_CHECK(cudnnBackendGetAttribute(plan_->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                              CUDNN_TYPE_INT64, 1, &n, &ws));
    workspace_ = static_cast<size_t>(ws);
  }

  size_t workspace() const { return workspace_; }
  int64_t configs() const { return configs_; }

  // Called with the handle mutex held. The variant pack of the last pointer set is kept: a context enqueues
  // the same pointers every time, so only the first call (or a capture) pays for building it.
  void execute(cudnnHandle_t handle, const void* x, const void* w, void* y, void* workspace) const {
    void* ptrs[3] = {const_cast<void*>(x), const_cast<void*>(w), y};
    if (!pack_ || std::memcmp(ptrs, last_ptrs_, sizeof ptrs) != 0 || workspace != last_workspace_) {
      const int64_t uids[3] = {kUidX, kUidW, kUidY};
      auto pack = std::make_unique<BackendDesc>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
      pack->set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs)
          .set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids)
          .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
      pack->finalize();
      pack_ = std::move(pack);
      std::memcpy(last_ptrs_, ptrs, sizeof ptrs);
      last_workspace_ = workspace;
    }
    KILN_CUDNN_CHECK(cudnnBackendExecute(handle, plan_->get(), pack_->get()));
  }

  // Number of engine configs heuristic mode A offers for this problem.
  static int64_t count_configs(const ConvShape& s, bool nhwc, cudnnHandle_t handle) {
    try {
      return GraphConv(s, nhwc, 0, handle).configs();
    } catch (const Error&) {
      return 0;
    }
  }

 private:
  static BackendDesc tensor(cudnnDataType_t dt, int64_t n, int64_t c, const std::vector<int64_t>& sp,
                            bool nhwc, int64_t uid) {
    std::vector<int64_t> dims, strides;
    layout_of(n, c, sp, nhwc, dims, strides);
    BackendDesc t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t nd = static_cast<int64_t>(dims.size()), align = 16;
    t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt)
        .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, nd, dims.data())
        .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, nd, strides.data())
        .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid)
        .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    t.finalize();
    return t;
  }

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
WeightLayout weight_layout(ConvEngine e) {
  return is_nhwc(e)                         ? WeightLayout::Krsc
         : e == ConvEngine::GraphNchwPadded ? WeightLayout::KcrsPadded
                                            : WeightLayout::Kcrs;
}

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

ConvWeights upload(const backend::LayerDesc& d, const ConvShape& s, WeightLayout layout) {
  ConvWeights w;
  w.weights = upload_weights(*d.inputs[1].constant, s, layout);
  if (s.has_bias) {
    const TensorData b = convert_float(*d.inputs[2].constant, DType::Float);
    w.bias = std::make_shared<const DeviceBuffer>(b.raw(), b.nbytes());
  }
  return w;
}

class ConvKernel final : public CudaKernel {
 public:
  // `w` holds the weights in this tactic's layout (see weight_layout).
  ConvKernel(const ConvShape& s, const Tactic& t, ConvWeights w)
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

  bool owns_constant_input(size_t index) const override { return index == 1 || index == 2; }
  size_t workspace_bytes() const override {
    size_t ws = tactic_.workspace;
    if (is_nhwc(tactic_.engine)) ws += align(in_bytes()) + align(out_bytes());
    if (tactic_.engine == ConvEngine::GraphNchwPadded)
      ws += (sp_.c != s_.c ? align(in_bytes()) : 0) + (sp_.m != s_.m ? align(out_bytes()) : 0);
    return ws;
  }
  std::string serialize() const override { return tactic_.str(); }
  std::string describe() const override {
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

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    enqueue_raw(in[0].data, out[0].data, rc.workspace, rc.stream);
  }

  // Also used by the tactic timer, with scratch buffers.
  void enqueue_raw(const void* x, void* y, void* workspace, cudaStream_t stream) const {
    const float one = 1.f, zero = 0.f;
    const float* bias = w_.bias ? w_.bias->as<float>() : nullptr;
    const void* weights = w_.weights->ptr;
    if (tactic_.engine == ConvEngine::Cublas) {
      gemm_1x1(x, y, stream);
      launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, s_.alpha, stream);
      return;
    }
    if (tactic_.engine == ConvEngine::Im2colGemm) {
      im2col_gemm(x, y, workspace, stream);
      launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, s_.alpha, stream);
      return;
    }
    Handles& h = handles();
    std::lock_guard<std::mutex> lock(h.mutex);
    KILN_CUDNN_CHECK(cudnnSetStream(h.cudnn, stream));
    if (tactic_.engine == ConvEngine::CudnnNchw) {
      KILN_CUDNN_CHECK(cudnnConvolutionForward(h.cudnn, &one, descs_->x, x, descs_->w, weights, descs_->conv,
                                               static_cast<cudnnConvolutionFwdAlgo_t>(tactic_.algo),
                                               workspace, tactic_.workspace, &zero, descs_->y, y));
      launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, s_.alpha, stream);
      return;
    }
    if (tactic_.engine == ConvEngine::GraphNchw) {
      graph_->execute(h.cudnn, x, weights, y, workspace);
      launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, s_.alpha, stream);
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
      launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, s_.alpha, stream);
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
    launch_nhwc_to_nchw_bias_activation(s_.dtype, y_nhwc, y, bias, s_.n, s_.m, s_.out_spatial(), sp_.m,
                                        s_.post, s_.alpha, stream);
  }

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

  void im2col_gemm(const void* x, void* y, void* col, cudaStream_t stream) const {
    const Im2colShape g{s_.c,         s_.in[0],     s_.in[1],  s_.out[0], s_.out[1], s_.k[0],  s_.k[1],
                        s_.stride[0], s_.stride[1], s_.pad[0], s_.pad[1], s_.dil[0], s_.dil[1]};
    const int64_t sp = s_.out_spatial(), k = s_.c * s_.k[0] * s_.k[1], chunk = tactic_.algo;
    const size_t elem = dtype_size(s_.dtype);
    const cudaDataType_t t = cuda_type(s_.dtype);
    const float one = 1.f, zero = 0.f;
    Handles& h = handles();
    std::lock_guard<std::mutex> lock(h.mutex);
    KILN_CUBLAS_CHECK(cublasSetStream(h.cublas, stream));
    for (int64_t n = 0; n < s_.n; ++n) {
      const auto* xn =
          static_cast<const unsigned char*>(x) + static_cast<size_t>(n * s_.c * s_.in_spatial()) * elem;
      auto* yn = static_cast<unsigned char*>(y) + static_cast<size_t>(n * s_.m * sp) * elem;
      for (int64_t s0 = 0; s0 < sp; s0 += chunk) {
        const int64_t cols = std::min(chunk, sp - s0);
        launch_im2col(s_.dtype, xn, col, g, s0, s0 + cols, stream);
        // Column-major: Y^T[s0:s0+cols, :] (ld S) = col^T (cols x K, ld cols) * W^T (K x M, ld K).
        KILN_CUBLAS_CHECK(cublasGemmEx(h.cublas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(cols),
                                       static_cast<int>(s_.m), static_cast<int>(k), &one, col, t,
                                       static_cast<int>(cols), w_.weights->ptr, t, static_cast<int>(k), &zero,
                                       yn + static_cast<size_t>(s0) * elem, t, static_cast<int>(sp),
                                       compute_type(), CUBLAS_GEMM_DEFAULT));
      }
    }
  }

  cublasComputeType_t compute_type() const {
    return s_.dtype == DType::Float && !s_.tf32 ? CUBLAS_COMPUTE_32F_PEDANTIC
           : s_.dtype == DType::Float           ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                : CUBLAS_COMPUTE_32F;
  }

  void gemm_1x1(const void* x, void* y, cudaStream_t stream) const {
    // Row-major Y[M, S] = W[M, C] X[C, S] per image is, column-major, Y^T (S x M) = X^T (S x C) W^T (C x M).
    Handles& h = handles();
    std::lock_guard<std::mutex> lock(h.mutex);
    KILN_CUBLAS_CHECK(cublasSetStream(h.cublas, stream));
    const float one = 1.f, zero = 0.f;
    const int64_t sp = s_.out_spatial();
    const cublasComputeType_t compute = compute_type();
    const cudaDataType_t t = cuda_type(s_.dtype);
    KILN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h.cublas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(sp), static_cast<int>(s_.m),
        static_cast<int>(s_.c), &one, x, t, static_cast<int>(sp), s_.c * sp, w_.weights->ptr, t,
        static_cast<int>(s_.c), 0, &zero, y, t, static_cast<int>(sp), s_.m * sp, static_cast<int>(s_.n),
        compute, CUBLAS_GEMM_DEFAULT));
  }

  ConvShape s_, sp_;  // the layer, and the shape its tactic runs (channel-padded for NHWC)
  Tactic tactic_;
  ConvWeights w_;
  std::unique_ptr<CudnnDescs> descs_;
  std::unique_ptr<GraphConv> graph_;
};

// ---- timing
constexpr size_t kMaxWorkspace = size_t(1) << 30;      // algorithms needing more are not considered
constexpr int64_t kIm2colBudget = int64_t(256) << 20;  // bytes of im2col columns per GEMM
constexpr int64_t kGraphConfigsTimed = 12;             // the first engine configs of heuristic mode A
constexpr size_t kGraphWorkspace = size_t(256) << 20;  // scratch while timing graph engines

// Median of 5 timed runs after a warm-up. A candidate whose first timed run is already 3x slower than the
// best so far stops there (the slowest cuDNN algorithms take tens of ms on PackNet's largest layers).
double time_ms(const std::function<void()>& run, cudaStream_t stream, double best_so_far) {
  cudaEvent_t a, b;
  KILN_CUDA_CHECK(cudaEventCreate(&a));
  KILN_CUDA_CHECK(cudaEventCreate(&b));
  run();  // warm-up
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<float> t;
  for (int i = 0; i < 5; ++i) {
    KILN_CUDA_CHECK(cudaEventRecord(a, stream));
    run();
    KILN_CUDA_CHECK(cudaEventRecord(b, stream));
    KILN_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
    if (i == 0 && ms > 3 * best_so_far) break;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The fastest tactic for this layer, each candidate timed end to end (conversions and epilogue included).
Tactic time_tactics(const backend::LayerDesc& d, const ConvShape& s) {
  std::vector<Tactic> candidates;
  std::vector<ConvEngine> engines{ConvEngine::CudnnNchw};
  if (s.dtype != DType::Float) engines.push_back(ConvEngine::CudnnNhwc);
  for (ConvEngine e : engines) {
    CudnnDescs descs(e == ConvEngine::CudnnNhwc ? s.padded() : s, e == ConvEngine::CudnnNhwc);
    Handles& h = handles();
    std::lock_guard<std::mutex> lock(h.mutex);
    int count = 0;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h.cudnn, descs.x, descs.w, descs.conv, descs.y,
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf));
    for (int i = 0; i < count; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > kMaxWorkspace) continue;
      if (s.dtype == DType::Float && !s.tf32 && perf[i].mathType != CUDNN_FMA_MATH &&
          perf[i].mathType != CUDNN_DEFAULT_MATH)
        continue;
      Tactic t;
      t.engine = e;
      t.algo = static_cast<int>(perf[i].algo);
      t.workspace = perf[i].memory;
      if (std::none_of(candidates.begin(), candidates.end(),
                       [&](const Tactic& c) { return c.engine == t.engine && c.algo == t.algo; }))
        candidates.push_back(t);
    }
  }
  if (s.is_1x1()) candidates.push_back(Tactic{ConvEngine::Cublas, 0, 0});
  if (s.in.size() == 2 && s.group == 1 && !s.is_1x1()) {
    // Chunks of output positions whose im2col columns fit the budget (at least 64 per GEMM).
    const int64_t k = s.c * s.k[0] * s.k[1], col_bytes = k * static_cast<int64_t>(dtype_size(s.dtype));
    const int64_t chunk =
        std::min<int64_t>(s.out_spatial(), std::max<int64_t>(64, kIm2colBudget / col_bytes));
    if (chunk * 8 >= s.out_spatial() || chunk >= 4096)  // not hundreds of tiny GEMMs
      candidates.push_back(
          Tactic{ConvEngine::Im2colGemm, static_cast<int>(chunk), static_cast<size_t>(chunk * col_bytes)});
  }
  // The graph API's engines (not for strict fp32: its engine choice does not promise FMA-only math).
  if (s.dtype != DType::Float && s.group == 1 && (s.c % 8 || s.m % 8)) {
    int64_t n = 0;
    {
      std::lock_guard<std::mutex> lock(handles().mutex);
      n = GraphConv::count_configs(s.padded(), false, handles().cudnn);
    }
    for (int64_t i = 0; i < std::min<int64_t>(n, kGraphConfigsTimed); ++i)
      candidates.push_back(Tactic{ConvEngine::GraphNchwPadded, static_cast<int>(i), 0});
  }
  if (s.dtype != DType::Float || s.tf32) {
    for (bool nhwc : {false, true}) {
      if (nhwc && s.dtype == DType::Float) continue;
      int64_t n = 0;
      {
        std::lock_guard<std::mutex> lock(handles().mutex);
        n = GraphConv::count_configs(nhwc ? s.padded() : s, nhwc, handles().cudnn);
      }
      for (int64_t i = 0; i < std::min<int64_t>(n, kGraphConfigsTimed); ++i)
        candidates.push_back(
            Tactic{nhwc ? ConvEngine::GraphNhwc : ConvEngine::GraphNchw, static_cast<int>(i), 0});
    }
  }
  // KILN_CUDA_CONV_ENGINE=<engine> keeps only that engine's tactics: the GPU tests check each engine this
  // way.
  if (const char* only = std::getenv("KILN_CUDA_CONV_ENGINE")) {
    std::erase_if(candidates, [&](const Tactic& t) { return std::string(engine_name(t.engine)) != only; });
    if (candidates.empty())
      throw Error(std::string("KILN_CUDA_CONV_ENGINE=") + only + " has no tactic for this convolution");
  }
  if (candidates.empty()) throw Error("no cuDNN algorithm supports this convolution");

  // Scratch input (non-zero: zeros can time faster than real data), output and workspace.
  size_t ws_max = 0;
  for (const Tactic& t : candidates) ws_max = std::max(ws_max, t.workspace);
  const ConvShape p = s.padded();
  const size_t in_b = static_cast<size_t>(s.n * s.c * s.in_spatial()) * dtype_size(s.dtype);
  const size_t out_b = static_cast<size_t>(s.n * s.m * s.out_spatial()) * dtype_size(s.dtype);
  const size_t nhwc_b =
      static_cast<size_t>(p.n * (p.c * p.in_spatial() + p.m * p.out_spatial())) * dtype_size(s.dtype);
  ws_max = std::max(ws_max, kGraphWorkspace);
  DeviceBuffer x(in_b), y(out_b), ws(ws_max + nhwc_b + 1024);
  KILN_CUDA_CHECK(cudaMemset(x.ptr, 0x3C, in_b));
  cudaStream_t stream;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Tactic best;
  double best_ms = 1e30;
  std::map<int, ConvWeights> uploaded;  // by WeightLayout: each layout converted and uploaded once
  std::string report;
  for (const Tactic& t : candidates) {
    double ms = 1e30;
    Tactic timed = t;
    try {
      ConvWeights& w = uploaded[static_cast<int>(weight_layout(t.engine))];
      if (!w.weights) w = upload(d, s, weight_layout(t.engine));
      ConvKernel k(s, t, w);
      if (k.workspace_bytes() > ws.bytes) continue;
      timed = k.tactic();
      ms = time_ms([&] { k.enqueue_raw(x.ptr, y.ptr, ws.ptr, stream); }, stream, best_ms);
    } catch (const Error&) {
      cudaGetLastError();  // a tactic that fails to run is skipped
      continue;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, " %s/%d %.3f", engine_name(t.engine), t.algo, ms);
    report += buf;
    if (ms < best_ms) best_ms = ms, best = timed;
  }
  cudaStreamDestroy(stream);
  if (best_ms >= 1e30) throw Error("no convolution tactic ran");
  if (d.options && d.options->verbose && d.options->log)
    d.options->log("[build] tactics " + d.node->label() + ":" + report + " ms -> " +
                   engine_name(best.engine) + "/" + std::to_string(best.algo));
  return best;
}

std::string device_key() {
  static const std::string key = [] {
    cudaDeviceProp p{};
    KILN_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    return std::string(p.name) + "|sm" + std::to_string(p.major) + std::to_string(p.minor) + "|cudnn" +
           std::to_string(cudnnGetVersion());
  }();
  return key;
}

bool supports(const backend::LayerDesc& d) {
  ConvShape s;
  return read_conv(d, s);
}

std::unique_ptr<backend::Kernel> create(const backend::LayerDesc& d) {
  ConvShape s;
  if (!read_conv(d, s)) throw Error("node " + d.node->label() + ": unsupported convolution");
  const std::string key = device_key() + "|" + s.key();
  std::optional<Tactic> tactic;
  if (d.timing_cache && !std::getenv("KILN_CUDA_CONV_ENGINE"))
    if (auto hit = d.timing_cache->find(key)) tactic = Tactic::parse(*hit);
  if (!tactic) {
    tactic = time_tactics(d, s);
    if (d.timing_cache && !std::getenv("KILN_CUDA_CONV_ENGINE")) d.timing_cache->put(key, tactic->str());
  }
  return std::make_unique<ConvKernel>(s, *tactic, upload(d, s, weight_layout(tactic->engine)));
}

std::unique_ptr<backend::Kernel> deserialize(const backend::LayerDesc& d, const std::string& state) {
  ConvShape s;
  if (!read_conv(d, s)) throw Error("node " + d.node->label() + ": unsupported convolution");
  std::optional<Tactic> t = Tactic::parse(state);
  if (!t) throw Error("node " + d.node->label() + ": corrupt convolution tactic '" + printable(state) + "'");
  return std::make_unique<ConvKernel>(s, *t, upload(d, s, weight_layout(t->engine)));
}

backend::KernelFactory factory(const std::string& op, const std::string& domain) {
  return {.name = "cuda.conv",
          .device = "cuda",
          .op = op,
          .domain = domain,
          .priority = 10,
          .supports = supports,
          .create = create,
          .deserialize = deserialize};
}

KILN_REGISTER_KERNEL(factory("Conv", ""));
KILN_REGISTER_KERNEL(factory("FusedConv", "kiln"));

}  // namespace
}  // namespace kiln::cuda
