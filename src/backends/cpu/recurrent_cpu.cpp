// cpu.recurrent: LSTM, GRU and RNN in fp32 with constant weights (W, R; B, P and sequence_lens constant or
// absent), every attribute of the spec (ops/recurrent.h reads them for the reference and for this kernel).
//
// Weights are packed once, transposed to [k][gates * hidden] so every product is a row of broadcast
// multiply-adds over contiguous gate columns (vectorized, AVX-512/AVX2 clones). The input projection X.W^T +
// B of all time steps is one matrix multiply before the time loop; each step then only adds h.R^T and applies
// the gates (tanh vectorized: RecurrentMath). W's and R's biases are summed once, except GRU's candidate bias
// Rbh under linear_before_reset (it is scaled by the reset gate). Activations evaluate ops/activation.h's
// formulas with CpuMath.
#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"
#include "ops/recurrent.h"

namespace kiln::backend {
namespace {

using namespace ops::recurrent;  // NOLINT: the family's names throughout

// y[r, 0:m] = bias + a[r, 0:k] . b[0:k, 0:m] for `rows` rows; four rows share each load of b's row.
KILN_SIMD_CLONES void project(const float* a, int64_t rows, int64_t k, const float* b, int64_t m,
                              const float* bias, float* y) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    float *y0 = y + r * m, *y1 = y0 + m, *y2 = y1 + m, *y3 = y2 + m;
    const float *a0 = a + r * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
    for (int64_t j = 0; j < m; ++j) y0[j] = y1[j] = y2[j] = y3[j] = bias[j];
    for (int64_t t = 0; t < k; ++t) {
      const float* bt = b + t * m;
      const float v0 = a0[t], v1 = a1[t], v2 = a2[t], v3 = a3[t];
      for (int64_t j = 0; j < m; ++j) {
        y0[j] += v0 * bt[j];
        y1[j] += v1 * bt[j];
        y2[j] += v2 * bt[j];
        y3[j] += v3 * bt[j];
      }
    }
  }
  for (; r < rows; ++r) {
    float* yr = y + r * m;
    std::copy_n(bias, m, yr);
    for (int64_t t = 0; t < k; ++t)
      for (int64_t j = 0; j < m; ++j) yr[j] += a[r * k + t] * b[t * m + j];
  }
}

// y[0:m] += v[0:k] . b[0:k, 0:m] where b's rows are `ld` apart.
KILN_SIMD_CLONES void accumulate(const float* v, int64_t k, const float* b, int64_t ld, int64_t m, float* y) {
  for (int64_t t = 0; t < k; ++t) {
    const float s = v[t];
    const float* bt = b + t * ld;
    for (int64_t j = 0; j < m; ++j) y[j] += s * bt[j];
  }
}

// CpuMath with a tanh that vectorizes (libm's tanhf was a quarter of an LSTM's time): an odd Taylor
// polynomial below |x| = 0.25 (error < 1e-8), 1 - 2 / (e^2|x| + 1) above, both computed and one selected.
struct RecurrentMath : CpuMath {
  static float tanh(float x) {
    const float ax = std::fabs(x), x2 = x * x;
    const float small =
        x * (1.f + x2 * (-1.f / 3 + x2 * (2.f / 15 + x2 * (-17.f / 315 + x2 * (62.f / 2835)))));
    const float large = 1.f - 2.f / (exp_approx(2.f * ax) + 1.f);
    return ax < 0.25f ? small : std::copysign(large, x);
  }
};

// x = act(clip(x)) in place; table activations get one specialized (vectorizable) loop each.
KILN_SIMD_CLONES void activate(const Act& act, float clip, float* x, int64_t n) {
  if (clip > 0)
    for (int64_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], -clip), clip);
  if (act.local != LocalAct::None) {
    for (int64_t i = 0; i < n; ++i) x[i] = act.operator()<RecurrentMath>(x[i]);
    return;
  }
  const float alpha = static_cast<float>(act.alpha), beta = static_cast<float>(act.beta);
  ops::with_activation(act.table, [&](auto tag) KILN_INLINE_LAMBDA {
    for (int64_t i = 0; i < n; ++i)
      x[i] = ops::activate<decltype(tag)::value, RecurrentMath>(x[i], alpha, beta);
  });
}

struct Dims {
  int64_t seq, batch, input, hidden, gates, directions;
};

