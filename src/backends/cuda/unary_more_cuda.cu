// cuda.unary_math: the element-wise unary ops cuda.elementwise leaves out — trigonometry and hyperbolic
// functions (Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh), Shrink, Gelu (exact and tanh), IsNaN / IsInf
// (float in, bool out) and Not (bool).
//
// One thread per element (grid-stride). Values load as float, compute in float and round once on store, as
// the reference does for float16/bfloat16; its float32 math runs in double (Shrink, Gelu), which float
// libdevice functions match within the sweep's float32 bound. Every activation of ops/activation.h is in
// cuda.elementwise already, so none is repeated here.
#include <cstdint>
#include <memory>
#include <string>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

enum class MathOp { Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Shrink, GeluErf, GeluTanh };

// The reference's formulas (src/ops/elementwise_unary.cpp). a, b: Shrink's lambd and bias.
template <MathOp op>
struct MathFn {
  float a, b;
  __device__ __forceinline__ float operator()(float x) const {
    if constexpr (op == MathOp::Tan)
      return tanf(x);
    else if constexpr (op == MathOp::Asin)
      return asinf(x);
    else if constexpr (op == MathOp::Acos)
      return acosf(x);
    else if constexpr (op == MathOp::Atan)
      return atanf(x);
    else if constexpr (op == MathOp::Sinh)
      return sinhf(x);
    else if constexpr (op == MathOp::Cosh)
      return coshf(x);
    else if constexpr (op == MathOp::Asinh)
      return asinhf(x);
    else if constexpr (op == MathOp::Acosh)
      return acoshf(x);
    else if constexpr (op == MathOp::Atanh)
      return atanhf(x);
    else if constexpr (op == MathOp::Shrink)  // comparisons as the reference writes them (NaN → 0)
      return x < -a ? x + b : (x > a ? x - b : 0.f);
    else if constexpr (op == MathOp::GeluErf)
      return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    else  // GeluTanh; 0.797...: sqrt(2 / pi)
      return 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  }
};

template <typename T, class F>
__global__ void math_kernel(const T* x, T* y, int64_t n, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = from_float<T>(f(to_float(x[i])));
}

// IsNaN (is_inf false) and IsInf with its detect_positive / detect_negative; bool stored as one byte.
template <typename T>
__global__ void classify_kernel(const T* x, uint8_t* y, int64_t n, bool is_inf, bool pos, bool neg) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float v = to_float(x[i]);
    y[i] = is_inf ? (isinf(v) && (v > 0.f ? pos : neg)) : isnan(v);
  }
}

// Not: any non-zero byte is true, as the reference reads bool.
__global__ void not_kernel(const uint8_t* x, uint8_t* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = x[i] ? 0 : 1;
}

// What one layer runs, fixed at create time.
struct UnaryPlan {
  enum class Kind { Math, Classify, Not } kind = Kind::Math;
  MathOp op = MathOp::Tan;
  DType dtype = DType::Float;  // the input's
  float a = 0.f, b = 0.f;      // Shrink's lambd, bias
  bool is_inf = false, pos = true, neg = true;
};

template <MathOp op>
void launch_math(const UnaryPlan& p, const void* x, void* y, int64_t n, cudaStream_t s) {
  dispatch_float_type(p.dtype, [&](auto t) {
    using T = decltype(t);
    math_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y),
                                                                n, MathFn<op>{p.a, p.b});
    KILN_CUDA_CHECK_LAUNCH();
  });
}

using MathLauncher = void (*)(const UnaryPlan&, const void*, void*, int64_t, cudaStream_t);

MathLauncher math_launcher(MathOp op) {
  switch (op) {
    case MathOp::Tan:
      return launch_math<MathOp::Tan>;
    case MathOp::Asin:
      return launch_math<MathOp::Asin>;
    case MathOp::Acos:
      return launch_math<MathOp::Acos>;
    case MathOp::Atan:
      return launch_math<MathOp::Atan>;
    case MathOp::Sinh:
      return launch_math<MathOp::Sinh>;
    case MathOp::Cosh:
      return launch_math<MathOp::Cosh>;
    case MathOp::Asinh:
      return launch_math<MathOp::Asinh>;
    case MathOp::Acosh:
      return launch_math<MathOp::Acosh>;
    case MathOp::Atanh:
      return launch_math<MathOp::Atanh>;
    case MathOp::Shrink:
      return launch_math<MathOp::Shrink>;
    case MathOp::GeluErf:
      return launch_math<MathOp::GeluErf>;
    case MathOp::GeluTanh:
      return launch_math<MathOp::GeluTanh>;
  }
  return nullptr;
}

