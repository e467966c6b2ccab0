// Tensors generated from a few scalars on CUDA: Range (cuda.range), EyeLike (cuda.eye_like), ConstantOfShape
// (cuda.constant_of_shape) and the windows HannWindow / HammingWindow / BlackmanWindow (cuda.window), one
// thread per output element, each in every numeric dtype. Output shapes are static (the builder inferred them
// from constants), so the shape operands are never read; Range reads start and delta from device memory.
#include <cstring>

#include "backends/cuda/movement_cuda.cuh"
#include "backends/cuda/numeric_cuda.cuh"

namespace kiln::cuda::generate {
namespace {

using movement::factory;
using movement::kThreads;
using movement::LayerDesc;
using movement::TensorView;

// ------------------------------------------------------------------------------------------------ Range
// out[i] = start + i * delta in the reference's arithmetic: float types in float (16-bit ones too), double in
// double, each product and sum rounded on its own (no fused multiply-add, which would round once);
// integers wrap (two's complement), as the reference's narrow C++ arithmetic truncated to the type does.
template <typename T>
__global__ void range_kernel(const T* start, const T* delta, T* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if constexpr (std::is_same_v<T, double>) {
    out[i] = __dadd_rn(start[0], __dmul_rn(static_cast<double>(i), delta[0]));
  } else if constexpr (is_device_float_v<T>) {
    const float a = to_float(start[0]), c = to_float(delta[0]);
    out[i] = from_float<T>(__fadd_rn(a, __fmul_rn(static_cast<float>(i), c)));
  } else {
    out[i] = static_cast<T>(static_cast<uint64_t>(start[0]) +
                            static_cast<uint64_t>(i) * static_cast<uint64_t>(delta[0]));
  }
}

class RangeKernel final : public CudaKernel {
 public:
  RangeKernel(DType dtype, int64_t n) : dtype_(dtype), n_(n) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    dispatch_numeric(dtype_, [&](auto t) {
      using T = decltype(t);
      range_kernel<T><<<blocks_for(n_, kThreads), kThreads, 0, rc.stream>>>(static_cast<const T*>(in[0].data),
                                                                            static_cast<const T*>(in[2].data),
                                                                            static_cast<T*>(out[0].data), n_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  DType dtype_;
  int64_t n_;
};

bool range_supported(const LayerDesc& d) {
  if (d.inputs.size() != 3 || d.outputs.size() != 1 || d.outputs[0].dims.size() != 1) return false;
  const DType dt = d.outputs[0].dtype;
  if (!is_numeric_dtype(dt)) return false;
  for (const auto& x : d.inputs)
    if (!x.present || x.dtype != dt || ops::numel(x.dims) != 1) return false;
  return true;
}

KILN_REGISTER_KERNEL(factory("cuda.range", "Range", range_supported,
                             [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
                               return std::make_unique<RangeKernel>(d.outputs[0].dtype, d.outputs[0].dims[0]);
                             }));

// ------------------------------------------------------------------------- EyeLike and ConstantOfShape
// Both write one of two bit patterns per element: EyeLike `one` where column - row == k and zeros elsewhere;
// ConstantOfShape the value everywhere (k out of reach). Moved as bits of the element's size.
template <typename B>
__global__ void fill_kernel(B* out, int64_t n, int64_t cols, int64_t k, B on, B off) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const int64_t i = e / cols, j = e - i * cols;
  out[e] = j - i == k ? on : off;
}

class FillKernel final : public CudaKernel {
 public:
  // `cols` and `k` place `on` (EyeLike); ConstantOfShape passes on == off.
  FillKernel(size_t size, int64_t n, int64_t cols, int64_t k, uint64_t on, uint64_t off)
      : size_(size), n_(n), cols_(cols < 1 ? 1 : cols), k_(k), on_(on), off_(off) {}
  void enqueue(const std::vector<TensorView>&, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (n_ == 0) return;
    movement::dispatch_bits(size_, [&](auto b) {
      using B = decltype(b);
      fill_kernel<B><<<blocks_for(n_, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<B*>(out[0].data), n_, cols_, k_, static_cast<B>(on_), static_cast<B>(off_));
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  size_t size_;
  int64_t n_, cols_, k_;
  uint64_t on_, off_;
};

// The bits of 1 in dtype `t` (little-endian, in the low bytes); nullopt for the types without one.
std::optional<uint64_t> one_bits(DType t) {
  switch (t) {
    case DType::Float:
      return 0x3f800000u;
    case DType::Double:
      return 0x3ff0000000000000ull;
    case DType::Float16:
      return 0x3c00u;
    case DType::BFloat16:
      return 0x3f80u;
    case DType::Bool:
      return 1u;
    default:
      if (is_numeric_dtype(t)) return 1u;
      return std::nullopt;
  }
}

bool eye_like_supported(const LayerDesc& d) {
  return d.inputs.size() == 1 && d.outputs.size() == 1 && d.inputs[0].dims.size() == 2 &&
         d.outputs[0].dims == d.inputs[0].dims && one_bits(d.outputs[0].dtype).has_value();
}

KILN_REGISTER_KERNEL(factory("cuda.eye_like", "EyeLike", eye_like_supported,
                             [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
                               const auto& o = d.outputs[0];
                               return std::make_unique<FillKernel>(dtype_size(o.dtype), ops::numel(o.dims),
                                                                   o.dims[1], d.node->attrs.get_int("k", 0),
                                                                   *one_bits(o.dtype), uint64_t{0});
                             }));

// The value's bits (float 0 when the attribute is absent); nullopt for a value the fill cannot move.
std::optional<uint64_t> constant_bits(const LayerDesc& d) {
  const TensorData* v = d.node->attrs.get_tensor("value");
  if (!v) return uint64_t{0};  // float32 0: all-zero bits
  const size_t size = dtype_size(v->dtype());
  if (v->numel() != 1 || v->dtype() != d.outputs[0].dtype || v->dtype() == DType::String ||
      !(size == 1 || size == 2 || size == 4 || size == 8))
    return std::nullopt;
  uint64_t bits = 0;
  std::memcpy(&bits, v->raw(), size);
  return bits;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.constant_of_shape", "ConstantOfShape",
    [](const LayerDesc& d) { return d.outputs.size() == 1 && constant_bits(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      const auto& o = d.outputs[0];
      const uint64_t bits = *constant_bits(d);
      return std::make_unique<FillKernel>(dtype_size(o.dtype), ops::numel(o.dims), 1, 0, bits, bits);
    }));

// ------------------------------------------------------------------------------------------- windows
// w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N) in double, evaluated in the reference's order with each
// operation rounded on its own; one value is [1].
// std::numbers::pi (nvcc compiles these files as C++17).
constexpr double kPi = 3.14159265358979323846;

struct WindowParams {
  double two_pi, a0, a1, a2, n_total;
  int64_t size;
};

template <typename T>
__global__ void window_kernel(T* out, WindowParams p) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= p.size) return;
  double w = 1.0;
  if (p.size != 1) {
    const double x = __ddiv_rn(__dmul_rn(p.two_pi, static_cast<double>(n)), p.n_total);
    w = __dadd_rn(__dsub_rn(p.a0, __dmul_rn(p.a1, cos(x))), __dmul_rn(p.a2, cos(__dmul_rn(2.0, x))));
  }
  out[n] = store_double<T>(w);
}

class WindowKernel final : public CudaKernel {
 public:
  WindowKernel(DType dtype, WindowParams p) : dtype_(dtype), p_(p) {}
  void enqueue(const std::vector<TensorView>&, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.size == 0) return;
    dispatch_numeric(dtype_, [&](auto t) {
      using T = decltype(t);
      window_kernel<T>
          <<<blocks_for(p_.size, kThreads), kThreads, 0, rc.stream>>>(static_cast<T*>(out[0].data), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  DType dtype_;
  WindowParams p_;
};

void register_window(const char* op, double a0, double a1, double a2) {
  register_kernel(factory(
      "cuda.window", op,
      [](const LayerDesc& d) {
        return d.inputs.size() == 1 && d.outputs.size() == 1 && d.outputs[0].dims.size() == 1 &&
               is_numeric_dtype(d.outputs[0].dtype);
      },
      [a0, a1, a2](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
        const int64_t size = d.outputs[0].dims[0];
        const bool periodic = d.node->attrs.get_int("periodic", 1) != 0;
        const WindowParams p{2 * kPi, a0, a1, a2, static_cast<double>(periodic ? size : size - 1), size};
        return std::make_unique<WindowKernel>(d.outputs[0].dtype, p);
      }));
}

const bool windows_registered = [] {
  register_window("HannWindow", 0.5, 0.5, 0);
  register_window("HammingWindow", 25.0 / 46, 21.0 / 46, 0);
  register_window("BlackmanWindow", 0.42, 0.5, 0.08);
  return true;
}();

}  // namespace
}  // namespace kiln::cuda::generate
