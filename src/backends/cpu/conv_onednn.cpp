// cpu.conv_onednn: fp32 Conv (1-D/2-D/3-D) and kiln.FusedConv through a oneDNN convolution primitive.
//
// Each layer gets a primitive built for its exact static shapes. Activations stay in plain NC[D]HW because
// the neighbouring kernels read plain layout; weights are reordered once, at create time, into whatever
// layout the chosen implementation prefers. A fused activation (kiln_post_op) becomes an eltwise post-op.
#if defined(KILN_HAVE_DNNL)
#include <dnnl.hpp>

// GCC 12 reports the intrinsics' own _mm512_undefined_ps() pass-through operands as uninitialized once they
// are inlined (a false positive in its headers); the diagnostic state at the header decides, hence here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "backends/cpu/conv_tactics.h"
#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"
#include "kiln/error.h"

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
  std::vector<int64_t> x_dims, w_dims, y_dims;  // as ONNX has them (weights without the group split)
  double flops = 0;                             // multiply-adds counted as 2
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
  s.x_dims = x.dims;
  s.w_dims = w.dims;
  s.y_dims = y.dims;
  s.flops = 2.0;
  for (size_t i = 1; i < w.dims.size(); ++i) s.flops *= double(w.dims[i]);
  for (size_t i = 0; i < y.dims.size(); ++i) s.flops *= double(y.dims[i]);
  s.ok = true;
  return s;
}

dnnl::primitive_attr make_attr(const ConvSetup& s) {
  dnnl::primitive_attr attr;
  // Scratch space is passed in by each run() so concurrent contexts never share it.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (s.post != dnnl::algorithm::undef) {
    dnnl::post_ops po;
    po.append_eltwise(1.0f, s.post, s.post_alpha, 0.0f);
    attr.set_post_ops(po);
  }
  return attr;
}

// The convolution with activations in `act` layout (plain NC[D]HW, nhwc, or any = oneDNN's choice); the
// output in `dst_act` (undef: the same as the input's).
dnnl::convolution_forward::primitive_desc make_pd(const ConvSetup& s, tag act = tag::undef,
                                                  dnnl::algorithm alg = dnnl::algorithm::convolution_direct,
                                                  tag dst_act = tag::undef) {
  if (dst_act == tag::undef) dst_act = act;
  const dnnl::memory::desc src = act == tag::undef ? s.src : dnnl::memory::desc(s.src.dims(), dt::f32, act);
  const dnnl::memory::desc dst = dst_act == tag::undef ? s.dst : dnnl::memory::desc(s.dst.dims(), dt::f32, dst_act);
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src, s.weights_any, s.bias, dst,
                                       s.strides, s.dilations, s.pad_l, s.pad_r);
  return dnnl::convolution_forward::primitive_desc(desc, make_attr(s), cpu_engine());
}

// ---------------------------------------------------------------------------------------------------------
// Tactics: interchangeable implementations of one layer, all reading and writing plain NC[D]HW.

class Tactic {
 public:
  virtual ~Tactic() = default;
  virtual void run(const float* x, float* y) const = 0;
  virtual std::string name() const = 0;
};

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

bool have_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
#else
  return false;
#endif
}

// Calls f(begin, end) over [0, n) split into `threads` contiguous parts on std::threads.
template <class F>
void parallel_for(int64_t n, int threads, const F& f) {
  const int t = int(std::min<int64_t>(std::max(threads, 1), n));
  if (t <= 1) return f(int64_t{0}, n);
  std::vector<std::thread> pool;
  pool.reserve(size_t(t - 1));
  for (int k = 1; k < t; ++k) pool.emplace_back([&, k] { f(n * k / t, n * (k + 1) / t); });
  f(int64_t{0}, n / t);
  for (auto& th : pool) th.join();
}