class UnaryMathKernel final : public CudaKernel {
 public:
  explicit UnaryMathKernel(const UnaryPlan& p) : p_(p), math_(math_launcher(p.op)) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    const unsigned int grid = blocks_for(n, kThreads);
    switch (p_.kind) {
      case UnaryPlan::Kind::Math:
        math_(p_, in[0].data, out[0].data, n, rc.stream);
        break;
      case UnaryPlan::Kind::Classify:
        dispatch_float_type(p_.dtype, [&](auto t) {
          using T = decltype(t);
          classify_kernel<T><<<grid, kThreads, 0, rc.stream>>>(static_cast<const T*>(in[0].data),
                                                               static_cast<uint8_t*>(out[0].data), n,
                                                               p_.is_inf, p_.pos, p_.neg);
          KILN_CUDA_CHECK_LAUNCH();
        });
        break;
      case UnaryPlan::Kind::Not:
        not_kernel<<<grid, kThreads, 0, rc.stream>>>(static_cast<const uint8_t*>(in[0].data),
                                                     static_cast<uint8_t*>(out[0].data), n);
        KILN_CUDA_CHECK_LAUNCH();
        break;
    }
  }

 private:
  UnaryPlan p_;
  MathLauncher math_;
};

struct MathEntry {
  const char* op;
  MathOp math;
};
const MathEntry kMath[] = {
    {"Tan", MathOp::Tan},     {"Asin", MathOp::Asin},     {"Acos", MathOp::Acos},   {"Atan", MathOp::Atan},
    {"Sinh", MathOp::Sinh},   {"Cosh", MathOp::Cosh},     {"Asinh", MathOp::Asinh}, {"Acosh", MathOp::Acosh},
    {"Atanh", MathOp::Atanh}, {"Shrink", MathOp::Shrink},
};

// The plan for a layer, or false when the kernel cannot run it (dtype, shape, attributes). Attribute reads
// throw on a wrong type: the caller refuses then.
bool plan_unary(const LayerDesc& d, UnaryPlan& p) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return false;
  if (d.outputs[0].dims != d.inputs[0].dims) return false;
  const std::string& op = d.node->op;
  const DType in = d.inputs[0].dtype, out = d.outputs[0].dtype;
  p.dtype = in;
  if (op == "Not") {
    p.kind = UnaryPlan::Kind::Not;
    return in == DType::Bool && out == DType::Bool;
  }
  if (!is_cuda_float(in)) return false;
  if (op == "IsNaN" || op == "IsInf") {
    p.kind = UnaryPlan::Kind::Classify;
    p.is_inf = op == "IsInf";
    p.pos = d.node->attrs.get_int("detect_positive", 1) != 0;
    p.neg = d.node->attrs.get_int("detect_negative", 1) != 0;
    return out == DType::Bool;
  }
  if (out != in) return false;
  p.kind = UnaryPlan::Kind::Math;
  if (op == "Gelu") {
    const std::string approximate = d.node->attrs.get_string("approximate", "none");
    if (approximate != "none" && approximate != "tanh") return false;  // the reference fails it
    p.op = approximate == "tanh" ? MathOp::GeluTanh : MathOp::GeluErf;
    return true;
  }
  for (const MathEntry& e : kMath)
    if (op == e.op) {
      p.op = e.math;
      if (e.math == MathOp::Shrink) {
        p.a = d.node->attrs.get_float("lambd", 0.5f);
        p.b = d.node->attrs.get_float("bias", 0.f);
      }
      return true;
    }
  return false;
}

bool unary_math_supported(const LayerDesc& d) {
  UnaryPlan p;
  try {
    return plan_unary(d, p);
  } catch (const Error&) {
    return false;
  }
}

std::unique_ptr<backend::Kernel> create_unary_math(const LayerDesc& d) {
  UnaryPlan p;
  if (!plan_unary(d, p)) throw Error("cuda.unary_math: layer '" + d.node->name + "' is not supported");
  return std::make_unique<UnaryMathKernel>(p);
}

KernelFactory unary_math_factory(const std::string& op) {
  return {.name = "cuda.unary_math",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = unary_math_supported,
          .create = create_unary_math};
}

KILN_REGISTER_KERNEL(unary_math_factory("Tan"));
KILN_REGISTER_KERNEL(unary_math_factory("Asin"));
KILN_REGISTER_KERNEL(unary_math_factory("Acos"));
KILN_REGISTER_KERNEL(unary_math_factory("Atan"));
KILN_REGISTER_KERNEL(unary_math_factory("Sinh"));
KILN_REGISTER_KERNEL(unary_math_factory("Cosh"));
KILN_REGISTER_KERNEL(unary_math_factory("Asinh"));
KILN_REGISTER_KERNEL(unary_math_factory("Acosh"));
KILN_REGISTER_KERNEL(unary_math_factory("Atanh"));
KILN_REGISTER_KERNEL(unary_math_factory("Shrink"));
KILN_REGISTER_KERNEL(unary_math_factory("Gelu"));
KILN_REGISTER_KERNEL(unary_math_factory("IsNaN"));
KILN_REGISTER_KERNEL(unary_math_factory("IsInf"));
KILN_REGISTER_KERNEL(unary_math_factory("Not"));

}  // namespace
}  // namespace kiln::cuda
