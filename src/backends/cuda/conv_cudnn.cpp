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
#include <mutex>
#include <sstream>

#include "backends/cuda/conv_epilogue.h"
#include "backends/cuda/cuda_common.h"
#include "builder/timing_cache.h"
#include "kiln/engine.h"

namespace kiln::cuda {
namespace {

#define KILN_CUDNN_CHECK(expr)                                                                          \
  do {                                                                                                  \
    const cudnnStatus_t kiln_cudnn_status_ = (expr);                                                    \
    if (kiln_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                                     \
      throw Error(std::string("cuDNN error ") + cudnnGetErrorString(kiln_cudnn_status_) + " in " #expr); \
  } while (0)
#define KILN_CUBLAS_CHECK(expr)                                                                     \
  do {                                                                                              \
    const cublasStatus_t kiln_cublas_status_ = (expr);                                              \
    if (kiln_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                               \
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
    case DType::Float: return CUDNN_DATA_FLOAT;
    case DType::Float16: return CUDNN_DATA_HALF;
    case DType::BFloat16: return CUDNN_DATA_BFLOAT16;
    default: throw Error("conv: unsupported dtype");
  }
}
cudaDataType_t cuda_type(DType t) {
  return t == DType::Float ? CUDA_R_32F : t == DType::Float16 ? CUDA_R_16F : CUDA_R_16BF;
}

bool is_onnx(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

// Everything about one convolution layer that the kernel and its tactics need.
struct ConvShape {
  DType dtype = DType::Float;
  bool tf32 = true;
  int64_t n = 0, c = 0, m = 0, group = 1;
  std::vector<int64_t> in, out, k, stride, dil, pad;  // spatial
  PostOp post = PostOp::None;
  float alpha = 1.f;
  bool has_bias = false;

  int64_t in_spatial() const { return product(in); }
  int64_t out_spatial() const { return product(out); }
  static int64_t product(const std::vector<int64_t>& v) {
    int64_t p = 1;
    for (int64_t d : v) p *= d;
    return p;
  }
  bool is_1x1() const {
    for (size_t i = 0; i < k.size(); ++i)
      if (k[i] != 1 || stride[i] != 1 || pad[i] != 0) return false;
    return group == 1;
  }
  std::string key() const {
    std::ostringstream s;
    s << "conv|" << dtype_name(dtype) << (dtype == DType::Float ? (tf32 ? "|tf32" : "|fp32") : "") << "|n" << n << "|c"
      << c << "|m" << m << "|g" << group;
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
  if (d.inputs.size() < 2 || !d.inputs[0].present || !d.inputs[1].present || !d.inputs[1].constant) return false;
  const auto& x = d.inputs[0];
  const auto& w = d.inputs[1];
  if (!is_cuda_float(x.dtype) || x.dims.size() < 3 || x.dims.size() > 5 || w.dims.size() != x.dims.size()) return false;
  if (d.outputs.empty() || d.outputs[0].dtype != x.dtype || d.outputs[0].dims.size() != x.dims.size()) return false;
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
    s.post = post.empty() ? PostOp::None : post == "Relu" ? PostOp::Relu : post == "Elu" ? PostOp::Elu
                                         : post == "Sigmoid" ? PostOp::Sigmoid : PostOp(-1);
    if (static_cast<int>(s.post) < 0) return false;
    s.alpha = node.attrs.get_float("kiln_post_alpha", 1.f);
  }
  return true;
}

enum class Engine { CudnnNchw, CudnnNhwc, Cublas };
const char* engine_name(Engine e) { return e == Engine::CudnnNchw ? "cudnn.nchw" : e == Engine::CudnnNhwc ? "cudnn.nhwc" : "cublas"; }

struct Tactic {
  Engine engine = Engine::CudnnNchw;
  int algo = 0;
  size_t workspace = 0;  // cuDNN's, for this algorithm
  std::string str() const {
    return std::string("engine=") + engine_name(engine) + ";algo=" + std::to_string(algo) + ";ws=" + std::to_string(workspace);
  }
  static std::optional<Tactic> parse(const std::string& s) {
    char name[32] = {};
    int algo = 0;
    unsigned long long ws = 0;
    if (std::sscanf(s.c_str(), "engine=%31[^;];algo=%d;ws=%llu", name, &algo, &ws) != 3) return std::nullopt;
    Tactic t;
    const std::string e = name;
    if (e == "cudnn.nchw") t.engine = Engine::CudnnNchw;
    else if (e == "cudnn.nhwc") t.engine = Engine::CudnnNhwc;
    else if (e == "cublas") t.engine = Engine::Cublas;
    else return std::nullopt;
    t.algo = algo;
    t.workspace = ws;
    return t;
  }
};

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
    // cuDNN wants at least 4-D: a 1-D convolution is a 2-D one with a unit height.
    std::vector<int64_t> in = s.in, out = s.out, k = s.k, stride = s.stride, dil = s.dil, pad = s.pad;
    if (in.size() == 1) {
      in.insert(in.begin(), 1), out.insert(out.begin(), 1), k.insert(k.begin(), 1);
      stride.insert(stride.begin(), 1), dil.insert(dil.begin(), 1), pad.insert(pad.begin(), 0);
    }
    set_tensor(x, s.dtype, s.n, s.c, in, nhwc);
    set_tensor(y, s.dtype, s.n, s.m, out, nhwc);
    std::vector<int> wd{static_cast<int>(s.m), static_cast<int>(s.c / s.group)};
    for (int64_t v : k) wd.push_back(static_cast<int>(v));
    KILN_CUDNN_CHECK(cudnnSetFilterNdDescriptor(w, cudnn_type(s.dtype), nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                                static_cast<int>(wd.size()), wd.data()));
    std::vector<int> p(pad.begin(), pad.end()), st(stride.begin(), stride.end()), dl(dil.begin(), dil.end());
    KILN_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(conv, static_cast<int>(p.size()), p.data(), st.data(), dl.data(),
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, static_cast<int>(s.group)));
    // Strict fp32 forbids TF32 tensor cores; otherwise tensor cores are allowed (TF32 for fp32 data).
    const cudnnMathType_t math = s.dtype == DType::Float && !s.tf32 ? CUDNN_FMA_MATH
                                 : s.dtype == DType::Float         ? CUDNN_DEFAULT_MATH
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
  static void set_tensor(cudnnTensorDescriptor_t t, DType dtype, int64_t n, int64_t c, const std::vector<int64_t>& sp,
                         bool nhwc) {
    std::vector<int> dims{static_cast<int>(n), static_cast<int>(c)}, strides(sp.size() + 2);
    for (int64_t v : sp) dims.push_back(static_cast<int>(v));
    const int64_t spatial = ConvShape::product(sp);
    if (!nhwc) {
      int64_t stride = 1;
      for (size_t i = dims.size(); i-- > 0;) strides[i] = static_cast<int>(stride), stride *= dims[i];
    } else {
      strides[0] = static_cast<int>(c * spatial);
      strides[1] = 1;
      int64_t stride = c;
      for (size_t i = dims.size(); i-- > 2;) strides[i] = static_cast<int>(stride), stride *= dims[i];
    }
    KILN_CUDNN_CHECK(cudnnSetTensorNdDescriptor(t, cudnn_type(dtype), static_cast<int>(dims.size()), dims.data(),
                                                strides.data()));
  }
};

class ConvKernel final : public CudaKernel {
 public:
  ConvKernel(const backend::LayerDesc& d, const ConvShape& s, const Tactic& t) : s_(s), tactic_(t) {
    const TensorData& w = *d.inputs[1].constant;
    std::vector<unsigned char> wh = convert_float_constant(w, s.dtype);
    if (t.engine == Engine::CudnnNhwc) wh = to_khwc(wh, dtype_size(s.dtype));
    weights_ = DeviceBuffer(wh.data(), wh.size());
    if (s.has_bias) {
      std::vector<unsigned char> b = convert_float_constant(*d.inputs[2].constant, DType::Float);
      bias_ = DeviceBuffer(b.data(), b.size());
    }
    if (t.engine != Engine::Cublas) descs_ = std::make_unique<CudnnDescs>(s, t.engine == Engine::CudnnNhwc);
  }

  bool owns_constant_input(size_t index) const override { return index == 1 || index == 2; }
  size_t workspace_bytes() const override {
    size_t ws = tactic_.workspace;
    if (tactic_.engine == Engine::CudnnNhwc) ws += align(in_bytes()) + align(out_bytes());
    return ws;
  }
  std::string serialize() const override { return tactic_.str(); }

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    enqueue_raw(in[0].data, out[0].data, rc.workspace, rc.stream);
  }

  // Also used by the tactic timer, with scratch buffers.
  void enqueue_raw(const void* x, void* y, void* workspace, cudaStream_t stream) const {
    const float one = 1.f, zero = 0.f;
    const float* bias = bias_.as<float>();
    if (tactic_.engine == Engine::Cublas) {
      gemm_1x1(x, y, stream);
      launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, s_.alpha, stream);
      return;
    }
    Handles& h = handles();
    std::lock_guard<std::mutex> lock(h.mutex);
    KILN_CUDNN_CHECK(cudnnSetStream(h.cudnn, stream));
    if (tactic_.engine == Engine::CudnnNchw) {
      KILN_CUDNN_CHECK(cudnnConvolutionForward(h.cudnn, &one, descs_->x, x, descs_->w, weights_.ptr, descs_->conv,
                                               static_cast<cudnnConvolutionFwdAlgo_t>(tactic_.algo), workspace,
                                               tactic_.workspace, &zero, descs_->y, y));
      launch_bias_activation(s_.dtype, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, s_.alpha, stream);
      return;
    }
    auto* base = static_cast<unsigned char*>(workspace);
    void* x_nhwc = base;
    void* y_nhwc = base + align(in_bytes());
    void* ws = base + align(in_bytes()) + align(out_bytes());
    launch_nchw_to_nhwc(s_.dtype, x, x_nhwc, s_.n, s_.c, s_.in_spatial(), stream);
    KILN_CUDNN_CHECK(cudnnConvolutionForward(h.cudnn, &one, descs_->x, x_nhwc, descs_->w, weights_.ptr, descs_->conv,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(tactic_.algo), ws,
                                             tactic_.workspace, &zero, descs_->y, y_nhwc));
    launch_nhwc_to_nchw_bias_activation(s_.dtype, y_nhwc, y, bias, s_.n, s_.m, s_.out_spatial(), s_.post, s_.alpha,
                                        stream);
  }

