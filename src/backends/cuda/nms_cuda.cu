// kiln — CUDA NonMaxSuppression (cuda.nms). Per batch and class, greedy selection by descending score (ties:
// lower box index first): a box is a candidate when its score is above score_threshold, and is selected
// unless its IoU with an already selected box of the class exceeds iou_threshold; at most
// max_output_boxes_per_class per class. Output rows (batch, class, box), batch-major, then class, then
// selection order. The three scalars are read on the device (they are often graph inputs); the number of rows
// is planned (the model declares it) and a different count in the data is reported (data_count_cuda.h).
//
// One block per (batch, class):
//   - each candidate's place in the order is its rank: how many candidates have a higher score, or the same
//     score and a lower index (the reference's stable sort), O(boxes^2 / threads);
//   - the greedy pass walks that order; the block's threads test the box against the selected ones in
//     parallel, one barrier per candidate.
// Then one thread concatenates the per-class selections into the output rows (O(rows)).
// Boxes and IoU are computed in double, as the reference does, with no fused multiply-add (exact same
// decisions at the threshold).
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cuda/cuda_device.cuh"
#include "backends/cuda/data_count_cuda.h"
#include "device/kernel.h"

namespace kiln::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__device__ __forceinline__ double load_double(const T* p, int64_t i) {
  if constexpr (std::is_same_v<T, double>)
    return p[i];
  else
    return static_cast<double>(to_float(p[i]));
}

// std::min / std::max as the reference takes them (the first argument wins ties and NaN comparisons).
__device__ __forceinline__ double ref_min(double a, double b) {
  return b < a ? b : a;
}
__device__ __forceinline__ double ref_max(double a, double b) {
  return a < b ? b : a;
}

// Box as (ymin, xmin, ymax, xmax).
struct Box {
  double y0, x0, y1, x1;
};

template <class T>
__device__ Box read_box(const T* b, bool center) {
  const double v0 = load_double(b, 0), v1 = load_double(b, 1), v2 = load_double(b, 2), v3 = load_double(b, 3);
  if (center) {
    const double hh = v3 / 2, hw = v2 / 2;
    return {__dsub_rn(v1, hh), __dsub_rn(v0, hw), __dadd_rn(v1, hh), __dadd_rn(v0, hw)};
  }
  return {ref_min(v0, v2), ref_min(v1, v3), ref_max(v0, v2), ref_max(v1, v3)};
}

// The reference's IoU: 0 when the boxes do not overlap or either has no area.
__device__ double iou(const Box& a, const Box& b) {
  const double ih = __dsub_rn(ref_min(a.y1, b.y1), ref_max(a.y0, b.y0));
  const double iw = __dsub_rn(ref_min(a.x1, b.x1), ref_max(a.x0, b.x0));
  if (ih <= 0 || iw <= 0) return 0;
  const double area_a = __dmul_rn(__dsub_rn(a.y1, a.y0), __dsub_rn(a.x1, a.x0));
  const double area_b = __dmul_rn(__dsub_rn(b.y1, b.y0), __dsub_rn(b.x1, b.x0));
  const double inter = __dmul_rn(ih, iw), uni = __dsub_rn(__dadd_rn(area_a, area_b), inter);
  return area_a <= 0 || area_b <= 0 || uni <= 0 ? 0 : inter / uni;
}

struct NmsParams {
  int64_t batch, classes, boxes;
  bool center;
  // Scalar inputs on the device; null when absent (max: 0 boxes, iou: 0, score: -inf).
  const long long* max_out;
  const float* iou_threshold;
  const float* score_threshold;
};

