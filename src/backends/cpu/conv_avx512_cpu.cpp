// cpu.conv_onednn's own kernels, not oneDNN's, for layers oneDNN handles badly: direct3d_cin1 (AVX-512) and
// direct_cout1 (plain loops, compiled for AVX-512 too), and the AVX-512 channels-last transpose the oneDNN
// tactics feed their input through.
#if defined(KILN_HAVE_DNNL)
// GCC 12 reports the intrinsics' own _mm512_undefined_ps() pass-through operands as uninitialized once they
// are inlined (a false positive in its headers); the diagnostic state at the header decides, hence here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "backends/cpu/conv_cpu.h"
#include "backends/cpu/cpu_util.h"

namespace kiln::backend::conv_onednn {

bool have_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
#else
  return false;
#endif
}

namespace {

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
__attribute__((target("avx512f"))) void transpose16(const float* x, int64_t ldx, float* y, int64_t ldy,
                                                    bool stream) {
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

}  // namespace

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

// (d): Conv3d with one input channel, 3x3x3, stride 1, pad 1 (PackNet's packing convolution). im2col blows a
// [1,D,H,W] volume up 27 times for a GEMM with K = 27; this reads each input plane three times from cache
// and writes the output once, computing all (up to 8) output channels of a row from the same loads.
bool is_direct3d_cin1(const ConvSetup& s) {
  if (s.x_dims.size() != 5 || s.group != 1 || s.x_dims[1] != 1 || s.post.act != ops::Activation::None)
    return false;
  for (size_t i = 0; i < 3; ++i)
    if (s.w_dims[i + 2] != 3 || s.strides[i] != 1 || s.dilations[i] != 0 || s.pad_l[i] != 1 ||
        s.pad_r[i] != 1)
      return false;
  return s.x_dims[4] >= 1 && s.x_dims[3] >= 1 && s.x_dims[2] >= 1;
}

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
// One output depth slice: planes[0..2] are the zero-padded input planes d-1, d, d+1 ((H+2) x wp floats each;
// nullptr where outside the volume); wts is [8][27] (channels past `mc` zero); y0 points at output channel 0
// of this slice, channel stride `cs`.
__attribute__((target("avx512f"))) void direct3d_slice(const float* const planes[3], int64_t h_n, int64_t w_n,
                                                       int64_t wp, const float* wts, const float* bias,
                                                       int mc, float* y0, int64_t cs) {
  constexpr int kC = 8;
  for (int64_t h = 0; h < h_n; ++h) {
    for (int64_t w0 = 0; w0 < w_n; w0 += 32) {
      const int64_t rem = w_n - w0;
      const __mmask16 m0 = rem >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rem) - 1);
      const __mmask16 m1 = rem >= 32  ? __mmask16(0xFFFF)
                           : rem > 16 ? __mmask16((1u << (rem - 16)) - 1)
                                      : __mmask16(0);
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
        direct3d_slice(planes, h_, w_, wp, wts_.data() + mb * 27, bias_.data() + mb,
                       int(std::min<int64_t>(8, m_ - mb)), y0, dd_ * h_ * w_);
      }
    }
    _mm_sfence();  // the streaming stores are visible before this thread reports done
#endif
  }
  int threads_;
  int64_t n_ = 0, dd_ = 0, h_ = 0, w_ = 0, m_ = 0;
  std::vector<float> wts_, bias_;
};

}  // namespace

std::unique_ptr<Tactic> make_direct3d_tactic(const LayerDesc& d, const ConvSetup& s) {
  return std::make_unique<Direct3dTactic>(d, s);
}

// A 2-D convolution to a single output channel (PackNet's disparity heads, 64→1 3x3 + sigmoid): GEMM and the
// blocked kernels waste 15/16 of their width on it. Per output row, each (channel, tap) adds one scaled input
// row into an accumulator row that stays in L1; rows are split over threads.
bool is_single_output_2d(const ConvSetup& s) {
  if (s.x_dims.size() != 4 || s.group != 1 || s.w_dims[0] != 1) return false;
  for (size_t i = 0; i < 2; ++i)
    if (s.strides[i] != 1 || s.dilations[i] != 0) return false;
  return true;
}

namespace {

KILN_SIMD_CLONES void add_scaled_row(float* __restrict acc, const float* __restrict row, float w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * row[i];
}

class SingleOutputTactic final : public Tactic {
 public:
  SingleOutputTactic(const LayerDesc& d, const ConvSetup& s)
      : threads_(std::max(1, d.threads)), post_(s.post) {
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
  // The activation in float with libm's exp / expm1.
  struct LibmMath {
    static float exp(float x) { return std::exp(x); }
    static float exp_minus_1(float x) { return std::expm1(x); }
    static float tanh(float x) { return std::tanh(x); }
    static float log1p(float x) { return std::log1p(x); }
  };
  void post(float* v, int64_t n) const {
    if (post_.act == ops::Activation::None) return;
    const float alpha = post_.alpha, beta = post_.beta;
    ops::with_activation(post_.act, [&](auto a) KILN_INLINE_LAMBDA {
      for (int64_t i = 0; i < n; ++i) v[i] = ops::activate<decltype(a)::value, LibmMath>(v[i], alpha, beta);
    });
  }
  int threads_;
  ops::ActivationParams post_;
  int64_t n_ = 0, c_ = 0, h_ = 0, w_ = 0, kh_ = 0, kw_ = 0, oh_ = 0, ow_ = 0, pt_ = 0, pl_ = 0;
  std::vector<float> wts_;
  float bias_ = 0.f;
};

}  // namespace

std::unique_ptr<Tactic> make_single_output_tactic(const LayerDesc& d, const ConvSetup& s) {
  return std::make_unique<SingleOutputTactic>(d, s);
}

}  // namespace kiln::backend::conv_onednn
#endif  // KILN_HAVE_DNNL