  size_t in_bytes() const { return static_cast<size_t>(s_.n * s_.c * s_.in_spatial()) * dtype_size(s_.dtype); }
  size_t out_bytes() const { return static_cast<size_t>(s_.n * s_.m * s_.out_spatial()) * dtype_size(s_.dtype); }

 private:
  static size_t align(size_t n) { return (n + 255) / 256 * 256; }

  // [M, C, k...] -> [M, k..., C]
  std::vector<unsigned char> to_khwc(const std::vector<unsigned char>& w, size_t elem) const {
    const int64_t cg = s_.c / s_.group, ks = ConvShape::product(s_.k);
    std::vector<unsigned char> out(w.size());
    for (int64_t m = 0; m < s_.m; ++m)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t p = 0; p < ks; ++p)
          std::memcpy(&out[((m * ks + p) * cg + c) * elem], &w[((m * cg + c) * ks + p) * elem], elem);
    return out;
  }

  void gemm_1x1(const void* x, void* y, cudaStream_t stream) const {
    // Row-major Y[M, S] = W[M, C] X[C, S] per image is, column-major, Y^T (S x M) = X^T (S x C) W^T (C x M).
    Handles& h = handles();
    std::lock_guard<std::mutex> lock(h.mutex);
    KILN_CUBLAS_CHECK(cublasSetStream(h.cublas, stream));
    const float one = 1.f, zero = 0.f;
    const int64_t sp = s_.out_spatial();
    const cublasComputeType_t compute = s_.dtype == DType::Float && !s_.tf32 ? CUBLAS_COMPUTE_32F_PEDANTIC
                                        : s_.dtype == DType::Float           ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                             : CUBLAS_COMPUTE_32F;
    const cudaDataType_t t = cuda_type(s_.dtype);
    KILN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        h.cublas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(sp), static_cast<int>(s_.m), static_cast<int>(s_.c), &one,
        x, t, static_cast<int>(sp), s_.c * sp, weights_.ptr, t, static_cast<int>(s_.c), 0, &zero, y, t,
        static_cast<int>(sp), s_.m * sp, static_cast<int>(s_.n), compute, CUBLAS_GEMM_DEFAULT));
  }

  ConvShape s_;
  Tactic tactic_;
  DeviceBuffer weights_, bias_;
  std::unique_ptr<CudnnDescs> descs_;
};

