// CUDA data movement against the CPU reference: Transpose (every vector-gather mode and the tiled path, ranks
// 2–6, fp32/fp16/bf16), Concat (row copies of every width, constant inputs), DepthToSpace/SpaceToDepth (DCR,
// CRD, blocks 2–4, PackNet's pack/unpack at reduced size), Resize/Upsample (nearest with every coordinate and
// rounding mode, linear; scales or sizes), Pad (constant/reflect/edge/wrap, attributes or inputs, axes),
// Slice (negative and strided steps, clamping, vector rows), and the byte copy of a view the runtime could
// not alias.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gpu_test_util.h"

using kiln::Attributes;
using kiln::BuildOptions;
using kiln::DType;
using kiln::Graph;
using kiln::TensorData;
using kiln::gpu_test::compare_with_reference;
using kiln::gpu_test::one_node_graph;
using kiln::gpu_test::OperandSpec;
using kiln::gpu_test::random_tensor;
using kiln::gpu_test::tolerance;

namespace {

using kiln::gpu_test::fp16;
using kiln::gpu_test::fp32;

BuildOptions bf16() {
  BuildOptions o;
  o.precision = DType::BFloat16;
  return o;
}

// The strided copy's vector paths depend on the element size (8 fp16/bf16 or 4 fp32 elements per vector).
const std::vector<std::pair<const char*, BuildOptions>>& all_precisions() {
  static const std::vector<std::pair<const char*, BuildOptions>> p{
      {"fp32", fp32()}, {"fp16", fp16()}, {"bf16", bf16()}};
  return p;
}

void expect_match(const Graph& g, const std::string& kernel, BuildOptions opts = fp32()) {
  const auto c = compare_with_reference(g, opts);
  EXPECT_LE(c.worst(), tolerance(opts.precision, opts.tf32));
  EXPECT_TRUE(c.uses_kernel(kernel)) << "the layer did not run on " << kernel;
}

OperandSpec ints(const std::vector<int64_t>& v) {
  return OperandSpec{{static_cast<int64_t>(v.size())}, DType::Int64, TensorData::vector_int64(v)};
}

OperandSpec floats(const std::vector<float>& v) {
  return OperandSpec{{static_cast<int64_t>(v.size())},
                     DType::Float,
                     TensorData::from_vector(DType::Float, {static_cast<int64_t>(v.size())}, v)};
}

OperandSpec empty_floats() {
  return OperandSpec{{0}, DType::Float, TensorData(DType::Float, {0})};
}

OperandSpec scalar(float v) {
  return OperandSpec{{}, DType::Float, TensorData::scalar_float(v)};
}

}  // namespace

// -------------------------------------------------------------------------------------------- Transpose
TEST(CudaMovement, Transpose) {
  KILN_REQUIRE_GPU();
  struct Case {
    std::vector<int64_t> dims, perm;  // empty perm: reversed
  };
  for (const Case& c : std::vector<Case>{
           {{2, 3, 4, 5}, {0, 2, 3, 1}},              // NCHW → NHWC: gather (C short)
           {{2, 40, 33, 70}, {0, 2, 3, 1}},           // NCHW → NHWC: tiles
           {{2, 33, 70, 40}, {0, 3, 1, 2}},           // NHWC → NCHW: tiles
           {{67, 129}, {1, 0}},                       // 2-D, partial tiles
           {{2, 3, 4, 5}, {}},                        // reversed
           {{5, 1, 37}, {2, 1, 0}},                   // size-1 axis
           {{2, 3, 2, 5, 3, 4}, {0, 3, 1, 5, 2, 4}},  // rank 6
           {{3, 4, 5, 6, 7}, {0, 1, 2, 4, 3}},        // rank 5, swap of the two innermost (short)
           {{2, 3, 4, 5}, {0, 1, 2, 3}},              // identity: one memcpy
           {{4, 6, 5}, {1, 0, 2}},                    // outer swap: rows stay contiguous
       }) {
    SCOPED_TRACE(kiln::to_string(kiln::make_shape(c.dims)));
    Attributes a;
    if (!c.perm.empty()) a.set("perm", c.perm);
    auto g = one_node_graph("Transpose", {OperandSpec{c.dims}}, a);
    expect_match(*g, "cuda.transpose");
  }
}

