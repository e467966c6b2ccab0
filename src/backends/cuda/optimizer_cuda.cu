// cuda.optimizer: the ai.onnx.preview.training optimizers Adagrad, Momentum (standard and nesterov) and Adam
// (src/ops/optimizers.cpp is the oracle). Inputs R (learning rate), T (update count), then n tensors X, n
// gradients G and n of each state (Adagrad: H; Momentum: V; Adam: V, H); outputs the n updated X, then the
// n updated states of each kind.
//
// R and T are usually graph inputs (a training loop feeds them every step), so they are read on the device
// inside the kernel, never on the host. X, G and the states share one dtype (float, float16, bfloat16 or
// double); the update is computed in double per element, as the reference does, and rounded once on store
// (the kernels are element-wise and tiny next to the model's own work, so double costs nothing that
// matters). One launch per optimized tensor, one thread per element.
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "ops/util.h"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;
constexpr const char* kTraining = "ai.onnx.preview.training";

enum class Method { Adagrad, Momentum, Adam };
// The dtypes R and T may have (the reference reads either as a double).
enum class ScalarKind { F32, F64, F16, BF16, I32, I64 };

// Attributes, as the reference reads them (float attributes widened to double).
struct Params {
  Method method = Method::Adagrad;
  bool nesterov = false;
  double norm = 0, decay = 0, epsilon = 1e-6, alpha = 0, beta = 0, norm_post = 0;
};

__device__ __forceinline__ double load_scalar(const void* p, ScalarKind k) {
  switch (k) {
    case ScalarKind::F32:
      return *static_cast<const float*>(p);
    case ScalarKind::F64:
      return *static_cast<const double*>(p);
    case ScalarKind::F16:
      return __half2float(*static_cast<const __half*>(p));
    case ScalarKind::BF16:
      return __bfloat162float(*static_cast<const __nv_bfloat16*>(p));
    case ScalarKind::I32:
      return *static_cast<const int32_t*>(p);
    default:
      return static_cast<double>(*static_cast<const int64_t*>(p));
  }
}

template <typename T>
__device__ __forceinline__ double load(T v) {
  if constexpr (std::is_same_v<T, double>)
    return v;
  else
    return to_float(v);
}
// The reference's store: 16-bit types round from float (double -> float -> half), float from double.
template <typename T>
__device__ __forceinline__ T store(double v) {
  if constexpr (std::is_same_v<T, double>)
    return v;
  else
    return from_float<T>(static_cast<float>(v));
}

// One tensor's update. s2 / s2_out are Adam's second state (null otherwise); a null output was omitted.
template <typename T>
__global__ void optimizer_kernel(Params p, const void* r_ptr, ScalarKind r_kind, const void* t_ptr,
                                 ScalarKind t_kind, const T* x, const T* g, const T* s1, const T* s2,
                                 T* x_out, T* s1_out, T* s2_out, int64_t count) {
  const double r = load_scalar(r_ptr, r_kind), t = load_scalar(t_ptr, t_kind);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < count; e += stride) {
    const double xv = load(x[e]), grad = p.norm * xv + load(g[e]);  // the regularized gradient
    double x_new, n1, n2 = 0;
    if (p.method == Method::Adagrad) {
      const double rate = r / (1 + t * p.decay);
      n1 = load(s1[e]) + grad * grad;
      x_new = xv - rate * grad / (sqrt(n1) + p.epsilon);
    } else if (p.method == Method::Momentum) {
      const double beta = t > 0 ? p.beta : 1.0;
      n1 = p.alpha * load(s1[e]) + beta * grad;
      x_new = xv - r * (p.nesterov ? grad + p.alpha * n1 : n1);
    } else {  // Adam
      n1 = p.alpha * load(s1[e]) + (1 - p.alpha) * grad;
      n2 = p.beta * load(s2[e]) + (1 - p.beta) * grad * grad;
      const double rate = t > 0 ? r * sqrt(1 - pow(p.beta, t)) / (1 - pow(p.alpha, t)) : r;
      x_new = (1 - p.norm_post) * (xv - rate * n1 / (sqrt(n2) + p.epsilon));
    }
    if (x_out) x_out[e] = store<T>(x_new);
    if (s1_out) s1_out[e] = store<T>(n1);
    if (s2_out) s2_out[e] = store<T>(n2);
  }
}

struct Plan {
  Params params;
  size_t n = 0, states = 1;
  DType dtype = DType::Undefined;
  ScalarKind r_kind = ScalarKind::F32, t_kind = ScalarKind::I64;
  std::vector<int64_t> counts;  // elements of each optimized tensor
};