class RecurrentKernel final : public Kernel {
 public:
  RecurrentKernel(const LayerDesc& d, const Family& fam) : fam_(fam), c_(read_config(*d.node, fam)) {
    const auto& x = d.inputs[kX].dims;
    n_ = {c_.layout == 0 ? x[0] : x[1],
          c_.layout == 0 ? x[1] : x[0],
          x[2],
          d.inputs[kR].dims[2],
          fam.gates,
          c_.directions};
    const int64_t nd = n_.directions, I = n_.input, H = n_.hidden, GH = fam.gates * H;
    const float *w = d.inputs[kW].constant->data<float>(), *r = d.inputs[kR].constant->data<float>();
    const float* b = has(d, kB) ? d.inputs[kB].constant->data<float>() : nullptr;
    wt_.resize(static_cast<size_t>(nd * I * GH));
    rt_.resize(static_cast<size_t>(nd * H * GH));
    bias_.assign(static_cast<size_t>(nd * GH), 0.f);
    rbh_.assign(static_cast<size_t>(nd * H), 0.f);
    const bool gru_lbr = fam.gates == 3 && c_.linear_before_reset;
    for (int64_t dir = 0; dir < nd; ++dir) {
      for (int64_t j = 0; j < GH; ++j) {
        for (int64_t t = 0; t < I; ++t) wt_[(dir * I + t) * GH + j] = w[(dir * GH + j) * I + t];
        for (int64_t t = 0; t < H; ++t) rt_[(dir * H + t) * GH + j] = r[(dir * GH + j) * H + t];
        if (!b) continue;
        const float wb = b[dir * 2 * GH + j], rb = b[dir * 2 * GH + GH + j];
        const bool separate = gru_lbr && j >= 2 * H;
        bias_[dir * GH + j] = separate ? wb : wb + rb;
        if (separate) rbh_[dir * H + j - 2 * H] = rb;
      }
    }
    if (fam.gates == 4 && has(d, kP)) {
      const float* p = d.inputs[kP].constant->data<float>();
      p_.assign(p, p + nd * 3 * H);
    }
    lens_.assign(static_cast<size_t>(n_.batch), n_.seq);
    if (has(d, kSeqLens)) {
      const int32_t* sl = d.inputs[kSeqLens].constant->data<int32_t>();
      for (int64_t k = 0; k < n_.batch; ++k)
        if ((lens_[k] = sl[k]) < 0 || lens_[k] > n_.seq)
          throw Error("node " + d.node->label() + ": sequence_lens[" + std::to_string(k) +
                      "] = " + std::to_string(lens_[k]) + " is outside [0, " + std::to_string(n_.seq) + "]");
    }
  }

  static bool has(const LayerDesc& d, size_t k) { return k < d.inputs.size() && d.inputs[k].present; }

  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const int64_t S = n_.seq, N = n_.batch, I = n_.input, H = n_.hidden, G = n_.gates, GH = G * H,
                  nd = n_.directions;
    const bool batch_first = c_.layout == 1;
    auto view = [](const std::vector<TensorView>& v, size_t k) {
      return k < v.size() && v[k].data ? v[k].as<float>() : nullptr;
    };
    const float *x = in[kX].as<float>(), *h0 = view(in, kInitialH),
                *c0 = G == 4 ? view(in, kInitialC) : nullptr;
    float *y = view(out, 0), *yh = view(out, 1), *yc = G == 4 ? view(out, 2) : nullptr;
    if (y) std::fill_n(y, S * nd * N * H, 0.f);
    // Where (step t, batch n) lives in X's rows and in Y, and (direction, batch n) in the states.
    auto row = [&](int64_t t, int64_t n) { return batch_first ? n * S + t : t * N + n; };
    auto y_at = [&](int64_t t, int64_t dir, int64_t n) {
      return (batch_first ? (n * S + t) * nd + dir : (t * nd + dir) * N + n) * H;
    };
    auto state_at = [&](int64_t dir, int64_t n) { return (batch_first ? n * nd + dir : dir * N + n) * H; };