// Block (b, c): order[k] = the k-th candidate, selected[0..n) the selected boxes, n into count[bc].
template <class T>
__global__ void __launch_bounds__(kThreads)
    nms_class_kernel(const T* __restrict__ boxes, const T* __restrict__ scores, NmsParams p,
                     int* __restrict__ order_ws, int* __restrict__ selected_ws,
                     long long* __restrict__ count) {
  const int64_t bc = blockIdx.x, b = bc / p.classes;
  const T* sc = scores + bc * p.boxes;
  const T* bx = boxes + b * p.boxes * 4;
  int* order = order_ws + bc * p.boxes;
  int* selected = selected_ws + bc * p.boxes;
  const double score_thr = p.score_threshold ? static_cast<double>(*p.score_threshold) : -INFINITY;
  const double iou_thr = p.iou_threshold ? static_cast<double>(*p.iou_threshold) : 0.0;
  const long long max_out = p.max_out ? (*p.max_out > 0 ? *p.max_out : 0) : 0;

  int64_t candidates = 0;  // uniform over the block
  for (int64_t base = 0; base < p.boxes; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    bool is_candidate = false;
    if (i < p.boxes) {
      const double si = load_double(sc, i);
      is_candidate = si > score_thr;
      if (is_candidate) {
        int64_t rank = 0;
        for (int64_t j = 0; j < p.boxes; ++j) {
          const double sj = load_double(sc, j);
          if (sj > score_thr && (sj > si || (sj == si && j < i))) ++rank;
        }
        order[rank] = static_cast<int>(i);
      }
    }
    candidates += __syncthreads_count(is_candidate);
  }
  // __syncthreads_count is a barrier: order[] is complete and visible to the block here.

  long long n = 0;  // uniform over the block
  for (int64_t k = 0; k < candidates && n < max_out; ++k) {
    const int i = order[k];
    const Box box = read_box(bx + static_cast<int64_t>(i) * 4, p.center);
    bool suppressed = false;
    for (long long t = threadIdx.x; t < n && !suppressed; t += kThreads)
      suppressed = iou(read_box(bx + static_cast<int64_t>(selected[t]) * 4, p.center), box) > iou_thr;
    if (!__syncthreads_or(suppressed)) {  // uniform: every thread takes the branch or none does
      if (threadIdx.x == 0) selected[n] = i;
      ++n;
      __syncthreads();  // selected[n - 1] is read by every thread from the next candidate on
    }
  }
  if (threadIdx.x == 0) count[bc] = n;
}

// The rows, class after class; the report: how many there are, and an iou_threshold outside [0, 1]
// (the reference's error; invalid = 0).
__global__ void nms_gather_kernel(NmsParams p, const int* __restrict__ selected_ws,
                                  const long long* __restrict__ count, long long* __restrict__ y,
                                  int64_t planned, DataCountReport* report) {
  long long row = 0;
  for (int64_t bc = 0; bc < p.batch * p.classes; ++bc) {
    const int* selected = selected_ws + bc * p.boxes;
    for (long long t = 0; t < count[bc]; ++t, ++row) {
      if (row >= planned) continue;
      y[row * 3] = bc / p.classes;
      y[row * 3 + 1] = bc % p.classes;
      y[row * 3 + 2] = selected[t];
    }
  }
  const double iou_thr = p.iou_threshold ? static_cast<double>(*p.iou_threshold) : 0.0;
  *report = {row, iou_thr < 0 || iou_thr > 1 ? 0 : -1};
}

bool one_value(const backend::LayerDesc::Operand& o) {
  return checked_numel(o.dims).value_or(0) == 1 && o.dims.size() <= 1;
}

struct NmsPlan {
  int64_t batch = 0, classes = 0, boxes = 0, planned = 0;
  bool center = false;
};