#if defined(__x86_64__) && defined(__GNUC__)
// 16x16 transpose of floats: rows of x (stride ldx) become rows of y (stride ldy). Streaming stores when
// `stream` (y rows 64-byte aligned): the channels-last copy is written once and read back by another kernel.
__attribute__((target("avx512f"))) void transpose16(const float* x, int64_t ldx, float* y, int64_t ldy, bool stream) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(x + i * ldx);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 2]);
    const __m512d c = _mm512_castps_pd(t[i + 1]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int h = 0; h < 16; h += 8)
    for (int q = 0; q < 4; ++q) {
      t[h + q] = _mm512_shuffle_f32x4(r[h + q], r[h + 4 + q], 0x88);
      t[h + 4 + q] = _mm512_shuffle_f32x4(r[h + q], r[h + 4 + q], 0xdd);
    }
  for (int q = 0; q < 8; ++q) {
    r[q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);
    r[8 + q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xdd);
  }
  if (stream) {
    for (int k = 0; k < 16; ++k) _mm512_stream_ps(y + k * ldy, r[k]);
  } else {
    for (int k = 0; k < 16; ++k) _mm512_storeu_ps(y + k * ldy, r[k]);
  }
}
#endif

// Plain [N, C, S] to channels-last [N, S, C]. oneDNN 2.6's reorder for this runs at a third of the memory
// bandwidth (44 ms for PackNet's 2048x96x320 input); 16x16 register transposes over 16-channel stripes of
// 1024 pixels, with streaming stores, take about a third of that. Channels past the last multiple of 16 (and
// everything without AVX-512) go element by element.
void to_channels_last(const float* x, float* y, int64_t n, int64_t c, int64_t sp, int threads) {
  constexpr int64_t kPix = 1024;
  const bool simd = have_avx512() && c >= 16;
  const int64_t cb = simd ? c / 16 : 0, c16 = cb * 16, pb = (sp + kPix - 1) / kPix;
  const bool stream = simd && c % 16 == 0 && (reinterpret_cast<uintptr_t>(y) & 63) == 0;
  parallel_for(n * pb, c * sp * n >= (int64_t{1} << 16) ? threads : 1, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t img = task / pb, s0 = (task % pb) * kPix, s1 = std::min(sp, s0 + kPix);
      const float* xi = x + img * c * sp;
      float* yi = y + img * c * sp;
#if defined(__x86_64__) && defined(__GNUC__)
      for (int64_t c0 = 0; c0 < c16; c0 += 16) {
        int64_t si = s0;
        for (; si + 16 <= s1; si += 16) transpose16(xi + c0 * sp + si, sp, yi + si * c + c0, c, stream);
        for (; si < s1; ++si)
          for (int64_t ci = c0; ci < c0 + 16; ++ci) yi[si * c + ci] = xi[ci * sp + si];
      }
#endif
      for (int64_t si = s0; si < s1; ++si)
        for (int64_t ci = c16; ci < c; ++ci) yi[si * c + ci] = xi[ci * sp + si];
    }
    if (stream) _mm_sfence();
  });
}

// (a)/(b)/(e): a oneDNN convolution. With act == undef src/dst are the plain tensors; otherwise oneDNN works in
// its own activation layout and run() reorders in and out (both counted when the tactic is timed).
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
    if (src_md_ != user_src_) reorder_in_ = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), user_src_, cpu_engine(), src_md_));
    const size_t rank = s.x_dims.size();
    const tag cl = rank == 3 ? tag::nwc : rank == 4 ? tag::nhwc : tag::ndhwc;
    if (reorder_in_ && src_md_ == dnnl::memory::desc(s.src.dims(), dt::f32, cl)) {
      cl_n_ = s.x_dims[0], cl_c_ = s.x_dims[1], cl_sp_ = 1;
      for (size_t i = 2; i < rank; ++i) cl_sp_ *= s.x_dims[i];
    }
    if (dst_md_ != user_dst_) reorder_out_ = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), dst_md_, cpu_engine(), user_dst_));
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
    dnnl::memory dst = reorder_out_ ? dnnl::memory(dst_md_, eng, bufs->dst.reserve(dst_md_.get_size())) : udst;
    dnnl::memory scratch;
    if (scratch_md_.get_size() > 0)
      scratch = dnnl::memory(scratch_md_, eng, bufs->scratch.reserve(scratch_md_.get_size()));
    dnnl::stream st(eng);
    if (cl_n_ > 0) {
      to_channels_last(x, static_cast<float*>(src.get_data_handle()), cl_n_, cl_c_, cl_sp_, threads_);
    } else if (reorder_in_) {
      reorder_in_.execute(st, usrc, src);
    }
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}};
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
      std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, a_}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
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