    std::vector<float> xw(static_cast<size_t>(S * N * GH)), g(static_cast<size_t>(GH)),
        h(static_cast<size_t>(H)), cs(static_cast<size_t>(H)), tmp(static_cast<size_t>(H));
    const float clip = static_cast<float>(c_.clip);
    for (int64_t dir = 0; dir < nd; ++dir) {
      const bool backward = c_.reverse || dir == 1;
      const float *rt = &rt_[dir * H * GH], *bias = &bias_[dir * GH];
      const Act* f = &c_.acts[static_cast<size_t>(dir * fam_.acts)];
      project(x, S * N, I, &wt_[dir * I * GH], GH, bias, xw.data());
      for (int64_t n = 0; n < N; ++n) {
        const int64_t len = lens_[n];
        std::fill(h.begin(), h.end(), 0.f);
        std::fill(cs.begin(), cs.end(), 0.f);
        if (h0) std::copy_n(h0 + state_at(dir, n), H, h.begin());
        if (c0) std::copy_n(c0 + state_at(dir, n), H, cs.begin());
        for (int64_t step = 0; step < len; ++step) {
          const int64_t t = backward ? len - 1 - step : step;
          std::copy_n(&xw[row(t, n) * GH], GH, g.begin());
          if (G == 4)
            lstm_step(dir, f, clip, rt, g.data(), h.data(), cs.data(), tmp.data());
          else if (G == 3)
            gru_step(dir, f, clip, rt, g.data(), h.data(), tmp.data());
          else {
            accumulate(h.data(), H, rt, GH, GH, g.data());
            activate(f[0], clip, g.data(), H);
            std::copy_n(g.begin(), H, h.begin());
          }
          if (y) std::copy_n(h.begin(), H, y + y_at(t, dir, n));
        }
        if (len == 0) {  // no step: zero states, as the reference
          std::fill(h.begin(), h.end(), 0.f);
          std::fill(cs.begin(), cs.end(), 0.f);
        }
        if (yh) std::copy_n(h.begin(), H, yh + state_at(dir, n));
        if (yc) std::copy_n(cs.begin(), H, yc + state_at(dir, n));
      }
    }
  }

 private:
  // Gates i o f c in g (input projection already there); peepholes P are i o f.
  void lstm_step(int64_t dir, const Act* f, float clip, const float* rt, float* g, float* h, float* cs,
                 float* tmp) const {
    const int64_t H = n_.hidden;
    accumulate(h, H, rt, 4 * H, 4 * H, g);
    float *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H;
    const float* p = p_.empty() ? nullptr : &p_[dir * 3 * H];
    if (p)
      for (int64_t j = 0; j < H; ++j) gi[j] += p[j] * cs[j], gf[j] += p[2 * H + j] * cs[j];
    activate(f[0], clip, gi, H);
    if (c_.input_forget)
      for (int64_t j = 0; j < H; ++j) gf[j] = 1.f - gi[j];
    else
      activate(f[0], clip, gf, H);
    activate(f[1], clip, gc, H);
    for (int64_t j = 0; j < H; ++j) cs[j] = gf[j] * cs[j] + gi[j] * gc[j];
    if (p)
      for (int64_t j = 0; j < H; ++j) go[j] += p[H + j] * cs[j];
    activate(f[0], clip, go, H);
    std::copy_n(cs, H, tmp);
    activate(f[2], 0.f, tmp, H);  // clip bounds gate inputs, not the cell state
    for (int64_t j = 0; j < H; ++j) h[j] = go[j] * tmp[j];
  }

  // Gates z r h in g (input projection already there).
  void gru_step(int64_t dir, const Act* f, float clip, const float* rt, float* g, float* h,
                float* tmp) const {
    const int64_t H = n_.hidden, GH = 3 * H;
    float *z = g, *r = g + H, *cand = g + 2 * H;
    if (c_.linear_before_reset) {
      const float* rbh = &rbh_[dir * H];
      std::copy_n(rbh, H, tmp);
      accumulate(h, H, rt + 2 * H, GH, H, tmp);  // h.Rh^T + Rbh
      accumulate(h, H, rt, GH, 2 * H, g);
      activate(f[0], clip, g, 2 * H);
      for (int64_t j = 0; j < H; ++j) cand[j] += r[j] * tmp[j];
    } else {
      accumulate(h, H, rt, GH, 2 * H, g);
      activate(f[0], clip, g, 2 * H);
      for (int64_t j = 0; j < H; ++j) tmp[j] = r[j] * h[j];
      accumulate(tmp, H, rt + 2 * H, GH, H, cand);  // (r*h).Rh^T; Rbh is in the bias
    }
    activate(f[1], clip, cand, H);
    for (int64_t j = 0; j < H; ++j) h[j] = (1.f - z[j]) * cand[j] + z[j] * h[j];
  }

  Family fam_;
  Config c_;
  Dims n_{};
  std::vector<float> wt_, rt_, bias_, rbh_, p_;  // packed per direction (see the constructor)
  std::vector<int64_t> lens_;
};

bool supported(const LayerDesc& d) {
  const Family* fam = family_of(d.node->op);
  if (!fam || d.inputs.size() < 3) return false;
  for (size_t k = 0; k < d.inputs.size(); ++k) {
    const auto& in = d.inputs[k];
    if (!in.present) continue;
    const bool weight = k == kW || k == kR || k == kB || (fam->gates == 4 && k == kP);
    if (k == kSeqLens ? in.dtype != DType::Int32 || !in.constant : in.dtype != DType::Float) return false;
    if (weight && !in.constant) return false;
  }
  return d.inputs[kX].dims.size() == 3 && d.inputs[kR].dims.size() == 3;
}

KernelFactory recurrent_factory(const char* op) {
  return {.name = "cpu.recurrent",
          .device = "cpu",
          .op = op,
          .domain = "",
          .priority = 50,
          .supports = supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
            return std::make_unique<RecurrentKernel>(d, *family_of(d.node->op));
          }};
}

KILN_REGISTER_KERNEL(recurrent_factory("LSTM"));
KILN_REGISTER_KERNEL(recurrent_factory("GRU"));
KILN_REGISTER_KERNEL(recurrent_factory("RNN"));

}  // namespace
}  // namespace kiln::backend
