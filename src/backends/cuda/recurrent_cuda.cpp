// kiln — cuda.recurrent: LSTM, GRU and RNN on CUDA, fp32 / fp16 / bf16 (float gate math and states), every
// attribute ops/recurrent.h reads (directions, layout 0 and 1, clip, input_forget, linear_before_reset, the
// activation list with its alphas and betas). W, R (and B, P when given) must be constants: they are uploaded
// once at create time, B's two halves summed (except GRU's Rbh under linear_before_reset, which the reset
// gate scales) and P in float. sequence_lens may be a constant (checked at create time, as the CPU kernel)
// or device data (clamped to [0, seq] on the device, see recurrent_cuda.cu).
//
// Per run: one cuBLASLt GEMM for X.W^T of every step and direction (TF32 as BuildOptions
// says), then per time step one GEMM h.R^T for both directions (strict fp32 for fp32: its error would
// compound over the steps) and one gate kernel; GRU without linear_before_reset needs r before its candidate
// product, so it adds a gate phase and a second GEMM, (r*h).Rh^T. Everything is enqueued on the layer's
// stream (capturable); the GEMM results and the states live in the workspace, ahead of cuBLASLt's share.
#include "backends/cuda/recurrent_cuda.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/matmul_cuda.h"
#include "device/kernel.h"
#include "kiln/build_options.h"
#include "ops/recurrent.h"

namespace kiln::cuda::recurrent {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;
using matmul::LtGemm;
using matmul::LtProblem;
using ops::recurrent::Config;
using ops::recurrent::Family;
using ops::recurrent::family_of;
using ops::recurrent::read_config;
namespace in = ops::recurrent;  // the input indices kX, kW, ...

constexpr int64_t kMaxExtent = std::numeric_limits<int32_t>::max();  // a GEMM's m, n, k
constexpr size_t kAlign = 256;                                       // workspace regions

size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

bool present(const LayerDesc& d, size_t k) {
  return k < d.inputs.size() && d.inputs[k].present;
}

// Sizes read from the layer: seq, batch, input, hidden (X's layout decides which dim is which).
struct Sizes {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0;
};
Sizes sizes_of(const LayerDesc& d, const Config& c) {
  const auto& x = d.inputs[in::kX].dims;
  return {c.layout == 0 ? x[0] : x[1], c.layout == 0 ? x[1] : x[0], x[2], d.inputs[in::kR].dims[2]};
}

std::vector<float> floats_of(const TensorData& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<float>(t.as_double(i));
  return v;
}

class RecurrentKernel final : public CudaKernel {
 public:
  RecurrentKernel(const LayerDesc& d, const Family& fam) : dtype_(d.inputs[in::kX].dtype) {
    const Config c = read_config(*d.node, fam);
    const Sizes s = sizes_of(d, c);
    const int64_t nd = c.directions, H = s.hidden, G = fam.gates, GH = G * H;
    p_.cell = G == 4 ? Cell::Lstm : G == 3 ? Cell::Gru : Cell::Rnn;
    p_.seq = s.seq;
    p_.batch = s.batch;
    p_.hidden = H;
    p_.directions = nd;
    p_.reverse = c.reverse;
    p_.batch_first = c.layout == 1;
    p_.input_forget = c.input_forget;
    p_.linear_before_reset = c.linear_before_reset;
    p_.clip = static_cast<float>(c.clip);
    p_.acts_per_dir = fam.acts;
    for (size_t k = 0; k < c.acts.size() && k < static_cast<size_t>(kMaxActs); ++k)
      p_.acts[k] = {static_cast<int>(c.acts[k].table), static_cast<int>(c.acts[k].local),
                    static_cast<float>(c.acts[k].alpha), static_cast<float>(c.acts[k].beta)};
    two_phase_ = p_.cell == Cell::Gru && !c.linear_before_reset;
    p_.hr_cols = two_phase_ ? 2 * H : GH;

    // Weights in the layer's dtype, as ONNX lays them out ([dirs][gates * hidden][k]: the GEMMs' B^T).
    const TensorData w = convert_float(*d.inputs[in::kW].constant, dtype_),
                     r = convert_float(*d.inputs[in::kR].constant, dtype_);
    w_ = DeviceBuffer(w.raw(), w.nbytes());
    r_ = DeviceBuffer(r.raw(), r.nbytes());
    const size_t elem = dtype_size(dtype_);
    if (two_phase_) {  // GRU's Rh (R's last H rows per direction) on its own, aligned for the second GEMM
      const size_t block = static_cast<size_t>(H * H) * elem;
      std::vector<unsigned char> rh(static_cast<size_t>(nd) * block);
      for (int64_t dir = 0; dir < nd; ++dir)
        std::copy_n(static_cast<const unsigned char*>(r.raw()) + static_cast<size_t>(dir * 3 + 2) * block,
                    block, rh.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(dir) * block));
      r_cand_ = DeviceBuffer(rh.data(), rh.size());
    }
    std::vector<float> bias(static_cast<size_t>(nd * GH), 0.f), rbh(static_cast<size_t>(nd * H), 0.f);
    if (present(d, in::kB)) {
      const std::vector<float> b = floats_of(*d.inputs[in::kB].constant);
      for (int64_t dir = 0; dir < nd; ++dir)
        for (int64_t j = 0; j < GH; ++j) {
          const float wb = b[static_cast<size_t>(dir * 2 * GH + j)];
          const float rb = b[static_cast<size_t>(dir * 2 * GH + GH + j)];
          const bool separate = p_.cell == Cell::Gru && c.linear_before_reset && j >= 2 * H;
          bias[static_cast<size_t>(dir * GH + j)] = separate ? wb : wb + rb;
          if (separate) rbh[static_cast<size_t>(dir * H + j - 2 * H)] = rb;
        }
    }
    bias_ = DeviceBuffer(bias.data(), bias.size() * sizeof(float));
    rbh_ = DeviceBuffer(rbh.data(), rbh.size() * sizeof(float));
    if (p_.cell == Cell::Lstm && present(d, in::kP)) {
      const std::vector<float> p = floats_of(*d.inputs[in::kP].constant);
      peep_ = DeviceBuffer(p.data(), p.size() * sizeof(float));
    }
    if (present(d, in::kSeqLens) && d.inputs[in::kSeqLens].constant) {  // fail early, as the CPU kernel
      const TensorData& sl = *d.inputs[in::kSeqLens].constant;
      for (int64_t k = 0; k < sl.numel(); ++k)
        if (sl.as_int64(k) < 0 || sl.as_int64(k) > s.seq)
          throw Error("node " + d.node->label() + ": sequence_lens[" + std::to_string(k) + "] = " +
                      std::to_string(sl.as_int64(k)) + " is outside [0, " + std::to_string(s.seq) + "]");
    }