TEST(CudaMovement, TransposeFp16) {
  KILN_REQUIRE_GPU();
  for (const auto& dims : std::vector<std::vector<int64_t>>{{2, 40, 33, 70}, {2, 3, 5, 7}}) {
    Attributes a;
    a.set("perm", std::vector<int64_t>{0, 2, 3, 1});
    auto g = one_node_graph("Transpose", {OperandSpec{dims}}, a);
    expect_match(*g, "cuda.transpose", fp16());
  }
}

// The vector gather (several output elements per thread, one wide store): contiguous runs (Contig), input
// rows interleaved into the output (Merge, DepthToSpace), an input run split across output channels (Split,
// SpaceToDepth / the packing transpose), scalar loads otherwise (Generic); inner sizes that fill 8, 4, 2 or
// no fp16 vectors, in every precision.
TEST(CudaMovement, TransposeVectorPaths) {
  KILN_REQUIRE_GPU();
  struct Case {
    std::vector<int64_t> dims, perm;
  };
  for (const auto& [name, opts] : all_precisions()) {
    for (const Case& c : std::vector<Case>{
             // PackNet's packing space-to-depth, [1,C,H/2,2,W/2,2] → [1,C,2,2,H/2,W/2] (Split).
             {{1, 8, 8, 2, 32, 2}, {0, 1, 3, 5, 2, 4}},  // W/2 = 32: full vectors
             {{1, 8, 6, 2, 20, 2}, {0, 1, 3, 5, 2, 4}},  // W/2 = 20: 4 fp16 per vector
             {{1, 8, 3, 2, 10, 2}, {0, 1, 3, 5, 2, 4}},  // W/2 = 10: 2 fp16 per vector
             {{1, 8, 3, 2, 5, 2}, {0, 1, 3, 5, 2, 4}},   // W/2 = 5: one element per thread
             {{2, 3, 4, 2, 16, 2}, {0, 1, 3, 5, 2, 4}},  // batch 2, odd channel count
             {{1, 4, 3, 4, 8, 4}, {0, 1, 3, 5, 2, 4}},   // block 4: input runs split four ways
             // Its inverse (PixelShuffle): [1,C,2,2,H,W] → [1,C,H,2,W,2] (Merge).
             {{1, 8, 2, 2, 6, 40}, {0, 1, 4, 2, 5, 3}},
             {{1, 8, 2, 2, 5, 7}, {0, 1, 4, 2, 5, 3}},  // odd W: pairs with scalar loads
             // Outer-axis swaps: rows stay contiguous (Contig) unless their length or offsets break vectors.
             {{4, 6, 40}, {1, 0, 2}},
             {{3, 4, 10}, {1, 0, 2}},
             {{3, 4, 9}, {1, 0, 2}},
             {{5, 8, 3, 24}, {2, 0, 1, 3}},
             // Short inner axis with a long input stride (Generic vectors), and a short one not filling a
             // vector.
             {{2, 8, 40}, {0, 2, 1}},
             {{2, 12, 20}, {0, 2, 1}},
         }) {
      SCOPED_TRACE(std::string(name) + " " + kiln::to_string(kiln::make_shape(c.dims)));
      Attributes a;
      a.set("perm", c.perm);
      auto g = one_node_graph("Transpose", {OperandSpec{c.dims}}, a);
      expect_match(*g, "cuda.transpose", opts);
    }
  }
}

// ----------------------------------------------------------------------------------------------- Concat
TEST(CudaMovement, Concat) {
  KILN_REQUIRE_GPU();
  struct Case {
    std::vector<std::vector<int64_t>> inputs;
    int64_t axis;
    int constant = -1;  // which input is a constant
  };
  for (const Case& c : std::vector<Case>{
           {{{2, 3, 5, 7}, {2, 4, 5, 7}, {2, 1, 5, 7}}, 1},
           {{{3, 5, 7}, {3, 5, 2}}, -1},                              // odd row widths: 4-byte units
           {{{3, 5, 8}, {3, 5, 4}}, 2},                               // 16-byte units
           {{{2, 3}, {5, 3}}, 0},                                     // one row each: memcpy
           {{{2, 6, 5, 7}, {2, 2, 5, 7}}, 1, 1},                      // a constant input
           {{{1, 2, 3, 4, 5}, {1, 2, 3, 1, 5}, {1, 2, 3, 2, 5}}, 3},  // rank 5
           {{{4, 1, 9}, {4, 1, 9}}, 1},                               // concat along a size-1 axis
       }) {
    std::vector<OperandSpec> ins;
    for (size_t k = 0; k < c.inputs.size(); ++k) {
      OperandSpec s{c.inputs[k]};
      if (static_cast<int>(k) == c.constant) s.value = random_tensor(c.inputs[k]);
      ins.push_back(s);
    }
    Attributes a;
    a.set("axis", c.axis);
    auto g = one_node_graph("Concat", ins, a);
    expect_match(*g, "cuda.concat");
  }
}

