// NonMaxSuppression's reference kernel on hand-derived cases: its output length depends on the values, so the
// engine cannot run it yet (data-dependent shapes); the kernel is tested directly.
#include <gtest/gtest.h>

#include "test_util.h"

namespace kiln {
namespace {

using namespace kiln::test;  // NOLINT: shared test helpers

TensorData reference(OneNode& one);

TensorData run_nms(const std::vector<float>& boxes, const std::vector<float>& scores, int64_t classes,
                   int64_t max_out, float iou, float score, int64_t center = 0) {
  const int64_t n = static_cast<int64_t>(boxes.size()) / 4;
  OneNode nms("NonMaxSuppression", {F({1, n, 4}, boxes), F({1, classes, n}, scores), I64({1}, {max_out}),
                                    F({1}, {iou}), F({1}, {score})});
  nms.attr("center_point_box", center);
  return reference(nms);
}

// The reference kernel alone: OneNode::run would also compare with inference, which leaves the length
// unknown.
TensorData reference(OneNode& one) {
  ops::KernelContext ctx(*one.node, one.opset);
  for (Tensor* t : one.node->inputs()) ctx.in.push_back(t ? &static_cast<Constant*>(t)->values() : nullptr);
  ctx.out.resize(1);
  ops::run_reference(*ops::find_op("", "NonMaxSuppression"), ctx);
  EXPECT_EQ(to_string(*one.infer().out[0].shape), "?x3");
  return ctx.out[0];
}

TEST(NonMaxSuppression, GreedyPerClass) {
  // Boxes 0 and 1 overlap with IoU 81 / 119 = 0.68 (10x10 squares offset by 1 in both axes); box 2 is apart.
  const std::vector<float> boxes{0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30};
  // Class 0 prefers box 1, so box 0 is suppressed; class 1 scores box 2 below the threshold.
  const TensorData y = run_nms(boxes, {0.7f, 0.9f, 0.8f, 0.6f, 0.5f, 0.1f}, 2, 10, 0.5f, 0.2f);
  EXPECT_EQ(y.dims(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(y.to_int64_vector(), (std::vector<int64_t>{0, 0, 1, 0, 0, 2, 0, 1, 0}));
  // An IoU threshold above 0.68 keeps both overlapping boxes; max_output_boxes_per_class 2 stops class 0
  // early.
  EXPECT_EQ(run_nms(boxes, {0.7f, 0.9f, 0.8f, 0.6f, 0.5f, 0.1f}, 2, 2, 0.7f, 0.0f).to_int64_vector(),
            (std::vector<int64_t>{0, 0, 1, 0, 0, 2, 0, 1, 0, 0, 1, 1}));
  // Equal scores: the lower box index first. Zero max_output_boxes_per_class: nothing.
  EXPECT_EQ(run_nms(boxes, {0.5f, 0.5f, 0.5f}, 1, 3, 0.5f, 0.0f).to_int64_vector(),
            (std::vector<int64_t>{0, 0, 0, 0, 0, 2}));
  EXPECT_EQ(run_nms(boxes, {0.5f, 0.5f, 0.5f}, 1, 0, 0.5f, 0.0f).dims(), (std::vector<int64_t>{0, 3}));
}

TEST(NonMaxSuppression, CenterPointBoxesAndFlippedCorners) {
  // The same two overlapping squares as centers and sizes, and as [y2, x2, y1, x1] corners.
  const std::vector<float> scores{0.9f, 0.8f};
  EXPECT_EQ(run_nms({5, 5, 10, 10, 6, 6, 10, 10}, scores, 1, 5, 0.5f, 0.0f, 1).to_int64_vector(),
            (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(run_nms({10, 10, 0, 0, 11, 11, 1, 1}, scores, 1, 5, 0.5f, 0.0f).to_int64_vector(),
            (std::vector<int64_t>{0, 0, 0}));
  OneNode bad("NonMaxSuppression",
              {F({1, 2, 4}, {0, 0, 1, 1, 0, 0, 1, 1}), F({1, 1, 3}, {0.1f, 0.2f, 0.3f})});
  EXPECT_NE(error_of([&] { reference(bad); }).find("expected boxes"), std::string::npos);
}

}  // namespace
}  // namespace kiln
