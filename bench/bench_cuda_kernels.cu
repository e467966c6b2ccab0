// Microbenchmark of kiln's own CUDA kernels on PackNet01 shapes (H100 target): D2D copy bandwidth as the
// roofline, GroupNorm(+ELU) G16 on 1x64x192x640, 1x128x48x160, 1x512x12x40 (fp16, fp32; the automatic path —
// single pass where it applies — and the forced two-pass path), Conv3d 1→8 3x3x3 on pack1's [1,1,256,96,320]
// fp16. "ideal us" is the row's bytes at the D2D copy bandwidth.
// Each kernel: 20 launches captured in a CUDA graph, median over 30 replays of the per-launch time; inputs
// random. Usage: bench_cuda_kernels        (exits 1 with a message when there is no usable GPU)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "backends/cuda/normalization_cuda.h"
#include "device/kernel.h"
#include "kiln/graph.h"

namespace {

using kiln::DType;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench_cuda_kernels: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

double graph_median_us(const std::function<void(cudaStream_t)>& f, cudaStream_t s, int warm, int runs);

// Median per-launch time of f, measured the way a network runs it: launches captured in one CUDA graph, timed
// with events around each replay (host launch latency not counted). Each launch is followed by an L2 flush (a
// memset of twice the L2 size) whose own time, measured the same way, is subtracted: inputs come from DRAM,
// as they would for tensors larger than L2, not from a cache warmed by the previous launch.
double median_us(const std::function<void(cudaStream_t)>& f, cudaStream_t s, int warm = 10, int runs = 30) {
  static void* flush = nullptr;
  static size_t flush_bytes = 0;
  if (!flush) {
    int l2 = 0;
    check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0), "L2 size");
    flush_bytes = 2 * static_cast<size_t>(l2);
    check(cudaMalloc(&flush, flush_bytes), "flush buffer");
  }
  auto flush_l2 = [&](cudaStream_t st) { check(cudaMemsetAsync(flush, 0, flush_bytes, st), "flush"); };
  const double both = graph_median_us(
      [&](cudaStream_t st) {
        f(st);
        flush_l2(st);
      },
      s, warm, runs);
  const double flush_only = graph_median_us(flush_l2, s, warm, runs);
  return std::max(both - flush_only, 0.0);
}

double graph_median_us(const std::function<void(cudaStream_t)>& f, cudaStream_t s, int warm, int runs) {
  constexpr int kBatch = 20;
  for (int i = 0; i < warm; ++i) f(s);
  check(cudaStreamSynchronize(s), "warm-up");
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool captured = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
  if (captured) {
    for (int i = 0; i < kBatch; ++i) f(s);
    captured = cudaStreamEndCapture(s, &graph) == cudaSuccess &&
               cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
  }
  cudaGetLastError();
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    check(cudaEventRecord(a, s), "record");
    if (captured)
      check(cudaGraphLaunch(exec, s), "graph launch");
    else
      f(s);
    check(cudaEventRecord(b, s), "record");
    check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    t.push_back(ms * 1e3 / (captured ? kBatch : 1));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  if (exec) cudaGraphExecDestroy(exec);
  if (graph) cudaGraphDestroy(graph);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Random device data of `n` elements of `dtype` in [-2, 2] (+ offset).
void* random_device(size_t n, DType dtype, float offset = 0.f) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  const size_t es = dtype == DType::Float ? 4 : 2;
  std::vector<unsigned char> host(n * es);
  for (size_t i = 0; i < n; ++i) {
    const float v = u(rng) + offset;
    if (dtype == DType::Float)
      reinterpret_cast<float*>(host.data())[i] = v;
    else
      reinterpret_cast<uint16_t*>(host.data())[i] = kiln::float_to_half(v);
  }
  void* p = nullptr;
  check(cudaMalloc(&p, host.size()), "cudaMalloc");
  check(cudaMemcpy(p, host.data(), host.size(), cudaMemcpyHostToDevice), "upload");
  return p;
}

