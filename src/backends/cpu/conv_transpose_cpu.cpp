// cpu.conv_transpose: fp32 ConvTranspose (1-D/2-D/3-D, groups, dilations, pads, output_padding,
// output_shape and auto_pad) on a oneDNN deconvolution primitive built for the layer's static shapes. The
// reference scatters every input element in double (the PP-OCR detector spent 27-40% of its time there).
//
// The ONNX weight [C_in, C_out/g, k...] is oneDNN's [g, C_out/g, C_in/g, k...] read through strides and is
// reordered once, at create time, into the layout the primitive prefers. Activations stay plain NC[D]HW for
// the neighbouring kernels; when oneDNN only has a fast implementation in its own (blocked or channels-last)
// layout, run() reorders in and out. The begin pads are the reference's (ops/conv.cpp: explicit pads, or
// derived from output_shape / SAME); the end pad is whatever makes oneDNN's output size the inferred one, so
// output_padding lands at the end as in ONNX (a negative end pad, which oneDNN refuses, leaves the layer to
// the reference).
#if defined(KILN_HAVE_DNNL)
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <memory>
#include <optional>
#include <unordered_map>

#include "backends/cpu/omp_threads.h"
#include "backends/cpu/onednn_engine.h"
#include "device/kernel.h"

namespace kiln::backend {
namespace {

using conv_onednn::cpu_engine;
using dnnl::memory;
using dt = memory::data_type;

struct DeconvSetup {
  memory::desc src, weights, bias, dst;  // user layouts: plain activations, the ONNX weight via strides
  memory::dims strides, dilates, pad_l, pad_r;
};

memory::dims plain_strides(const memory::dims& dims) {
  memory::dims s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

std::optional<DeconvSetup> deconv_setup(const LayerDesc& d) {
  if (d.inputs.size() < 2 || d.inputs[0].dtype != DType::Float || d.inputs[1].dtype != DType::Float ||
      !d.inputs[1].constant || d.outputs[0].dtype != DType::Float)
    return std::nullopt;
  const bool bias = d.inputs.size() > 2 && d.inputs[2].present;
  if (bias && (d.inputs[2].dtype != DType::Float || !d.inputs[2].constant)) return std::nullopt;
  const auto &x = d.inputs[0].dims, &w = d.inputs[1].dims, &y = d.outputs[0].dims;
  const size_t n = x.size() - 2;
  if (x.size() < 3 || x.size() > 5 || w.size() != x.size() || y.size() != x.size()) return std::nullopt;
  const Attributes& a = d.node->attrs;
  const int64_t group = a.get_int("group", 1);
  if (group < 1 || x[1] % group != 0 || w[0] != x[1]) return std::nullopt;
  const auto strides = a.get_ints("strides", std::vector<int64_t>(n, 1));
  const auto dil = a.get_ints("dilations", std::vector<int64_t>(n, 1));
  const auto pads = a.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  const auto out_pad = a.get_ints("output_padding", std::vector<int64_t>(n, 0));
  if (strides.size() != n || dil.size() != n || pads.size() != 2 * n || out_pad.size() != n)
    return std::nullopt;
  const std::string auto_pad = a.get_string("auto_pad", "NOTSET");
  const bool derived = a.has("output_shape") || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  DeconvSetup s;
  for (size_t i = 0; i < n; ++i) {
    if (strides[i] < 1 || dil[i] < 1) return std::nullopt;
    const int64_t span = (w[i + 2] - 1) * dil[i] + 1, full = strides[i] * (x[i + 2] - 1) + span;
    int64_t begin = 0;
    if (derived) {  // as ops/conv.cpp's conv_geometry
      const int64_t total = std::max<int64_t>(0, full + out_pad[i] - y[i + 2]);
      begin = auto_pad == "SAME_LOWER" ? total - total / 2 : total / 2;
    } else if (auto_pad != "VALID") {
      begin = pads[i];
    }
    const int64_t end = full - y[i + 2] - begin;
    if (begin < 0 || end < 0) return std::nullopt;
    s.strides.push_back(strides[i]);
    s.dilates.push_back(dil[i] - 1);  // oneDNN counts dilation from 0
    s.pad_l.push_back(begin);
    s.pad_r.push_back(end);
  }
  const memory::dims xd(x.begin(), x.end()), yd(y.begin(), y.end());
  s.src = memory::desc(xd, dt::f32, plain_strides(xd));
  s.dst = memory::desc(yd, dt::f32, plain_strides(yd));
  // ONNX [C_in, C_out/g, k...] = [g, C_in/g, C_out/g, k...] physically; oneDNN's logical order is
  // [g, C_out/g, C_in/g, k...] (no g dim without groups).
  const int64_t ocg = w[1], icg = x[1] / group;
  int64_t k = 1;
  for (size_t i = 2; i < w.size(); ++i) k *= w[i];
  memory::dims wd{ocg, icg}, ws{k, ocg * k};
  for (size_t i = 2; i < w.size(); ++i) wd.push_back(w[i]);
  const memory::dims ks = plain_strides(memory::dims(w.begin() + 2, w.end()));
  ws.insert(ws.end(), ks.begin(), ks.end());
  if (group > 1) {
    wd.insert(wd.begin(), group);
    ws.insert(ws.begin(), icg * ocg * k);
  }
  s.weights = memory::desc(wd, dt::f32, ws);
  if (bias) s.bias = memory::desc({y[1]}, dt::f32, memory::format_tag::a);
  return s;
}

memory::desc any_layout(const memory::desc& m) {
  return memory::desc(m.dims(), dt::f32, memory::format_tag::any);
}

dnnl::deconvolution_forward::primitive_desc make_pd(const DeconvSetup& s, bool plain_activations) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per run: concurrent contexts never share it
  const memory::desc src = plain_activations ? s.src : any_layout(s.src);
  const memory::desc dst = plain_activations ? s.dst : any_layout(s.dst);
  dnnl::deconvolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::deconvolution_direct, src, any_layout(s.weights),
                                         s.bias, dst, s.strides, s.dilates, s.pad_l, s.pad_r);
  return dnnl::deconvolution_forward::primitive_desc(desc, attr, cpu_engine());
}

bool is_reference_impl(const dnnl::deconvolution_forward::primitive_desc& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

// The plain-layout primitive unless oneDNN has only its reference code for it; then its own layouts.
dnnl::deconvolution_forward::primitive_desc choose_pd(const DeconvSetup& s) {
  auto pd = make_pd(s, true);
  if (!is_reference_impl(pd)) return pd;
  try {
    auto own = make_pd(s, false);
    if (!is_reference_impl(own)) return own;
  } catch (const dnnl::error&) {
  }
  return pd;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<void, AlignedFree>;

Buffer allocate(const memory::desc& md) {
  const size_t bytes = (md.get_size() + 63) / 64 * 64;
  Buffer b(std::aligned_alloc(64, std::max<size_t>(bytes, 64)));
  if (!b) throw std::bad_alloc();
  return b;
}

class DeconvKernel final : public Kernel {
 public:
  DeconvKernel(const LayerDesc& d, const DeconvSetup& s) : s_(s), threads_(d.threads) {
    OmpThreads omp(threads_);
    pd_ = choose_pd(s_);
    prim_ = dnnl::deconvolution_forward(pd_);
    const dnnl::engine& eng = cpu_engine();
    weights_ = memory(pd_.weights_desc(), eng);
    memory user(s_.weights, eng, const_cast<void*>(d.inputs[1].constant->raw()));
    dnnl::stream st(eng);
    dnnl::reorder(user, weights_).execute(st, user, weights_);
    st.wait();
    if (s_.bias) {
      bias_ = memory(s_.bias, eng);
      std::memcpy(bias_.get_data_handle(), d.inputs[2].constant->raw(), s_.bias.get_size());
    }
    if (pd_.src_desc() != s_.src)
      reorder_in_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng, s_.src, eng, pd_.src_desc()));
    if (pd_.dst_desc() != s_.dst)
      reorder_out_ = dnnl::reorder(dnnl::reorder::primitive_desc(eng, pd_.dst_desc(), eng, s_.dst));
  }

  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    OmpThreads omp(threads_);
    const dnnl::engine& eng = cpu_engine();
    dnnl::stream st(eng);
    memory usrc(s_.src, eng, in[0].data), udst(s_.dst, eng, out[0].data);
    Buffer src_buf, dst_buf, scratch_buf;
    memory src = usrc, dst = udst;
    if (reorder_in_) {
      src_buf = allocate(pd_.src_desc());
      src = memory(pd_.src_desc(), eng, src_buf.get());
      reorder_in_.execute(st, usrc, src);
    }
    if (reorder_out_) {
      dst_buf = allocate(pd_.dst_desc());
      dst = memory(pd_.dst_desc(), eng, dst_buf.get());
    }
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
    if (bias_) args.emplace(DNNL_ARG_BIAS, bias_);
    if (pd_.scratchpad_desc().get_size() > 0) {
      scratch_buf = allocate(pd_.scratchpad_desc());
      args.emplace(DNNL_ARG_SCRATCHPAD, memory(pd_.scratchpad_desc(), eng, scratch_buf.get()));
    }
    prim_.execute(st, args);
    if (reorder_out_) reorder_out_.execute(st, dst, udst);
    st.wait();
  }
  std::string describe() const override {
    return std::string(pd_.impl_info_str()) + (reorder_in_ || reorder_out_ ? ", own activation layout" : "");
  }

 private:
  DeconvSetup s_;
  int threads_;
  dnnl::deconvolution_forward::primitive_desc pd_;
  dnnl::deconvolution_forward prim_;
  dnnl::reorder reorder_in_, reorder_out_;
  memory weights_, bias_;
};

bool supports(const LayerDesc& d) {
  const auto s = deconv_setup(d);
  if (!s) return false;
  try {
    make_pd(*s, true);
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

KILN_REGISTER_KERNEL(KernelFactory{.name = "cpu.conv_transpose",
                                   .device = "cpu",
                                   .op = "ConvTranspose",
                                   .domain = "",
                                   .priority = 50,
                                   .supports = supports,
                                   .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
                                     return std::make_unique<DeconvKernel>(d, *deconv_setup(d));
                                   }});

}  // namespace
}  // namespace kiln::backend
#endif  // KILN_HAVE_DNNL
