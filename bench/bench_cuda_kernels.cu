// Microbenchmark of kiln's own CUDA kernels on PackNet01 shapes (H100 target): D2D copy bandwidth as the
// roofline, GroupNorm+ELU on 1x64x192x640 (fp16, fp32), Conv3d 1→8 3x3x3 on pack1's [1,1,256,96,320] fp16.
// cudaEvent timing of each launch sequence, 10 warm-ups, median of 100 runs; inputs random.
// Usage: bench_cuda_kernels        (exits 1 with a message when there is no usable GPU)
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
#include "backends/kernel.h"
#include "kiln/graph.h"

namespace {

using kiln::DType;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench_cuda_kernels: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

double median_us(const std::function<void(cudaStream_t)>& f, cudaStream_t s, int warm = 10, int runs = 100) {
  for (int i = 0; i < warm; ++i) f(s);
  check(cudaStreamSynchronize(s), "warm-up");
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    check(cudaEventRecord(a, s), "record");
    f(s);
    check(cudaEventRecord(b, s), "record");
    check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    t.push_back(ms * 1e3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
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
    if (dtype == DType::Float) reinterpret_cast<float*>(host.data())[i] = v;
    else reinterpret_cast<uint16_t*>(host.data())[i] = kiln::float_to_half(v);
  }
  void* p = nullptr;
  check(cudaMalloc(&p, host.size()), "cudaMalloc");
  check(cudaMemcpy(p, host.data(), host.size(), cudaMemcpyHostToDevice), "upload");
  return p;
}

struct Row {
  const char* name;
  double us, bytes, copy_gbs;
};

void print(const Row& r) {
  const double gbs = r.bytes / (r.us * 1e-6) / 1e9;
  std::printf("%-44s %10.2f %10.1f %9.1f%%\n", r.name, r.us, gbs, r.copy_gbs > 0 ? 100.0 * gbs / r.copy_gbs : 0.0);
}

}  // namespace

int main() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "bench_cuda_kernels: no usable CUDA GPU (%s)\n", kiln::cuda::gpu_unavailable_reason().c_str());
    return 1;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  cudaStream_t s;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
  std::printf("%-44s %10s %10s %10s\n", "kernel", "us", "GB/s", "% copy");

  // ---- copy roofline: 256 MB D2D, bytes read + written
  const size_t copy_bytes = size_t{256} << 20;
  void* ca = random_device(copy_bytes / 2, DType::Float16);
  void* cb = nullptr;
  check(cudaMalloc(&cb, copy_bytes), "cudaMalloc");
  const double copy_us = median_us([&](cudaStream_t st) { check(cudaMemcpyAsync(cb, ca, copy_bytes, cudaMemcpyDeviceToDevice, st), "copy"); }, s);
  const double copy_gbs = 2.0 * copy_bytes / (copy_us * 1e-6) / 1e9;
  print({"D2D copy 256 MB", copy_us, 2.0 * copy_bytes, copy_gbs});

  // ---- GroupNorm + ELU, 1x64x192x640, 16 groups
  const int64_t n = 1, c = 64, spatial = 192 * 640, groups = 16;
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
    for (int act : {2, 0}) {
      const double us = median_us(
          [&](cudaStream_t st) {
            kiln::cuda::launch_group_norm(dt, x, y, scale, bias, dt, n, c, spatial, groups, 1e-5f, act, 1.f, ws,
                                          ws_bytes, st);
          },
          s);
      char name[96];
      std::snprintf(name, sizeof name, "GroupNorm%s 1x64x192x640 G16 %s", act == 2 ? "+ELU" : "", dt == DType::Float ? "fp32" : "fp16");
      print({name, us, 2.0 * static_cast<double>(elems * es), copy_gbs});
    }
    cudaFree(x);
    cudaFree(y);
    cudaFree(scale);
    cudaFree(bias);
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
    d.inputs = {{DType::Float16, xd, nullptr, true}, {DType::Float, wd, &w, true}, {DType::Float, {8}, &b, true}};
    d.outputs = {{DType::Float16, yd, nullptr, true}};
    const kiln::backend::KernelFactory* f = kiln::backend::find_kernel("cuda", "", "Conv", "cuda.conv3d_direct");
    if (!f || !f->supports(d)) {
      std::fprintf(stderr, "bench_cuda_kernels: cuda.conv3d_direct missing or does not support pack1's layer\n");
      return 1;
    }
    auto k = f->create(d);
    auto* ck = dynamic_cast<kiln::cuda::CudaKernel*>(k.get());
    const size_t xn = 256 * 96 * 320, yn = 8 * xn;
    void* x = random_device(xn, DType::Float16);
    void* y = nullptr;
    check(cudaMalloc(&y, yn * 2), "cudaMalloc");
    std::vector<kiln::backend::TensorView> in = {{DType::Float16, xd, x}, {DType::Float, wd, nullptr}, {DType::Float, {8}, nullptr}};
    std::vector<kiln::backend::TensorView> out = {{DType::Float16, yd, y}};
    const double us = median_us(
        [&](cudaStream_t st) {
          kiln::cuda::RunContext rc;
          rc.stream = st;
          ck->enqueue(in, out, rc);
        },
        s, 5, 50);
    print({"Conv3d 1->8 3x3x3 [1,1,256,96,320] fp16", us, 2.0 * (xn + yn), copy_gbs});
    cudaFree(x);
    cudaFree(y);
  }
  std::printf("(GB/s counts each tensor read once and written once; %% copy = against the D2D copy above)\n");
  return 0;
}