// (d): Conv3d with one input channel, 3x3x3, stride 1, pad 1 (PackNet's packing convolution). im2col blows a
// [1,D,H,W] volume up 27 times for a GEMM with K = 27; this reads each input plane three times from cache
// and writes the output once, computing all (up to 8) output channels of a row from the same loads.
bool is_direct3d_cin1(const ConvSetup& s) {
  if (s.x_dims.size() != 5 || s.group != 1 || s.x_dims[1] != 1 || s.post != dnnl::algorithm::undef) return false;
  for (size_t i = 0; i < 3; ++i)
    if (s.w_dims[i + 2] != 3 || s.strides[i] != 1 || s.dilations[i] != 0 || s.pad_l[i] != 1 || s.pad_r[i] != 1)
      return false;
  return s.x_dims[4] >= 1 && s.x_dims[3] >= 1 && s.x_dims[2] >= 1;
}

#if defined(__x86_64__) && defined(__GNUC__)
// One output depth slice: planes[0..2] are the zero-padded input planes d-1, d, d+1 ((H+2) x wp floats each;
// nullptr where outside the volume); wts is [8][27] (channels past `mc` zero); y0 points at output channel 0 of
// this slice, channel stride `cs`.
__attribute__((target("avx512f"))) void direct3d_slice(const float* const planes[3], int64_t h_n, int64_t w_n,
                                                       int64_t wp, const float* wts, const float* bias, int mc,
                                                       float* y0, int64_t cs) {
  constexpr int kC = 8;
  for (int64_t h = 0; h < h_n; ++h) {
    for (int64_t w0 = 0; w0 < w_n; w0 += 32) {
      const int64_t rem = w_n - w0;
      const __mmask16 m0 = rem >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rem) - 1);
      const __mmask16 m1 = rem >= 32 ? __mmask16(0xFFFF) : rem > 16 ? __mmask16((1u << (rem - 16)) - 1) : __mmask16(0);
      // 16 accumulators stay in registers only if every loop below is unrolled (constant indices).
      __m512 acc0[kC], acc1[kC];
#pragma GCC unroll 8
      for (int j = 0; j < kC; ++j) acc0[j] = acc1[j] = _mm512_set1_ps(bias[j]);
      for (int kd = 0; kd < 3; ++kd) {
        if (!planes[kd]) continue;
#pragma GCC unroll 3
        for (int kh = 0; kh < 3; ++kh) {
          const float* row = planes[kd] + (h + kh) * wp + w0;
#pragma GCC unroll 3
          for (int kw = 0; kw < 3; ++kw) {
            const __m512 v0 = _mm512_maskz_loadu_ps(m0, row + kw);
            const __m512 v1 = _mm512_maskz_loadu_ps(m1, row + kw + 16);
            const float* wt = wts + (kd * 9 + kh * 3 + kw);
#pragma GCC unroll 8
            for (int j = 0; j < kC; ++j) {
              const __m512 wv = _mm512_set1_ps(wt[j * 27]);
              acc0[j] = _mm512_fmadd_ps(v0, wv, acc0[j]);
              acc1[j] = _mm512_fmadd_ps(v1, wv, acc1[j]);
            }
          }
        }
      }
      // The output (8x the input) is written once and not read back here: full, aligned vectors bypass the
      // cache (no read-for-ownership), the rest are plain masked stores.
#pragma GCC unroll 8
      for (int j = 0; j < kC; ++j) {
        if (j >= mc) break;
        float* out = y0 + j * cs + h * w_n + w0;
        if (rem >= 32 && (reinterpret_cast<uintptr_t>(out) & 63) == 0) {
          _mm512_stream_ps(out, acc0[j]);
          _mm512_stream_ps(out + 16, acc1[j]);
        } else {
          _mm512_mask_storeu_ps(out, m0, acc0[j]);
          if (m1) _mm512_mask_storeu_ps(out + 16, m1, acc1[j]);
        }
      }
    }
  }
}
#endif

