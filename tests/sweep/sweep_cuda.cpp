// kiln_backend_sweep on CUDA, as the CUDA executor runs a layer: inputs uploaded (constants the kernel owns
// are not: it gets nullptr for them), outputs poisoned with 0xFF bytes (NaN in fp32/fp16/bf16), the kernel's
// declared workspace, one non-blocking stream and a RunContext; enqueue, synchronize, download, compare with
// the CPU reference. The layer is then enqueued a second time inside a CUDA graph capture (the executor
// replays layers as a captured graph, so enqueue() must neither allocate nor synchronize) and checked again.
// Built only with the CUDA backend; otherwise --device=cuda reports why it cannot run.
#include "sweep.h"

#ifdef KILN_HAVE_CUDA
#include <algorithm>
#include <cmath>

#include "backends/cuda/cuda_common.h"
#include "device/device_backend.h"

namespace kiln::sweep {
namespace {

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s) cudaStreamDestroy(s);
  }
};

// The layer's pinned host memory (CudaKernel::host_staging_bytes), as the executor gives each layer.
struct HostStaging {
  void* p = nullptr;
  explicit HostStaging(size_t bytes) {
    if (bytes) KILN_CUDA_CHECK(cudaMallocHost(&p, bytes));
  }
  ~HostStaging() {
    if (p) cudaFreeHost(p);
  }
};

struct CapturedGraph {
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~CapturedGraph() {
    if (exec) cudaGraphExecDestroy(exec);
    if (g) cudaGraphDestroy(g);
  }
};

struct Events {
  cudaEvent_t a = nullptr, b = nullptr;
  Events() {
    KILN_CUDA_CHECK(cudaEventCreate(&a));
    KILN_CUDA_CHECK(cudaEventCreate(&b));
  }
  ~Events() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
};

// Downloads every output and compares it; "" when all match.
std::string check_outputs(const Built& b, const std::vector<cuda::DeviceBuffer>& outs, const Case& c,
                          const Settings& s, double& worst) {
  worst = 0;
  for (size_t k = 0; k < outs.size(); ++k) {
    const TensorData& want = b.expected[k];
    TensorData got(want.dtype(), want.dims());
    if (got.nbytes())
      KILN_CUDA_CHECK(cudaMemcpy(got.raw(), outs[k].ptr, got.nbytes(), cudaMemcpyDeviceToHost));
    double err = 0;
    const std::string why = compare(got, want, c.exact, tolerance(want.dtype(), "cuda", c, s.options), err);
    worst = std::isnan(err) || std::isnan(worst) ? NAN : std::max(worst, err);
    if (!why.empty()) return (outs.size() > 1 ? "output " + std::to_string(k) + ": " : "") + why;
  }
  return "";
}

void poison(const std::vector<cuda::DeviceBuffer>& outs, cudaStream_t stream) {
  for (const cuda::DeviceBuffer& o : outs)
    if (o.bytes) KILN_CUDA_CHECK(cudaMemsetAsync(o.ptr, 0xFF, o.bytes, stream));
}

}  // namespace

std::string cuda_unavailable_reason() {
  const DeviceBackend* b = find_device_backend("cuda");
  if (!b) return "kiln was built without the CUDA backend";
  const std::string why = b->unavailable_reason ? b->unavailable_reason() : "";
  return why.empty() ? "" : "no GPU (" + why + ")";
}