bool scalar_kind(const LayerDesc::Operand& o, ScalarKind& k) {
  if (!o.present || ops::numel(o.dims) != 1) return false;  // the reference needs one element
  switch (o.dtype) {
    case DType::Float:
      k = ScalarKind::F32;
      return true;
    case DType::Double:
      k = ScalarKind::F64;
      return true;
    case DType::Float16:
      k = ScalarKind::F16;
      return true;
    case DType::BFloat16:
      k = ScalarKind::BF16;
      return true;
    case DType::Int32:
      k = ScalarKind::I32;
      return true;
    case DType::Int64:
      k = ScalarKind::I64;
      return true;
    default:
      return false;
  }
}

// The plan, or false when this kernel cannot run the layer (or the reference would refuse it). Throws on
// attributes of the wrong type.
bool plan_optimizer(const LayerDesc& d, Plan& p) {
  const std::string& op = d.node->op;
  const Attributes& a = d.node->attrs;
  p.params.method = op == "Adagrad" ? Method::Adagrad : op == "Momentum" ? Method::Momentum : Method::Adam;
  p.states = op == "Adam" ? 2 : 1;
  const size_t groups = 2 + p.states, in = d.inputs.size();
  if (in < 2 + groups || (in - 2) % groups || d.outputs.size() != (in - 2) / groups * (groups - 1))
    return false;
  p.n = (in - 2) / groups;
  if (!scalar_kind(d.inputs[0], p.r_kind) || !scalar_kind(d.inputs[1], p.t_kind)) return false;
  p.dtype = d.inputs[2].dtype;
  if (!is_cuda_float(p.dtype) && p.dtype != DType::Double) return false;
  for (size_t i = 0; i < p.n; ++i) {
    const auto& x = d.inputs[2 + i];
    for (size_t g = 0; g < groups; ++g) {
      const auto& v = d.inputs[2 + g * p.n + i];
      if (!v.present || v.dtype != p.dtype || v.dims != x.dims) return false;
    }
    for (size_t g = 0; g + 1 < groups; ++g) {
      const auto& o = d.outputs[g * p.n + i];
      if (o.present && (o.dtype != p.dtype || o.dims != x.dims)) return false;
    }
    p.counts.push_back(ops::numel(x.dims));
  }
  p.params.norm = a.get_float("norm_coefficient", 0.0f);
  if (p.params.method == Method::Adagrad) {
    p.params.decay = a.get_float("decay_factor", 0.0f);
    p.params.epsilon = a.get_float("epsilon", 1e-6f);
  } else if (p.params.method == Method::Momentum) {
    for (const char* required : {"alpha", "beta", "mode", "norm_coefficient"})
      if (!a.has(required)) return false;
    const std::string mode = a.get_string("mode", "standard");
    if (mode != "standard" && mode != "nesterov") return false;
    p.params.nesterov = mode == "nesterov";
    p.params.alpha = a.get_float("alpha", 0.0f);
    p.params.beta = a.get_float("beta", 0.0f);
  } else {
    p.params.alpha = a.get_float("alpha", 0.9f);
    p.params.beta = a.get_float("beta", 0.999f);
    p.params.epsilon = a.get_float("epsilon", 1e-6f);
    p.params.norm_post = a.get_float("norm_coefficient_post", 0.0f);
  }
  return true;
}

class OptimizerKernel final : public CudaKernel {
 public:
  explicit OptimizerKernel(Plan p) : p_(std::move(p)) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.dtype == DType::Double)
      launch<double>(in, out, rc);
    else
      dispatch_float_type(p_.dtype, [&](auto tag) { launch<decltype(tag)>(in, out, rc); });
  }
  std::string describe() const override { return "one thread per element, R and T read on the device"; }

 private:
  template <typename T>
  void launch(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
              const RunContext& rc) const {
    const size_t n = p_.n;
    for (size_t i = 0; i < n; ++i) {
      if (p_.counts[i] == 0) continue;
      auto input = [&](size_t g) { return static_cast<const T*>(in[2 + g * n + i].data); };
      auto output = [&](size_t g) { return static_cast<T*>(out[g * n + i].data); };  // null when omitted
      const bool adam = p_.states == 2;
      optimizer_kernel<T><<<blocks_for(p_.counts[i], kThreads), kThreads, 0, rc.stream>>>(
          p_.params, in[0].data, p_.r_kind, in[1].data, p_.t_kind, input(0), input(1), input(2),
          adam ? input(3) : nullptr, output(0), output(1), adam ? output(2) : nullptr, p_.counts[i]);
      KILN_CUDA_CHECK_LAUNCH();
    }
  }

  Plan p_;
};

KILN_REGISTER_KERNEL((planned_factory<Plan, OptimizerKernel>("cuda.optimizer", "Adagrad", plan_optimizer,
                                                             kTraining)));
KILN_REGISTER_KERNEL((planned_factory<Plan, OptimizerKernel>("cuda.optimizer", "Momentum", plan_optimizer,
                                                             kTraining)));
KILN_REGISTER_KERNEL((planned_factory<Plan, OptimizerKernel>("cuda.optimizer", "Adam", plan_optimizer,
                                                             kTraining)));

}  // namespace
}  // namespace kiln::cuda