class Direct3dTactic final : public Tactic {
 public:
  Direct3dTactic(const LayerDesc& d, const ConvSetup& s) : threads_(std::max(1, d.threads)) {
    n_ = s.x_dims[0], dd_ = s.x_dims[2], h_ = s.x_dims[3], w_ = s.x_dims[4], m_ = s.w_dims[0];
    const int64_t mpad = (m_ + 7) / 8 * 8;
    wts_.assign(size_t(mpad * 27), 0.f);
    bias_.assign(size_t(mpad), 0.f);
    const float* w = static_cast<const float*>(d.inputs[1].constant->raw());
    std::copy(w, w + m_ * 27, wts_.begin());
    if (s.bias) {
      const float* b = static_cast<const float*>(d.inputs[2].constant->raw());
      std::copy(b, b + m_, bias_.begin());
    }
  }
  void run(const float* x, float* y) const override {
    const int64_t tasks = n_ * dd_;
    const double bytes = double(n_) * dd_ * h_ * w_ * (m_ + 1) * 4;
    const int t = bytes >= 4e6 ? int(std::min<int64_t>(threads_, tasks)) : 1;
    auto work = [&](int64_t b, int64_t e) { slices(x, y, b, e); };
    if (t <= 1) return work(0, tasks);
    std::vector<std::thread> pool;
    pool.reserve(size_t(t - 1));
    for (int k = 1; k < t; ++k) pool.emplace_back([&, k] { work(tasks * k / t, tasks * (k + 1) / t); });
    work(0, tasks / t);
    for (auto& th : pool) th.join();
  }
  std::string name() const override { return "direct3d_cin1"; }

 private:
  // Output slices [b, e) of the (n, d) enumeration, with a ring of three zero-padded input planes.
  void slices(const float* x, float* y, int64_t b, int64_t e) const {
#if defined(__x86_64__) && defined(__GNUC__)
    const int64_t wp = w_ + 2, plane = (h_ + 2) * wp;
    std::vector<float> ring(size_t(3 * plane), 0.f);
    int64_t held[3] = {-1, -1, -1};  // global slice index (n * D + d) each ring entry holds
    auto fetch = [&](int64_t img, int64_t dz) -> const float* {
      if (dz < 0 || dz >= dd_) return nullptr;
      const int64_t key = img * dd_ + dz;
      const int slot = int(key % 3);
      float* p = ring.data() + slot * plane;
      if (held[slot] != key) {
        const float* src = x + key * h_ * w_;
        for (int64_t r = 0; r < h_; ++r) std::memcpy(p + (r + 1) * wp + 1, src + r * w_, size_t(w_) * 4);
        held[slot] = key;
      }
      return p;
    };
    for (int64_t task = b; task < e; ++task) {
      const int64_t img = task / dd_, dz = task % dd_;
      const float* planes[3] = {fetch(img, dz - 1), fetch(img, dz), fetch(img, dz + 1)};
      for (int64_t mb = 0; mb < m_; mb += 8) {
        float* y0 = y + ((img * m_ + mb) * dd_ + dz) * h_ * w_;
        direct3d_slice(planes, h_, w_, wp, wts_.data() + mb * 27, bias_.data() + mb, int(std::min<int64_t>(8, m_ - mb)),
                       y0, dd_ * h_ * w_);
      }
    }
    _mm_sfence();  // the streaming stores are visible before this thread reports done
#endif
  }
  int threads_;
  int64_t n_ = 0, dd_ = 0, h_ = 0, w_ = 0, m_ = 0;
  std::vector<float> wts_, bias_;
};

