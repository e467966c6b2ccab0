// cuda.loss: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (src/ops/loss.cpp is the oracle) for
// input [N, C, d1, ...] in float / float16 / bfloat16, target int32 / int64 (device data), an optional
// weight [C] of the input's dtype, ignore_index and reduction none / sum / mean, plus
// SoftmaxCrossEntropyLoss's optional log_prob output.
//   loss[n, d] = -w[t] * lp[n, t, d], t = target[n, d]; 0 (with weight 0) where t == ignore_index
//   lp = x (NLL) or log_softmax(x) over the class axis (SCE, the row maximum subtracted)
// One thread per (n, d) row computes its element's loss (and SCE's log-softmax of the row) in float. With
// reduction none it stores the loss; otherwise it writes the loss and its weight to the workspace and one
// block sums both in double in a fixed order (deterministic, no atomics): mean = sum / sum of the weights
// of the targets not ignored (0/0 is NaN when every target is ignored, as in the reference).
// A target outside [0, C) that is not ignore_index makes the reference fail; a kernel cannot fail, so here
// such an element contributes loss 0 and weight 0 (like an ignored one) instead of reading out of bounds.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "ops/util.h"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;
constexpr int kReduceThreads = 512;

enum class Reduction { None, Sum, Mean };

struct LossPlan {
  bool softmax = false;  // SoftmaxCrossEntropyLoss
  DType x = DType::Undefined, target = DType::Undefined;
  int64_t classes = 0, inner = 1, rows = 0;  // rows = N * d1 * ... (target's element count)
  bool has_weight = false, has_ignore = false, log_prob = false;
  int64_t ignore = 0;
  Reduction reduction = Reduction::Mean;
};

// Per-row loss. `loss_out` (reduction none) gets the loss in T; otherwise `ws_loss` / `ws_weight` get the
// loss and the weight it carries. `log_prob` (SCE, optional) gets the row's log-softmax.
template <typename T, typename I, bool kSoftmax>
__global__ void loss_rows_kernel(const T* x, const I* target, const T* weight, int64_t classes, int64_t inner,
                                 int64_t rows, bool has_ignore, int64_t ignore, T* loss_out, float* ws_loss,
                                 float* ws_weight, T* log_prob) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; r < rows; r += stride) {
    const int64_t base = (r / inner) * classes * inner + r % inner;  // x[n, 0, d]; classes are `inner` apart
    float shift = 0;  // what turns x into log-probabilities: 0 (NLL) or the row's log-sum-exp (SCE)
    if constexpr (kSoftmax) {
      float mx = -INFINITY;
      for (int64_t k = 0; k < classes; ++k) mx = fmaxf(mx, to_float(x[base + k * inner]));
      float sum = 0;
      for (int64_t k = 0; k < classes; ++k) sum += expf(to_float(x[base + k * inner]) - mx);
      shift = mx + logf(sum);
      if (log_prob)
        for (int64_t k = 0; k < classes; ++k)
          log_prob[base + k * inner] = from_float<T>(to_float(x[base + k * inner]) - shift);
    }
    const int64_t t = static_cast<int64_t>(target[r]);
    float loss = 0, w = 0;
    if (!(has_ignore && t == ignore) && t >= 0 && t < classes) {  // out of range: 0 (see the header)
      w = weight ? to_float(weight[t]) : 1.f;
      loss = -w * (to_float(x[base + t * inner]) - shift);
    }
    if (loss_out) {
      loss_out[r] = from_float<T>(loss);
    } else {
      ws_loss[r] = loss;
      ws_weight[r] = w;
    }
  }
}

// One block: out = sum(loss), or sum(loss) / sum(weight) for mean; double sums in a fixed order.
template <typename T>
__global__ void loss_reduce_kernel(const float* loss, const float* weight, int64_t rows, bool mean, T* out) {
  __shared__ double s_loss[kReduceThreads], s_weight[kReduceThreads];
  double l = 0, w = 0;
  for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) {
    l += loss[i];
    w += weight[i];
  }
  s_loss[threadIdx.x] = l;
  s_weight[threadIdx.x] = w;
  __syncthreads();
  for (int width = blockDim.x / 2; width > 0; width /= 2) {
    if (static_cast<int>(threadIdx.x) < width) {
      s_loss[threadIdx.x] += s_loss[threadIdx.x + width];
      s_weight[threadIdx.x] += s_weight[threadIdx.x + width];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double v = mean ? s_loss[0] / s_weight[0] : s_loss[0];
    out[0] = from_float<T>(__double2float_rn(v));
  }
}