TEST(CudaMovement, ConcatFp16) {
  KILN_REQUIRE_GPU();
  Attributes a;
  a.set("axis", int64_t{3});
  auto g =
      one_node_graph("Concat", {OperandSpec{{2, 3, 5, 7}}, OperandSpec{{2, 3, 5, 3}}}, a);  // 2-byte units
  expect_match(*g, "cuda.concat", fp16());
  Attributes b;
  b.set("axis", int64_t{1});
  auto h = one_node_graph("Concat", {OperandSpec{{2, 8, 5, 8}}, OperandSpec{{2, 16, 5, 8}}}, b);
  expect_match(*h, "cuda.concat", fp16());
}

// --------------------------------------------------------------------------------- DepthToSpace/SpaceToDepth
TEST(CudaMovement, DepthToSpace) {
  KILN_REQUIRE_GPU();
  struct Case {
    std::vector<int64_t> dims;
    int64_t block;
    const char* mode;
  };
  for (const Case& c : std::vector<Case>{{{1, 8, 5, 7}, 2, "DCR"},
                                         {{1, 8, 5, 7}, 2, "CRD"},
                                         {{2, 18, 4, 5}, 3, "DCR"},
                                         {{2, 18, 4, 5}, 3, "CRD"},
                                         {{1, 64, 20, 24}, 2, "DCR"},
                                         {{1, 4, 33, 31}, 2, "CRD"}}) {
    SCOPED_TRACE(std::string(c.mode) + " block " + std::to_string(c.block));
    Attributes a;
    a.set("blocksize", c.block);
    a.set("mode", std::string(c.mode));
    auto g = one_node_graph("DepthToSpace", {OperandSpec{c.dims}}, a);
    expect_match(*g, "cuda.depth_to_space");
  }
  Attributes a;
  a.set("blocksize", int64_t{2});
  a.set("mode", std::string("CRD"));
  auto g = one_node_graph("DepthToSpace", {OperandSpec{{1, 16, 9, 11}}}, a);
  expect_match(*g, "cuda.depth_to_space", fp16());
}

// DepthToSpace / SpaceToDepth at PackNet's pattern (block 2, reduced channels) and around the vector widths.
TEST(CudaMovement, DepthSpaceVectorPaths) {
  KILN_REQUIRE_GPU();
  for (const auto& [name, opts] : all_precisions()) {
    for (const char* mode : {"CRD", "DCR"}) {
      for (const auto& [dims, block] : std::vector<std::pair<std::vector<int64_t>, int64_t>>{
               {{1, 32, 12, 40}, 2},   // unpack: C = 8, W = 40 (interleaves input rows in 8-element vectors)
               {{1, 32, 6, 10}, 2},    // W = 10: 4-element vectors
               {{1, 32, 5, 7}, 2},     // odd W
               {{2, 12, 3, 16}, 2},    // batch 2, C = 3
               {{1, 32, 4, 8}, 4},     // block 4
               {{1, 16, 3, 6}, 4}}) {  // block 4, W not a multiple of 4
        SCOPED_TRACE(std::string(name) + " " + mode + " " + kiln::to_string(kiln::make_shape(dims)));
        Attributes a;
        a.set("blocksize", block);
        a.set("mode", std::string(mode));
        expect_match(*one_node_graph("DepthToSpace", {OperandSpec{dims}}, a), "cuda.depth_to_space", opts);
      }
    }
    for (const auto& [dims, block] :
         std::vector<std::pair<std::vector<int64_t>, int64_t>>{{{1, 8, 12, 40}, 2},  // pack: C = 8, W/2 = 20
                                                               {{1, 8, 8, 64}, 2},   // W/2 = 32
                                                               {{1, 8, 12, 20}, 2},  // W/2 = 10
                                                               {{1, 3, 6, 14}, 2},   // W/2 = 7: odd
                                                               {{2, 5, 4, 32}, 2},   // batch 2
                                                               {{1, 4, 8, 32}, 4},   // block 4
                                                               {{1, 2, 8, 12}, 4}}) {  // block 4, W/4 = 3
      SCOPED_TRACE(std::string(name) + " SpaceToDepth " + kiln::to_string(kiln::make_shape(dims)));
      Attributes a;
      a.set("blocksize", block);
      expect_match(*one_node_graph("SpaceToDepth", {OperandSpec{dims}}, a), "cuda.depth_to_space", opts);
    }
  }
}

