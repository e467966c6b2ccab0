// cuda.conv3d_direct (Conv3d with one input channel) against the CPU reference: PackNet's 1→8 3x3x3 pad 1
// with and without bias at several sizes (odd ones, tiles crossing every edge), asymmetric pads, more than 8
// output channels (two launches), another kernel size (the generic path), fp32 (FFMA kernel), fp16 and bf16
// (tensor-core kernel). The fp16 / bf16 cases cover each block width (16, 32, 64 w), each store width (16-,
// 8-, 4-, 2-byte rows: OW a multiple of 8, 4, 2, odd), partial depth / height / width tiles and N = 2.
#include <vector>

#include "gpu_test_util.h"

namespace kiln {
namespace {

using gpu_test::compare_with_reference;
using gpu_test::one_node_graph;
using gpu_test::OperandSpec;
using gpu_test::random_tensor;

struct ConvCase {
  std::vector<int64_t> x;  // [N, 1, D, H, W]
  int64_t m;
  std::vector<int64_t> k;  // kd, kh, kw
  std::vector<int64_t> pads;
  bool bias;
};

std::unique_ptr<Graph> conv_graph(const ConvCase& c) {
  std::vector<OperandSpec> in = {OperandSpec{c.x, DType::Float, std::nullopt},
                                 OperandSpec{{c.m, 1, c.k[0], c.k[1], c.k[2]},
                                             DType::Float,
                                             random_tensor({c.m, 1, c.k[0], c.k[1], c.k[2]}, 0.05f, 0.5f)}};
  if (c.bias) in.push_back(OperandSpec{{c.m}, DType::Float, random_tensor({c.m})});
  Attributes a;
  a.set("kernel_shape", c.k);
  a.set("pads", c.pads);
  a.set("strides", std::vector<int64_t>{1, 1, 1});
  return one_node_graph("Conv", in, a);
}

const std::vector<int64_t> kPad1 = {1, 1, 1, 1, 1, 1};

const std::vector<ConvCase> kCases = {
    {{1, 1, 16, 24, 80}, 8, {3, 3, 3}, kPad1, true},  // PackNet-like (pack5 is 1x1x2048x6x20... scaled down)
    {{1, 1, 64, 6, 20}, 8, {3, 3, 3}, kPad1, true},   // pack5 / unpack shapes: small planes, deep
    {{1, 1, 5, 7, 9}, 8, {3, 3, 3}, kPad1, true},     // odd everywhere (scalar stores)
    {{2, 1, 6, 10, 70}, 8, {3, 3, 3}, kPad1, false},  // N = 2, W crosses a 64-wide tile, no bias
    {{1, 1, 9, 17, 66}, 8, {3, 3, 3}, {0, 1, 2, 1, 0, 1}, true},  // asymmetric pads
    {{1, 1, 7, 9, 12}, 12, {3, 3, 3}, kPad1, true},  // 12 channels: two launches, the second partial
    {{1, 1, 6, 8, 10}, 4, {1, 3, 5}, {0, 1, 2, 0, 1, 2}, true},  // generic path
    {{1, 1, 1, 1, 1}, 8, {3, 3, 3}, kPad1, true},                // a single voxel
    // Block widths of the tensor-core kernel (fp16 / bf16): 64 w with a 16-byte tail strip half outside,
    // 64 w with 4-byte rows, 32 w with N = 2, 64 w with OW % 8 = 4 and two channel launches, 16 w with odd
    // OW.
    {{1, 1, 10, 13, 120}, 8, {3, 3, 3}, kPad1, true},  // OW 120: 64-wide blocks, last strip's 2nd half empty
    {{1, 1, 9, 5, 250}, 8, {3, 3, 3}, kPad1, false},   // OW 250: 64-wide blocks, 4-byte stores, D/H tails
    {{2, 1, 17, 11, 96}, 8, {3, 3, 3}, kPad1, true},   // OW 96: 32-wide blocks, N = 2, 3 depth tiles
    {{1, 1, 12, 9, 124}, 12, {3, 3, 3}, kPad1, true},  // OW 124: 8-byte stores, 12 channels in two launches
    {{2, 1, 8, 8, 33}, 5, {3, 3, 3}, {2, 0, 1, 0, 2, 1}, true},  // 5 channels, odd OW, asymmetric pads
};

void check(DType precision) {
  BuildOptions opts;
  opts.tf32 = false;
  opts.precision = precision;
  for (const ConvCase& c : kCases) {
    auto g = conv_graph(c);
    const auto cmp = compare_with_reference(*g, opts);
    EXPECT_LE(cmp.worst(), gpu_test::tolerance(precision, false))
        << "x " << c.x[2] << "x" << c.x[3] << "x" << c.x[4] << " M " << c.m << " bias " << c.bias;
    EXPECT_TRUE(cmp.uses_kernel("cuda.conv3d_direct")) << "x " << c.x[2] << "x" << c.x[3] << "x" << c.x[4];
  }
}

TEST(CudaConv3d, OneInputChannelFp32) {
  KILN_REQUIRE_GPU();
  check(DType::Float);
}

TEST(CudaConv3d, OneInputChannelFp16) {
  KILN_REQUIRE_GPU();
  check(DType::Float16);
}

TEST(CudaConv3d, OneInputChannelBf16) {
  KILN_REQUIRE_GPU();
  check(DType::BFloat16);
}

TEST(CudaConv3d, Pack1ShapeFp16Bf16) {
  KILN_REQUIRE_GPU();
  for (DType precision : {DType::Float16, DType::BFloat16}) {
    BuildOptions opts;
    opts.precision = precision;
    auto g =
        conv_graph({{1, 1, 64, 96, 320}, 8, {3, 3, 3}, kPad1, true});  // pack1 with a quarter of its depth
    const auto cmp = compare_with_reference(*g, opts);
    EXPECT_LE(cmp.worst(), gpu_test::tolerance(precision, false)) << dtype_name(precision);
    EXPECT_TRUE(cmp.uses_kernel("cuda.conv3d_direct")) << dtype_name(precision);
  }
}

}  // namespace
}  // namespace kiln