// Boxes and scores of one float type (fp32 / fp16 / bf16 / fp64), the scalars int64 and float32 holding one
// value each (or absent), the output int64 [rows, 3].
bool nms_plan(const backend::LayerDesc& d, NmsPlan& p) {
  if (d.inputs.size() < 2 || d.inputs.size() > 5 || d.outputs.size() != 1 || !d.outputs[0].present)
    return false;
  const auto& bx = d.inputs[0];
  const auto& sc = d.inputs[1];
  if (!bx.present || !sc.present || bx.dtype != sc.dtype ||
      !(is_cuda_float(bx.dtype) || bx.dtype == DType::Double))
    return false;
  if (bx.dims.size() != 3 || bx.dims[2] != 4 || sc.dims.size() != 3 || sc.dims[0] != bx.dims[0] ||
      sc.dims[2] != bx.dims[1])
    return false;
  const DType scalar_types[] = {DType::Undefined, DType::Undefined, DType::Int64, DType::Float, DType::Float};
  for (size_t k = 2; k < d.inputs.size(); ++k)
    if (d.inputs[k].present && (d.inputs[k].dtype != scalar_types[k] || !one_value(d.inputs[k])))
      return false;
  const auto& y = d.outputs[0];
  if (y.dtype != DType::Int64 || y.dims.size() != 2 || y.dims[1] != 3 || y.dims[0] < 0) return false;
  p.batch = bx.dims[0];
  p.boxes = bx.dims[1];
  p.classes = sc.dims[1];
  if (p.batch < 0 || p.boxes < 0 || p.classes < 0 || p.boxes > INT32_MAX || p.batch * p.classes > INT32_MAX)
    return false;
  const int64_t cpb = d.node->attrs.get_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) return false;
  p.center = cpb == 1;
  p.planned = y.dims[0];
  return true;
}

class NmsKernel final : public DataCountKernel {
 public:
  NmsKernel(const NmsPlan& p, DType dtype)
      : DataCountKernel("NonMaxSuppression", "selected boxes", p.planned), p_(p), dtype_(dtype) {}

  void enqueue(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out,
               const RunContext& rc) const override {
    auto scalar = [&](size_t k) { return k < in.size() ? in[k].data : nullptr; };
    const NmsParams params{p_.batch,
                           p_.classes,
                           p_.boxes,
                           p_.center,
                           static_cast<const long long*>(scalar(2)),
                           static_cast<const float*>(scalar(3)),
                           static_cast<const float*>(scalar(4))};
    const int64_t lists = p_.batch * p_.classes;
    auto* count = static_cast<long long*>(body_workspace(rc));
    int* order = reinterpret_cast<int*>(count + lists);
    int* selected = order + lists * p_.boxes;
    if (lists > 0) {
      auto launch = [&](auto tag) {
        using T = decltype(tag);
        nms_class_kernel<T><<<static_cast<unsigned>(lists), kThreads, 0, rc.stream>>>(
            static_cast<const T*>(in[0].data), static_cast<const T*>(in[1].data), params, order, selected,
            count);
        KILN_CUDA_CHECK_LAUNCH();
      };
      if (dtype_ == DType::Double)
        launch(double{});
      else
        dispatch_float_type(dtype_, launch);
    }
    nms_gather_kernel<<<1, 1, 0, rc.stream>>>(params, selected, count, static_cast<long long*>(out[0].data),
                                              p_.planned, device_report(rc));
    KILN_CUDA_CHECK_LAUNCH();
    enqueue_report(rc);
  }

 protected:
  size_t body_workspace_bytes() const override {
    const size_t lists = static_cast<size_t>(p_.batch * p_.classes);
    return lists * sizeof(long long) + 2 * lists * static_cast<size_t>(p_.boxes) * sizeof(int);
  }
  std::string invalid_message(long long) const override { return "iou_threshold must be in [0, 1]"; }

 private:
  NmsPlan p_;
  DType dtype_;
};

backend::KernelFactory nms_factory() {
  return {.name = "cuda.nms",
          .device = "cuda",
          .op = "NonMaxSuppression",
          .domain = "",
          .priority = 10,
          .supports =
              [](const backend::LayerDesc& d) {
                NmsPlan p;
                return nms_plan(d, p);
              },
          .create = [](const backend::LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            NmsPlan p;
            if (!nms_plan(d, p)) throw Error("cuda.nms: layer not supported");
            return std::make_unique<NmsKernel>(p, d.inputs[0].dtype);
          }};
}

KILN_REGISTER_KERNEL(nms_factory());

}  // namespace
}  // namespace kiln::cuda
