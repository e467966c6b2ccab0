// The recurrent layers LSTM, GRU and RNN: their attributes, read once for the reference kernel
// (ops/recurrent.cpp) and the CPU kernel (backends/cpu/recurrent_cpu.cpp).
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "ops/activation.h"

namespace kiln {
class Node;
}

namespace kiln::ops::recurrent {

struct Family {
  int gates;                    // stacked gate blocks in W and R (LSTM i o f c, GRU z r h, RNN one)
  int acts;                     // activation functions per direction
  const char* default_acts[3];  // the spec's defaults
  int max_inputs, max_outputs;
};
inline constexpr Family kLstm{4, 3, {"Sigmoid", "Tanh", "Tanh"}, 8, 3};
inline constexpr Family kGru{3, 2, {"Sigmoid", "Tanh", ""}, 6, 2};
inline constexpr Family kRnn{1, 1, {"Tanh", "", ""}, 6, 2};
// nullptr for an op that is none of the three.
const Family* family_of(const std::string& op);
enum Input : size_t { kX, kW, kR, kB, kSeqLens, kInitialH, kInitialC, kP };

// The activations the recurrent spec names that ops/activation.h's table does not have; they live here
// because only these layers use them. Everything the table has (Relu, Tanh, Sigmoid, LeakyRelu, ...) is
// evaluated by its formula there.
enum class LocalAct { None, Affine, ScaledTanh, ThresholdedRelu, Softsign };

struct Act {
  Activation table = Activation::None;
  LocalAct local = LocalAct::None;
  double alpha = 0, beta = 0;
  template <class Math = StdMath, class T>
  T operator()(T x) const {
    const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
    switch (local) {
      case LocalAct::Affine:
        return a * x + b;
      case LocalAct::ScaledTanh:
        return a * Math::tanh(b * x);
      case LocalAct::ThresholdedRelu:
        return x > a ? x : T(0);
      case LocalAct::Softsign:
        return x / (T(1) + std::fabs(x));
      case LocalAct::None:
        break;
    }
    return apply<Math>(table, x, a, b);
  }
};

struct Config {
  int64_t directions = 1;
  bool bidirectional = false, reverse = false;
  int64_t hidden = -1;  // -1: no attribute (taken from R)
  int64_t layout = 0;
  double clip = 0;  // 0: no clipping
  bool linear_before_reset = false, input_forget = false;
  std::vector<Act> acts;  // fam.acts per direction, forward first
};

// The node's attributes, validated; throws kiln::Error naming the attribute. Activation names match
// case-insensitively (as ONNX Runtime does); activation_alpha/beta values are consumed in order by the
// activations that take them, the ONNX operators' defaults filling in the rest; a bidirectional layer may
// give one list for both directions.
Config read_config(const Node& node, const Family& fam);

}  // namespace kiln::ops::recurrent
