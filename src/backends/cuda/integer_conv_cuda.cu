// cuda.integer_conv: ConvInteger (int32 results) and QLinearConv (requantized uint8/int8 results) on
// uint8/int8 x and w (the two may differ), 1-D to 3-D, with pads / auto_pad, strides, dilations and group.
// A direct convolution, one thread per output element: the exact sum of (x - x_zero_point) *
// (w - w_zero_point) over the output channel's group and the kernel window in int64, padding contributing
// nothing (the reference pads the shifted x with zeros), then finished as src/ops/qlinear.cpp does
// (integer_quant_cuda.cuh): + bias (int32), * x_scale * w_scale / y_scale, round half to even, +
// y_zero_point, saturate. Parameters, constants or graph inputs alike, are read on the device in every layout
// the reference expands: x's zero point per tensor or of x's rank, w's per tensor, per output channel or of
// w's rank; the scales, y's zero point and the bias per tensor, per output channel (w_scale, bias) or
// broadcasting over the output. supports() refuses only what the reference fails (operand dtypes, group,
// shapes, attributes).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/integer_quant_cuda.cuh"

namespace kiln::cuda::integer {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 256;

// Slots 3..7 of the output space are N, M, out_d, out_h, out_w; spatial arrays are padded in front with 1s
// (strides/dilations 1, pads 0) up to three axes, as the reference's geometry is.
constexpr int kN = kMaxRank - 5, kM = kMaxRank - 4, kSpatial = kMaxRank - 3;

struct ConvShape {
  int64_t dims[kMaxRank] = {};
  int64_t c_in = 0, cg = 0, mg = 0;  // input channels; input / output channels per group
  int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, stride[3] = {1, 1, 1}, dil[3] = {1, 1, 1}, pad[3] = {};
  // Zero-point strides over x as [N, C, D, H, W] and over w as [M, C/group, kD, kH, kW] (0: not varying).
  int64_t x_zs[5] = {}, w_zs[5] = {};
};

template <typename X, typename W, typename Y>
__global__ void integer_conv_kernel(const X* x, const X* x_zp, const W* w, const W* w_zp, Y* y, int64_t n,
                                    ConvShape s, Requant rq) {
  const int64_t in_sz = s.in[0] * s.in[1] * s.in[2], k_sz = s.k[0] * s.k[1] * s.k[2];
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t c[kMaxRank];
    coords_of(i, s.dims, c);
    const int64_t b = c[kN], m = c[kM];
    const int64_t c0 = (m / s.mg) * s.cg;  // first input channel of m's group
    const int64_t d0 = c[kSpatial] * s.stride[0] - s.pad[0], h0 = c[kSpatial + 1] * s.stride[1] - s.pad[1],
                  w0 = c[kSpatial + 2] * s.stride[2] - s.pad[2];
    int64_t acc = 0;
    for (int64_t ci = 0; ci < s.cg; ++ci) {
      const X* xc = x + (b * s.c_in + c0 + ci) * in_sz;
      const W* wc = w + (m * s.cg + ci) * k_sz;
      const int64_t xz = b * s.x_zs[0] + (c0 + ci) * s.x_zs[1], wz = m * s.w_zs[0] + ci * s.w_zs[1];
      for (int64_t kd = 0; kd < s.k[0]; ++kd) {
        const int64_t id = d0 + kd * s.dil[0];
        if (id < 0 || id >= s.in[0]) continue;
        for (int64_t kh = 0; kh < s.k[1]; ++kh) {
          const int64_t ih = h0 + kh * s.dil[1];
          if (ih < 0 || ih >= s.in[1]) continue;
          for (int64_t kw = 0; kw < s.k[2]; ++kw) {
            const int64_t iw = w0 + kw * s.dil[2];
            if (iw < 0 || iw >= s.in[2]) continue;
            int32_t xv = static_cast<int32_t>(xc[(id * s.in[1] + ih) * s.in[2] + iw]);
            int32_t wv = static_cast<int32_t>(wc[(kd * s.k[1] + kh) * s.k[2] + kw]);
            if (x_zp) xv -= static_cast<int32_t>(x_zp[xz + id * s.x_zs[2] + ih * s.x_zs[3] + iw * s.x_zs[4]]);
            if (w_zp) wv -= static_cast<int32_t>(w_zp[wz + kd * s.w_zs[2] + kh * s.w_zs[3] + kw * s.w_zs[4]]);
            acc += static_cast<int64_t>(xv * wv);
          }
        }
      }
    }
    y[i] = finish<Y>(acc, rq, c);
  }
}

