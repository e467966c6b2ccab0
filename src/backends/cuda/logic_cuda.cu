// CUDA comparisons and logic (cuda.logic): Equal, Less, Greater, LessOrEqual, GreaterOrEqual (→ bool), And,
// Or, Xor on bool (Not is unary_more_cuda.cu's), and Where (cond ? x : y). Numpy broadcasting of any rank
// (broadcast_cuda.cuh), one thread per output element.
//
// Comparisons take float, float16, bfloat16, double, int32, int64 and bool operands and compare what the
// reference compares: float16/bfloat16 widened to float, bool bytes as (byte != 0). Where moves its elements
// as bits (any 1/2/4/8-byte dtype). The op is a kernel argument rather than a template parameter: one kernel
// per element type keeps nvcc's work small, and the branch is uniform across the grid.
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/broadcast_cuda.cuh"
#include "ops/util.h"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

// A bool element: the reference reads any non-zero byte as true.
struct BoolByte {
  uint8_t v;
};

__device__ __forceinline__ float load(float v) {
  return v;
}
__device__ __forceinline__ float load(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float load(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
__device__ __forceinline__ double load(double v) {
  return v;
}
__device__ __forceinline__ int32_t load(int32_t v) {
  return v;
}
__device__ __forceinline__ int64_t load(int64_t v) {
  return v;
}
__device__ __forceinline__ bool load(BoolByte v) {
  return v.v != 0;
}

enum class Logic { Eq, Lt, Gt, Le, Ge, And, Or, Xor };

Logic logic_of(const std::string& op) {
  if (op == "Equal") return Logic::Eq;
  if (op == "Less") return Logic::Lt;
  if (op == "Greater") return Logic::Gt;
  if (op == "LessOrEqual") return Logic::Le;
  if (op == "GreaterOrEqual") return Logic::Ge;
  if (op == "And") return Logic::And;
  if (op == "Or") return Logic::Or;
  return Logic::Xor;
}

bool is_bool_op(Logic op) {
  return op == Logic::And || op == Logic::Or || op == Logic::Xor;
}

template <typename T, typename I>
__global__ void logic_kernel(const T* a, const T* b, uint8_t* y, I n, bcast::Params<2> p, Logic op) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    bcast::offsets<2>(p, i, off);
    const auto x = load(a[off[0]]), z = load(b[off[1]]);
    bool r;
    switch (op) {
      case Logic::Eq:
        r = x == z;
        break;
      case Logic::Lt:
        r = x < z;
        break;
      case Logic::Gt:
        r = x > z;
        break;
      case Logic::Le:
        r = x <= z;
        break;
      case Logic::Ge:
        r = x >= z;
        break;
      case Logic::And:
        r = static_cast<bool>(x) && static_cast<bool>(z);
        break;
      case Logic::Or:
        r = static_cast<bool>(x) || static_cast<bool>(z);
        break;
      default:
        r = static_cast<bool>(x) != static_cast<bool>(z);
        break;
    }
    y[i] = r ? 1 : 0;
  }
}

// Calls f(T{}) with T the device type of a comparison operand's dtype.
template <typename F>
void dispatch_compare(DType t, F&& f) {
  switch (t) {
    case DType::Float:
      return f(float{});
    case DType::Float16:
      return f(__half{});
    case DType::BFloat16:
      return f(__nv_bfloat16{});
    case DType::Double:
      return f(double{});
    case DType::Int32:
      return f(int32_t{});
    case DType::Int64:
      return f(int64_t{});
    case DType::Bool:
      return f(BoolByte{});
    default:
      throw Error(std::string("cuda.logic: unsupported dtype ") + dtype_name(t));
  }
}

bool comparable(DType t) {
  return t == DType::Float || t == DType::Float16 || t == DType::BFloat16 || t == DType::Double ||
         t == DType::Int32 || t == DType::Int64 || t == DType::Bool;
}

// Every input present, one output, opset >= 7 (earlier ones broadcast by attribute).
bool plain_layer(const LayerDesc& d, size_t inputs) {
  if (d.opset < 7 || d.inputs.size() != inputs || d.outputs.size() != 1 || !d.outputs[0].present)
    return false;
  for (const auto& o : d.inputs)
    if (!o.present) return false;
  return true;
}

