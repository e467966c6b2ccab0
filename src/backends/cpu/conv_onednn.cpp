// cpu.conv_onednn: fp32 Conv (1-D/2-D/3-D) and kiln.FusedConv through a oneDNN convolution primitive.
//
// Each layer gets a primitive built for its exact static shapes. Activations stay in plain NC[D]HW because
// the neighbouring kernels read plain layout; weights are reordered once, at create time, into whatever
// layout the chosen implementation prefers. A fused activation (kiln_post_op) becomes an eltwise post-op.
#if defined(KILN_HAVE_DNNL)
#include <dnnl.hpp>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "backends/kernel.h"

// oneDNN in Debian runs on OpenMP (DNNL_CPU_RUNTIME == OMP). kiln does not link libgomp itself, so the
// thread-count calls are weak: they resolve to the libgomp that libdnnl loads, and are skipped if absent.
extern "C" {
int omp_get_max_threads(void) __attribute__((weak));
void omp_set_num_threads(int) __attribute__((weak));
}

namespace kiln::backend {
namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

const dnnl::engine& cpu_engine() {
  static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// Runs a scope with the calling thread's OpenMP team size set to the layer's thread count. oneDNN fixes a
// convolution's thread split when the primitive is created, so this wraps both creation and execution.
class OmpThreads {
 public:
  explicit OmpThreads(int threads) {
    if (threads > 0 && omp_get_max_threads && omp_set_num_threads) {
      saved_ = omp_get_max_threads();
      if (saved_ != threads) omp_set_num_threads(threads);
      else saved_ = 0;
    }
  }
  ~OmpThreads() {
    if (saved_ > 0) omp_set_num_threads(saved_);
  }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_ = 0;
};

tag plain_tag(size_t rank) {
  switch (rank) {
    case 3: return tag::ncw;
    case 4: return tag::nchw;
    default: return tag::ncdhw;
  }
}
// ONNX weights [M, C/g, k...] are, viewed with a leading group dim, exactly oneDNN's g-o-i-k... plain layout.
tag plain_weight_tag(size_t rank, bool grouped) {
  switch (rank) {
    case 3: return grouped ? tag::goiw : tag::oiw;
    case 4: return grouped ? tag::goihw : tag::oihw;
    default: return grouped ? tag::goidhw : tag::oidhw;
  }
}

dnnl::memory::dims to_dims(const std::vector<int64_t>& v) { return dnnl::memory::dims(v.begin(), v.end()); }

// Everything the primitive needs, derived from the layer; `ok` is false (with no throw) when the layer is
// outside what this kernel handles.
struct ConvSetup {
  bool ok = false;
  int64_t group = 1;
  dnnl::memory::desc src, weights_plain, weights_any, bias, dst;
  dnnl::memory::dims strides, dilations, pad_l, pad_r;
  dnnl::algorithm post = dnnl::algorithm::undef;
  float post_alpha = 0.f;
};

ConvSetup describe(const LayerDesc& d) {
  ConvSetup s;
  if (d.inputs.size() < 2 || d.outputs.empty()) return s;
  const auto &x = d.inputs[0], &w = d.inputs[1], &y = d.outputs[0];
  const bool has_bias = d.inputs.size() > 2 && d.inputs[2].present;
  if (!x.present || !w.present || !w.constant || !y.present) return s;
  if (x.dtype != DType::Float || w.dtype != DType::Float || y.dtype != DType::Float) return s;
  if (has_bias && (!d.inputs[2].constant || d.inputs[2].dtype != DType::Float)) return s;
  const size_t rank = x.dims.size(), n = rank - 2;
  if (rank < 3 || rank > 5 || w.dims.size() != rank || y.dims.size() != rank) return s;

  const Attributes& a = d.node->attrs;
  s.group = a.get_int("group", 1);
  const int64_t c = x.dims[1], m = w.dims[0];
  if (s.group < 1 || c != w.dims[1] * s.group || m % s.group != 0 || y.dims[1] != m) return s;
  if (has_bias && d.inputs[2].dims != std::vector<int64_t>{m}) return s;
  const auto strides = a.get_ints("strides", std::vector<int64_t>(n, 1));
  const auto dil = a.get_ints("dilations", std::vector<int64_t>(n, 1));
  const auto pads = a.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  const std::string auto_pad = a.get_string("auto_pad", "NOTSET");
  if (strides.size() != n || dil.size() != n || pads.size() != 2 * n) return s;
  for (size_t i = 0; i < n; ++i) {
    if (strides[i] < 1 || dil[i] < 1) return s;
    const int64_t span = (w.dims[i + 2] - 1) * dil[i] + 1;
    int64_t lo = 0, hi = 0;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t total = std::max<int64_t>(0, (y.dims[i + 2] - 1) * strides[i] + span - x.dims[i + 2]);
      lo = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      hi = total - lo;
    } else if (auto_pad == "NOTSET") {
      lo = pads[i];
      hi = pads[i + n];
    } else if (auto_pad != "VALID") {
      return s;
    }
    if (lo < 0 || hi < 0) return s;
    s.strides.push_back(strides[i]);
    s.dilations.push_back(dil[i] - 1);  // oneDNN counts the gaps between taps, ONNX the step
    s.pad_l.push_back(lo);
    s.pad_r.push_back(hi);
  }

  const std::string post = a.get_string("kiln_post_op", "");
  if (post == "Relu") s.post = dnnl::algorithm::eltwise_relu;  // alpha 0: plain ReLU
  else if (post == "Elu") s.post = dnnl::algorithm::eltwise_elu, s.post_alpha = a.get_float("kiln_post_alpha", 1.0f);
  else if (post == "Sigmoid") s.post = dnnl::algorithm::eltwise_logistic;
  else if (!post.empty()) return s;

  std::vector<int64_t> wd = w.dims;
  if (s.group > 1) {
    wd[0] = m / s.group;
    wd.insert(wd.begin(), s.group);
  }
  s.src = dnnl::memory::desc(to_dims(x.dims), dt::f32, plain_tag(rank));
  s.dst = dnnl::memory::desc(to_dims(y.dims), dt::f32, plain_tag(rank));
  s.weights_plain = dnnl::memory::desc(to_dims(wd), dt::f32, plain_weight_tag(rank, s.group > 1));
  s.weights_any = dnnl::memory::desc(to_dims(wd), dt::f32, tag::any);
  s.bias = has_bias ? dnnl::memory::desc({m}, dt::f32, tag::x) : dnnl::memory::desc();
  s.ok = true;
  return s;
}

dnnl::convolution_forward::primitive_desc make_pd(const ConvSetup& s) {
  dnnl::primitive_attr attr;
  // Scratch space is passed in by each run() so concurrent contexts never share it.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (s.post != dnnl::algorithm::undef) {
    dnnl::post_ops po;
    po.append_eltwise(1.0f, s.post, s.post_alpha, 0.0f);
    attr.set_post_ops(po);
  }
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                       s.src, s.weights_any, s.bias, s.dst, s.strides, s.dilations, s.pad_l,
                                       s.pad_r);
  return dnnl::convolution_forward::primitive_desc(desc, attr, cpu_engine());
}

