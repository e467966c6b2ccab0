// kiln — cuda.recurrent's gate kernels (recurrent_cuda.h): one thread per (direction, batch entry, hidden
// unit) applies every gate of its unit for one time step, reading the step's two GEMM results (X.W^T for all
// steps, h.R^T for this one), and updates that unit's states. A thread touches only its own unit's state,
// so no two threads race; the GEMM that reads the state runs before, on the same stream.
//
// Math as ops/recurrent.cpp: gate pre-activations clipped when `clip` is set (LSTM's h = o * f2(c) does not
// clip c), activations by ops/activation.h's formulas (CudaMath) or the recurrent-only ones. A batch entry
// whose sequence has ended leaves its states and Y alone (Y was zeroed before the first step).
#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/recurrent_cuda.h"
#include "ops/activation.h"
#include "ops/recurrent.h"

namespace kiln::cuda::recurrent {
namespace {

using ops::recurrent::LocalAct;

constexpr int kThreads = 256;

__device__ __forceinline__ float activate(const DeviceAct& a, float x) {
  switch (static_cast<LocalAct>(a.local)) {
    case LocalAct::Affine:
      return a.alpha * x + a.beta;
    case LocalAct::ScaledTanh:
      return a.alpha * tanhf(a.beta * x);
    case LocalAct::ThresholdedRelu:
      return x > a.alpha ? x : 0.f;
    case LocalAct::Softsign:
      return x / (1.f + fabsf(x));
    case LocalAct::None:
      break;
  }
  return ops::apply<CudaMath>(static_cast<ops::Activation>(a.table), x, a.alpha, a.beta);
}

// std::clamp(x, -clip, clip) as the reference writes it (a NaN stays NaN).
__device__ __forceinline__ float clipped(float x, float clip) {
  if (!(clip > 0.f)) return x;
  return x < -clip ? -clip : (clip < x ? clip : x);
}

// The sequence length of batch entry n, clamped to [0, seq]: the reference rejects other values, which a
// kernel cannot do from device data, so an out-of-range length runs as the nearest valid one.
__device__ __forceinline__ int64_t length_of(const Params& p, int64_t n) {
  if (!p.lens) return p.seq;
  const int64_t len = p.lens[n];
  return len < 0 ? 0 : (len > p.seq ? p.seq : len);
}

__device__ __forceinline__ int64_t state_at(const Params& p, int64_t d, int64_t n, int64_t j) {
  return ((p.batch_first ? n * p.directions + d : d * p.batch + n) * p.hidden) + j;
}

template <typename T>
__global__ void init_kernel(Params p, const T* h0, const T* c0) {
  const int64_t total = p.directions * p.batch * p.hidden;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t j = i % p.hidden, n = (i / p.hidden) % p.batch, d = i / (p.hidden * p.batch);
    const int64_t src = state_at(p, d, n, j);
    const float h = h0 ? to_float(h0[src]) : 0.f;
    p.h[i] = h;
    static_cast<T*>(p.h_gemm)[i] = from_float<T>(h);
    if (p.c) p.c[i] = c0 ? to_float(c0[src]) : 0.f;
  }
}

template <typename T, Cell C>
__global__ void step_kernel(Params p, int64_t step, int phase) {
  const int64_t H = p.hidden, N = p.batch, S = p.seq, total = p.directions * N * H;
  constexpr int64_t G = C == Cell::Lstm ? 4 : C == Cell::Gru ? 3 : 1;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t j = i % H, n = (i / H) % N, d = i / (H * N);
    const int64_t len = length_of(p, n);
    if (step >= len) continue;
    const bool backward = p.reverse || d == 1;
    const int64_t t = backward ? len - 1 - step : step;
    const int64_t row = p.batch_first ? n * S + t : t * N + n;
    const T* xw = static_cast<const T*>(p.xw) + (row * p.directions + d) * G * H;
    const T* hr = static_cast<const T*>(p.hr) + (d * N + n) * p.hr_cols;
    const float* b = p.bias + d * G * H;
    const DeviceAct* f = p.acts + d * p.acts_per_dir;
    auto pre = [&](int64_t g) { return to_float(xw[g * H + j]) + to_float(hr[g * H + j]) + b[g * H + j]; };
    float h = p.h[i];
    if constexpr (C == Cell::Lstm) {  // gates i o f c; peepholes i o f
      float cs = p.c[i];
      const float* pp = p.peep ? p.peep + d * 3 * H : nullptr;
      const float pi = pp ? pp[j] : 0.f, po = pp ? pp[H + j] : 0.f, pf = pp ? pp[2 * H + j] : 0.f;
      const float gi = activate(f[0], clipped(pre(0) + pi * cs, p.clip));
      const float gf = p.input_forget ? 1.f - gi : activate(f[0], clipped(pre(2) + pf * cs, p.clip));
      const float gc = activate(f[1], clipped(pre(3), p.clip));
      cs = gf * cs + gi * gc;
      const float go = activate(f[0], clipped(pre(1) + po * cs, p.clip));
      h = go * activate(f[2], cs);
      p.c[i] = cs;
    } else if constexpr (C == Cell::Gru) {  // gates z r h
      const float z = activate(f[0], clipped(pre(0), p.clip));
      float cand_in;
      if (p.linear_before_reset) {  // h~ = f1(Xh + Wbh + r * (h.Rh^T + Rbh))
        const float r = activate(f[0], clipped(pre(1), p.clip));
        const float rec = to_float(hr[2 * H + j]) + p.rbh[d * H + j];
        cand_in = to_float(xw[2 * H + j]) + b[2 * H + j] + r * rec;
      } else if (phase == 0) {  // r * h for the second GEMM, (r*h).Rh^T
        const float r = activate(f[0], clipped(pre(1), p.clip));
        static_cast<T*>(p.rh)[i] = from_float<T>(r * h);
        continue;
      } else {  // h~ = f1(Xh + (r*h).Rh^T + Wbh + Rbh)
        cand_in = to_float(xw[2 * H + j]) + to_float(static_cast<const T*>(p.hc)[i]) + b[2 * H + j];
      }
      const float cand = activate(f[1], clipped(cand_in, p.clip));
      h = (1.f - z) * cand + z * h;
    } else {
      h = activate(f[0], clipped(pre(0), p.clip));
    }
    p.h[i] = h;
    static_cast<T*>(p.h_gemm)[i] = from_float<T>(h);
    if (p.y) {
      const int64_t at =
          p.batch_first ? ((n * S + t) * p.directions + d) * H + j : ((t * p.directions + d) * N + n) * H + j;
      static_cast<T*>(p.y)[at] = from_float<T>(h);
    }
  }
}

