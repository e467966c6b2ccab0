// CUDA integer arithmetic and Mod: Add, Sub, Mul, Div, Max, Min on int32/int64 (cuda.integer_arith; the float
// dtypes are cuda.elementwise's), and Mod on int32/int64 and float/float16/bfloat16/double (cuda.mod). Numpy
// broadcasting of any rank (broadcast_cuda.cuh), one thread per output element.
//
// The reference's integer rules: add, sub and mul wrap (two's complement); Div truncates toward zero and
// INT_MIN / -1 wraps to INT_MIN; Mod takes the divisor's sign unless fmod=1 (then the dividend's, as C's %).
// Where the reference fails at run time, on division or modulo by zero, the kernel cannot report (no host
// reads in a captured graph): it writes 0 there instead of what the hardware's division would leave.
// Float Mod computes in float for float16/bfloat16 (fmodf is exact) and rounds once, as the reference.
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/broadcast_cuda.cuh"
#include "ops/util.h"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

enum class Arith { Add, Sub, Mul, Div, Max, Min, Mod };

Arith arith_of(const std::string& op) {
  if (op == "Add") return Arith::Add;
  if (op == "Sub") return Arith::Sub;
  if (op == "Mul") return Arith::Mul;
  if (op == "Div") return Arith::Div;
  if (op == "Max") return Arith::Max;
  if (op == "Min") return Arith::Min;
  return Arith::Mod;
}

// a op b on integers; `c_mod`: Mod keeps the dividend's sign (fmod=1).
template <typename T>
__device__ __forceinline__ T int_apply(Arith op, T a, T b, bool c_mod) {
  using W = std::make_unsigned_t<T>;
  switch (op) {
    case Arith::Add:
      return static_cast<T>(static_cast<W>(a) + static_cast<W>(b));
    case Arith::Sub:
      return static_cast<T>(static_cast<W>(a) - static_cast<W>(b));
    case Arith::Mul:
      return static_cast<T>(static_cast<W>(a) * static_cast<W>(b));
    case Arith::Div:
      if (b == 0) return 0;
      if (b == -1) return static_cast<T>(W{0} - static_cast<W>(a));  // INT_MIN / -1 would trap
      return static_cast<T>(a / b);
    case Arith::Max:
      return a < b ? b : a;
    case Arith::Min:
      return b < a ? b : a;
    default: {  // Mod
      if (b == 0 || b == -1) return 0;
      T r = static_cast<T>(a % b);
      if (!c_mod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
      return r;
    }
  }
}

template <typename T, typename I>
__global__ void int_arith_kernel(const T* a, const T* b, T* y, I n, bcast::Params<2> p, Arith op,
                                 bool c_mod) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    bcast::offsets<2>(p, i, off);
    y[i] = int_apply<T>(op, a[off[0]], b[off[1]], c_mod);
  }
}

// Float Mod in the compute type (float for the 16-bit dtypes): C's fmod, moved to the divisor's sign unless
// c_mod.
__device__ __forceinline__ float fmod_of(float a, float b) {
  return fmodf(a, b);
}
__device__ __forceinline__ double fmod_of(double a, double b) {
  return ::fmod(a, b);
}
template <typename C>
__device__ __forceinline__ C float_mod(C a, C b, bool c_mod) {
  C r = fmod_of(a, b);
  if (!c_mod && r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

template <typename T, typename I>
__global__ void float_mod_kernel(const T* a, const T* b, T* y, I n, bcast::Params<2> p, bool c_mod) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    bcast::offsets<2>(p, i, off);
    if constexpr (std::is_same_v<T, double>)
      y[i] = float_mod(a[off[0]], b[off[1]], c_mod);
    else
      y[i] = from_float<T>(float_mod(to_float(a[off[0]]), to_float(b[off[1]]), c_mod));
  }
}

