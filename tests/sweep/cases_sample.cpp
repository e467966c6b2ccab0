// kiln_backend_sweep cases: sampling and unpooling — GridSample (every mode x padding mode x align_corners,
// opset 16's and opset 20's mode names, grids reaching well outside [-1, 1] so reflection folds more than
// once, a one-pixel-wide X, a float32 grid for 16-bit X, a grid large enough for many blocks), RoiAlign (avg
// and max, half_pixel and output_half_pixel — also as opset 10's default — fixed and adaptive sampling, a
// spatial_scale, random boxes partly outside X and inverted, several batch entries), MaxUnpool (2-D, 1-D,
// 3-D, strided and padded, repeated indices, every element size) and MaxPool on the integer dtypes and
// float64 (with Indices both storage orders).
#include <algorithm>

#include "cases_util.h"
#include "cases_values.h"

namespace kiln::sweep {
namespace {

using V = std::vector<int64_t>;

// ----------------------------------------------------------------------------------------- GridSample
std::vector<Case> grid_sample_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  const Fill near{0.02, 1.3}, far{0.1, 4.5};  // mostly inside [-1, 1]; and folds of reflection
  auto grid_case = [&](V x, V g, const std::string& mode, const std::string& pad, int64_t align, Fill f,
                       int64_t opset = 16, DType grid_dtype = DType::Undefined) {
    Case c = make_case(dims_str(x) + " grid" + dims_str(g) + " " + mode + " " + pad + (align ? " align" : ""),
                       {input(dt, x), input(grid_dtype == DType::Undefined ? dt : grid_dtype, g, f)},
                       attrs({{"mode", mode}, {"padding_mode", pad}, {"align_corners", align}}), opset);
    if (grid_dtype != DType::Undefined) c.label += std::string(" grid ") + dtype_name(grid_dtype);
    if (f.hi > 2) c.label += " far";
    out.push_back(std::move(c));
  };
  for (const char* mode : {"bilinear", "nearest", "bicubic"})
    for (const char* pad : {"zeros", "border", "reflection"})
      for (int64_t align : {0, 1}) {
        grid_case({2, 3, 5, 6}, {2, 4, 7, 2}, mode, pad, align, near);
        if (std::string(pad) == "reflection") grid_case({1, 2, 4, 3}, {1, 5, 6, 2}, mode, pad, align, far);
      }
  grid_case({1, 2, 6, 5}, {1, 3, 4, 2}, "linear", "border", 0, near, 20);
  grid_case({1, 2, 6, 5}, {1, 3, 4, 2}, "cubic", "zeros", 1, far, 20);
  grid_case({1, 2, 3, 1}, {1, 4, 4, 2}, "bilinear", "reflection", 1, far);  // a single column
  grid_case({2, 4, 37, 29}, {2, 41, 53, 2}, "bilinear", "zeros", 0, near);  // many blocks
  grid_case({1, 8, 17, 19}, {1, 33, 31, 2}, "bicubic", "border", 1, near);
  if (dt != DType::Float)
    grid_case({1, 3, 5, 4}, {1, 6, 5, 2}, "bicubic", "reflection", 0, far, 16, DType::Float);
  return out;
}

// ------------------------------------------------------------------------------------------- RoiAlign
// The ONNX node test's boxes over a 10x10 image, and X of batch 1.
std::vector<double> onnx_rois() {
  return {0, 0, 9, 9, 0, 5, 4, 9, 5, 5, 9, 9};
}

std::vector<Case> roi_align_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  struct Spec {
    V x;
    int64_t rois, out_h, out_w, sampling;
    double scale;
    std::string ctm, mode;
    int64_t opset = 16;
  };
  const std::vector<Spec> specs{
      {{2, 3, 10, 12}, 5, 3, 4, 2, 1.0, "half_pixel", "avg"},
      {{2, 3, 10, 12}, 5, 3, 4, 2, 1.0, "output_half_pixel", "avg"},
      {{2, 3, 10, 12}, 5, 2, 3, 0, 1.0, "half_pixel", "avg"},  // adaptive
      {{2, 3, 10, 12}, 5, 2, 3, 0, 1.0, "output_half_pixel", "max"},
      {{2, 3, 10, 12}, 5, 3, 3, 3, 1.0, "half_pixel", "max"},
      {{3, 4, 16, 9}, 7, 4, 2, 1, 0.5, "half_pixel", "avg"},
      {{1, 2, 8, 8}, 4, 2, 2, 0, 0.25, "", "max", 10},           // opset 10: output_half_pixel by default
      {{2, 16, 33, 29}, 24, 7, 7, 2, 1.0, "half_pixel", "avg"},  // many blocks
  };
  for (const Spec& s : specs) {
    Attributes a = attrs({{"output_height", s.out_h},
                          {"output_width", s.out_w},
                          {"sampling_ratio", s.sampling},
                          {"spatial_scale", static_cast<float>(s.scale)},
                          {"mode", s.mode}});
    if (!s.ctm.empty()) a.set("coordinate_transformation_mode", s.ctm);
    // Box corners up to past the far edge (samples outside X), in any order (inverted boxes).
    const double extent = static_cast<double>(std::max(s.x[2], s.x[3])) / s.scale + 2;
    const Fill box{0.0, extent, true};
    const Fill batch{0, static_cast<double>(s.x[0] - 1), false, true};
    std::string label = dims_str(s.x) + " rois " + std::to_string(s.rois) + " out " +
                        std::to_string(s.out_h) + "x" + std::to_string(s.out_w) + " sampling " +
                        std::to_string(s.sampling) + " " + s.mode + " " +
                        (s.ctm.empty() ? "default ctm" : s.ctm);
    if (s.scale != 1.0) label += " scale " + std::to_string(s.scale);
    out.push_back(
        make_case(label, {input(dt, s.x), input(dt, {s.rois, 4}, box), input(DType::Int64, {s.rois}, batch)},
                  a, s.opset));
  }
  for (const char* ctm : {"half_pixel", "output_half_pixel"})  // the node test's layer, its boxes constant
    out.push_back(make_case(std::string("onnx node test ") + ctm,
                            {input(dt, {1, 1, 10, 10}), fixed(tensor_of(dt, {3, 4}, onnx_rois())),
                             fixed(tensor_of(DType::Int64, {3}, {0, 0, 0}))},
                            attrs({{"output_height", int64_t{5}},
                                   {"output_width", int64_t{5}},
                                   {"sampling_ratio", int64_t{2}},
                                   {"spatial_scale", 1.0f},
                                   {"coordinate_transformation_mode", std::string(ctm)}}),
                            16));
  return out;
}