template <typename T>
__global__ void final_kernel(Params p, T* yh, T* yc) {
  const int64_t total = p.directions * p.batch * p.hidden;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t j = i % p.hidden, n = (i / p.hidden) % p.batch, d = i / (p.hidden * p.batch);
    const bool ran = length_of(p, n) > 0;  // no step: zero states, as the reference
    const int64_t at = state_at(p, d, n, j);
    if (yh) yh[at] = from_float<T>(ran ? p.h[i] : 0.f);
    if (yc) yc[at] = from_float<T>(ran && p.c ? p.c[i] : 0.f);
  }
}

unsigned int grid_of(const Params& p) {
  return blocks_for(p.directions * p.batch * p.hidden, kThreads);
}

}  // namespace

void launch_init(DType dtype, const Params& p, const void* h0, const void* c0, cudaStream_t stream) {
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    init_kernel<T>
        <<<grid_of(p), kThreads, 0, stream>>>(p, static_cast<const T*>(h0), static_cast<const T*>(c0));
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void launch_step(DType dtype, const Params& p, int64_t step, int phase, cudaStream_t stream) {
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    switch (p.cell) {
      case Cell::Lstm:
        step_kernel<T, Cell::Lstm><<<grid_of(p), kThreads, 0, stream>>>(p, step, phase);
        break;
      case Cell::Gru:
        step_kernel<T, Cell::Gru><<<grid_of(p), kThreads, 0, stream>>>(p, step, phase);
        break;
      case Cell::Rnn:
        step_kernel<T, Cell::Rnn><<<grid_of(p), kThreads, 0, stream>>>(p, step, phase);
        break;
    }
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void launch_final(DType dtype, const Params& p, void* yh, void* yc, cudaStream_t stream) {
  dispatch_float_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    final_kernel<T><<<grid_of(p), kThreads, 0, stream>>>(p, static_cast<T*>(yh), static_cast<T*>(yc));
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda::recurrent
