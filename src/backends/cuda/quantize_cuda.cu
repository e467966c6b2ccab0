// cuda.quantize: QuantizeLinear and DequantizeLinear (scale and zero point constants or graph inputs), per
// tensor, per axis, or of x's rank broadcasting along one contiguous run of axes (src/ops/quantize.cpp's
// expand_param rules).
//   QuantizeLinear   x float/float16/bfloat16 → uint8/int8: saturate(round_half_even(x / scale) + zp), the
//                    division in float32 as the reference (and ONNX) does it; NaN stores 0
//   DequantizeLinear x uint8/int8/int32 → scale's float dtype: (x - zp) * scale in double, as the reference,
//                    rounded once to the output type
// Constant scales and zero points are read at create time (the kernel owns those inputs) into one device
// array of doubles, exact for every float scale and every 8/32-bit zero point. A scale or zero point that is
// a graph input (device data) is converted to doubles in the workspace by a small kernel before the pass.
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

// A parameter's value for output element i is values[(i / inner) % mid] (mid 1: per tensor).
struct ParamIndex {
  int64_t mid = 1, inner = 1;
  __device__ __forceinline__ int64_t operator()(int64_t i) const { return mid == 1 ? 0 : (i / inner) % mid; }
};

struct QuantPlan {
  bool quantize = true;
  DType x = DType::Undefined, y = DType::Undefined;
  ParamIndex scale, zp;
  std::vector<double> values;  // scale's values, then zp's (one 0 when there is none)
  size_t zp_offset = 0;
  // Parameters that are graph inputs: converted into the workspace (scale's doubles, then zp's).
  bool runtime_scale = false, runtime_zp = false;
  DType zp_type = DType::Undefined;
  int64_t scale_n = 0, zp_n = 0;
};

template <typename T>
__global__ void param_to_double_kernel(const T* src, double* dst, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if constexpr (std::is_integral_v<T>)
    dst[i] = static_cast<double>(src[i]);
  else
    dst[i] = static_cast<double>(to_float(src[i]));
}

template <typename X, typename Q>
__global__ void quantize_kernel(const X* x, Q* y, int64_t n, const double* scale, ParamIndex si,
                                const double* zp, ParamIndex zi, double lo, double hi) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    // rintf rounds half to even; the sum is in double, so a large quotient plus zp cannot round wrongly.
    const float q = rintf(to_float(x[i]) / static_cast<float>(scale[si(i)]));
    const double v = static_cast<double>(q) + zp[zi(i)];
    y[i] = isnan(v) ? Q(0) : static_cast<Q>(v < lo ? lo : (v > hi ? hi : v));
  }
}

template <typename Q, typename Y>
__global__ void dequantize_kernel(const Q* x, Y* y, int64_t n, const double* scale, ParamIndex si,
                                  const double* zp, ParamIndex zi) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const double v = (static_cast<double>(x[i]) - zp[zi(i)]) * scale[si(i)];
    y[i] = from_float<Y>(__double2float_rn(v));  // double → float → 16-bit, as the reference's store
  }
}

// Calls f(Q{}) for a quantized integer dtype.
template <typename F>
void dispatch_quantized(DType t, F&& f) {
  switch (t) {
    case DType::UInt8:
      f(uint8_t{});
      break;
    case DType::Int8:
      f(int8_t{});
      break;
    case DType::Int32:
      f(int32_t{});
      break;
    default:
      throw Error(std::string("cuda.quantize: unsupported quantized dtype ") + dtype_name(t));
  }
}

// dims left-padded with 1s to `rank`.
std::vector<int64_t> padded(const std::vector<int64_t>& d, size_t rank) {
  std::vector<int64_t> p(rank - d.size(), 1);
  p.insert(p.end(), d.begin(), d.end());
  return p;
}

int64_t product(const std::vector<int64_t>& d, size_t from, size_t to) {
  int64_t n = 1;
  for (size_t k = from; k < to; ++k) n *= d[k];
  return n;
}