// A 2-D convolution to a single output channel (PackNet's disparity heads, 64→1 3x3 + sigmoid): GEMM and the
// blocked kernels waste 15/16 of their width on it. Per output row, each (channel, tap) adds one scaled input
// row into an accumulator row that stays in L1; rows are split over threads.
bool is_single_output_2d(const ConvSetup& s) {
  if (s.x_dims.size() != 4 || s.group != 1 || s.w_dims[0] != 1) return false;
  for (size_t i = 0; i < 2; ++i)
    if (s.strides[i] != 1 || s.dilations[i] != 0) return false;
  return true;
}

KILN_SIMD_CLONES void add_scaled_row(float* __restrict acc, const float* __restrict row, float w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * row[i];
}

class SingleOutputTactic final : public Tactic {
 public:
  SingleOutputTactic(const LayerDesc& d, const ConvSetup& s)
      : threads_(std::max(1, d.threads)), post_(s.post), alpha_(s.post_alpha) {
    n_ = s.x_dims[0], c_ = s.x_dims[1], h_ = s.x_dims[2], w_ = s.x_dims[3];
    kh_ = s.w_dims[2], kw_ = s.w_dims[3], oh_ = s.y_dims[2], ow_ = s.y_dims[3];
    pt_ = s.pad_l[0], pl_ = s.pad_l[1];
    const float* w = static_cast<const float*>(d.inputs[1].constant->raw());
    wts_.assign(w, w + c_ * kh_ * kw_);
    if (s.bias) bias_ = *static_cast<const float*>(d.inputs[2].constant->raw());
  }
  void run(const float* x, float* y) const override {
    const int64_t rows = n_ * oh_;
    const int t = double(c_) * h_ * w_ * n_ * 4 >= 2e6 ? threads_ : 1;
    parallel_for(rows, t, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t img = r / oh_, oy = r % oh_;
        float* acc = y + r * ow_;
        std::fill(acc, acc + ow_, bias_);
        for (int64_t ky = 0; ky < kh_; ++ky) {
          const int64_t iy = oy - pt_ + ky;
          if (iy < 0 || iy >= h_) continue;
          for (int64_t kx = 0; kx < kw_; ++kx) {
            // Output columns whose input column ox - pl + kx lies inside the image.
            const int64_t lo = std::max<int64_t>(0, pl_ - kx), hi = std::min<int64_t>(ow_, w_ + pl_ - kx);
            if (lo >= hi) continue;
            for (int64_t ch = 0; ch < c_; ++ch) {
              const float* row = x + ((img * c_ + ch) * h_ + iy) * w_ + (lo - pl_ + kx);
              add_scaled_row(acc + lo, row, wts_[size_t((ch * kh_ + ky) * kw_ + kx)], hi - lo);
            }
          }
        }
        post(acc, ow_);
      }
    });
  }
  std::string name() const override { return "direct_cout1"; }

 private:
  void post(float* v, int64_t n) const {
    switch (post_) {
      case dnnl::algorithm::eltwise_relu:
        for (int64_t i = 0; i < n; ++i) v[i] = v[i] > 0.f ? v[i] : 0.f;
        break;
      case dnnl::algorithm::eltwise_elu:
        for (int64_t i = 0; i < n; ++i) v[i] = v[i] > 0.f ? v[i] : alpha_ * std::expm1(v[i]);
        break;
      case dnnl::algorithm::eltwise_logistic:
        for (int64_t i = 0; i < n; ++i) v[i] = 1.f / (1.f + std::exp(-v[i]));
        break;
      default:
        break;
    }
  }
  int threads_;
  dnnl::algorithm post_;
  float alpha_;
  int64_t n_ = 0, c_ = 0, h_ = 0, w_ = 0, kh_ = 0, kw_ = 0, oh_ = 0, ow_ = 0, pt_ = 0, pl_ = 0;
  std::vector<float> wts_;
  float bias_ = 0.f;
};

// ---------------------------------------------------------------------------------------------------------
// Candidates and selection.

constexpr double kTimeAboveFlops = 10e6;  // smaller layers take the first candidate untimed