std::optional<bcast::Params<2>> logic_plan(const LayerDesc& d) {
  if (!plain_layer(d, 2)) return std::nullopt;
  const DType t = d.inputs[0].dtype;
  const Logic op = logic_of(d.node->op);
  if (d.inputs[1].dtype != t || d.outputs[0].dtype != DType::Bool) return std::nullopt;
  if (is_bool_op(op) ? t != DType::Bool : !comparable(t)) return std::nullopt;
  return bcast::plan<2>({d.inputs[0].dims, d.inputs[1].dims}, d.outputs[0].dims);
}

class LogicKernel final : public CudaKernel {
 public:
  LogicKernel(bcast::Params<2> p, DType dtype, Logic op) : p_(p), dtype_(dtype), op_(op) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    dispatch_compare(dtype_, [&](auto t) {
      using T = decltype(t);
      const T* a = static_cast<const T*>(in[0].data);
      const T* b = static_cast<const T*>(in[1].data);
      auto* y = static_cast<uint8_t*>(out[0].data);
      if (bcast::fits32(n))
        logic_kernel<T, uint32_t>
            <<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(a, b, y, static_cast<uint32_t>(n), p_, op_);
      else
        logic_kernel<T, int64_t><<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(a, b, y, n, p_, op_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  bcast::Params<2> p_;
  DType dtype_;
  Logic op_;
};

// ================================================================================================ Where
template <typename U, typename I>
__global__ void where_kernel(const uint8_t* c, const U* x, const U* z, U* y, I n, bcast::Params<3> p) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[3];
    bcast::offsets<3>(p, i, off);
    y[i] = c[off[0]] != 0 ? x[off[1]] : z[off[2]];
  }
}

std::optional<bcast::Params<3>> where_plan(const LayerDesc& d) {
  if (!plain_layer(d, 3)) return std::nullopt;
  const DType t = d.inputs[1].dtype;
  if (d.inputs[0].dtype != DType::Bool || d.inputs[2].dtype != t || d.outputs[0].dtype != t ||
      t == DType::String || t == DType::Undefined)
    return std::nullopt;
  const size_t s = dtype_size(t);
  if (s != 1 && s != 2 && s != 4 && s != 8) return std::nullopt;
  return bcast::plan<3>({d.inputs[0].dims, d.inputs[1].dims, d.inputs[2].dims}, d.outputs[0].dims);
}

class WhereKernel final : public CudaKernel {
 public:
  WhereKernel(bcast::Params<3> p, DType dtype) : p_(p), dtype_(dtype) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    dispatch_bits(dtype_size(dtype_), [&](auto u) {
      using U = decltype(u);
      const auto* c = static_cast<const uint8_t*>(in[0].data);
      const U* x = static_cast<const U*>(in[1].data);
      const U* z = static_cast<const U*>(in[2].data);
      U* y = static_cast<U*>(out[0].data);
      if (bcast::fits32(n))
        where_kernel<U, uint32_t>
            <<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(c, x, z, y, static_cast<uint32_t>(n), p_);
      else
        where_kernel<U, int64_t><<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(c, x, z, y, n, p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  bcast::Params<3> p_;
  DType dtype_;
};

// ========================================================================================= registration
KernelFactory make_factory(const std::string& op, std::function<bool(const LayerDesc&)> supports,
                           std::function<std::unique_ptr<backend::Kernel>(const LayerDesc&)> create) {
  return {.name = "cuda.logic",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = std::move(supports),
          .create = std::move(create)};
}

KernelFactory logic_factory(const std::string& op) {
  return make_factory(
      op, [](const LayerDesc& d) { return logic_plan(d).has_value(); },
      [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
        return std::make_unique<LogicKernel>(*logic_plan(d), d.inputs[0].dtype, logic_of(d.node->op));
      });
}

KILN_REGISTER_KERNEL(logic_factory("Equal"));
KILN_REGISTER_KERNEL(logic_factory("Less"));
KILN_REGISTER_KERNEL(logic_factory("Greater"));
KILN_REGISTER_KERNEL(logic_factory("LessOrEqual"));
KILN_REGISTER_KERNEL(logic_factory("GreaterOrEqual"));
KILN_REGISTER_KERNEL(logic_factory("And"));
KILN_REGISTER_KERNEL(logic_factory("Or"));
KILN_REGISTER_KERNEL(logic_factory("Xor"));
KILN_REGISTER_KERNEL(make_factory(
    "Where", [](const LayerDesc& d) { return where_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<WhereKernel>(*where_plan(d), d.inputs[1].dtype);
    }));

}  // namespace
}  // namespace kiln::cuda