// The reference's layouts for a parameter of `pdims` over x's `dims` (axis < 0: none given), as an index;
// false for a same-rank parameter that varies along axes that are not one contiguous run (or does not
// broadcast: the reference fails it).
bool param_index(const std::vector<int64_t>& pdims, const std::vector<int64_t>& dims, int64_t axis,
                 ParamIndex& ix) {
  ix = {};
  if (product(pdims, 0, pdims.size()) == 1) return true;
  const size_t rank = dims.size();
  if (pdims.size() == 1 && axis >= 0 && static_cast<size_t>(axis) < rank && pdims[0] == dims[axis]) {
    ix.mid = dims[axis];
    ix.inner = product(dims, static_cast<size_t>(axis) + 1, rank);
    return true;
  }
  if (pdims.size() != rank) return false;
  const auto p = padded(pdims, rank);
  int first = -1, last = -1;
  for (size_t k = 0; k < rank; ++k) {
    if (p[k] != 1 && p[k] != dims[k]) return false;
    if (p[k] != 1) {
      if (first < 0) first = static_cast<int>(k);
      last = static_cast<int>(k);
    }
  }
  for (int k = first; k <= last; ++k)
    if (p[static_cast<size_t>(k)] != dims[static_cast<size_t>(k)]) return false;  // a broadcast axis inside
  ix.mid = product(dims, static_cast<size_t>(first), static_cast<size_t>(last) + 1);
  ix.inner = product(dims, static_cast<size_t>(last) + 1, rank);
  return true;
}

bool is_quantized(DType t, bool allow_int32) {
  return t == DType::UInt8 || t == DType::Int8 || (allow_int32 && t == DType::Int32);
}

// The plan, or false when this kernel cannot run the layer. Throws on attributes of the wrong type.
bool plan_quant(const LayerDesc& d, QuantPlan& p) {
  p.quantize = d.node->op == "QuantizeLinear";
  if (d.inputs.size() < 2 || d.inputs.size() > 3 || d.outputs.size() != 1 || !d.outputs[0].present)
    return false;
  const auto& x = d.inputs[0];
  const auto& scale = d.inputs[1];
  const bool has_zp = d.inputs.size() == 3 && d.inputs[2].present;
  if (!x.present || !scale.present || !is_cuda_float(scale.dtype)) return false;
  if (d.outputs[0].dims != x.dims) return false;
  p.x = x.dtype;
  p.y = d.outputs[0].dtype;
  if (p.quantize) {
    if (!is_cuda_float(p.x) || !is_quantized(p.y, false) || (has_zp && d.inputs[2].dtype != p.y))
      return false;
  } else {
    if (!is_quantized(p.x, true) || p.y != scale.dtype || (has_zp && d.inputs[2].dtype != p.x)) return false;
  }
  // Only a multi-element scale uses the axis (the reference's quant_axis).
  int64_t axis = -1;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  p.scale_n = product(scale.dims, 0, scale.dims.size());
  if (p.scale_n != 1) {
    axis = d.node->attrs.get_int("axis", 1);
    if (axis < -rank || axis >= rank) return false;
    if (axis < 0) axis += rank;
  }
  if (!param_index(scale.dims, x.dims, axis, p.scale)) return false;
  if (has_zp && !param_index(d.inputs[2].dims, x.dims, axis, p.zp)) return false;
  p.values.clear();
  p.runtime_scale = !scale.constant;
  for (int64_t i = 0; scale.constant && i < p.scale_n; ++i) p.values.push_back(scale.constant->as_double(i));
  p.zp_offset = p.values.size();
  p.runtime_zp = has_zp && !d.inputs[2].constant;
  if (has_zp) {
    p.zp_type = d.inputs[2].dtype;
    p.zp_n = product(d.inputs[2].dims, 0, d.inputs[2].dims.size());
    for (int64_t i = 0; !p.runtime_zp && i < p.zp_n; ++i)
      p.values.push_back(d.inputs[2].constant->as_double(i));
  } else {
    p.zp = {};
  }
  if (!has_zp || p.runtime_zp) p.values.push_back(0.0);  // keeps params_ non-empty
  return true;
}