class OneDnnConv final : public Kernel {
 public:
  OneDnnConv(const LayerDesc& d, const ConvSetup& s) : threads_(d.threads) {
    OmpThreads scope(threads_);
    pd_ = make_pd(s);
    conv_ = dnnl::convolution_forward(pd_);
    // Weights: reorder the constant once into the implementation's preferred layout (owned by the kernel).
    weights_ = dnnl::memory(pd_.weights_desc(), cpu_engine());
    dnnl::memory user_w(s.weights_plain, cpu_engine(), const_cast<void*>(d.inputs[1].constant->raw()));
    dnnl::stream st(cpu_engine());
    dnnl::reorder(user_w, weights_).execute(st, user_w, weights_);
    st.wait();
    if (s.bias) {
      bias_ = dnnl::memory(s.bias, cpu_engine());
      std::memcpy(bias_.get_data_handle(), d.inputs[2].constant->raw(), s.bias.get_size());
    }
    src_md_ = pd_.src_desc();
    dst_md_ = pd_.dst_desc();
    scratch_bytes_ = pd_.scratchpad_desc().get_size();
  }

  void run(const std::vector<TensorView>& inputs, const std::vector<TensorView>& outputs) const override {
    OmpThreads scope(threads_);
    const dnnl::engine& eng = cpu_engine();
    dnnl::memory src(src_md_, eng, inputs[0].data), dst(dst_md_, eng, outputs[0].data);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
    if (bias_) args.emplace(DNNL_ARG_BIAS, bias_);
    // Per-call scratch (oneDNN allocates it, 64-byte aligned): small next to the convolution itself.
    if (scratch_bytes_ > 0) args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(pd_.scratchpad_desc(), eng));
    dnnl::stream st(eng);
    conv_.execute(st, args);
    st.wait();
  }

 private:
  int threads_;
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward conv_;
  dnnl::memory weights_, bias_;
  dnnl::memory::desc src_md_, dst_md_;
  size_t scratch_bytes_ = 0;
};

bool supports(const LayerDesc& d) {
  const ConvSetup s = describe(d);
  if (!s.ok) return false;
  // oneDNN is the judge of what it implements (e.g. pads inconsistent with the output size): ask it.
  try {
    OmpThreads scope(d.threads);
    make_pd(s);
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

std::unique_ptr<Kernel> create(const LayerDesc& d) {
  const ConvSetup s = describe(d);
  if (!s.ok) throw Error("node " + d.node->label() + ": cpu.conv_onednn does not support this layer");
  return std::make_unique<OneDnnConv>(d, s);
}

KernelFactory factory(const std::string& op, const std::string& domain) {
  return {.name = "cpu.conv_onednn", .device = "cpu", .op = op, .domain = domain, .priority = 100,
          .supports = supports, .create = create};
}

KILN_REGISTER_KERNEL(factory("Conv", ""));
KILN_REGISTER_KERNEL(factory("FusedConv", "kiln"));

}  // namespace
}  // namespace kiln::backend

#endif  // KILN_HAVE_DNNL
