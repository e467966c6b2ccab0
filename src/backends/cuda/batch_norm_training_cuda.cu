// cuda.batch_norm_training: BatchNormalization with training_mode = 1 (src/ops/norm.cpp is the oracle) over
// X [N, C, ...] of rank >= 2 in float / float16 / bfloat16. The statistics are the batch's, per channel over
// every axis but 1 (biased variance):
//   Y = scale[c] * (X - mean[c]) / sqrt(var[c] + epsilon) + B[c]
//   running_mean = input_mean * momentum + mean * (1 - momentum)   (optional output 1; likewise running_var)
// One block per channel (grid-stride over channels) makes three passes over the channel's N * inner
// elements: the sum about the channel's first element (mean), the squared deviations from the mean (variance,
// two-pass for accuracy) and Y. Sums in float through a fixed block tree (deterministic, no atomics). The
// four parameter inputs may each have their own float dtype (a float32 scale for float16 data, say); each
// output statistic takes its input's. cuda.batch_norm (inference) refuses training_mode = 1, this factory
// refuses everything else.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/reduce_cuda.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = rowred::kBlock;

enum class ParamKind { F32, F16, BF16 };

__device__ __forceinline__ float load_param(const void* p, ParamKind k, int64_t i) {
  switch (k) {
    case ParamKind::F32:
      return static_cast<const float*>(p)[i];
    case ParamKind::F16:
      return to_float(static_cast<const __half*>(p)[i]);
    default:
      return to_float(static_cast<const __nv_bfloat16*>(p)[i]);
  }
}

__device__ __forceinline__ void store_param(void* p, ParamKind k, int64_t i, float v) {
  switch (k) {
    case ParamKind::F32:
      static_cast<float*>(p)[i] = v;
      break;
    case ParamKind::F16:
      static_cast<__half*>(p)[i] = from_float<__half>(v);
      break;
    default:
      static_cast<__nv_bfloat16*>(p)[i] = from_float<__nv_bfloat16>(v);
  }
}

// Pointers and dtypes of scale, B, input_mean, input_var (0..3) and running_mean, running_var (4, 5; null
// when omitted).
struct Params {
  const void* in[4];
  void* out[2];
  ParamKind in_kind[4], out_kind[2];
};

template <typename T>
__global__ void batch_norm_training_kernel(const T* x, T* y, Params prm, int64_t batch, int64_t channels,
                                           int64_t inner, float epsilon, float momentum) {
  const rowred::SumOp sum;
  const int64_t count = batch * inner;
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {  // uniform per block: every thread reduces
    // Element r of the channel is x[n, c, i] with n = r / inner, i = r % inner.
    auto offset = [&](int64_t r) { return ((r / inner) * channels + c) * inner + r % inner; };
    // Sums of x - pivot (the channel's first element): a mean far from 0 costs no precision.
    const float pivot = count > 0 ? to_float(x[offset(0)]) : 0.f;
    float s = 0;
    for (int64_t r = threadIdx.x; r < count; r += blockDim.x) s += to_float(x[offset(r)]) - pivot;
    const float mean =
        count > 0 ? pivot + rowred::group_reduce<kThreads>(s, sum) / static_cast<float>(count) : 0.f;
    float sq = 0;
    for (int64_t r = threadIdx.x; r < count; r += blockDim.x) {
      const float dev = to_float(x[offset(r)]) - mean;
      sq += dev * dev;
    }
    const float var = count > 0 ? rowred::group_reduce<kThreads>(sq, sum) / static_cast<float>(count) : 0.f;
    if (threadIdx.x == 0) {
      if (prm.out[0])
        store_param(prm.out[0], prm.out_kind[0], c,
                    load_param(prm.in[2], prm.in_kind[2], c) * momentum + mean * (1 - momentum));
      if (prm.out[1])
        store_param(prm.out[1], prm.out_kind[1], c,
                    load_param(prm.in[3], prm.in_kind[3], c) * momentum + var * (1 - momentum));
    }
    const float a = load_param(prm.in[0], prm.in_kind[0], c) / sqrtf(var + epsilon);
    const float b = load_param(prm.in[1], prm.in_kind[1], c);
    for (int64_t r = threadIdx.x; r < count; r += blockDim.x) {
      const int64_t off = offset(r);
      y[off] = from_float<T>(a * (to_float(x[off]) - mean) + b);
    }
  }
}

