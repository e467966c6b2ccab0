// The recurrent layers LSTM, GRU and RNN (ONNX opsets 7 and 14): shape inference and the reference kernel.
//
// One family: inputs X, W, R, B, sequence_lens, initial_h (+ initial_c, P for LSTM); outputs Y, Y_h (+ Y_c),
// each optional. Gates are stacked along W's and R's second dim in the spec's order (LSTM i o f c, GRU z r
// h). The kernel runs in double in layout 0 ([seq, batch, ...]); layout 1 (batch first) is transposed in and
// out. Steps beyond a batch entry's sequence length leave Y zero and do not touch the state, so Y_h/Y_c hold
// the last valid step; a length of 0 gives zero Y_h/Y_c (what ONNX Runtime does; the spec is silent).
#include "ops/recurrent.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <variant>

#include "ops/util.h"

namespace kiln::ops::recurrent {
namespace {

// The spec's activations kiln evaluates itself (ops/recurrent.h), by their lower-case names.
struct LocalActInfo {
  LocalAct act;
  const char* name;
  int params;  // 0: none, 1: alpha, 2: alpha and beta
  double alpha, beta;
};
constexpr LocalActInfo kLocalActs[] = {{LocalAct::Affine, "affine", 2, 1.0, 0.0},
                                       {LocalAct::ScaledTanh, "scaledtanh", 2, 1.0, 1.0},
                                       {LocalAct::ThresholdedRelu, "thresholdedrelu", 1, 1.0, 0.0},
                                       {LocalAct::Softsign, "softsign", 0, 0.0, 0.0}};

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

const Family* family_of(const std::string& op) {
  return op == "LSTM" ? &kLstm : op == "GRU" ? &kGru : op == "RNN" ? &kRnn : nullptr;
}

Config read_config(const Node& node, const Family& fam) {
  auto fail = [](const std::string& message) { throw Error(message); };
  const Attributes& a = node.attrs;
  Config c;
  const std::string dir = a.get_string("direction", "forward");
  if (dir != "forward" && dir != "reverse" && dir != "bidirectional")
    fail("direction must be forward, reverse or bidirectional, got '" + dir + "'");
  c.bidirectional = dir == "bidirectional";
  c.reverse = dir == "reverse";
  c.directions = c.bidirectional ? 2 : 1;
  if (a.has("hidden_size")) {
    c.hidden = a.get_int("hidden_size", 0);
    if (c.hidden < 1 || c.hidden > (int64_t{1} << 40))  // the bound keeps gate counts * hidden in range
      fail("hidden_size must be in [1, 2^40], got " + std::to_string(c.hidden));
  }
  c.layout = a.get_int("layout", 0);
  if (c.layout != 0 && c.layout != 1) fail("layout must be 0 or 1, got " + std::to_string(c.layout));
  if (a.has("clip")) {
    c.clip = a.get_float("clip", 0.f);
    if (!(c.clip > 0)) fail("clip must be > 0, got " + std::to_string(c.clip));
  }
  c.linear_before_reset = a.get_int("linear_before_reset", 0) != 0;
  c.input_forget = a.get_int("input_forget", 0) != 0;

  std::vector<std::string> names;
  if (const Attribute* attr = a.find("activations")) {
    const auto* v = std::get_if<std::vector<std::string>>(&attr->value);
    if (!v) fail("attribute 'activations' must be a list of strings");
    names = *v;
  } else {
    names.assign(fam.default_acts, fam.default_acts + fam.acts);
  }
  const size_t per_dir = static_cast<size_t>(fam.acts), want = per_dir * static_cast<size_t>(c.directions);
  if (c.bidirectional && names.size() == per_dir) {  // one list for both directions
    const std::vector<std::string> once = names;
    names.insert(names.end(), once.begin(), once.end());
  }
  if (names.size() != want)
    fail("activations must list " + std::to_string(want) + " functions, got " + std::to_string(names.size()));
  const std::vector<float> alphas = a.get_floats("activation_alpha"), betas = a.get_floats("activation_beta");
  size_t next_alpha = 0, next_beta = 0;
  auto param = [&](const std::vector<float>& v, size_t& next, double def) {
    return next < v.size() ? static_cast<double>(v[next++]) : def;
  };
  for (const std::string& name : names) {
    Act act;
    int params = 0;
    const std::string key = lower(name);
    for (const ActivationInfo& info : kActivations)
      if (info.act != Activation::None && key == lower(info.op)) {
        act.table = info.act;
        act.alpha = info.alpha;
        act.beta = info.beta;
        params = (*info.alpha_attr ? 1 : 0) + (*info.beta_attr ? 2 : 0);
      }
    if (act.table == Activation::None)
      for (const LocalActInfo& info : kLocalActs)
        if (key == info.name) {
          act = {Activation::None, info.act, info.alpha, info.beta};
          params = info.params == 2 ? 3 : info.params;
        }
    if (act.table == Activation::None && act.local == LocalAct::None)
      fail("activation '" + name + "' is not one the recurrent layers support");
    if (params & 1) act.alpha = param(alphas, next_alpha, act.alpha);
    if (params & 2) act.beta = param(betas, next_beta, act.beta);
    c.acts.push_back(act);
  }
  return c;
}

namespace {

// Checks input k against `want` (-1 entries: any size), comparing only dims known on both sides.
template <class Ctx>
void check_dims(const Ctx& ctx, const std::optional<Shape>& got, const char* name,
                const std::vector<int64_t>& want) {
  if (!got) return;
  auto describe = [&] {
    std::string s;
    for (int64_t w : want) s += (s.empty() ? "" : ", ") + (w < 0 ? std::string("?") : std::to_string(w));
    return "[" + s + "]";
  };
  if (got->size() != want.size())
    ctx.fail(std::string(name) + " must have shape " + describe() + ", got " + to_string(*got));
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i] >= 0 && (*got)[i].is_static() && (*got)[i].value != want[i])
      ctx.fail(std::string(name) + " must have shape " + describe() + ", got " + to_string(*got));
}

// The sizes the inputs must agree on (-1: not known at inference time).
struct Sizes {
  int64_t seq = -1, batch = -1, input = -1, hidden = -1;
};

template <class Ctx, class ShapeOf>
Sizes check_inputs(const Ctx& ctx, const Family& fam, const Config& c, ShapeOf shape_of) {
  auto dim = [](const std::optional<Shape>& s, size_t i) {
    return s && i < s->size() && (*s)[i].is_static() ? (*s)[i].value : int64_t{-1};
  };
  const std::optional<Shape> x = shape_of(kX), w = shape_of(kW), r = shape_of(kR);
  if (x && x->size() != 3) ctx.fail("X must have rank 3, got " + to_string(*x));
  Sizes s{dim(x, c.layout == 0 ? 0 : 1), dim(x, c.layout == 0 ? 1 : 0), dim(x, 2), c.hidden};
  if (s.hidden < 0) s.hidden = dim(r, 2);
  if (s.hidden < 0 && dim(w, 1) >= 0) s.hidden = dim(w, 1) / fam.gates;
  const int64_t nd = c.directions, h = s.hidden, gh = h < 0 ? -1 : fam.gates * h;
  check_dims(ctx, w, "W", {nd, gh, s.input});
  check_dims(ctx, r, "R", {nd, gh, h});
  if (ctx.has_input(kB)) check_dims(ctx, shape_of(kB), "B", {nd, gh < 0 ? -1 : 2 * gh});
  if (ctx.has_input(kSeqLens)) check_dims(ctx, shape_of(kSeqLens), "sequence_lens", {s.batch});
  const std::vector<int64_t> state =
      c.layout == 0 ? std::vector<int64_t>{nd, s.batch, h} : std::vector{s.batch, nd, h};
  if (ctx.has_input(kInitialH)) check_dims(ctx, shape_of(kInitialH), "initial_h", state);
  if (fam.gates == 4 && ctx.has_input(kInitialC)) check_dims(ctx, shape_of(kInitialC), "initial_c", state);
  if (fam.gates == 4 && ctx.has_input(kP)) check_dims(ctx, shape_of(kP), "P", {nd, h < 0 ? -1 : 3 * h});
  return s;
}

template <const Family& fam>
void infer_recurrent(InferContext& ctx) {
  const Config c = read_config(ctx.node, fam);
  const DType dt = ctx.input(kX).dtype;
  if (dt != DType::Undefined && !dtype_is_float(dt))
    ctx.fail(std::string("X must be a float tensor, not ") + dtype_name(dt));
  if (ctx.has_input(kSeqLens) && ctx.input(kSeqLens).dtype != DType::Undefined &&
      ctx.input(kSeqLens).dtype != DType::Int32)
    ctx.fail(std::string("sequence_lens must be int32, not ") + dtype_name(ctx.input(kSeqLens).dtype));
  check_inputs(ctx, fam, c, [&](size_t k) { return in_shape(ctx, k); });
  const std::optional<Shape> x = in_shape(ctx, kX);
  if (!x) {
    for (size_t k = 0; k < ctx.out.size(); ++k) set_out(ctx, k, dt, std::nullopt);
    return;
  }
  Dim hidden = c.hidden;
  if (c.hidden < 0) {
    const std::optional<Shape> r = in_shape(ctx, kR);
    hidden = r ? (*r)[2] : Dim();
  }
  const Dim seq = (*x)[c.layout == 0 ? 0 : 1], batch = (*x)[c.layout == 0 ? 1 : 0], nd = c.directions;
  set_out(ctx, 0, dt, c.layout == 0 ? Shape{seq, nd, batch, hidden} : Shape{batch, seq, nd, hidden});
  for (size_t k = 1; k < ctx.out.size(); ++k)
    set_out(ctx, k, dt, c.layout == 0 ? Shape{nd, batch, hidden} : Shape{batch, nd, hidden});
}

// Swaps the first two dims of a [a, b, inner] array (layout 1 <-> layout 0).
std::vector<double> swap01(const std::vector<double>& v, int64_t a, int64_t b, int64_t inner) {
  std::vector<double> out(v.size());
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      std::copy_n(v.begin() + (i * b + j) * inner, inner, out.begin() + (j * a + i) * inner);
  return out;
}

// y[n, 0:m] = a[n, 0:k] . w[0:m, 0:k]^T (+ bias[0:m]): the gate projections, for `n` rows at once.
void project(const double* a, const double* w, const double* bias, int64_t n, int64_t k, int64_t m,
             double* y) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double sum = bias ? bias[j] : 0.0;
      for (int64_t t = 0; t < k; ++t) sum += a[i * k + t] * w[j * k + t];
      y[i * m + j] = sum;
    }
}