// The candidates for a layer, most trusted first. `timing`: only those worth timing (im2col+GEMM on a
// one-channel volume is an order of magnitude behind the direct kernel, and its warm-up alone takes seconds).
std::vector<std::string> candidate_names(const ConvSetup& s, bool timing = false) {
  std::vector<std::string> c;
  const bool d3 = is_direct3d_cin1(s) && have_avx512();
  if (d3) c.push_back("direct3d_cin1");
  if (!(d3 && timing)) c.push_back("gemm_nchw");
  if (is_pointwise(s)) c.push_back("matmul_1x1");
  if (is_single_output_2d(s)) c.push_back("direct_cout1");
  c.push_back("direct_nhwc");
  c.push_back("direct_blocked");
  if (s.x_dims.size() == 4 && !d3) c.push_back("direct_nchw16c");
  if (s.x_dims.size() == 4 && s.x_dims[1] / s.group < 16) c.push_back("direct_plain_in");
  bool k3s1 = s.w_dims.size() == 4 && s.w_dims[2] == 3 && s.w_dims[3] == 3 && s.group == 1;
  for (size_t i = 0; i < s.strides.size(); ++i) k3s1 = k3s1 && s.strides[i] == 1 && s.dilations[i] == 0;
  if (k3s1) c.push_back("winograd");
  return c;
}

bool is_reference_impl(const std::string& impl) { return impl.rfind("ref", 0) == 0; }

// Builds one tactic; nullptr when it does not apply (oneDNN declines or offers only its reference code, or it
// would duplicate another candidate).
std::unique_ptr<Tactic> make_tactic(const LayerDesc& d, const ConvSetup& s, const std::string& name) {
  try {
    if (name == "direct3d_cin1") return is_direct3d_cin1(s) && have_avx512() ? std::make_unique<Direct3dTactic>(d, s) : nullptr;
    if (name == "gemm_nchw") return std::make_unique<DnnlConvTactic>(d, s, tag::undef, dnnl::algorithm::convolution_direct, name);
    if (name == "direct_cout1") return is_single_output_2d(s) ? std::make_unique<SingleOutputTactic>(d, s) : nullptr;
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
      auto t = std::make_unique<DnnlConvTactic>(d, s, tag::undef, dnnl::algorithm::convolution_direct, name, tag::any);
      return t->reorders() && !is_reference_impl(t->impl()) ? std::move(t) : nullptr;
    }
    if (name == "winograd") {
      auto t = std::make_unique<DnnlConvTactic>(d, s, tag::any, dnnl::algorithm::convolution_winograd, name);
      return is_reference_impl(t->impl()) ? nullptr : std::move(t);
    }
  } catch (const dnnl::error&) {
    return nullptr;
  }
  return nullptr;
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double rel_l2(const float* got, const float* want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = double(got[i]) - double(want[i]);
    num += e * e;
    den += double(want[i]) * double(want[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));  // NaN fails every comparison
}

class OneDnnConv final : public Kernel {
 public:
  OneDnnConv(int threads, std::unique_ptr<Tactic> t) : threads_(threads), tactic_(std::move(t)) {}
  void run(const std::vector<TensorView>& inputs, const std::vector<TensorView>& outputs) const override {
    OmpThreads scope(threads_);
    tactic_->run(static_cast<const float*>(inputs[0].data), static_cast<float*>(outputs[0].data));
  }
  std::string tactic() const { return tactic_->name(); }
  // Engine files keep the timed choice, so loading an engine neither re-times nor changes its numerics.
  std::string serialize() const override { return "tactic=" + tactic_->name(); }
  std::string describe() const override { return tactic_->name(); }

 private:
  int threads_;
  std::unique_ptr<Tactic> tactic_;
};