TEST(CudaMovement, SpaceToDepth) {
  KILN_REQUIRE_GPU();
  for (const auto& [dims, block] : std::vector<std::pair<std::vector<int64_t>, int64_t>>{
           {{2, 3, 8, 6}, 2}, {{1, 5, 9, 12}, 3}, {{1, 32, 64, 64}, 2}, {{1, 1, 4, 4}, 4}}) {
    Attributes a;
    a.set("blocksize", block);
    auto g = one_node_graph("SpaceToDepth", {OperandSpec{dims}}, a);
    expect_match(*g, "cuda.depth_to_space");
  }
  Attributes a;
  a.set("blocksize", int64_t{2});
  auto g = one_node_graph("SpaceToDepth", {OperandSpec{{1, 6, 10, 14}}}, a);
  expect_match(*g, "cuda.depth_to_space", fp16());
}

// ----------------------------------------------------------------------------------------------- Resize
namespace {

// Resize-13 with scales (roi empty) or sizes (roi and scales empty).
std::unique_ptr<Graph> resize_scales(const std::vector<int64_t>& dims, const std::vector<float>& scales,
                                     const Attributes& a) {
  return one_node_graph("Resize", {OperandSpec{dims}, empty_floats(), floats(scales)}, a, "", 1, 13);
}
std::unique_ptr<Graph> resize_sizes(const std::vector<int64_t>& dims, const std::vector<int64_t>& sizes,
                                    const Attributes& a) {
  return one_node_graph("Resize", {OperandSpec{dims}, empty_floats(), empty_floats(), ints(sizes)}, a, "", 1,
                        13);
}

const char* const kCoordModes[] = {"asymmetric",    "half_pixel",           "pytorch_half_pixel",
                                   "align_corners", "half_pixel_symmetric", "tf_half_pixel_for_nn"};

}  // namespace

TEST(CudaMovement, ResizeNearest) {
  KILN_REQUIRE_GPU();
  for (const char* coord : kCoordModes) {
    for (const char* nearest : {"floor", "round_prefer_floor", "round_prefer_ceil", "ceil"}) {
      SCOPED_TRACE(std::string(coord) + " / " + nearest);
      Attributes a;
      a.set("mode", std::string("nearest"));
      a.set("coordinate_transformation_mode", std::string(coord));
      a.set("nearest_mode", std::string(nearest));
      expect_match(*resize_scales({1, 3, 5, 7}, {1, 1, 2, 2}, a), "cuda.resize");
      expect_match(*resize_scales({2, 3, 5, 7}, {1, 1, 1.5f, 2.5f}, a), "cuda.resize");   // fractional
      expect_match(*resize_scales({1, 2, 9, 10}, {1, 1, 0.5f, 0.6f}, a), "cuda.resize");  // downsampling
      expect_match(*resize_sizes({1, 3, 5, 7}, {1, 3, 9, 4}, a), "cuda.resize");
    }
  }
}

TEST(CudaMovement, ResizeNearestShapes) {
  KILN_REQUIRE_GPU();
  Attributes a;
  a.set("mode", std::string("nearest"));
  expect_match(*resize_scales({2, 9, 11}, {1, 2, 3}, a), "cuda.resize");  // rank 3 (default modes)
  expect_match(*resize_scales({1, 2, 3, 4, 5}, {1, 2, 2, 1, 2}, a),
               "cuda.resize");  // rank 5, channel axis too
  expect_match(*resize_scales({1, 16, 20, 24}, {1, 1, 2, 2}, a), "cuda.resize", fp16());
  Attributes s;
  s.set("mode", std::string("nearest"));
  s.set("keep_aspect_ratio_policy", std::string("not_smaller"));  // one scale (2) for every axis, N and C too
  expect_match(*resize_sizes({1, 3, 6, 8}, {1, 3, 12, 12}, s), "cuda.resize");
}