// ---- timing
constexpr size_t kMaxWorkspace = size_t(1) << 30;  // algorithms needing more are not considered

double time_ms(const std::function<void()>& run, cudaStream_t stream) {
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
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The fastest tactic for this layer, each candidate timed end to end (conversions and epilogue included).
Tactic time_tactics(const backend::LayerDesc& d, const ConvShape& s) {
  std::vector<Tactic> candidates;
  std::vector<Engine> engines{Engine::CudnnNchw};
  if (s.dtype != DType::Float) engines.push_back(Engine::CudnnNhwc);
  for (Engine e : engines) {
    CudnnDescs descs(s, e == Engine::CudnnNhwc);
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
  if (s.is_1x1() && s.dtype != DType::BFloat16) candidates.push_back(Tactic{Engine::Cublas, 0, 0});
  if (candidates.empty()) throw Error("no cuDNN algorithm supports this convolution");

  // Scratch input (non-zero: zeros can time faster than real data), output and workspace.
  size_t ws_max = 0;
  for (const Tactic& t : candidates) ws_max = std::max(ws_max, t.workspace);
  const size_t in_b = static_cast<size_t>(s.n * s.c * s.in_spatial()) * dtype_size(s.dtype);
  const size_t out_b = static_cast<size_t>(s.n * s.m * s.out_spatial()) * dtype_size(s.dtype);
  DeviceBuffer x(in_b), y(out_b), ws(ws_max + 2 * (in_b + out_b) + 1024);
  KILN_CUDA_CHECK(cudaMemset(x.ptr, 0x3C, in_b));
  cudaStream_t stream;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Tactic best;
  double best_ms = 1e30;
  std::string report;
  for (const Tactic& t : candidates) {
    double ms = 1e30;
    try {
      ConvKernel k(d, s, t);
      ms = time_ms([&] { k.enqueue_raw(x.ptr, y.ptr, ws.ptr, stream); }, stream);
    } catch (const Error&) {
      cudaGetLastError();  // a tactic that fails to run is skipped
      continue;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, " %s/%d %.3f", engine_name(t.engine), t.algo, ms);
    report += buf;
    if (ms < best_ms) best_ms = ms, best = t;
  }
  cudaStreamDestroy(stream);
  if (best_ms >= 1e30) throw Error("no convolution tactic ran");
  if (d.options && d.options->verbose && d.options->log)
    d.options->log("[build] tactics " + d.node->label() + ":" + report + " ms -> " + engine_name(best.engine) + "/" +
                   std::to_string(best.algo));
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
  if (d.timing_cache)
    if (auto hit = d.timing_cache->find(key)) tactic = Tactic::parse(*hit);
  if (!tactic) {
    tactic = time_tactics(d, s);
    if (d.timing_cache) d.timing_cache->put(key, tactic->str());
  }
  return std::make_unique<ConvKernel>(d, s, *tactic);
}

std::unique_ptr<backend::Kernel> deserialize(const backend::LayerDesc& d, const std::string& state) {
  ConvShape s;
  if (!read_conv(d, s)) throw Error("node " + d.node->label() + ": unsupported convolution");
  std::optional<Tactic> t = Tactic::parse(state);
  if (!t) throw Error("node " + d.node->label() + ": corrupt convolution tactic '" + state + "'");
  return std::make_unique<ConvKernel>(d, s, *t);
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