// Calls f(T{}) with T the device type of dtype t.
template <typename F>
void dispatch_arith(DType t, F&& f) {
  switch (t) {
    case DType::Int32:
      return f(int32_t{});
    case DType::Int64:
      return f(int64_t{});
    case DType::Float:
      return f(float{});
    case DType::Float16:
      return f(__half{});
    case DType::BFloat16:
      return f(__nv_bfloat16{});
    case DType::Double:
      return f(double{});
    default:
      throw Error(std::string("CUDA arithmetic: unsupported dtype ") + dtype_name(t));
  }
}

std::optional<bcast::Params<2>> arith_plan(const LayerDesc& d) {
  if (d.opset < 7 || d.inputs.size() != 2 || d.outputs.size() != 1 || !d.inputs[0].present ||
      !d.inputs[1].present || !d.outputs[0].present)
    return std::nullopt;
  const DType t = d.inputs[0].dtype;
  if (d.inputs[1].dtype != t || d.outputs[0].dtype != t) return std::nullopt;
  const bool integer = t == DType::Int32 || t == DType::Int64;
  const bool real = t == DType::Float || t == DType::Float16 || t == DType::BFloat16 || t == DType::Double;
  if (!integer && !(real && d.node->op == "Mod")) return std::nullopt;
  return bcast::plan<2>({d.inputs[0].dims, d.inputs[1].dims}, d.outputs[0].dims);
}

class ArithKernel final : public CudaKernel {
 public:
  ArithKernel(bcast::Params<2> p, DType dtype, Arith op, bool c_mod)
      : p_(p), dtype_(dtype), op_(op), c_mod_(c_mod) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    dispatch_arith(dtype_, [&](auto t) {
      using T = decltype(t);
      const T* a = static_cast<const T*>(in[0].data);
      const T* b = static_cast<const T*>(in[1].data);
      T* y = static_cast<T*>(out[0].data);
      const unsigned int grid = blocks_for(n, kThreads);
      if constexpr (std::is_integral_v<T>) {
        if (bcast::fits32(n))
          int_arith_kernel<T, uint32_t>
              <<<grid, kThreads, 0, rc.stream>>>(a, b, y, static_cast<uint32_t>(n), p_, op_, c_mod_);
        else
          int_arith_kernel<T, int64_t><<<grid, kThreads, 0, rc.stream>>>(a, b, y, n, p_, op_, c_mod_);
      } else {
        if (bcast::fits32(n))
          float_mod_kernel<T, uint32_t>
              <<<grid, kThreads, 0, rc.stream>>>(a, b, y, static_cast<uint32_t>(n), p_, c_mod_);
        else
          float_mod_kernel<T, int64_t><<<grid, kThreads, 0, rc.stream>>>(a, b, y, n, p_, c_mod_);
      }
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  bcast::Params<2> p_;
  DType dtype_;
  Arith op_;
  bool c_mod_;
};

KernelFactory arith_factory(const std::string& name, const std::string& op) {
  return {.name = name,
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports =
              [](const LayerDesc& d) {
                try {
                  d.node->attrs.get_int("fmod", 0);  // of the wrong type: refuse
                } catch (const Error&) {
                  return false;
                }
                return arith_plan(d).has_value();
              },
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<ArithKernel>(*arith_plan(d), d.inputs[0].dtype, arith_of(d.node->op),
                                                 d.node->attrs.get_int("fmod", 0) != 0);
          }};
}

KILN_REGISTER_KERNEL(arith_factory("cuda.integer_arith", "Add"));
KILN_REGISTER_KERNEL(arith_factory("cuda.integer_arith", "Sub"));
KILN_REGISTER_KERNEL(arith_factory("cuda.integer_arith", "Mul"));
KILN_REGISTER_KERNEL(arith_factory("cuda.integer_arith", "Div"));
KILN_REGISTER_KERNEL(arith_factory("cuda.integer_arith", "Max"));
KILN_REGISTER_KERNEL(arith_factory("cuda.integer_arith", "Min"));
KILN_REGISTER_KERNEL(arith_factory("cuda.mod", "Mod"));

}  // namespace
}  // namespace kiln::cuda