bool param_kind(DType t, ParamKind& k) {
  if (t == DType::Float)
    k = ParamKind::F32;
  else if (t == DType::Float16)
    k = ParamKind::F16;
  else if (t == DType::BFloat16)
    k = ParamKind::BF16;
  else
    return false;
  return true;
}

struct Plan {
  DType dtype = DType::Undefined;
  int64_t batch = 0, channels = 0, inner = 1;
  float epsilon = 1e-5f, momentum = 0.9f;
  ParamKind in_kind[4] = {}, out_kind[2] = {};
};

// The plan, or false when this kernel cannot run the layer (or the reference would refuse it). Throws on
// attributes of the wrong type.
bool plan_training(const LayerDesc& d, Plan& p) {
  const Attributes& a = d.node->attrs;
  if (a.get_int("training_mode", 0) == 0) return false;  // inference: cuda.batch_norm's
  if (d.opset < 9 && a.get_int("spatial", 1) == 0) return false;
  if (d.inputs.size() != 5 || d.outputs.empty() || d.outputs.size() > 3 || !d.outputs[0].present)
    return false;
  if (d.opset < 14 && d.outputs.size() > 1) return false;  // pre-14 saved statistics: the reference refuses
  const auto& x = d.inputs[0];
  if (!x.present || !is_cuda_float(x.dtype) || x.dims.size() < 2) return false;
  if (d.outputs[0].dtype != x.dtype || d.outputs[0].dims != x.dims) return false;
  for (int64_t v : x.dims)
    if (v < 0) return false;
  const std::vector<int64_t> c{x.dims[1]};
  for (size_t k = 1; k < 5; ++k)
    if (!d.inputs[k].present || d.inputs[k].dims != c || !param_kind(d.inputs[k].dtype, p.in_kind[k - 1]))
      return false;
  for (size_t k = 1; k < d.outputs.size(); ++k) {
    const auto& o = d.outputs[k];
    if (!o.present) continue;
    // running_mean mirrors input_mean (input 3), running_var input_var (input 4)
    if (o.dims != c || o.dtype != d.inputs[k + 2].dtype || !param_kind(o.dtype, p.out_kind[k - 1]))
      return false;
  }
  p.dtype = x.dtype;
  p.batch = x.dims[0];
  p.channels = x.dims[1];
  for (size_t k = 2; k < x.dims.size(); ++k) p.inner *= x.dims[k];
  p.epsilon = a.get_float("epsilon", 1e-5f);
  p.momentum = a.get_float("momentum", 0.9f);
  return true;
}

class BatchNormTrainingKernel final : public CudaKernel {
 public:
  explicit BatchNormTrainingKernel(Plan p) : p_(p) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.channels == 0) return;  // nothing at all (an empty batch still writes the running statistics)
    Params prm{};
    for (int k = 0; k < 4; ++k) {
      prm.in[k] = in[static_cast<size_t>(k) + 1].data;
      prm.in_kind[k] = p_.in_kind[k];
    }
    for (size_t k = 0; k < 2; ++k) {
      prm.out[k] = k + 1 < out.size() ? out[k + 1].data : nullptr;  // data is null for an omitted output
      prm.out_kind[k] = p_.out_kind[k];
    }
    dispatch_float_type(p_.dtype, [&](auto tag) {
      using T = decltype(tag);
      batch_norm_training_kernel<T><<<rowred::grid_for_units(p_.channels), kThreads, 0, rc.stream>>>(
          static_cast<const T*>(in[0].data), static_cast<T*>(out[0].data), prm, p_.batch, p_.channels,
          p_.inner, p_.epsilon, p_.momentum);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  std::string describe() const override { return "one block per channel, three passes"; }

 private:
  Plan p_;
};

KILN_REGISTER_KERNEL((planned_factory<Plan, BatchNormTrainingKernel>("cuda.batch_norm_training",
                                                                     "BatchNormalization", plan_training)));

}  // namespace
}  // namespace kiln::cuda