    // The GEMMs: every row of X against both directions' W at once; each direction's state against its R.
    LtProblem proj;
    proj.dtype = dtype_;
    proj.tf32 = d.options ? d.options->tf32 : true;
    proj.m = s.seq * s.batch;
    proj.n = nd * GH;  // W [dirs, gates * hidden, input] is one [dirs * gates * hidden, input] matrix
    proj.k = s.input;
    proj.trans_b = true;
    proj_ = make_gemm(proj);
    LtProblem rec;
    rec.dtype = dtype_;
    rec.tf32 = false;
    rec.m = s.batch;
    rec.n = p_.hr_cols;
    rec.k = H;
    rec.trans_b = true;
    rec.batch = nd;
    rec.stride_a = s.batch * H;
    rec.stride_b = GH * H;
    rec.stride_y = s.batch * p_.hr_cols;
    rec_ = make_gemm(rec);
    if (two_phase_) {  // (r*h).Rh^T
      rec.n = H;
      rec.stride_b = H * H;
      rec.stride_y = s.batch * H;
      cand_ = make_gemm(rec);
    }

    // Workspace regions (recurrent_cuda.h's Params say what each holds), cuBLASLt's share after them.
    const size_t state = static_cast<size_t>(nd * s.batch * H);
    auto region = [&](size_t bytes) {
      const size_t at = own_bytes_;
      own_bytes_ += align_up(bytes);
      return at;
    };
    xw_at_ = region(static_cast<size_t>(nd * s.seq * s.batch * GH) * elem);
    hr_at_ = region(static_cast<size_t>(nd * s.batch * p_.hr_cols) * elem);
    hgemm_at_ = region(state * elem);
    h_at_ = region(state * sizeof(float));
    if (p_.cell == Cell::Lstm) c_at_ = region(state * sizeof(float));
    if (two_phase_) {
      rh_at_ = region(state * elem);
      hc_at_ = region(state * elem);
    }
    gemm_bytes_ = std::max(proj_->workspace_bytes(), rec_->workspace_bytes());
    if (cand_) gemm_bytes_ = std::max(gemm_bytes_, cand_->workspace_bytes());
  }

