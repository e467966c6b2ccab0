// cpu.conv_onednn's oneDNN tactics: a oneDNN convolution primitive in plain or its own activation layout
// (gemm_nchw, direct_*, winograd), and a oneDNN matmul for 1x1 convolutions (matmul_1x1).
//
// Each layer gets a primitive built for its exact static shapes. Activations stay in plain NC[D]HW because
// the neighbouring kernels read plain layout; weights are reordered once, at create time, into whatever
// layout the chosen implementation prefers. A fused activation (kiln_post_op) becomes an eltwise post-op.
#if defined(KILN_HAVE_DNNL)
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "backends/cpu/conv_cpu.h"

namespace kiln::backend::conv_onednn {

const dnnl::engine& cpu_engine() {
  static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

namespace {

dnnl::primitive_attr make_attr(const ConvSetup& s) {
  dnnl::primitive_attr attr;
  // Scratch space is passed in by each run() so concurrent contexts never share it.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (s.post.act != ops::Activation::None) {
    dnnl::post_ops po;
    po.append_eltwise(1.0f, onednn_eltwise(s.post.act), s.post.alpha, s.post.beta);
    attr.set_post_ops(po);
  }
  return attr;
}

}  // namespace

dnnl::algorithm onednn_eltwise(ops::Activation a) {
  switch (a) {
    case ops::Activation::Relu:
      return dnnl::algorithm::eltwise_relu;  // alpha 0 (Relu has none): plain ReLU
    case ops::Activation::Elu:
      return dnnl::algorithm::eltwise_elu;
    case ops::Activation::Sigmoid:
      return dnnl::algorithm::eltwise_logistic;
    default:
      return dnnl::algorithm::undef;
  }
}

dnnl::convolution_forward::primitive_desc make_pd(const ConvSetup& s, tag act, dnnl::algorithm alg,
                                                  tag dst_act) {
  if (dst_act == tag::undef) dst_act = act;
  const dnnl::memory::desc src = act == tag::undef ? s.src : dnnl::memory::desc(s.src.dims(), dt::f32, act);
  const dnnl::memory::desc dst =
      dst_act == tag::undef ? s.dst : dnnl::memory::desc(s.dst.dims(), dt::f32, dst_act);
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src, s.weights_any, s.bias,
                                       dst, s.strides, s.dilations, s.pad_l, s.pad_r);
  return dnnl::convolution_forward::primitive_desc(desc, make_attr(s), cpu_engine());
}

namespace {

// Scratch for a run(): the activations in the primitive's own layout (in and out) and oneDNN's scratchpad.
// One process-wide pool of grow-only sets serves every kernel: run() takes a set (or makes one), grows it to
// its layer's sizes and gives it back, so concurrent contexts never share a set, the steady state allocates
// nothing, and the memory held is the largest layer's per concurrent run, not the sum over layers. The pool
// lives as long as some kernel holds it.
class ScratchPool {
 public:
  struct Buffer {
    void* ptr = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(ptr); }
    void* reserve(size_t bytes) {
      if (bytes > size) {
        std::free(ptr);
        size = (bytes + 4095) / 4096 * 4096;
        ptr = std::aligned_alloc(4096, size);
        if (!ptr) throw std::bad_alloc();
      }
      return ptr;
    }
  };
  struct Set {
    Buffer src, dst, scratch;
  };

  std::unique_ptr<Set> take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return std::make_unique<Set>();
    std::unique_ptr<Set> b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void give(std::unique_ptr<Set> b) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(b));
  }
  static std::shared_ptr<ScratchPool> shared() {
    static std::mutex mu;
    static std::weak_ptr<ScratchPool> pool;
    std::lock_guard<std::mutex> lock(mu);
    std::shared_ptr<ScratchPool> p = pool.lock();
    if (!p) pool = p = std::make_shared<ScratchPool>();
    return p;
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Set>> free_;
};