Outcome run_on_cuda(const Built& b, const Variant& v, const Case& c, const Settings& s) {
  Outcome o;
  std::unique_ptr<backend::Kernel> holder;
  const cuda::CudaKernel* kernel = nullptr;
  try {
    holder = v.create(b.desc);
    kernel = dynamic_cast<const cuda::CudaKernel*>(holder.get());
    if (!kernel) throw Error("create() did not return a CUDA kernel");
    o.describe = kernel->describe();
  } catch (const std::exception& e) {
    o.message = std::string("create() threw: ") + e.what();
    return o;
  }
  try {
    std::vector<cuda::DeviceBuffer> ins, outs;
    std::vector<backend::TensorView> in_views, out_views;
    for (size_t k = 0; k < b.inputs.size(); ++k) {
      const TensorData& t = b.inputs[k];
      if (t.empty_type()) {
        in_views.push_back({});
        continue;
      }
      if (b.desc.inputs[k].constant && kernel->owns_constant_input(k)) {
        in_views.push_back({t.dtype(), t.dims(), nullptr});
        continue;
      }
      ins.emplace_back(t.raw(), t.nbytes());
      in_views.push_back({t.dtype(), t.dims(), ins.back().ptr});
    }
    for (const TensorData& want : b.expected) {
      outs.emplace_back(want.nbytes());
      out_views.push_back({want.dtype(), want.dims(), outs.back().ptr});
    }
    cuda::DeviceBuffer workspace(kernel->workspace_bytes());
    HostStaging staging(kernel->host_staging_bytes());
    Stream stream;
    const cuda::RunContext rc{stream.s, workspace.ptr, workspace.bytes, staging.p};

    poison(outs, stream.s);
    kernel->enqueue(in_views, out_views, rc);
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream.s));
    KILN_CUDA_CHECK(cudaGetLastError());
    kernel->check_host_work(rc);
    o.message = check_outputs(b, outs, c, s, o.err);
    if (!o.message.empty()) return o;

    // Again, captured in a CUDA graph as the executor runs it.
    poison(outs, stream.s);
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream.s));
    CapturedGraph graph;
    KILN_CUDA_CHECK(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeThreadLocal));
    try {
      kernel->enqueue(in_views, out_views, rc);
    } catch (const std::exception& e) {
      cudaStreamEndCapture(stream.s, &graph.g);
      cudaGetLastError();
      o.message = std::string("enqueue() failed under CUDA graph capture: ") + e.what();
      return o;
    }
    KILN_CUDA_CHECK(cudaStreamEndCapture(stream.s, &graph.g));
    KILN_CUDA_CHECK(cudaGraphInstantiate(&graph.exec, graph.g, 0));
    KILN_CUDA_CHECK(cudaGraphLaunch(graph.exec, stream.s));
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream.s));
    kernel->check_host_work(rc);
    double err = 0;
    o.message = check_outputs(b, outs, c, s, err);
    if (!o.message.empty()) {
      o.message = "under CUDA graph replay: " + o.message;
      return o;
    }

    if (s.perf) {
      Events ev;
      for (int w = 0; w < 3; ++w) kernel->enqueue(in_views, out_views, rc);
      int reps = 0;
      float ms = 0;
      for (int batch = 10; ms < 20.f && reps < 10000; batch *= 2) {
        KILN_CUDA_CHECK(cudaEventRecord(ev.a, stream.s));
        for (int r = 0; r < batch; ++r) kernel->enqueue(in_views, out_views, rc);
        KILN_CUDA_CHECK(cudaEventRecord(ev.b, stream.s));
        KILN_CUDA_CHECK(cudaEventSynchronize(ev.b));
        KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.a, ev.b));
        reps = batch;
      }
      o.us = static_cast<double>(ms) * 1e3 / reps;
    }
  } catch (const std::exception& e) {
    o.message = std::string("run failed: ") + e.what();
    cudaGetLastError();  // clears an error that is not sticky
    const cudaError_t sticky = cudaDeviceSynchronize();
    if (sticky != cudaSuccess) {
      o.message += std::string(" (the CUDA context is broken: ") + cudaGetErrorName(sticky) + ")";
      o.fatal = true;
    }
    return o;
  }
  o.ok = true;
  return o;
}

}  // namespace kiln::sweep

#else  // !KILN_HAVE_CUDA

namespace kiln::sweep {

std::string cuda_unavailable_reason() {
  return "kiln was built without the CUDA backend";
}

Outcome run_on_cuda(const Built&, const Variant&, const Case&, const Settings&) {
  Outcome o;
  o.message = "kiln was built without the CUDA backend";
  return o;
}

}  // namespace kiln::sweep
#endif