// Times every candidate on random data and keeps the fastest whose result matches the first candidate's (the
// plain oneDNN convolution, or the direct kernel that the tests check). Each candidate runs once to warm up
// (first touch of its buffers, oneDNN's lazy set-up), then all survivors run in rounds, so that a burst of
// load from other processes hits every candidate alike; the minimum per candidate counts, and a candidate 1.5x
// behind the leader leaves the race (and frees its buffers).
std::unique_ptr<Tactic> pick_by_timing(const LayerDesc& d, const ConvSetup& s) {
  const bool verbose = std::getenv("KILN_VERBOSE_TACTICS") != nullptr;
  size_t xn = 1, yn = 1;
  for (int64_t v : s.x_dims) xn *= size_t(v);
  for (int64_t v : s.y_dims) yn *= size_t(v);
  std::vector<float> x(xn), y(yn), want;
  uint32_t r = 0x9e3779b9u;
  for (float& v : x) {
    r = r * 1664525u + 1013904223u;
    v = float(r >> 8) * (1.0f / 16777216.0f) - 0.5f;
  }
  struct Cand {
    std::unique_ptr<Tactic> t;
    double tmin;
  };
  std::vector<Cand> cands;
  std::string log;
  char buf[200];
  auto note = [&](const std::string& name, const char* what, double v) {
    std::snprintf(buf, sizeof buf, " %s:%s%.2fms", name.c_str(), what, v * 1e3);
    log += buf;
  };
  double lead = INFINITY;
  for (const std::string& name : candidate_names(s, true)) {
    std::unique_ptr<Tactic> t = make_tactic(d, s, name);
    if (!t) continue;
    const double t0 = seconds_now();
    t->run(x.data(), y.data());
    const double w = seconds_now() - t0;
    if (want.empty()) {
      want = y;
    } else {
      const double err = rel_l2(y.data(), want.data(), yn);
      if (!(err <= 1e-5)) {
        std::snprintf(buf, sizeof buf, " %s:rejected(err %.1e)", name.c_str(), err);
        log += buf;
        continue;
      }
    }
    if (w > 3 * lead) {  // far behind even allowing for its warm-up: not worth rounds
      note(name, "warm-up ", w);
      continue;
    }
    lead = std::min(lead, w);
    cands.push_back({std::move(t), w});
  }
  const double start = seconds_now();
  for (int round = 0; round < 6 && cands.size() > 1; ++round) {
    if (round >= 1 && seconds_now() - start > 0.3) break;
    for (Cand& c : cands) {
      const double t0 = seconds_now();
      c.t->run(x.data(), y.data());
      c.tmin = std::min(c.tmin, seconds_now() - t0);
    }
    double best = INFINITY;
    for (const Cand& c : cands) best = std::min(best, c.tmin);
    for (size_t i = cands.size(); i-- > 0;) {
      if (cands[i].tmin > 1.5 * best) {
        note(cands[i].t->name(), "out ", cands[i].tmin);
        cands.erase(cands.begin() + long(i));
      }
    }
  }
  std::unique_ptr<Tactic> best;
  double best_t = INFINITY;
  for (Cand& c : cands) {
    note(c.t->name(), "", c.tmin);
    if (c.tmin < best_t) best_t = c.tmin, best = std::move(c.t);
  }
  if (verbose) {
    std::fprintf(stderr, "[kiln] conv tactics %s (%.0f MFLOP):%s -> %s\n", d.node->label().c_str(), s.flops / 1e6,
                 log.c_str(), best ? best->name().c_str() : "none");
  }
  return best;
}

std::string shape_key(const LayerDesc& d, const ConvSetup& s) {
  std::string k = d.node->op + "|" + std::to_string(d.threads) + "|" + std::to_string(s.group) + "|" +
                  std::to_string(int(s.post)) + ":" + std::to_string(s.post_alpha) + "|" + (s.bias ? "b" : "");
  auto add = [&](const auto& v) {
    k += "|";
    for (auto e : v) k += std::to_string(e) + ",";
  };
  add(s.x_dims), add(s.w_dims), add(s.y_dims), add(s.strides), add(s.dilations), add(s.pad_l), add(s.pad_r);
  return k;
}

