// CUDA Add, Sub, Mul, Div, Mod and BitShift on every numeric dtype (cuda.numeric_binary), numpy broadcasting
// of any rank through broadcast_cuda.cuh's plan, one thread per output element. Priority 1: the float kernel
// (cuda.elementwise) keeps the dtypes it takes; int32/int64 arithmetic and Mod of every numeric dtype are
// here.
//
// Values follow the reference (ops/elementwise_binary.cpp) in its compute type: half types in float, rounded
// once on store; integers wrap (two's complement; computed unsigned, as C++'s signed overflow is undefined);
// Div truncates toward zero and INT_MIN / -1 wraps; Mod takes the divisor's sign unless fmod=1; bool Add,
// Sub, Mul are the C++ bool conversions of the int results (or, xor, and). BitShift takes unsigned integers
// only and shifting by the width or more gives 0. Where the reference fails at run time — integer (or bool)
// division or modulo by zero — the kernel cannot report (no host reads in a captured graph): it writes 0
// there.
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/broadcast_cuda.cuh"
#include "backends/cuda/numeric_types_cuda.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

enum class Op { Add, Sub, Mul, Div, Mod, ShiftLeft, ShiftRight };

template <class T>
__device__ __forceinline__ typename T::compute apply(Op op, typename T::compute a, typename T::compute b,
                                                     bool c_mod) {
  using C = typename T::compute;
  if constexpr (T::is_float) {
    switch (op) {
      case Op::Add:
        return a + b;
      case Op::Sub:
        return a - b;
      case Op::Mul:
        return a * b;
      case Op::Div:
        return a / b;
      case Op::Mod: {
        C r;
        if constexpr (std::is_same_v<C, double>)
          r = ::fmod(a, b);
        else
          r = fmodf(a, b);
        if (!c_mod && r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
      }
      default:
        return C(0);  // shifts: refused by supports()
    }
  } else if constexpr (T::is_bool) {
    switch (op) {
      case Op::Add:
        return a || b;
      case Op::Sub:
        return a != b;
      case Op::Mul:
        return a && b;
      case Op::Div:
        return b ? a : false;  // division by false: the reference fails, we write 0
      default:
        return false;  // Mod, shifts: refused by supports()
    }
  } else {
    using W = numeric::WrapT<C>;
    switch (op) {
      case Op::Add:
        return static_cast<C>(static_cast<W>(a) + static_cast<W>(b));
      case Op::Sub:
        return static_cast<C>(static_cast<W>(a) - static_cast<W>(b));
      case Op::Mul:
        return static_cast<C>(static_cast<W>(a) * static_cast<W>(b));
      case Op::Div:
        if (b == 0) return C(0);
        if constexpr (std::is_signed_v<C>)
          if (b == C(-1)) return static_cast<C>(W{0} - static_cast<W>(a));  // INT_MIN / -1 would trap
        return static_cast<C>(a / b);
      case Op::Mod: {
        if (b == 0) return C(0);
        if constexpr (std::is_signed_v<C>) {
          if (b == C(-1)) return C(0);
          C r = static_cast<C>(a % b);
          if (!c_mod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<C>(r + b);
          return r;
        } else {
          return static_cast<C>(a % b);
        }
      }
      case Op::ShiftLeft:
      case Op::ShiftRight:
        if constexpr (std::is_unsigned_v<C>) {
          if (b >= sizeof(C) * 8) return C(0);
          return static_cast<C>(op == Op::ShiftLeft ? static_cast<W>(a) << b : static_cast<W>(a) >> b);
        } else {
          return C(0);  // signed shifts: refused by supports()
        }
    }
    return C(0);
  }
}

template <class T, typename I>
__global__ void numeric_binary_kernel(const typename T::storage* a, const typename T::storage* b,
                                      typename T::storage* y, I n, bcast::Params<2> p, Op op, bool c_mod) {
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[2];
    bcast::offsets<2>(p, i, off);
    y[i] = T::store(apply<T>(op, T::load(a[off[0]]), T::load(b[off[1]]), c_mod));
  }
}

// The op of a node; nullopt for a BitShift whose direction is neither LEFT nor RIGHT.
std::optional<Op> op_of(const LayerDesc& d) {
  const std::string& op = d.node->op;
  if (op == "Add") return Op::Add;
  if (op == "Sub") return Op::Sub;
  if (op == "Mul") return Op::Mul;
  if (op == "Div") return Op::Div;
  if (op == "Mod") return Op::Mod;
  const std::string dir = d.node->attrs.get_string("direction", "");
  if (dir == "LEFT") return Op::ShiftLeft;
  if (dir == "RIGHT") return Op::ShiftRight;
  return std::nullopt;
}

bool is_unsigned_int(DType t) {
  return t == DType::UInt8 || t == DType::UInt16 || t == DType::UInt32 || t == DType::UInt64;
}

std::optional<bcast::Params<2>> numeric_binary_plan(const LayerDesc& d) {
  if (d.opset < 7 || d.inputs.size() != 2 || d.outputs.size() != 1 || !d.inputs[0].present ||
      !d.inputs[1].present || !d.outputs[0].present)
    return std::nullopt;
  const DType t = d.inputs[0].dtype;
  if (!numeric::is_numeric(t) || d.inputs[1].dtype != t || d.outputs[0].dtype != t) return std::nullopt;
  try {
    d.node->attrs.get_int("fmod", 0);  // of the wrong type: refuse
    const std::optional<Op> op = op_of(d);
    if (!op) return std::nullopt;
    if ((*op == Op::ShiftLeft || *op == Op::ShiftRight) && !is_unsigned_int(t)) return std::nullopt;
    if (*op == Op::Mod && t == DType::Bool) return std::nullopt;
  } catch (const Error&) {
    return std::nullopt;
  }
  return bcast::plan<2>({d.inputs[0].dims, d.inputs[1].dims}, d.outputs[0].dims);
}

class NumericBinaryKernel final : public CudaKernel {
 public:
  NumericBinaryKernel(bcast::Params<2> p, DType dtype, Op op, bool c_mod)
      : p_(p), dtype_(dtype), op_(op), c_mod_(c_mod) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    numeric::dispatch(dtype_, [&](auto t) {
      using T = decltype(t);
      using S = typename T::storage;
      const S* a = static_cast<const S*>(in[0].data);
      const S* b = static_cast<const S*>(in[1].data);
      S* y = static_cast<S*>(out[0].data);
      const unsigned int grid = blocks_for(n, kThreads);
      if (bcast::fits32(n))
        numeric_binary_kernel<T, uint32_t>
            <<<grid, kThreads, 0, rc.stream>>>(a, b, y, static_cast<uint32_t>(n), p_, op_, c_mod_);
      else
        numeric_binary_kernel<T, int64_t><<<grid, kThreads, 0, rc.stream>>>(a, b, y, n, p_, op_, c_mod_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  bcast::Params<2> p_;
  DType dtype_;
  Op op_;
  bool c_mod_;
};

KernelFactory numeric_binary_factory(const std::string& op) {
  return {.name = "cuda.numeric_binary",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 1,
          .supports = [](const LayerDesc& d) { return numeric_binary_plan(d).has_value(); },
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<NumericBinaryKernel>(*numeric_binary_plan(d), d.inputs[0].dtype,
                                                         *op_of(d), d.node->attrs.get_int("fmod", 0) != 0);
          }};
}

KILN_REGISTER_KERNEL(numeric_binary_factory("Add"));
KILN_REGISTER_KERNEL(numeric_binary_factory("Sub"));
KILN_REGISTER_KERNEL(numeric_binary_factory("Mul"));
KILN_REGISTER_KERNEL(numeric_binary_factory("Div"));
KILN_REGISTER_KERNEL(numeric_binary_factory("Mod"));
KILN_REGISTER_KERNEL(numeric_binary_factory("BitShift"));

}  // namespace
}  // namespace kiln::cuda