struct Row {
  const char* name;
  double us, bytes, copy_gbs;
  const char* path = "";
};

void print(const Row& r) {
  const double gbs = r.bytes / (r.us * 1e-6) / 1e9;
  const double ideal_us = r.copy_gbs > 0 ? r.bytes / (r.copy_gbs * 1e9) * 1e6 : 0.0;
  std::printf("%-44s %-8s %10.2f %10.1f %9.1f%% %9.2f\n", r.name, r.path, r.us, gbs,
              r.copy_gbs > 0 ? 100.0 * gbs / r.copy_gbs : 0.0, ideal_us);
}

const char* path_name(kiln::cuda::GroupNormPath p) {
  return p == kiln::cuda::GroupNormPath::SinglePass ? "1-pass" : "2-pass";
}

}  // namespace

int main() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "bench_cuda_kernels: no usable CUDA GPU (%s)\n",
                 kiln::cuda::gpu_unavailable_reason().c_str());
    return 1;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  cudaStream_t s;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
  std::printf("%-44s %-8s %10s %10s %10s %9s\n", "kernel", "path", "us", "GB/s", "% copy", "ideal us");

  // ---- copy roofline: 256 MB D2D, bytes read + written
  const size_t copy_bytes = size_t{256} << 20;
  void* ca = random_device(copy_bytes / 2, DType::Float16);
  void* cb = nullptr;
  check(cudaMalloc(&cb, copy_bytes), "cudaMalloc");
  const double copy_us = median_us(
      [&](cudaStream_t st) {
        check(cudaMemcpyAsync(cb, ca, copy_bytes, cudaMemcpyDeviceToDevice, st), "copy");
      },
      s);
  const double copy_gbs = 2.0 * copy_bytes / (copy_us * 1e-6) / 1e9;
  print({"D2D copy 256 MB", copy_us, 2.0 * copy_bytes, copy_gbs, "copy"});

  // ---- GroupNorm (+ ELU), 16 groups, PackNet01 shapes; automatic path vs forced two passes
  struct GnShape {
    int64_t c, h, w;
    bool plain_too;  // also without the activation
  };
  for (const GnShape& sh :
       {GnShape{64, 192, 640, true}, GnShape{128, 48, 160, false}, GnShape{512, 12, 40, false}}) {
    const int64_t n = 1, c = sh.c, spatial = sh.h * sh.w, groups = 16;
    const size_t elems = static_cast<size_t>(n * c * spatial);
    const size_t ws_bytes = kiln::cuda::group_norm_workspace_bytes(n, c, spatial, groups);
    void* ws = nullptr;
    check(cudaMalloc(&ws, std::max<size_t>(ws_bytes, 16)), "cudaMalloc");
    for (DType dt : {DType::Float16, DType::Float}) {
      void* x = random_device(elems, dt, 0.5f);
      void* y = nullptr;
      const size_t es = dt == DType::Float ? 4 : 2;
      check(cudaMalloc(&y, elems * es), "cudaMalloc");
      void* scale = random_device(c, dt);
      void* bias = random_device(c, dt);
      for (kiln::ops::Activation act : {kiln::ops::Activation::Elu, kiln::ops::Activation::None}) {
        if (act == kiln::ops::Activation::None && !sh.plain_too) continue;
        for (kiln::cuda::GroupNormPath req :
             {kiln::cuda::GroupNormPath::Auto, kiln::cuda::GroupNormPath::TwoPass}) {
          const kiln::cuda::GroupNormPath taken =
              kiln::cuda::group_norm_path(dt, n, c, spatial, groups, act, req);
          if (req == kiln::cuda::GroupNormPath::TwoPass &&
              kiln::cuda::group_norm_path(dt, n, c, spatial, groups, act) ==
                  kiln::cuda::GroupNormPath::TwoPass)
            continue;  // the automatic row already measured it
          const double us = median_us(
              [&](cudaStream_t st) {
                kiln::cuda::launch_group_norm(dt, x, y, scale, bias, dt, n, c, spatial, groups, 1e-5f, act,
                                              1.f, ws, ws_bytes, st, req);
              },
              s);
          char name[96];
          std::snprintf(name, sizeof name, "GroupNorm%s 1x%lldx%lldx%lld G16 %s",
                        act == kiln::ops::Activation::Elu ? "+ELU" : "",
                        static_cast<long long>(c), static_cast<long long>(sh.h), static_cast<long long>(sh.w),
                        dt == DType::Float ? "fp32" : "fp16");
          print({name, us, 2.0 * static_cast<double>(elems * es), copy_gbs, path_name(taken)});
        }
      }
      cudaFree(x);
      cudaFree(y);
      cudaFree(scale);
      cudaFree(bias);
    }
    cudaFree(ws);
  }

  // ---- Conv3d 1→8 3x3x3 pad 1 on pack1's volume, through the kernel factory
  {
    const std::vector<int64_t> xd = {1, 1, 256, 96, 320}, wd = {8, 1, 3, 3, 3}, yd = {1, 8, 256, 96, 320};
    kiln::Graph g;
    g.set_opset("", 17);
    kiln::TensorData w(DType::Float, wd), b(DType::Float, {8});
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-0.3f, 0.3f);
    for (int64_t i = 0; i < w.numel(); ++i) static_cast<float*>(w.raw())[i] = u(rng);
    for (int64_t i = 0; i < 8; ++i) static_cast<float*>(b.raw())[i] = u(rng);
    kiln::Tensor* xt = g.add_variable("x", DType::Float16, kiln::make_shape(xd));
    kiln::Tensor* wt = g.add_constant("w", w);
    kiln::Tensor* bt = g.add_constant("b", b);
    kiln::Tensor* yt = g.add_variable("y");
    kiln::Node* node = g.add_node("Conv", {xt, wt, bt}, {yt}, "conv3d");
    node->attrs.set("kernel_shape", std::vector<int64_t>{3, 3, 3});
    node->attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1, 1, 1});
    kiln::backend::LayerDesc d;
    d.node = node;
    d.opset = 17;
    d.inputs = {
        {DType::Float16, xd, nullptr, true}, {DType::Float, wd, &w, true}, {DType::Float, {8}, &b, true}};
    d.outputs = {{DType::Float16, yd, nullptr, true}};
    const kiln::backend::KernelFactory* f =
        kiln::backend::find_kernel("cuda", "", "Conv", "cuda.conv3d_direct");
    if (!f || !f->supports(d)) {
      std::fprintf(stderr,
                   "bench_cuda_kernels: cuda.conv3d_direct missing or does not support pack1's layer\n");
      return 1;
    }
    auto k = f->create(d);
    auto* ck = dynamic_cast<kiln::cuda::CudaKernel*>(k.get());
    const size_t xn = 256 * 96 * 320, yn = 8 * xn;
    void* x = random_device(xn, DType::Float16);
    void* y = nullptr;
    check(cudaMalloc(&y, yn * 2), "cudaMalloc");
    std::vector<kiln::backend::TensorView> in = {
        {DType::Float16, xd, x}, {DType::Float, wd, nullptr}, {DType::Float, {8}, nullptr}};
    std::vector<kiln::backend::TensorView> out = {{DType::Float16, yd, y}};
    const double us = median_us(
        [&](cudaStream_t st) {
          kiln::cuda::RunContext rc;
          rc.stream = st;
          ck->enqueue(in, out, rc);
        },
        s, 5, 50);
    print({"Conv3d 1->8 3x3x3 [1,1,256,96,320] fp16", us, 2.0 * (xn + yn), copy_gbs, "direct"});
    cudaFree(x);
    cudaFree(y);
  }
  std::printf("(GB/s counts each tensor read once and written once; %% copy = against the D2D copy above)\n");
  return 0;
}
