// NonMaxSuppression: per batch and class, greedy selection of boxes by descending score (ties: lower box
// index first). A box is a candidate when its score is above score_threshold, and is selected unless its IoU
// with an already selected box of the same class exceeds iou_threshold; at most max_output_boxes_per_class
// per class (0 or absent: none). Output: selected_indices [num_selected, 3] int64 rows (batch, class, box),
// batch-major, then class, then selection order: its length depends on the values, so inference leaves it
// unknown. Boxes: center_point_box 0: [y1, x1, y2, x2], any two opposite corners; 1: [x_center, y_center,
// width, height]. IoU is 0 when either box has no area. Computed in double.
#include <algorithm>
#include <cmath>

#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_nms(InferContext& ctx) {
  const int64_t cpb = ctx.node.attrs.get_int("center_point_box", 0);
  if (cpb != 0 && cpb != 1) ctx.fail("center_point_box must be 0 or 1, got " + std::to_string(cpb));
  auto boxes = in_shape(ctx, 0), scores = in_shape(ctx, 1);
  if (boxes && (boxes->size() != 3 || ((*boxes)[2].is_static() && (*boxes)[2].value != 4)))
    ctx.fail("boxes must be [batch, num_boxes, 4], got " + to_string(*boxes));
  if (scores && scores->size() != 3)
    ctx.fail("scores must be [batch, num_classes, num_boxes], got " + to_string(*scores));
  set_out(ctx, 0, DType::Int64, Shape{Dim(), Dim(3)});
}

// Box as (ymin, xmin, ymax, xmax).
struct Box {
  double y0, x0, y1, x1;
};

Box read_box(const double* b, bool center) {
  if (center) return {b[1] - b[3] / 2, b[0] - b[2] / 2, b[1] + b[3] / 2, b[0] + b[2] / 2};
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

double iou(const Box& a, const Box& b) {
  const double ih = std::min(a.y1, b.y1) - std::max(a.y0, b.y0),
               iw = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  if (ih <= 0 || iw <= 0) return 0;
  const double area_a = (a.y1 - a.y0) * (a.x1 - a.x0), area_b = (b.y1 - b.y0) * (b.x1 - b.x0);
  const double inter = ih * iw, uni = area_a + area_b - inter;
  return area_a <= 0 || area_b <= 0 || uni <= 0 ? 0 : inter / uni;
}

// Scalar optional input k as a double (def when absent).
double scalar_or(const KernelContext& ctx, size_t k, double def) {
  if (!ctx.has_input(k)) return def;
  if (ctx.input(k).numel() != 1) ctx.fail("input " + std::to_string(k) + " must hold one value");
  return ctx.input(k).as_double(0);
}

void nms_kernel(KernelContext& ctx) {
  const bool center = ctx.node.attrs.get_int("center_point_box", 0) == 1;
  const TensorData &bt = ctx.input(0), &st = ctx.input(1);
  if (bt.rank() != 3 || bt.dims()[2] != 4 || st.rank() != 3 || st.dims()[0] != bt.dims()[0] ||
      st.dims()[2] != bt.dims()[1])
    ctx.fail("expected boxes [batch, num_boxes, 4] and scores [batch, num_classes, num_boxes]");
  const int64_t batch = bt.dims()[0], nbox = bt.dims()[1], ncls = st.dims()[1];
  int64_t max_out = 0;
  if (ctx.has_input(2)) {
    if (ctx.input(2).numel() != 1) ctx.fail("max_output_boxes_per_class must hold one value");
    max_out = std::max<int64_t>(0, ctx.input(2).as_int64(0));
  }
  const double iou_threshold = scalar_or(ctx, 3, 0.0), score_threshold = scalar_or(ctx, 4, -INFINITY);
  if (iou_threshold < 0 || iou_threshold > 1) ctx.fail("iou_threshold must be in [0, 1]");
  const std::vector<double> B = load_real(ctx, bt), S = load_real(ctx, st);
  std::vector<int64_t> out;
  std::vector<int64_t> order(static_cast<size_t>(nbox));
  std::vector<Box> selected;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < ncls; ++c) {
      const double* sc = S.data() + (b * ncls + c) * nbox;
      order.clear();
      for (int64_t i = 0; i < nbox; ++i)
        if (sc[i] > score_threshold) order.push_back(i);
      std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return sc[i] > sc[j]; });
      selected.clear();
      for (int64_t i : order) {
        if (static_cast<int64_t>(selected.size()) >= max_out) break;
        const Box box = read_box(B.data() + (b * nbox + i) * 4, center);
        if (std::any_of(selected.begin(), selected.end(),
                        [&](const Box& s) { return iou(s, box) > iou_threshold; }))
          continue;
        selected.push_back(box);
        out.insert(out.end(), {b, c, i});
      }
    }
  ctx.out[0] = TensorData::from_vector(DType::Int64, {static_cast<int64_t>(out.size() / 3), 3}, out);
}

KILN_REGISTER_OP({.op = "NonMaxSuppression",
                  .min_inputs = 2,
                  .max_inputs = 5,
                  .infer = infer_nms,
                  .reference = nms_kernel});

}  // namespace
}  // namespace kiln::ops