// (a)/(b)/(e): a oneDNN convolution. With act == undef src/dst are the plain tensors; otherwise oneDNN works
// in its own activation layout and run() reorders in and out (both counted when the tactic is timed).
class DnnlConvTactic final : public Tactic {
 public:
  DnnlConvTactic(const LayerDesc& d, const ConvSetup& s, tag act, dnnl::algorithm alg, std::string name,
                 tag dst_act = tag::undef)
      : name_(std::move(name)), threads_(d.threads) {
    pd_ = make_pd(s, act, alg, dst_act);
    conv_ = dnnl::convolution_forward(pd_);
    weights_ = dnnl::memory(pd_.weights_desc(), cpu_engine());
    dnnl::memory user_w(s.weights_plain, cpu_engine(), const_cast<void*>(d.inputs[1].constant->raw()));
    dnnl::stream st(cpu_engine());
    dnnl::reorder(user_w, weights_).execute(st, user_w, weights_);
    st.wait();
    if (s.bias) {
      bias_ = dnnl::memory(s.bias, cpu_engine());
      std::memcpy(bias_.get_data_handle(), d.inputs[2].constant->raw(), s.bias.get_size());
    }
    user_src_ = s.src;
    user_dst_ = s.dst;
    src_md_ = pd_.src_desc();
    dst_md_ = pd_.dst_desc();
    if (src_md_ != user_src_)
      reorder_in_ =
          dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), user_src_, cpu_engine(), src_md_));
    const size_t rank = s.x_dims.size();
    const tag cl = rank == 3 ? tag::nwc : rank == 4 ? tag::nhwc : tag::ndhwc;
    if (reorder_in_ && src_md_ == dnnl::memory::desc(s.src.dims(), dt::f32, cl)) {
      cl_n_ = s.x_dims[0], cl_c_ = s.x_dims[1], cl_sp_ = 1;
      for (size_t i = 2; i < rank; ++i) cl_sp_ *= s.x_dims[i];
    }
    if (dst_md_ != user_dst_)
      reorder_out_ =
          dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), dst_md_, cpu_engine(), user_dst_));
    scratch_md_ = pd_.scratchpad_desc();
  }

  bool reorders() const { return bool(reorder_in_) || bool(reorder_out_); }
  dnnl::memory::desc src_desc() const { return src_md_; }
  std::string impl() const { return pd_.impl_info_str(); }

  void run(const float* x, float* y) const override {
    const dnnl::engine& eng = cpu_engine();
    std::unique_ptr<ScratchPool::Set> bufs = pool_->take();
    dnnl::memory usrc(user_src_, eng, const_cast<float*>(x)), udst(user_dst_, eng, y);
    dnnl::memory src = reorder_in_ ? dnnl::memory(src_md_, eng, bufs->src.reserve(src_md_.get_size())) : usrc;
    dnnl::memory dst =
        reorder_out_ ? dnnl::memory(dst_md_, eng, bufs->dst.reserve(dst_md_.get_size())) : udst;
    dnnl::memory scratch;
    if (scratch_md_.get_size() > 0)
      scratch = dnnl::memory(scratch_md_, eng, bufs->scratch.reserve(scratch_md_.get_size()));
    dnnl::stream st(eng);
    if (cl_n_ > 0) {
      to_channels_last(x, static_cast<float*>(src.get_data_handle()), cl_n_, cl_c_, cl_sp_, threads_);
    } else if (reorder_in_) {
      reorder_in_.execute(st, usrc, src);
    }
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
    if (bias_) args.emplace(DNNL_ARG_BIAS, bias_);
    if (scratch) args.emplace(DNNL_ARG_SCRATCHPAD, scratch);
    conv_.execute(st, args);
    if (reorder_out_) reorder_out_.execute(st, dst, udst);
    st.wait();
    pool_->give(std::move(bufs));
  }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  int threads_ = 1;
  int64_t cl_n_ = 0, cl_c_ = 0, cl_sp_ = 0;  // set when run() transposes the input to channels-last itself
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward conv_;
  dnnl::reorder reorder_in_, reorder_out_;
  dnnl::memory weights_, bias_;
  dnnl::memory::desc user_src_, user_dst_, src_md_, dst_md_, scratch_md_;
  std::shared_ptr<ScratchPool> pool_ = ScratchPool::shared();
};

}  // namespace

// (c): a 1x1 convolution (stride 1, no padding, no groups) on plain NC[D]HW is, per image, the GEMM
// Y[M, S] = W[M, C] · X[C, S]: a oneDNN matmul with the constant weights as its A operand, once per image.
// A bias would run along the rows, which oneDNN's matmul does only in its reference code (as a bias or as a
// broadcast binary post-op alike), so layers with a bias stay with the convolution primitives.
bool is_pointwise(const ConvSetup& s) {
  if (s.group != 1 || s.bias) return false;
  for (size_t i = 2; i < s.w_dims.size(); ++i)
    if (s.w_dims[i] != 1) return false;
  for (size_t i = 0; i < s.strides.size(); ++i)
    if (s.strides[i] != 1 || s.pad_l[i] != 0 || s.pad_r[i] != 0) return false;
  return true;
}

