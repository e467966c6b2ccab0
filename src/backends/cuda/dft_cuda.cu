// DFT and STFT on CUDA (cuda.dft, cuda.stft): the definition, O(n^2) — one thread per output bin sums over
// the whole signal (or frame) in double with the reference's twiddles (ops/dft.cpp: the angle from
// (j * k) mod n, exact for large n), rounded once into the signal's dtype. No FFT: these ops are rare in
// models and small in the ONNX tests; a long transform is slow (n^2 sine/cosine pairs), not wrong.
//
// Scalars read on the device (math_cuda.cuh): DFT's dft_length, STFT's frame_step and frame_length. The
// output shape is static, so they only change values. Where a device scalar is one the reference rejects
// (below 1, a frame longer than the signal or than the window) the kernel clamps it into range instead of
// failing, and a sample past the end of the signal reads as zero: never out of bounds.
#include "backends/cuda/math_cuda.cuh"

namespace kiln::cuda::dft {
namespace {

using namespace math;

// sum_{j < min(m, n)} x[j] * exp(sign * 2 pi i j k / n) for one bin k, into (re, im). x[j] is (xr, xi) at
// x + j * stride * width (xi = 0 for a real signal), each scaled by window[j] when a window is given.
template <typename T>
__device__ void dft_bin(const T* x, int64_t m, int64_t stride, bool complex_in, const T* window, int64_t n,
                        int64_t k, bool inverse, double& re, double& im) {
  const double sign = inverse ? 1.0 : -1.0;
  const int64_t width = complex_in ? 2 : 1, count = m < n ? m : n;
  re = 0;
  im = 0;
  for (int64_t j = 0; j < count; ++j) {
    const double angle =
        sign * 2.0 * 3.14159265358979323846 * static_cast<double>((j * k) % n) / static_cast<double>(n);
    double s, c;
    sincos(angle, &s, &c);
    double xr = load_double(x[j * stride * width]),
           xi = complex_in ? load_double(x[j * stride * width + 1]) : 0.0;
    if (window) {
      const double w = load_double(window[j]);
      xr *= w;
      xi *= w;
    }
    re += xr * c - xi * s;
    im += xr * s + xi * c;
  }
}

// ------------------------------------------------------------------------------------------------- DFT
struct DftParams {
  int64_t outer, m, inner, bins;  // x [outer, m, inner, width] along the axis; y [outer, bins, inner, 2]
  bool complex_in, inverse;
  int length_size;  // dft_length's element size (4, 8); 0: absent, n = m
};

template <typename T>
__global__ void dft_kernel(const T* x, const void* length, T* y, DftParams p) {
  int64_t n = p.length_size ? read_int_scalar(length, p.length_size) : p.m;
  if (n < 1) n = 1;
  const int64_t total = p.outer * p.bins * p.inner, step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t width = p.complex_in ? 2 : 1;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const int64_t i = e % p.inner, k = (e / p.inner) % p.bins, o = e / (p.inner * p.bins);
    double re, im;
    dft_bin(x + (o * p.m * p.inner + i) * width, p.m, p.inner, p.complex_in, static_cast<const T*>(nullptr),
            n, k, p.inverse, re, im);
    if (p.inverse) {
      re *= 1.0 / static_cast<double>(n);
      im *= 1.0 / static_cast<double>(n);
    }
    y[e * 2] = store_double<T>(re);
    y[e * 2 + 1] = store_double<T>(im);
  }
}

class DftKernel final : public CudaKernel {
 public:
  DftKernel(DType dtype, DftParams p) : dtype_(dtype), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t total = p_.outer * p_.bins * p_.inner;
    if (total == 0) return;
    dispatch_real(dtype_, [&](auto t) {
      using T = decltype(t);
      dft_kernel<T><<<blocks_for(total, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const T*>(in[0].data), p_.length_size ? in[1].data : nullptr,
          static_cast<T*>(out[0].data), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  // The axis (opset 20's input 2) is read at create time.
  bool owns_constant_input(size_t k) const override { return k == 2; }

 private:
  DType dtype_;
  DftParams p_;
};

std::optional<DftParams> dft_plan(const LayerDesc& d) {
  if (d.inputs.empty() || d.inputs.size() > 3 || d.outputs.size() != 1 || !d.inputs[0].present)
    return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const DType dt = d.inputs[0].dtype;
  const int64_t rank = static_cast<int64_t>(x.size());
  if (!is_real_dtype(dt) || d.outputs[0].dtype != dt || rank < 2 || (x.back() != 1 && x.back() != 2))
    return std::nullopt;
  const bool onesided = d.node->attrs.get_int("onesided", 0) != 0,
             inverse = d.node->attrs.get_int("inverse", 0) != 0;
  if (onesided && inverse) return std::nullopt;
  int64_t axis = d.node->attrs.get_int("axis", 1);
  if (d.opset >= 20) {
    axis = -2;
    if (d.inputs.size() > 2 && d.inputs[2].present) {  // the axis must be known to lay out the threads
      if (!d.inputs[2].constant || d.inputs[2].constant->numel() != 1 ||
          !dtype_is_integer(d.inputs[2].constant->dtype()))
        return std::nullopt;
      axis = d.inputs[2].constant->as_int64(0);
    }
  }
  if (axis < -rank || axis >= rank) return std::nullopt;
  if (axis < 0) axis += rank;
  if (axis == rank - 1) return std::nullopt;
  DftParams p{};
  p.outer = ops::numel({x.begin(), x.begin() + axis});
  p.m = x[static_cast<size_t>(axis)];
  p.inner = ops::numel({x.begin() + axis + 1, x.end() - 1});
  p.complex_in = x.back() == 2;
  p.inverse = inverse;
  const bool has_length = d.inputs.size() > 1 && d.inputs[1].present;
  if (has_length && !is_int_scalar(d.inputs[1])) return std::nullopt;
  p.length_size = has_length ? static_cast<int>(dtype_size(d.inputs[1].dtype)) : 0;
  // The output's static shape gives the bin count; a constant dft_length must agree with it.
  std::vector<int64_t> y = x;
  y.back() = 2;
  p.bins = d.outputs[0].dims.size() == y.size() ? d.outputs[0].dims[static_cast<size_t>(axis)] : -1;
  y[static_cast<size_t>(axis)] = p.bins;
  if (p.bins < 0 || d.outputs[0].dims != y) return std::nullopt;
  const int64_t n = !has_length ? p.m : d.inputs[1].constant ? d.inputs[1].constant->as_int64(0) : -1;
  if (n == 0 || n < -1 || (n > 0 && p.bins != (onesided ? n / 2 + 1 : n))) return std::nullopt;
  return p;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.dft", "DFT", [](const LayerDesc& d) { return dft_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<DftKernel>(d.inputs[0].dtype, *dft_plan(d));
    }));

// ------------------------------------------------------------------------------------------------ STFT
struct StftParams {
  int64_t batch, length, frames, bins;  // signal [batch, length, width]; y [batch, frames, bins, 2]
  bool complex_in;
  int step_size;          // frame_step's element size (4, 8)
  int frame_size;         // frame_length's element size; 0: absent, the frame is the window's length
  int64_t window_length;  // 0: no window (rectangular)
};

template <typename T>
__global__ void stft_kernel(const T* x, const void* step_ptr, const T* window, const void* frame_ptr, T* y,
                            StftParams p) {
  int64_t step = read_int_scalar(step_ptr, p.step_size);
  int64_t frame = p.frame_size ? read_int_scalar(frame_ptr, p.frame_size) : p.window_length;
  // Clamped where the reference would fail (see the file comment).
  if (step < 1) step = 1;
  if (p.window_length && frame > p.window_length) frame = p.window_length;
  if (frame > p.length) frame = p.length;
  if (frame < 1) frame = 1;
  const int64_t total = p.batch * p.frames * p.bins, stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t width = p.complex_in ? 2 : 1;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t k = e % p.bins, f = (e / p.bins) % p.frames, b = e / (p.bins * p.frames);
    const int64_t start = f * step;
    // Samples past the signal's end (a device frame_step the static frame count does not fit) are zeros.
    const int64_t avail = start >= p.length ? 0 : (p.length - start < frame ? p.length - start : frame);
    double re = 0, im = 0;
    if (avail > 0)
      dft_bin(x + (b * p.length + start) * width, avail, 1, p.complex_in, window, frame, k, false, re, im);
    y[e * 2] = store_double<T>(re);
    y[e * 2 + 1] = store_double<T>(im);
  }
}

class StftKernel final : public CudaKernel {
 public:
  StftKernel(DType dtype, StftParams p) : dtype_(dtype), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t total = p_.batch * p_.frames * p_.bins;
    if (total == 0) return;
    dispatch_real(dtype_, [&](auto t) {
      using T = decltype(t);
      stft_kernel<T><<<blocks_for(total, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const T*>(in[0].data), in[1].data,
          p_.window_length && in.size() > 2 ? static_cast<const T*>(in[2].data) : nullptr,
          p_.frame_size ? in[3].data : nullptr, static_cast<T*>(out[0].data), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  DType dtype_;
  StftParams p_;
};

std::optional<StftParams> stft_plan(const LayerDesc& d) {
  if (d.inputs.size() < 2 || d.inputs.size() > 4 || d.outputs.size() != 1 || !d.inputs[0].present)
    return std::nullopt;
  const auto& x = d.inputs[0].dims;
  const DType dt = d.inputs[0].dtype;
  if (!is_real_dtype(dt) || d.outputs[0].dtype != dt || x.size() != 3 || (x[2] != 1 && x[2] != 2))
    return std::nullopt;
  const bool onesided = d.node->attrs.get_int("onesided", 1) != 0;
  StftParams p{};
  p.batch = x[0];
  p.length = x[1];
  p.complex_in = x[2] == 2;
  if (onesided && p.complex_in) return std::nullopt;
  if (!is_int_scalar(d.inputs[1])) return std::nullopt;
  p.step_size = static_cast<int>(dtype_size(d.inputs[1].dtype));
  const bool has_window = d.inputs.size() > 2 && d.inputs[2].present,
             has_frame = d.inputs.size() > 3 && d.inputs[3].present;
  if (!has_window && !has_frame) return std::nullopt;
  if (has_window) {
    const auto& w = d.inputs[2];
    if (w.dtype != dt || w.dims.size() != 1 || w.dims[0] < 1) return std::nullopt;
    p.window_length = w.dims[0];
  }
  if (has_frame) {
    if (!is_int_scalar(d.inputs[3])) return std::nullopt;
    p.frame_size = static_cast<int>(dtype_size(d.inputs[3].dtype));
  }
  const auto& y = d.outputs[0].dims;
  if (y.size() != 4 || y[0] != p.batch || y[3] != 2 || p.length < 1) return std::nullopt;
  p.frames = y[1];
  p.bins = y[2];
  // Constant scalars must give the static shape (as the builder inferred it); device ones are trusted.
  int64_t frame =
      has_frame ? (d.inputs[3].constant ? d.inputs[3].constant->as_int64(0) : -1) : p.window_length;
  if (frame >= 0) {
    if (frame < 1 || frame > p.length || (has_window && frame != p.window_length) ||
        p.bins != (onesided ? frame / 2 + 1 : frame))
      return std::nullopt;
    if (d.inputs[1].constant) {
      const int64_t step = d.inputs[1].constant->as_int64(0);
      if (step < 1 || p.frames != (p.length - frame) / step + 1) return std::nullopt;
    }
  }
  return p;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.stft", "STFT", [](const LayerDesc& d) { return stft_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<StftKernel>(d.inputs[0].dtype, *stft_plan(d));
    }));

}  // namespace
}  // namespace kiln::cuda::dft