TEST(CudaMovement, ResizeLegacy) {
  KILN_REQUIRE_GPU();
  Attributes a;
  a.set("mode", std::string("nearest"));
  // Resize-10: (X, scales); asymmetric coordinates, truncation up and ceil down.
  expect_match(*one_node_graph("Resize", {OperandSpec{{1, 3, 5, 7}}, floats({1, 1, 2, 3})}, a, "", 1, 10),
               "cuda.resize");
  expect_match(
      *one_node_graph("Resize", {OperandSpec{{1, 3, 8, 9}}, floats({1, 1, 0.5f, 0.7f})}, a, "", 1, 10),
      "cuda.resize");
  Attributes l;
  l.set("mode", std::string("linear"));
  expect_match(*one_node_graph("Resize", {OperandSpec{{1, 3, 5, 7}}, floats({1, 1, 2, 1.5f})}, l, "", 1, 10),
               "cuda.resize");
  // Upsample-9.
  expect_match(*one_node_graph("Upsample", {OperandSpec{{1, 2, 4, 6}}, floats({1, 1, 2, 2})}, a, "", 1, 9),
               "cuda.resize");
}

TEST(CudaMovement, ResizeLinear) {
  KILN_REQUIRE_GPU();
  for (const char* coord : kCoordModes) {
    if (std::string(coord) == "tf_half_pixel_for_nn") continue;  // a nearest-only mode
    SCOPED_TRACE(coord);
    Attributes a;
    a.set("mode", std::string("linear"));
    a.set("coordinate_transformation_mode", std::string(coord));
    expect_match(*resize_scales({2, 3, 6, 9}, {1, 1, 2, 2}, a), "cuda.resize");
    expect_match(*resize_scales({1, 2, 7, 5}, {1, 1, 1.7f, 0.6f}, a), "cuda.resize");
    expect_match(*resize_sizes({2, 3, 6, 9}, {2, 3, 8, 13}, a), "cuda.resize");
    expect_match(*resize_sizes({1, 4, 9, 11}, {1, 4, 4, 5}, a), "cuda.resize");
    expect_match(*resize_scales({3, 10, 12}, {1, 1.5f, 2}, a), "cuda.resize");  // rank 3
  }
  Attributes a;
  a.set("mode", std::string("linear"));
  expect_match(*resize_scales({1, 16, 20, 24}, {1, 1, 2, 2}, a), "cuda.resize", fp16());
}

// -------------------------------------------------------------------------------------------------- Pad
TEST(CudaMovement, PadConstant) {
  KILN_REQUIRE_GPU();
  const std::vector<int64_t> dims{2, 3, 5, 7};
  Attributes a;
  a.set("mode", std::string("constant"));
  expect_match(
      *one_node_graph("Pad", {OperandSpec{dims}, ints({0, 0, 1, 2, 0, 0, 3, 1}), scalar(0.5f)}, a, "", 1, 13),
      "cuda.pad");
  expect_match(*one_node_graph("Pad", {OperandSpec{dims}, ints({0, 1, 0, 0, 1, 0, 2, 0})}, a, "", 1, 13),
               "cuda.pad");
  expect_match(*one_node_graph("Pad", {OperandSpec{{3, 4, 5}}, ints({1, 0, 2, 0, 3, 1})}, {}, "", 1, 13),
               "cuda.pad");
  // Opset 18 axes: pads for axes 2 and -1 only.
  expect_match(*one_node_graph("Pad", {OperandSpec{dims}, ints({1, 2, 3, 4}), scalar(-1.5f), ints({2, -1})},
                               a, "", 1, 18),
               "cuda.pad");
  // Opset 2: pads and value attributes.
  Attributes old;
  old.set("mode", std::string("constant"));
  old.set("pads", std::vector<int64_t>{0, 0, 2, 1, 0, 0, 1, 2});
  old.set("value", 0.25f);
  expect_match(*one_node_graph("Pad", {OperandSpec{dims}}, old, "", 1, 2), "cuda.pad");
  // fp16, rank 5.
  expect_match(*one_node_graph(
                   "Pad", {OperandSpec{{1, 2, 3, 4, 5}}, ints({0, 0, 1, 1, 2, 0, 0, 1, 1, 2}), scalar(0.0f)},
                   a, "", 1, 13),
               "cuda.pad", fp16());
}

TEST(CudaMovement, PadReflectEdgeWrap) {
  KILN_REQUIRE_GPU();
  for (const char* mode : {"reflect", "edge", "wrap"}) {
    SCOPED_TRACE(mode);
    Attributes a;
    a.set("mode", std::string(mode));
    expect_match(
        *one_node_graph("Pad", {OperandSpec{{2, 3, 5, 7}}, ints({0, 0, 2, 3, 0, 0, 1, 2})}, a, "", 1, 19),
        "cuda.pad");
    // Pads longer than the axis (reflect folds back and forth) and a size-1 axis.
    expect_match(*one_node_graph("Pad", {OperandSpec{{2, 1, 3}}, ints({0, 2, 5, 0, 1, 4})}, a, "", 1, 19),
                 "cuda.pad");
  }
  Attributes a;
  a.set("mode", std::string("reflect"));
  expect_match(
      *one_node_graph("Pad", {OperandSpec{{1, 8, 16, 16}}, ints({0, 0, 1, 1, 0, 0, 1, 1})}, a, "", 1, 13),
      "cuda.pad", fp16());
}