namespace {

class MatmulTactic final : public Tactic {
 public:
  MatmulTactic(const LayerDesc& d, const ConvSetup& s) {
    const int64_t c = s.x_dims[1], m = s.w_dims[0];
    n_ = s.x_dims[0];
    int64_t sp = 1;
    for (size_t i = 2; i < s.x_dims.size(); ++i) sp *= s.x_dims[i];
    x_step_ = c * sp, y_step_ = m * sp;
    a_md_ = dnnl::memory::desc({m, c}, dt::f32, tag::ab);
    b_md_ = dnnl::memory::desc({c, sp}, dt::f32, tag::ab);
    c_md_ = dnnl::memory::desc({m, sp}, dt::f32, tag::ab);
    dnnl::primitive_attr attr = make_attr(s);
    dnnl::matmul::desc desc(a_md_, b_md_, c_md_);
    pd_ = dnnl::matmul::primitive_desc(desc, attr, cpu_engine());
    if (pd_.src_desc() != a_md_ || pd_.weights_desc() != b_md_ || pd_.dst_desc() != c_md_)
      throw dnnl::error(dnnl_unimplemented, "matmul wants other layouts");
    mm_ = dnnl::matmul(pd_);
    a_ = dnnl::memory(a_md_, cpu_engine());
    std::memcpy(a_.get_data_handle(), d.inputs[1].constant->raw(), a_md_.get_size());
    scratch_md_ = pd_.scratchpad_desc();
  }
  void run(const float* x, float* y) const override {
    const dnnl::engine& eng = cpu_engine();
    dnnl::stream st(eng);
    dnnl::memory scratch;
    if (scratch_md_.get_size() > 0) scratch = dnnl::memory(scratch_md_, eng);
    for (int64_t i = 0; i < n_; ++i) {
      dnnl::memory b(b_md_, eng, const_cast<float*>(x + i * x_step_)), c(c_md_, eng, y + i * y_step_);
      std::unordered_map<int, dnnl::memory> args{
          {DNNL_ARG_SRC, a_}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
      if (scratch) args.emplace(DNNL_ARG_SCRATCHPAD, scratch);
      mm_.execute(st, args);
    }
    st.wait();
  }
  std::string name() const override { return "matmul_1x1"; }
  std::string impl() const { return pd_.impl_info_str(); }

 private:
  int64_t n_ = 1, x_step_ = 0, y_step_ = 0;
  dnnl::memory::desc a_md_, b_md_, c_md_, scratch_md_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul mm_;
  dnnl::memory a_;
};

bool is_reference_impl(const std::string& impl) {
  return impl.rfind("ref", 0) == 0;
}

}  // namespace

std::unique_ptr<Tactic> make_onednn_tactic(const LayerDesc& d, const ConvSetup& s, const std::string& name) {
  if (name == "gemm_nchw")
    return std::make_unique<DnnlConvTactic>(d, s, tag::undef, dnnl::algorithm::convolution_direct, name);
  if (name == "matmul_1x1") {
    if (!is_pointwise(s)) return nullptr;
    auto t = std::make_unique<MatmulTactic>(d, s);
    return is_reference_impl(t->impl()) ? nullptr : std::move(t);
  }
  const size_t rank = s.x_dims.size();
  const tag nhwc = rank == 3 ? tag::nwc : rank == 4 ? tag::nhwc : tag::ndhwc;
  if (name == "direct_nhwc" || name == "direct_blocked" || name == "direct_nchw16c") {
    const tag act = name == "direct_nhwc" ? nhwc : name == "direct_blocked" ? tag::any : tag::nChw16c;
    auto t = std::make_unique<DnnlConvTactic>(d, s, act, dnnl::algorithm::convolution_direct, name);
    // Same layouts as the plain primitive, or (for `any`) the same as nhwc: nothing new to try.
    if (!t->reorders() || is_reference_impl(t->impl())) return nullptr;
    if (name == "direct_blocked") {
      const auto src = t->src_desc();
      if (src == dnnl::memory::desc(s.src.dims(), dt::f32, nhwc)) return nullptr;
      if (rank == 4 && src == dnnl::memory::desc(s.src.dims(), dt::f32, tag::nChw16c)) return nullptr;
    }
    return t;
  }
  if (name == "direct_plain_in") {
    // Few input channels (a network's first layer): oneDNN's direct kernels read plain NCHW themselves and
    // write a blocked output, which run() reorders back.
    auto t = std::make_unique<DnnlConvTactic>(d, s, tag::undef, dnnl::algorithm::convolution_direct, name,
                                              tag::any);
    return t->reorders() && !is_reference_impl(t->impl()) ? std::move(t) : nullptr;
  }
  if (name == "winograd") {
    auto t = std::make_unique<DnnlConvTactic>(d, s, tag::any, dnnl::algorithm::convolution_winograd, name);
    return is_reference_impl(t->impl()) ? nullptr : std::move(t);
  }
  return nullptr;
}

}  // namespace kiln::backend::conv_onednn
#endif  // KILN_HAVE_DNNL