// Input positions: ConvInteger (x, w, x_zero_point, w_zero_point); QLinearConv (x, x_scale, x_zero_point,
// w, w_scale, w_zero_point, y_scale, y_zero_point[, bias]).
struct Slots {
  size_t x = 0, w = 1, x_zp = 2, w_zp = 3, x_scale = 0, w_scale = 0, y_scale = 0, y_zp = 0, bias = 0;
};

struct ConvPlan {
  bool qlinear = false;
  Slots slot;
  DType x = DType::Undefined, w = DType::Undefined, y = DType::Undefined;
  ConvShape shape;
  int64_t numel = 0;
  Requant rq;
};

// Per-axis values of a tensor of rank 2 + n (N/M, C, n spatial) spread to [N, C, 3 spatial]: the spatial
// axes right-aligned after `fill`s, as the reference pads 1-D and 2-D geometry.
std::vector<int64_t> five_d(const std::vector<int64_t>& v, int64_t fill) {
  std::vector<int64_t> out{v[0], v[1]};
  out.insert(out.end(), 5 - v.size(), fill);
  out.insert(out.end(), v.begin() + 2, v.end());
  return out;
}

// An operand's zero point over its dims (axis: w's output channels; -1 for x), as 5-D strides.
bool operand_zp(const LayerDesc::Operand& zp, const std::vector<int64_t>& dims, int64_t axis, int64_t* zs) {
  std::vector<int64_t> st;
  if (!param_strides(zp.dims, dims, axis, st)) return false;
  const auto st5 = five_d(st, 0);
  for (size_t k = 0; k < 5; ++k) zs[k] = st5[k];
  return true;
}

// An output parameter expanded over the output's dims along `axis` (-1: none), as the reference does.
bool output_param(const LayerDesc::Operand& p, const std::vector<int64_t>& yd, int64_t axis, Param& out) {
  std::vector<int64_t> st;
  if (!param_strides(p.dims, yd, axis, st)) return false;
  out = make_param(p.dtype, right_aligned(five_d(st, 0), 0));
  return true;
}

bool is_scale_type(DType t) {
  return t == DType::Float || t == DType::Float16 || t == DType::BFloat16;
}