  size_t workspace_bytes() const override { return own_bytes_ + gemm_bytes_; }
  bool owns_constant_input(size_t k) const override {
    return k == in::kW || k == in::kR || k == in::kB || (p_.cell == Cell::Lstm && k == in::kP);
  }
  std::string describe() const override {
    return "projection " + proj_->describe() + "; per step " + rec_->describe() +
           (cand_ ? " + " + cand_->describe() : "");
  }

  void enqueue(const std::vector<TensorView>& ins, const std::vector<TensorView>& outs,
               const RunContext& rc) const override {
    if (rc.workspace_bytes < workspace_bytes())
      throw Error("cuda.recurrent: workspace of " + std::to_string(rc.workspace_bytes) + " bytes, needs " +
                  std::to_string(workspace_bytes()));
    auto input = [&](size_t k) -> const void* { return k < ins.size() ? ins[k].data : nullptr; };
    auto output = [&](size_t k) -> void* { return k < outs.size() ? outs[k].data : nullptr; };
    auto* ws = static_cast<unsigned char*>(rc.workspace);
    RunContext gemm_rc = rc;  // cuBLASLt gets the workspace past our regions
    gemm_rc.workspace = ws + own_bytes_;
    gemm_rc.workspace_bytes = rc.workspace_bytes - own_bytes_;

    Params p = p_;
    p.lens = static_cast<const int32_t*>(input(in::kSeqLens));
    p.bias = bias_.as<float>();
    p.rbh = rbh_.as<float>();
    p.peep = peep_.as<float>();
    p.xw = ws + xw_at_;
    p.hr = ws + hr_at_;
    p.h_gemm = ws + hgemm_at_;
    p.h = reinterpret_cast<float*>(ws + h_at_);
    p.c = p_.cell == Cell::Lstm ? reinterpret_cast<float*>(ws + c_at_) : nullptr;
    if (two_phase_) {
      p.rh = ws + rh_at_;
      p.hc = ws + hc_at_;
    }
    p.y = output(0);
    // Steps past a sequence's end are never written: Y is zero there.
    if (p.y && p.lens) KILN_CUDA_CHECK(cudaMemsetAsync(p.y, 0, outs[0].nbytes(), rc.stream));

    launch_init(dtype_, p, input(in::kInitialH), p_.cell == Cell::Lstm ? input(in::kInitialC) : nullptr,
                rc.stream);
    proj_->run(input(in::kX), w_.ptr, nullptr, ws + xw_at_, nullptr, gemm_rc);
    for (int64_t step = 0; step < p_.seq; ++step) {
      rec_->run(p.h_gemm, r_.ptr, nullptr, ws + hr_at_, nullptr, gemm_rc);
      launch_step(dtype_, p, step, 0, rc.stream);
      if (two_phase_) {
        cand_->run(p.rh, r_cand_.ptr, nullptr, ws + hc_at_, nullptr, gemm_rc);
        launch_step(dtype_, p, step, 1, rc.stream);
      }
    }
    void* yh = output(1);
    void* yc = p_.cell == Cell::Lstm ? output(2) : nullptr;
    if (yh || yc) launch_final(dtype_, p, yh, yc, rc.stream);
  }

 private:
  static std::unique_ptr<LtGemm> make_gemm(const LtProblem& p) {
    std::unique_ptr<LtGemm> g = LtGemm::create(p);
    if (!g)
      throw Error("cuda.recurrent: cuBLASLt has no algorithm for " + std::string(dtype_name(p.dtype)) + " m" +
                  std::to_string(p.m) + " n" + std::to_string(p.n) + " k" + std::to_string(p.k));
    return g;
  }