template <const Family& fam>
void recurrent_kernel(KernelContext& ctx) {
  const Config c = read_config(ctx.node, fam);
  const Sizes s =
      check_inputs(ctx, fam, c, [&](size_t k) { return std::optional(make_shape(ctx.input(k).dims())); });
  const int64_t S = s.seq, N = s.batch, I = s.input, H = s.hidden, G = fam.gates, nd = c.directions;
  const bool lstm = G == 4;
  auto load_or = [&](size_t k, int64_t size) {
    return ctx.has_input(k) ? load_real(ctx, ctx.input(k))
                            : std::vector<double>(static_cast<size_t>(size), 0.0);
  };
  std::vector<double> x = load_real(ctx, ctx.input(kX)), h0 = load_or(kInitialH, nd * N * H);
  std::vector<double> c0 = lstm ? load_or(kInitialC, nd * N * H) : std::vector<double>();
  if (c.layout == 1) {
    x = swap01(x, N, S, I);
    h0 = swap01(h0, N, nd, H);
    if (lstm) c0 = swap01(c0, N, nd, H);
  }
  const std::vector<double> w = load_real(ctx, ctx.input(kW)), r = load_real(ctx, ctx.input(kR)),
                            b = load_or(kB, nd * 2 * G * H),
                            p = lstm ? load_or(kP, nd * 3 * H) : std::vector<double>();
  std::vector<int64_t> lens(static_cast<size_t>(N), S);
  if (ctx.has_input(kSeqLens)) {
    const TensorData& sl = ctx.input(kSeqLens);
    if (sl.dtype() != DType::Int32) ctx.fail("sequence_lens must be int32");
    for (int64_t n = 0; n < N; ++n)
      if ((lens[n] = sl.data<int32_t>()[n]) < 0 || lens[n] > S)
        ctx.fail("sequence_lens[" + std::to_string(n) + "] = " + std::to_string(lens[n]) +
                 " is outside [0, " + std::to_string(S) + "]");
  }

  std::vector<double> y(static_cast<size_t>(S * nd * N * H), 0.0), yh(static_cast<size_t>(nd * N * H), 0.0),
      yc = yh;
  std::vector<double> xw(static_cast<size_t>(S * N * G * H)), gates(static_cast<size_t>(G * H)),
      tmp(static_cast<size_t>(H));
  auto clip = [&](double v) { return c.clip > 0 ? std::clamp(v, -c.clip, c.clip) : v; };
  for (int64_t d = 0; d < nd; ++d) {
    const bool backward = c.reverse || d == 1;
    const double *wd = &w[d * G * H * I], *rd = &r[d * G * H * H], *wb = &b[d * 2 * G * H], *rb = wb + G * H;
    const Act* f = &c.acts[static_cast<size_t>(d * fam.acts)];
    // The input projection of every step at once (one matrix multiply), with W's bias folded in.
    project(x.data(), wd, wb, S * N, I, G * H, xw.data());
    for (int64_t n = 0; n < N; ++n) {
      std::vector<double> hs(static_cast<size_t>(H)), cs(static_cast<size_t>(H), 0.0);
      std::copy_n(&h0[(d * N + n) * H], H, hs.begin());
      if (lstm) std::copy_n(&c0[(d * N + n) * H], H, cs.begin());
      for (int64_t step = 0; step < lens[n]; ++step) {
        const int64_t t = backward ? lens[n] - 1 - step : step;
        const double* xt = &xw[(t * N + n) * G * H];
        if (G ==
            3) {  // GRU: z and r see R.h; the candidate h sees R.(r*h), or r*(R.h) with linear_before_reset
          project(hs.data(), rd, rb, 1, H, 2 * H, gates.data());
          for (int64_t j = 0; j < 2 * H; ++j) gates[j] = f[0](clip(xt[j] + gates[j]));
          const double *z = &gates[0], *rr = &gates[H];
          if (c.linear_before_reset) {
            project(hs.data(), rd + 2 * H * H, rb + 2 * H, 1, H, H, tmp.data());
            for (int64_t j = 0; j < H; ++j) tmp[j] *= rr[j];
          } else {
            for (int64_t j = 0; j < H; ++j) gates[2 * H + j] = rr[j] * hs[j];
            project(&gates[2 * H], rd + 2 * H * H, rb + 2 * H, 1, H, H, tmp.data());
          }
          for (int64_t j = 0; j < H; ++j) {
            const double cand = f[1](clip(xt[2 * H + j] + tmp[j]));
            hs[j] = (1 - z[j]) * cand + z[j] * hs[j];
          }
        } else {
          project(hs.data(), rd, rb, 1, H, G * H, gates.data());
          if (G == 1) {
            for (int64_t j = 0; j < H; ++j) hs[j] = f[0](clip(xt[j] + gates[j]));
          } else {  // LSTM, gates i o f c; peepholes P are i o f
            const double *pd = &p[d * 3 * H], *pi = pd, *po = pd + H, *pf = pd + 2 * H;
            for (int64_t j = 0; j < H; ++j) {
              const double i = f[0](clip(xt[j] + gates[j] + pi[j] * cs[j]));
              const double fg =
                  c.input_forget ? 1 - i : f[0](clip(xt[2 * H + j] + gates[2 * H + j] + pf[j] * cs[j]));
              const double cand = f[1](clip(xt[3 * H + j] + gates[3 * H + j]));
              cs[j] = fg * cs[j] + i * cand;
              const double o = f[0](clip(xt[H + j] + gates[H + j] + po[j] * cs[j]));
              hs[j] = o * f[2](cs[j]);
            }
          }
        }
        std::copy_n(hs.begin(), H, &y[((t * nd + d) * N + n) * H]);
      }
      if (lens[n] > 0) {
        std::copy_n(hs.begin(), H, &yh[(d * N + n) * H]);
        std::copy_n(cs.begin(), H, &yc[(d * N + n) * H]);
      }
    }
  }
  const DType dt = ctx.input(kX).dtype();
  const bool batch_first = c.layout == 1;
  if (ctx.node.output(0))
    ctx.out[0] = batch_first ? store_real(ctx, dt, {N, S, nd, H}, swap01(y, S * nd, N, H))
                             : store_real(ctx, dt, {S, nd, N, H}, y);
  const std::vector<int64_t> state = batch_first ? std::vector{N, nd, H} : std::vector{nd, N, H};
  if (ctx.node.output(1)) ctx.out[1] = store_real(ctx, dt, state, batch_first ? swap01(yh, nd, N, H) : yh);
  if (lstm && ctx.node.output(2))
    ctx.out[2] = store_real(ctx, dt, state, batch_first ? swap01(yc, nd, N, H) : yc);
}

KILN_REGISTER_OP({.op = "LSTM",
                  .min_inputs = 3,
                  .max_inputs = kLstm.max_inputs,
                  .min_outputs = 0,
                  .max_outputs = kLstm.max_outputs,
                  .infer = infer_recurrent<kLstm>,
                  .reference = recurrent_kernel<kLstm>});
KILN_REGISTER_OP({.op = "GRU",
                  .min_inputs = 3,
                  .max_inputs = kGru.max_inputs,
                  .min_outputs = 0,
                  .max_outputs = kGru.max_outputs,
                  .infer = infer_recurrent<kGru>,
                  .reference = recurrent_kernel<kGru>});
KILN_REGISTER_OP({.op = "RNN",
                  .min_inputs = 3,
                  .max_inputs = kRnn.max_inputs,
                  .min_outputs = 0,
                  .max_outputs = kRnn.max_outputs,
                  .infer = infer_recurrent<kRnn>,
                  .reference = recurrent_kernel<kRnn>});

}  // namespace
}  // namespace kiln::ops::recurrent