std::unique_ptr<Kernel> create_kernel(const LayerDesc& d, const ConvSetup& s, const std::string& forced) {
  OmpThreads scope(d.threads);
  if (!forced.empty()) {
    std::unique_ptr<Tactic> t = make_tactic(d, s, forced);
    if (!t) throw Error("node " + d.node->label() + ": conv tactic " + forced + " does not apply");
    return std::make_unique<OneDnnConv>(d.threads, std::move(t));
  }
  std::unique_ptr<Tactic> t;
  if (s.flops > kTimeAboveFlops) {
    // Layers of one shape (PackNet repeats its residual blocks) are timed once per process: the build is
    // shorter and their choices agree. Weights do not enter the key: the tactics' speed does not depend on them.
    const std::string key = shape_key(d, s);
    static std::mutex mu;
    static std::unordered_map<std::string, std::string> chosen;
    std::string known;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (auto it = chosen.find(key); it != chosen.end()) known = it->second;
    }
    if (!known.empty()) t = make_tactic(d, s, known);
    if (!t) {
      t = pick_by_timing(d, s);
      if (t) {
        std::lock_guard<std::mutex> lock(mu);
        chosen[key] = t->name();
      }
    } else if (std::getenv("KILN_VERBOSE_TACTICS")) {
      std::fprintf(stderr, "[kiln] conv tactics %s (%.0f MFLOP): same shape as a timed layer -> %s\n",
                   d.node->label().c_str(), s.flops / 1e6, known.c_str());
    }
  }
  for (const std::string& name : candidate_names(s)) {
    if (t) break;
    t = make_tactic(d, s, name);
  }
  if (!t) throw Error("node " + d.node->label() + ": cpu.conv_onednn has no tactic for this layer");
  return std::make_unique<OneDnnConv>(d.threads, std::move(t));
}

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
  // KILN_CONV_TACTIC=name forces a tactic on every layer it applies to (benchmarking); others choose as usual.
  const char* env = std::getenv("KILN_CONV_TACTIC");
  std::string forced = env ? env : "";
  if (!forced.empty()) {
    const auto names = candidate_names(s);
    if (std::find(names.begin(), names.end(), forced) == names.end() || !make_tactic(d, s, forced)) forced.clear();
  }
  return create_kernel(d, s, forced);
}

KernelFactory factory(const std::string& op, const std::string& domain) {
  return {.name = "cpu.conv_onednn", .device = "cpu", .op = op, .domain = domain, .priority = 100,
          .supports = supports, .create = create,
          .deserialize = [](const LayerDesc& d, const std::string& state) -> std::unique_ptr<Kernel> {
            if (state.rfind("tactic=", 0) != 0)
              throw Error("node " + d.node->label() + ": corrupt cpu.conv_onednn state '" + printable(state) + "'");
            return create_kernel(d, describe(d), state.substr(7));
          }};
}

KILN_REGISTER_KERNEL(factory("Conv", ""));
KILN_REGISTER_KERNEL(factory("FusedConv", "kiln"));

}  // namespace

namespace conv_onednn {

std::vector<std::string> tactics_for(const LayerDesc& desc) {
  const ConvSetup s = describe(desc);
  std::vector<std::string> out;
  if (!s.ok || !supports(desc)) return out;
  OmpThreads scope(desc.threads);
  for (const std::string& name : candidate_names(s))
    if (make_tactic(desc, s, name)) out.push_back(name);
  return out;
}

std::unique_ptr<Kernel> create_with_tactic(const LayerDesc& desc, const std::string& tactic) {
  const ConvSetup s = describe(desc);
  if (!s.ok) throw Error("node " + desc.node->label() + ": cpu.conv_onednn does not support this layer");
  return create_kernel(desc, s, tactic);
}

std::string tactic_of(const Kernel& kernel) {
  const auto* k = dynamic_cast<const OneDnnConv*>(&kernel);
  return k ? k->tactic() : std::string();
}

}  // namespace conv_onednn
}  // namespace kiln::backend

#else  // !KILN_HAVE_DNNL
#include "backends/cpu/conv_tactics.h"
#include "kiln/error.h"
namespace kiln::backend::conv_onednn {
std::vector<std::string> tactics_for(const LayerDesc&) { return {}; }
std::unique_ptr<Kernel> create_with_tactic(const LayerDesc& desc, const std::string&) {
  throw Error("cpu.conv_onednn is not built in");
}
std::string tactic_of(const Kernel&) { return {}; }
}  // namespace kiln::backend::conv_onednn
#endif  // KILN_HAVE_DNNL