  DType dtype_;
  Params p_;  // everything but the run's pointers
  bool two_phase_ = false;
  DeviceBuffer w_, r_, r_cand_, bias_, rbh_, peep_;
  std::unique_ptr<LtGemm> proj_, rec_, cand_;
  size_t xw_at_ = 0, hr_at_ = 0, hgemm_at_ = 0, h_at_ = 0, c_at_ = 0, rh_at_ = 0, hc_at_ = 0;
  size_t own_bytes_ = 0, gemm_bytes_ = 0;
};

// One CUDA float dtype for X, the weights, the initial states and the outputs; W and R (B, P) constants of
// consistent shapes; sequence_lens int32; every size a GEMM extent can hold; attributes ops/recurrent.h
// accepts (an invalid one is the reference's error to report).
bool supported(const LayerDesc& d) {
  const Family* fam = family_of(d.node->op);
  if (!fam || d.inputs.size() < 3 || d.inputs.size() > static_cast<size_t>(fam->max_inputs)) return false;
  const DType t = d.inputs[in::kX].dtype;
  if (!is_cuda_float(t)) return false;
  for (size_t k = 0; k < d.inputs.size(); ++k) {
    const auto& o = d.inputs[k];
    if (!o.present) continue;
    if (k == in::kSeqLens) {
      if (o.dtype != DType::Int32 || (o.constant && o.constant->dtype() != DType::Int32)) return false;
      continue;
    }
    const bool weight = k == in::kW || k == in::kR || k == in::kB || k == in::kP;
    if (o.dtype != t || (weight && !o.constant) || (o.constant && o.constant->dtype() != t)) return false;
  }
  if (!present(d, in::kX) || !present(d, in::kW) || !present(d, in::kR)) return false;
  for (const auto& o : d.outputs)
    if (o.present && o.dtype != t) return false;
  Config c;
  try {
    c = read_config(*d.node, *fam);
  } catch (const Error&) {
    return false;
  }
  const auto &x = d.inputs[in::kX].dims, &w = d.inputs[in::kW].dims, &r = d.inputs[in::kR].dims;
  if (x.size() != 3 || w.size() != 3 || r.size() != 3) return false;
  const Sizes s = sizes_of(d, c);
  const int64_t nd = c.directions, H = s.hidden, GH = fam->gates * H;
  if (s.seq < 1 || s.batch < 1 || s.input < 1 || H < 1 || (c.hidden >= 0 && c.hidden != H)) return false;
  if (nd * GH > kMaxExtent || s.input > kMaxExtent || s.seq * s.batch > kMaxExtent) return false;
  if (w != std::vector<int64_t>{nd, GH, s.input} || r != std::vector<int64_t>{nd, GH, H}) return false;
  if (present(d, in::kB) && d.inputs[in::kB].dims != std::vector<int64_t>{nd, 2 * GH}) return false;
  if (fam->gates == 4 && present(d, in::kP) && d.inputs[in::kP].dims != std::vector<int64_t>{nd, 3 * H})
    return false;
  if (present(d, in::kSeqLens) && d.inputs[in::kSeqLens].dims != std::vector<int64_t>{s.batch}) return false;
  const std::vector<int64_t> state =
      c.layout == 0 ? std::vector<int64_t>{nd, s.batch, H} : std::vector<int64_t>{s.batch, nd, H};
  for (size_t k : {size_t{in::kInitialH}, size_t{in::kInitialC}})
    if (present(d, k) && (fam->gates == 4 || k == in::kInitialH) && d.inputs[k].dims != state) return false;
  return c.acts.size() <= static_cast<size_t>(kMaxActs);
}

KernelFactory recurrent_factory(const char* op) {
  return {.name = "cuda.recurrent",
          .device = "cuda",
          .op = op,
          .domain = "",
          .priority = 10,
          .supports = supported,
          .create = [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
            return std::make_unique<RecurrentKernel>(d, *family_of(d.node->op));
          }};
}

KILN_REGISTER_KERNEL(recurrent_factory("LSTM"));
KILN_REGISTER_KERNEL(recurrent_factory("GRU"));
KILN_REGISTER_KERNEL(recurrent_factory("RNN"));

}  // namespace
}  // namespace kiln::cuda::recurrent