// ------------------------------------------------------------------------------------------ MaxUnpool
std::vector<Case> max_unpool_cases(const std::string&, DType dt) {
  struct Spec {
    V x, k, strides, pads;
  };
  const std::vector<Spec> specs{
      {{1, 1, 2, 2}, {2, 2}, {2, 2}, {}},  // the ONNX node test
      {{2, 3, 5, 4}, {3, 2}, {2, 2}, {1, 0, 0, 1}}, {{2, 3, 9}, {3}, {2}, {1, 1}},
      {{1, 2, 3, 4, 2}, {2, 2, 2}, {2, 1, 2}, {}},  {{2, 8, 33, 31}, {2, 2}, {2, 2}, {}},  // many blocks
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    const size_t n = s.k.size();
    int64_t total = s.x[0] * s.x[1];
    const V pads = s.pads.empty() ? V(2 * n, 0) : s.pads;
    for (size_t i = 0; i < n; ++i)
      total *= (s.x[i + 2] - 1) * s.strides[i] - (pads[i] + pads[i + n]) + s.k[i];
    // Indices anywhere in Y: unpooled from a MaxPool they would be distinct, here some repeat (the last
    // wins).
    Case c = make_case(
        dims_str(s.x) + " k" + dims_str(s.k) + " s" + dims_str(s.strides) + " p" + dims_str(pads),
        {input(dt, s.x), input(DType::Int64, s.x, Fill{0, static_cast<double>(total - 1), false, true})},
        attrs({{"kernel_shape", s.k}, {"strides", s.strides}, {"pads", pads}}), 11);
    c.exact = true;
    out.push_back(std::move(c));
  }
  return out;
}

// ------------------------------------------------------------------------------- MaxPool, not float
std::vector<Case> max_pool_integer_cases(const std::string&, DType dt) {
  struct Spec {
    V x, k, strides, pads;
    int64_t ceil = 0;
    size_t outputs = 1;
    int64_t storage_order = 0;
  };
  const std::vector<Spec> specs{
      {{1, 1, 5, 5}, {5, 5}, {1, 1}, {2, 2, 2, 2}},  // the ONNX node test (uint8)
      {{2, 3, 11, 10}, {3, 3}, {2, 2}, {1, 0, 1, 1}, 1},
      {{1, 4, 9, 8}, {2, 3}, {2, 2}, {0, 1, 0, 1}, 0, 2},
      {{1, 4, 9, 8}, {3, 2}, {2, 1}, {1, 1, 1, 0}, 0, 2, 1},
      {{2, 3, 25}, {4}, {3}, {1, 2}, 1, 2},
      {{1, 2, 5, 6, 7}, {2, 3, 2}, {2, 2, 2}, {1, 0, 1, 0, 1, 1}, 0, 2, 1},
      {{1, 32, 56, 56}, {3, 3}, {2, 2}, {1, 1, 1, 1}},  // many blocks
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    Attributes a =
        attrs({{"kernel_shape", s.k}, {"strides", s.strides}, {"pads", s.pads}, {"ceil_mode", s.ceil}});
    if (s.storage_order) a.set("storage_order", s.storage_order);
    std::string label =
        dims_str(s.x) + " k" + dims_str(s.k) + " s" + dims_str(s.strides) + " p" + dims_str(s.pads);
    if (s.ceil) label += " ceil";
    if (s.outputs > 1) label += s.storage_order ? " +indices col-major" : " +indices";
    Case c = make_case(label, {input(dt, s.x)}, a, 12);
    c.outputs = s.outputs;
    c.exact = true;
    out.push_back(std::move(c));
  }
  return out;
}

const std::vector<DType>& unpool_dtypes() {  // cuda.max_unpool moves bits: every element size
  static const std::vector<DType> v{DType::Float, DType::Float16, DType::BFloat16, DType::Double,
                                    DType::UInt8, DType::Int32,   DType::Int64};
  return v;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"GridSample"}, .dtypes = float_dtypes(), .cases = grid_sample_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"RoiAlign"}, .dtypes = float_dtypes(), .cases = roi_align_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"MaxUnpool"}, .dtypes = unpool_dtypes(), .cases = max_unpool_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"MaxPool"},
                  .dtypes = {DType::Int8, DType::UInt8, DType::Int16, DType::UInt16, DType::Int32,
                             DType::UInt32, DType::Int64, DType::UInt64, DType::Double},
                  .cases = max_pool_integer_cases});

}  // namespace
}  // namespace kiln::sweep