// The plan, or false when this kernel cannot run the layer. Throws on attributes of the wrong type.
bool plan_loss(const LayerDesc& d, LossPlan& p) {
  p.softmax = d.node->op == "SoftmaxCrossEntropyLoss";
  if (d.inputs.size() < 2 || d.inputs.size() > 3 || d.outputs.empty() || !d.outputs[0].present) return false;
  if (d.outputs.size() > (p.softmax ? 2u : 1u)) return false;
  const auto& x = d.inputs[0];
  const auto& t = d.inputs[1];
  if (!x.present || !t.present || !is_cuda_float(x.dtype) || x.dims.size() < 2) return false;
  if (t.dtype != DType::Int32 && t.dtype != DType::Int64) return false;
  std::vector<int64_t> tdims = x.dims;
  tdims.erase(tdims.begin() + 1);
  if (t.dims != tdims) return false;
  p.x = x.dtype;
  p.target = t.dtype;
  p.classes = x.dims[1];
  p.rows = ops::numel(tdims);
  p.inner = ops::numel({x.dims.begin() + 2, x.dims.end()});
  p.has_weight = d.inputs.size() == 3 && d.inputs[2].present;
  if (p.has_weight && (d.inputs[2].dtype != x.dtype || d.inputs[2].dims != std::vector<int64_t>{p.classes}))
    return false;
  p.has_ignore = d.node->attrs.has("ignore_index");
  p.ignore = d.node->attrs.get_int("ignore_index", 0);
  const std::string r = d.node->attrs.get_string("reduction", "mean");
  if (r == "none")
    p.reduction = Reduction::None;
  else if (r == "sum")
    p.reduction = Reduction::Sum;
  else if (r == "mean")
    p.reduction = Reduction::Mean;
  else
    return false;
  const std::vector<int64_t> out_dims = p.reduction == Reduction::None ? tdims : std::vector<int64_t>{};
  if (d.outputs[0].dtype != x.dtype || d.outputs[0].dims != out_dims) return false;
  p.log_prob = d.outputs.size() == 2 && d.outputs[1].present;
  if (p.log_prob && (d.outputs[1].dtype != x.dtype || d.outputs[1].dims != x.dims)) return false;
  return true;
}

class LossKernel final : public CudaKernel {
 public:
  explicit LossKernel(LossPlan p) : p_(p) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const bool reduce = p_.reduction != Reduction::None;
    float* ws_loss = static_cast<float*>(rc.workspace);
    float* ws_weight = ws_loss + p_.rows;
    dispatch_float_type(p_.x, [&](auto xt) {
      using T = decltype(xt);
      T* log_prob = p_.log_prob ? static_cast<T*>(out[1].data) : nullptr;
      if (p_.rows > 0) {
        if (p_.target == DType::Int64)
          launch_rows<T, int64_t>(in, out, rc, ws_loss, ws_weight, log_prob);
        else
          launch_rows<T, int32_t>(in, out, rc, ws_loss, ws_weight, log_prob);
      }
      if (reduce) {
        loss_reduce_kernel<T><<<1, kReduceThreads, 0, rc.stream>>>(
            ws_loss, ws_weight, p_.rows, p_.reduction == Reduction::Mean, static_cast<T*>(out[0].data));
        KILN_CUDA_CHECK_LAUNCH();
      }
    });
  }
  // Reductions keep each row's loss and weight (float) for the one-block sum.
  size_t workspace_bytes() const override {
    return p_.reduction == Reduction::None ? 0 : static_cast<size_t>(2 * p_.rows) * sizeof(float);
  }
  std::string describe() const override { return p_.softmax ? "log-softmax per row" : "per row"; }

 private:
  template <typename T, typename I>
  void launch_rows(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
                   const RunContext& rc, float* ws_loss, float* ws_weight, T* log_prob) const {
    const T* x = static_cast<const T*>(in[0].data);
    const I* target = static_cast<const I*>(in[1].data);
    const T* weight = p_.has_weight ? static_cast<const T*>(in[2].data) : nullptr;
    T* loss_out = p_.reduction == Reduction::None ? static_cast<T*>(out[0].data) : nullptr;
    const unsigned int grid = blocks_for(p_.rows, kThreads);
    if (p_.softmax)
      loss_rows_kernel<T, I, true><<<grid, kThreads, 0, rc.stream>>>(x, target, weight, p_.classes, p_.inner,
                                                                     p_.rows, p_.has_ignore, p_.ignore,
                                                                     loss_out, ws_loss, ws_weight, log_prob);
    else
      loss_rows_kernel<T, I, false><<<grid, kThreads, 0, rc.stream>>>(x, target, weight, p_.classes, p_.inner,
                                                                      p_.rows, p_.has_ignore, p_.ignore,
                                                                      loss_out, ws_loss, ws_weight, nullptr);
    KILN_CUDA_CHECK_LAUNCH();
  }

  LossPlan p_;
};

bool loss_supported(const LayerDesc& d) {
  LossPlan p;
  try {
    return plan_loss(d, p);
  } catch (const Error&) {  // an attribute of the wrong type
    return false;
  }
}

std::unique_ptr<backend::Kernel> create_loss(const LayerDesc& d) {
  LossPlan p;
  if (!plan_loss(d, p)) throw Error("cuda.loss: layer '" + d.node->name + "' is not supported");
  return std::make_unique<LossKernel>(p);
}

KernelFactory loss_factory(const std::string& op) {
  return {.name = "cuda.loss",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = loss_supported,
          .create = create_loss};
}

KILN_REGISTER_KERNEL(loss_factory("NegativeLogLikelihoodLoss"));
KILN_REGISTER_KERNEL(loss_factory("SoftmaxCrossEntropyLoss"));

}  // namespace
}  // namespace kiln::cuda