class QuantKernel final : public CudaKernel {
 public:
  explicit QuantKernel(QuantPlan p)
      : p_(std::move(p)), params_(p_.values.data(), p_.values.size() * sizeof(double)) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t n = out[0].numel();
    if (n == 0) return;
    const double* scale = params_.as<double>();
    const double* zp = scale + p_.zp_offset;
    double* staged = static_cast<double*>(rc.workspace);
    if (p_.runtime_scale) {
      dispatch_float_type(in[1].dtype, [&](auto st) {
        stage(static_cast<const decltype(st)*>(in[1].data), staged, p_.scale_n, rc);
      });
      scale = staged;
    }
    if (p_.runtime_zp) {
      dispatch_quantized(p_.zp_type, [&](auto zt) {
        stage(static_cast<const decltype(zt)*>(in[2].data), staged + p_.scale_n, p_.zp_n, rc);
      });
      zp = staged + p_.scale_n;
    }
    const unsigned int grid = blocks_for(n, kThreads);
    if (p_.quantize) {
      dispatch_float_type(p_.x, [&](auto xt) {
        dispatch_quantized(p_.y, [&](auto qt) {
          using X = decltype(xt);
          using Q = decltype(qt);
          quantize_kernel<X, Q><<<grid, kThreads, 0, rc.stream>>>(
              static_cast<const X*>(in[0].data), static_cast<Q*>(out[0].data), n, scale, p_.scale, zp, p_.zp,
              static_cast<double>(std::numeric_limits<Q>::min()),
              static_cast<double>(std::numeric_limits<Q>::max()));
          KILN_CUDA_CHECK_LAUNCH();
        });
      });
    } else {
      dispatch_quantized(p_.x, [&](auto qt) {
        dispatch_float_type(p_.y, [&](auto yt) {
          using Q = decltype(qt);
          using Y = decltype(yt);
          dequantize_kernel<Q, Y><<<grid, kThreads, 0, rc.stream>>>(
              static_cast<const Q*>(in[0].data), static_cast<Y*>(out[0].data), n, scale, p_.scale, zp, p_.zp);
          KILN_CUDA_CHECK_LAUNCH();
        });
      });
    }
  }
  // Constant scale and zero point live in params_; graph-input ones are staged in the workspace.
  bool owns_constant_input(size_t k) const override { return k == 1 || k == 2; }
  size_t workspace_bytes() const override {
    return p_.runtime_scale || p_.runtime_zp ? static_cast<size_t>(p_.scale_n + p_.zp_n) * sizeof(double) : 0;
  }

 private:
  template <typename T>
  static void stage(const T* src, double* dst, int64_t n, const RunContext& rc) {
    param_to_double_kernel<T><<<blocks_for(n, kThreads), kThreads, 0, rc.stream>>>(src, dst, n);
    KILN_CUDA_CHECK_LAUNCH();
  }

  QuantPlan p_;
  DeviceBuffer params_;
};

bool quant_supported(const LayerDesc& d) {
  QuantPlan p;
  try {
    return plan_quant(d, p);
  } catch (const Error&) {
    return false;
  }
}

std::unique_ptr<backend::Kernel> create_quant(const LayerDesc& d) {
  QuantPlan p;
  if (!plan_quant(d, p)) throw Error("cuda.quantize: layer '" + d.node->name + "' is not supported");
  return std::make_unique<QuantKernel>(std::move(p));
}

KernelFactory quant_factory(const std::string& op) {
  return {.name = "cuda.quantize",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = quant_supported,
          .create = create_quant};
}

KILN_REGISTER_KERNEL(quant_factory("QuantizeLinear"));
KILN_REGISTER_KERNEL(quant_factory("DequantizeLinear"));

}  // namespace
}  // namespace kiln::cuda
