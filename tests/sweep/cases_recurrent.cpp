// kiln_backend_sweep cases: the recurrent layers LSTM, GRU and RNN. Each direction, layout 0 and 1, batches
// of 1 and 3 (so the batch-first indexing is exercised), odd sizes, constant sequence_lens (one of them 0),
// initial states, peepholes, clip, input_forget, linear_before_reset, activations from ops/activation.h's
// table and the recurrent-only ones with alpha/beta, and 1 to 3 outputs; sequence_lens as a graph input and
// B absent (cuda.recurrent). Weights are small so the gates do not all saturate (a saturated gate would hide a
// wrong product).
#include "cases_util.h"

namespace kiln::sweep {
namespace {

const Fill kSmall{0.05, 0.6};

struct Spec {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0;
  std::string direction = "forward";
  int64_t layout = 0;
  bool seq_lens = false, initial = false, peepholes = false;
  bool runtime_lens = false;  // sequence_lens as a graph input (device data on CUDA), not a constant
  bool bias = true;
  Attributes extra = {};
  size_t outputs = 2;
};

Case recurrent_case(const std::string& op, DType dt, const Spec& s) {
  const int64_t gates = op == "LSTM" ? 4 : op == "GRU" ? 3 : 1, nd = s.direction == "bidirectional" ? 2 : 1;
  const int64_t gh = gates * s.hidden;
  const std::vector<int64_t> x =
      s.layout == 0 ? std::vector{s.seq, s.batch, s.input} : std::vector{s.batch, s.seq, s.input};
  const std::vector<int64_t> state =
      s.layout == 0 ? std::vector{nd, s.batch, s.hidden} : std::vector{s.batch, nd, s.hidden};
  std::vector<Operand> in{input(dt, x), weight(dt, {nd, gh, s.input}, kSmall),
                          weight(dt, {nd, gh, s.hidden}, kSmall)};
  const bool more = s.seq_lens || s.runtime_lens || s.initial || s.peepholes;
  if (s.bias || more) in.push_back(s.bias ? weight(dt, {nd, 2 * gh}, kSmall) : absent());
  if (s.runtime_lens) {  // lengths drawn from [0, seq]
    in.push_back(input(DType::Int32, {s.batch}, Fill{0, static_cast<double>(s.seq), false, true}));
  } else if (more) {
    std::vector<int32_t> lens(static_cast<size_t>(s.batch), static_cast<int32_t>(s.seq));
    if (s.batch > 2) lens[1] = 0, lens[2] = static_cast<int32_t>(s.seq / 2);
    in.push_back(s.seq_lens ? fixed(TensorData::from_vector(DType::Int32, {s.batch}, lens)) : absent());
  }
  if (s.initial || s.peepholes) in.push_back(s.initial ? input(dt, state) : absent());
  if (op == "LSTM" && (s.initial || s.peepholes)) in.push_back(s.initial ? input(dt, state) : absent());
  if (op == "LSTM" && s.peepholes) in.push_back(weight(dt, {nd, 3 * s.hidden}, kSmall));
  Attributes a = s.extra;
  a.set("hidden_size", s.hidden);
  a.set("direction", s.direction);
  if (s.layout) a.set("layout", s.layout);
  std::string label = std::to_string(s.seq) + "x" + std::to_string(s.batch) + "x" + std::to_string(s.input) +
                      " h" + std::to_string(s.hidden) + " " + s.direction + (s.layout ? " layout=1" : "");
  for (const auto& [name, attr] : s.extra.items()) label += " " + name;
  if (s.seq_lens) label += " seq_lens";
  if (s.runtime_lens) label += " seq_lens input";
  if (!s.bias) label += " no B";
  if (s.initial) label += " initial";
  if (s.peepholes && op == "LSTM") label += " P";
  Case c = make_case(label, std::move(in), std::move(a), 14);
  c.outputs = std::min<size_t>(s.outputs, op == "LSTM" ? 3 : 2);
  c.tf32 = true;  // cuda.recurrent's input projection X.W^T runs on TF32 tensor cores when allowed
  c.flops = 2.0 * static_cast<double>(nd * s.seq * s.batch * gh * (s.input + s.hidden));
  return c;
}

std::vector<Case> recurrent_cases(const std::string& op, DType dt) {
  const bool lstm = op == "LSTM";
  const std::vector<std::string> acts = lstm ? std::vector<std::string>{"HardSigmoid", "ScaledTanh", "Affine"}
                                        : op == "GRU" ? std::vector<std::string>{"Softsign", "LeakyRelu"}
                                                      : std::vector<std::string>{"ThresholdedRelu"};
  std::vector<Spec> specs{
      {.seq = 5, .batch = 1, .input = 7, .hidden = 9, .outputs = 3},
      {.seq = 6,
       .batch = 3,
       .input = 5,
       .hidden = 4,
       .direction = "reverse",
       .seq_lens = true,
       .initial = true},
      {.seq = 7,
       .batch = 3,
       .input = 6,
       .hidden = 5,
       .direction = "bidirectional",
       .layout = 1,
       .seq_lens = true,
       .initial = true,
       .peepholes = true,
       .outputs = 3},
      {.seq = 4, .batch = 2, .input = 3, .hidden = 6, .extra = attrs({{"clip", 0.5f}}), .outputs = 1},
      {.seq = 4,
       .batch = 3,
       .input = 4,
       .hidden = 3,
       .direction = "bidirectional",
       .extra = attrs({{"activations", acts},
                       {"activation_alpha", std::vector<float>{0.4f, 0.9f}},
                       {"activation_beta", std::vector<float>{0.3f, 0.6f}}})},
      {.seq = 40, .batch = 1, .input = 64, .hidden = 48, .direction = "bidirectional", .layout = 1},
      // cuda.recurrent: lengths from device data, several blocks of gate threads per step, no B.
      {.seq = 9,
       .batch = 8,
       .input = 5,
       .hidden = 40,
       .direction = "bidirectional",
       .initial = true,
       .runtime_lens = true,
       .outputs = 3},
      {.seq = 6,
       .batch = 5,
       .input = 4,
       .hidden = 7,
       .direction = "reverse",
       .layout = 1,
       .peepholes = true,
       .runtime_lens = true,
       .outputs = 3},
      {.seq = 3, .batch = 2, .input = 4, .hidden = 5, .bias = false, .outputs = 3},
  };
  if (lstm)
    specs.push_back({.seq = 5,
                     .batch = 2,
                     .input = 3,
                     .hidden = 4,
                     .initial = true,
                     .extra = attrs({{"input_forget", int64_t{1}}}),
                     .outputs = 3});
  if (op == "GRU") {
    specs.push_back({.seq = 5,
                     .batch = 3,
                     .input = 3,
                     .hidden = 4,
                     .direction = "bidirectional",
                     .seq_lens = true,
                     .initial = true,
                     .extra = attrs({{"linear_before_reset", int64_t{1}}})});
    specs.push_back({.seq = 4,
                     .batch = 2,
                     .input = 5,
                     .hidden = 3,
                     .extra = attrs({{"linear_before_reset", int64_t{1}}, {"clip", 0.4f}})});
  }
  std::vector<Case> out;
  for (const Spec& s : specs) out.push_back(recurrent_case(op, dt, s));
  return out;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"LSTM", "GRU", "RNN"}, .dtypes = float_dtypes(), .cases = recurrent_cases});

}  // namespace
}  // namespace kiln::sweep