// Geometry from the attributes, as the reference's conv_geometry (begin pads from pads or auto_pad).
bool plan_geometry(const LayerDesc& d, const std::vector<int64_t>& xd, const std::vector<int64_t>& wd,
                   const std::vector<int64_t>& yd, ConvShape& sh) {
  const size_t n = xd.size() - 2, o = 3 - n;
  const Attributes& a = d.node->attrs;
  const auto strides = a.get_ints("strides", std::vector<int64_t>(n, 1));
  const auto dil = a.get_ints("dilations", std::vector<int64_t>(n, 1));
  const auto pads = a.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  const std::string auto_pad = a.get_string("auto_pad", "NOTSET");
  if (strides.size() != n || dil.size() != n || pads.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (strides[i] < 1 || dil[i] < 1) return false;
    sh.in[o + i] = xd[i + 2];
    sh.k[o + i] = wd[i + 2];
    sh.stride[o + i] = strides[i];
    sh.dil[o + i] = dil[i];
    const int64_t span = (wd[i + 2] - 1) * dil[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t total = std::max<int64_t>(0, (yd[i + 2] - 1) * strides[i] + span - xd[i + 2]);
      sh.pad[o + i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    } else if (auto_pad != "VALID") {
      sh.pad[o + i] = pads[i];
    }
  }
  return true;
}

// The plan, or false when this kernel cannot run the layer (or the reference would fail it).
bool plan_conv(const LayerDesc& d, ConvPlan& p) {
  p.qlinear = d.node->op == "QLinearConv";
  if (p.qlinear)
    p.slot = {
        .x = 0, .w = 3, .x_zp = 2, .w_zp = 5, .x_scale = 1, .w_scale = 4, .y_scale = 6, .y_zp = 7, .bias = 8};
  const Slots& s = p.slot;
  const size_t n_in = d.inputs.size();
  if (p.qlinear ? (n_in < 8 || n_in > 9) : (n_in < 2 || n_in > 4)) return false;
  if (d.outputs.size() != 1 || !d.outputs[0].present) return false;
  auto present = [&](size_t k) { return k < n_in && d.inputs[k].present; };
  const auto &X = d.inputs[s.x], &Wt = d.inputs[s.w];
  if (!present(s.x) || !present(s.w) || !is_8bit(X.dtype) || !is_8bit(Wt.dtype)) return false;
  if ((present(s.x_zp) && d.inputs[s.x_zp].dtype != X.dtype) ||
      (present(s.w_zp) && d.inputs[s.w_zp].dtype != Wt.dtype))
    return false;
  p.x = X.dtype;
  p.w = Wt.dtype;
  p.y = d.outputs[0].dtype;
  if (p.qlinear) {
    for (size_t k : {s.x_scale, s.w_scale, s.y_scale})
      if (!present(k) || !is_scale_type(d.inputs[k].dtype)) return false;
    if (!present(s.y_zp) || !is_8bit(d.inputs[s.y_zp].dtype) || p.y != d.inputs[s.y_zp].dtype) return false;
    if (present(s.bias) && d.inputs[s.bias].dtype != DType::Int32) return false;
  } else if (p.y != DType::Int32) {
    return false;
  }

  const std::vector<int64_t>&xd = X.dims, &wd = Wt.dims, &yd = d.outputs[0].dims;
  if (xd.size() < 3 || xd.size() > 5 || wd.size() != xd.size() || yd.size() != xd.size()) return false;
  const int64_t group = d.node->attrs.get_int("group", 1);
  if (group < 1 || xd[1] != wd[1] * group || wd[0] % group != 0) return false;
  if (yd[0] != xd[0] || yd[1] != wd[0]) return false;
  ConvShape& sh = p.shape;
  if (!plan_geometry(d, xd, wd, yd, sh)) return false;
  sh.c_in = xd[1];
  sh.cg = wd[1];
  sh.mg = wd[0] / group;
  const auto dims = right_aligned(five_d(yd, 1), 1);
  for (int k = 0; k < kMaxRank; ++k) sh.dims[k] = dims[static_cast<size_t>(k)];
  p.numel = volume(yd);

  if (present(s.x_zp) && !operand_zp(d.inputs[s.x_zp], xd, -1, sh.x_zs)) return false;
  if (present(s.w_zp) && !operand_zp(d.inputs[s.w_zp], wd, 0, sh.w_zs)) return false;
  p.rq.qlinear = p.qlinear;
  if (p.qlinear) {
    if (!output_param(d.inputs[s.x_scale], yd, -1, p.rq.a_scale) ||
        !output_param(d.inputs[s.w_scale], yd, 1, p.rq.b_scale) ||
        !output_param(d.inputs[s.y_scale], yd, -1, p.rq.y_scale) ||
        !output_param(d.inputs[s.y_zp], yd, -1, p.rq.y_zp))
      return false;
    if (present(s.bias) && !output_param(d.inputs[s.bias], yd, 1, p.rq.bias)) return false;
  }
  return true;
}

class IntegerConvKernel final : public CudaKernel {
 public:
  explicit IntegerConvKernel(ConvPlan p) : p_(std::move(p)) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (p_.numel == 0) return;
    const Slots& s = p_.slot;
    auto data = [&](size_t k) -> const void* { return k < in.size() ? in[k].data : nullptr; };
    Requant rq = p_.rq;
    if (rq.qlinear) {
      rq.a_scale.data = data(s.x_scale);
      rq.b_scale.data = data(s.w_scale);
      rq.y_scale.data = data(s.y_scale);
      rq.y_zp.data = data(s.y_zp);
      rq.bias.data = data(s.bias);
    }
    const unsigned int grid = blocks_for(p_.numel, kThreads);
    dispatch_8bit(p_.x, [&](auto xt) {
      dispatch_8bit(p_.w, [&](auto wt) {
        dispatch_output(p_.y, [&](auto yt) {
          using X = decltype(xt);
          using W = decltype(wt);
          using Y = decltype(yt);
          integer_conv_kernel<X, W, Y><<<grid, kThreads, 0, rc.stream>>>(
              static_cast<const X*>(in[s.x].data), static_cast<const X*>(data(s.x_zp)),
              static_cast<const W*>(in[s.w].data), static_cast<const W*>(data(s.w_zp)),
              static_cast<Y*>(out[0].data), p_.numel, p_.shape, rq);
          KILN_CUDA_CHECK_LAUNCH();
        });
      });
    });
  }

 private:
  ConvPlan p_;
};

KILN_REGISTER_KERNEL((planned_factory<ConvPlan, IntegerConvKernel>("cuda.integer_conv", "ConvInteger",
                                                                   plan_conv)));
KILN_REGISTER_KERNEL((planned_factory<ConvPlan, IntegerConvKernel>("cuda.integer_conv", "QLinearConv",
                                                                   plan_conv)));

}  // namespace
}  // namespace kiln::cuda::integer
