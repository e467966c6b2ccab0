// cpu.conv_onednn: fp32 Conv (1-D/2-D/3-D) and kiln.FusedConv, by the fastest of several tactics (oneDNN's
// and kiln's own, conv_cpu.h). Here: the layer read into a ConvSetup (with the fused activation as a oneDNN
// eltwise post-op), the candidates and the choice among them by timing, the kernel and its registration.
#if defined(KILN_HAVE_DNNL)
#include "backends/cpu/conv_cpu.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "backends/cpu/conv_tactics.h"
#include "backends/cpu/omp_threads.h"
#include "kiln/error.h"
#include "ops/internal_ops.h"

namespace kiln::backend::conv_onednn {
namespace {

tag plain_tag(size_t rank) {
  switch (rank) {
    case 3:
      return tag::ncw;
    case 4:
      return tag::nchw;
    default:
      return tag::ncdhw;
  }
}
// ONNX weights [M, C/g, k...] are, viewed with a leading group dim, exactly oneDNN's g-o-i-k... plain layout.
tag plain_weight_tag(size_t rank, bool grouped) {
  switch (rank) {
    case 3:
      return grouped ? tag::goiw : tag::oiw;
    case 4:
      return grouped ? tag::goihw : tag::oihw;
    default:
      return grouped ? tag::goidhw : tag::oidhw;
  }
}

dnnl::memory::dims to_dims(const std::vector<int64_t>& v) {
  return dnnl::memory::dims(v.begin(), v.end());
}

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

  const std::optional<ops::ActivationParams> post = ops::fused_activation(a, ops::kFusedConvActivation);
  if (!post || (post->act != ops::Activation::None && onednn_eltwise(post->act) == dnnl::algorithm::undef))
    return s;
  s.post = *post;

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

// Builds one tactic; nullptr when it does not apply (oneDNN declines or offers only its reference code, or it
// would duplicate another candidate).
std::unique_ptr<Tactic> make_tactic(const LayerDesc& d, const ConvSetup& s, const std::string& name) {
  try {
    if (name == "direct3d_cin1")
      return is_direct3d_cin1(s) && have_avx512() ? make_direct3d_tactic(d, s) : nullptr;
    if (name == "direct_cout1") return is_single_output_2d(s) ? make_single_output_tactic(d, s) : nullptr;
    return make_onednn_tactic(d, s, name);
  } catch (const dnnl::error&) {
    return nullptr;
  }
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
// load from other processes hits every candidate alike; the minimum per candidate counts, and a
// candidate 1.5x behind the leader leaves the race (and frees its buffers).
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
    std::fprintf(stderr, "[kiln] conv tactics %s (%.0f MFLOP):%s -> %s\n", d.node->label().c_str(),
                 s.flops / 1e6, log.c_str(), best ? best->name().c_str() : "none");
  }
  return best;
}

std::string shape_key(const LayerDesc& d, const ConvSetup& s) {
  std::string k = d.node->op + "|" + std::to_string(d.threads) + "|" + std::to_string(s.group) + "|" +
                  std::to_string(int(onednn_eltwise(s.post.act))) + ":" + std::to_string(s.post.alpha) + "|" +
                  (s.bias ? "b" : "");
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
    // shorter and their choices agree. Weights do not enter the key: the tactics' speed does not depend on
    // them.
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
  // KILN_CONV_TACTIC=name forces a tactic on every layer it applies to (benchmarking); others choose as
  // usual.
  const char* env = std::getenv("KILN_CONV_TACTIC");
  std::string forced = env ? env : "";
  if (!forced.empty()) {
    const auto names = candidate_names(s);
    if (std::find(names.begin(), names.end(), forced) == names.end() || !make_tactic(d, s, forced))
      forced.clear();
  }
  return create_kernel(d, s, forced);
}

KernelFactory factory(const std::string& op, const std::string& domain) {
  return {.name = "cpu.conv_onednn",
          .device = "cpu",
          .op = op,
          .domain = domain,
          .priority = 100,
          .supports = supports,
          .create = create,
          .deserialize = [](const LayerDesc& d, const std::string& state) -> std::unique_ptr<Kernel> {
            if (state.rfind("tactic=", 0) != 0)
              throw Error("node " + d.node->label() + ": corrupt cpu.conv_onednn state '" + printable(state) +
                          "'");
            return create_kernel(d, describe(d), state.substr(7));
          }};
}

KILN_REGISTER_KERNEL(factory("Conv", ""));
KILN_REGISTER_KERNEL(factory(internal_ops::fused_conv::kOp, internal_ops::kDomain));

}  // namespace

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

}  // namespace kiln::backend::conv_onednn

#else  // !KILN_HAVE_DNNL
#include "backends/cpu/conv_tactics.h"
#include "backends/cpu/omp_threads.h"
#include "kiln/error.h"
namespace kiln::backend::conv_onednn {
std::vector<std::string> tactics_for(const LayerDesc&) {
  return {};
}
std::unique_ptr<Kernel> create_with_tactic(const LayerDesc& desc, const std::string&) {
  throw Error("cpu.conv_onednn is not built in");
}
std::string tactic_of(const Kernel&) {
  return {};
}
}  // namespace kiln::backend::conv_onednn
#endif  // KILN_HAVE_DNNL
