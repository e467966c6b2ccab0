// The CUDA convolution's factory (cuda.conv, for Conv and kiln.FusedConv): reads the layer (including its
// fused activation), times the candidate tactics of every engine on scratch buffers and keeps the fastest,
// through the timing cache and the engine file.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>

#include "backends/cuda/conv_cuda.h"
#include "device/timing_cache.h"
#include "kiln/build_options.h"
#include "ops/internal_ops.h"

namespace kiln::cuda::conv {
namespace {

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
  std::vector<int64_t> begins(ns), ends(ns);
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
    if (begin < 0 || end < 0) return false;
    begins[i] = begin, ends[i] = end;
  }
  // cuDNN pads symmetrically: the smaller side of each axis; the rest by a zero-padded copy of the input.
  for (size_t i = 0; i < ns; ++i) {
    s.pad[i] = std::min(begins[i], ends[i]);
    if (begins[i] == ends[i]) continue;
    if (!s.pre_padded()) s.in_unpadded = s.in, s.pre_begin.assign(ns, 0);
    s.pre_begin[i] = begins[i] - s.pad[i];
    s.in[i] += begins[i] + ends[i] - 2 * s.pad[i];
  }
  if (node.domain == "kiln") {  // the epilogue applies any activation
    const std::optional<ops::ActivationParams> post =
        ops::fused_activation(node.attrs, ops::kFusedConvActivation);
    if (!post) return false;
    s.post = *post;
  }
  return true;
}

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
      if (k.workspace_bytes() - k.pre_pad_bytes() > ws.bytes) continue;  // timed on a padded input
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
KILN_REGISTER_KERNEL(factory(internal_ops::fused_conv::kOp, internal_ops::kDomain));

}  // namespace
}  // namespace kiln::cuda::conv