// ------------------------------------------------------------------------------------------------ Slice
TEST(CudaMovement, Slice) {
  KILN_REQUIRE_GPU();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  struct Case {
    std::vector<int64_t> dims, starts, ends, axes, steps;  // empty axes/steps: omitted
  };
  for (const Case& c : std::vector<Case>{
           {{4, 6, 8}, {1, -5}, {3, 100}, {0, 2}, {}},        // negative start, end past the axis
           {{4, 6, 8}, {-1}, {kMin}, {1}, {-1}},              // reversed axis
           {{4, 6, 8}, {7, 1}, {0, kMax}, {2, 0}, {-2, 2}},   // backward and forward strides
           {{5, 7, 9}, {1, 0, 2}, {5, 7, 8}, {}, {3, 2, 1}},  // default axes
           {{6, 4, 5}, {1}, {4}, {0}, {}},                    // outer rows only: memcpy
           {{2, 3, 4, 5, 6}, {0, 1, 1}, {2, 3, 5}, {0, 2, 4}, {1, 2, 2}},  // rank 5
           {{3, 40, 50}, {2, 45}, {38, 1}, {-2, -1}, {1, -3}},             // negative axes
       }) {
    std::vector<OperandSpec> ins{OperandSpec{c.dims}, ints(c.starts), ints(c.ends)};
    if (!c.axes.empty() || !c.steps.empty()) {
      std::vector<int64_t> axes = c.axes;
      if (axes.empty())
        for (size_t k = 0; k < c.starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
      ins.push_back(ints(axes));
    }
    if (!c.steps.empty()) ins.push_back(ints(c.steps));
    auto g = one_node_graph("Slice", ins, {}, "", 1, 13);
    expect_match(*g, "cuda.slice");
  }
  // Vector paths: contiguous rows (aligned, then shifted by one element), stride-2 columns, reversed rows.
  for (const auto& [name, opts] : all_precisions()) {
    SCOPED_TRACE(name);
    for (const Case& c : std::vector<Case>{
             {{4, 6, 64}, {1}, {5}, {1}, {}},
             {{2, 5, 17}, {1}, {17}, {2}, {}},
             {{3, 8, 40}, {0, 1}, {8, 40}, {1, 2}, {1, 2}},
             {{3, 6, 24}, {-1}, {kMin}, {2}, {-1}},
         }) {
      std::vector<OperandSpec> ins{OperandSpec{c.dims}, ints(c.starts), ints(c.ends), ints(c.axes)};
      if (!c.steps.empty()) ins.push_back(ints(c.steps));
      expect_match(*one_node_graph("Slice", ins, {}, "", 1, 13), "cuda.slice", opts);
    }
  }
  // Opset 1 attributes.
  Attributes a;
  a.set("starts", std::vector<int64_t>{1, 0});
  a.set("ends", std::vector<int64_t>{-1, 3});
  a.set("axes", std::vector<int64_t>{0, 2});
  expect_match(*one_node_graph("Slice", {OperandSpec{{5, 3, 7}}}, a, "", 1, 9), "cuda.slice");
  // fp16.
  expect_match(
      *one_node_graph("Slice",
                      {OperandSpec{{2, 8, 9, 10}}, ints({1, 9}), ints({7, 0}), ints({1, 3}), ints({2, -2})},
                      {}, "", 1, 13),
      "cuda.slice", fp16());
}

// ------------------------------------------------------------------------------------------------- copy
TEST(CudaMovement, CopyOfConstantView) {
  KILN_REQUIRE_GPU();
  // A Reshape of a constant is not aliased (constants live outside the arena); folding is kept from
  // computing it at build time so the layer stays.
  BuildOptions o = fp32();
  o.fold.max_folded_bytes = 0;
  auto g = one_node_graph("Reshape",
                          {OperandSpec{{2, 3, 4}, DType::Float, random_tensor({2, 3, 4})}, ints({6, 4})});
  expect_match(*g, "cuda.copy", o);
}
