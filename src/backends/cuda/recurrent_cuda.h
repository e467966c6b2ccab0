// kiln — cuda.recurrent (LSTM, GRU, RNN), internal to its two files: recurrent_cuda.cpp (the layer read at
// create time, weights uploaded, the GEMMs of each time step) and recurrent_cuda.cu (the gate kernels that
// run between those GEMMs). Compiled with the host compiler and with nvcc (C++17).
#pragma once
#include <cstdint>

#include "backends/cuda/cuda_common.h"

namespace kiln::cuda::recurrent {

enum class Cell : int { Lstm, Gru, Rnn };

// One activation of the layer's list: ops::Activation's value, or ops::recurrent::LocalAct's for the
// recurrent-only ones (Affine, ScaledTanh, ...), with its parameters.
struct DeviceAct {
  int table = 0;
  int local = 0;
  float alpha = 0.f, beta = 0.f;
};
constexpr int kMaxActs = 6;  // LSTM's three per direction, two directions

// What the gate kernels read and write. Element type T (the layer's dtype) for what the GEMMs read or
// write, float for the states and the constants folded at create time. Row-major throughout; per-direction
// blocks first.
struct Params {
  Cell cell = Cell::Lstm;
  int64_t seq = 0, batch = 0, hidden = 0, directions = 1;
  bool reverse = false;      // direction "reverse" (direction 1 of a bidirectional layer is always backward)
  bool batch_first = false;  // layout 1: X [batch, seq, input], Y [batch, seq, dirs, hidden], states
                             // [batch, dirs, hidden]
  bool input_forget = false, linear_before_reset = false;
  float clip = 0.f;  // 0: none
  int acts_per_dir = 0;
  DeviceAct acts[kMaxActs];

  const int32_t* lens = nullptr;  // [batch] on the device; nullptr: every sequence is `seq` steps
  const float* bias = nullptr;    // [dirs][gates * hidden]: Wb + Rb (GRU with linear_before_reset: Wbh
                                  // alone for the candidate gate)
  const float* rbh = nullptr;     // [dirs][hidden]: GRU linear_before_reset's Rbh (scaled by r)
  const float* peep = nullptr;    // [dirs][3 * hidden]: LSTM peepholes i o f; nullptr: none
  const void* xw = nullptr;       // [seq * batch][dirs][gates * hidden] T: X.W^T, rows in X's order
  const void* hr = nullptr;       // [dirs][batch][hr_cols] T: h.R^T of the gates R's first hr_cols rows
  int64_t hr_cols = 0;            // gates * hidden; GRU without linear_before_reset: 2 * hidden (z, r)
  const void* hc = nullptr;       // GRU without linear_before_reset: [dirs][batch][hidden] T: (r*h).Rh^T
  float* h = nullptr;             // [dirs][batch][hidden]: the hidden state
  float* c = nullptr;             // [dirs][batch][hidden]: LSTM's cell state
  void* h_gemm = nullptr;         // [dirs][batch][hidden] T: the hidden state as the next GEMM reads it
  void* rh = nullptr;             // GRU without linear_before_reset: [dirs][batch][hidden] T: r * h
  void* y = nullptr;              // Y, or nullptr when the node has no Y
};

// States from initial_h / initial_c (nullptr: zeros), in the layer's layout.
void launch_init(DType dtype, const Params& p, const void* h0, const void* c0, cudaStream_t stream);
// The gates of time step `step` (0-based, in processing order) for every direction and batch entry whose
// sequence is longer than `step`. GRU without linear_before_reset runs in two phases around the second GEMM:
// phase 0 writes r * h into p.rh, phase 1 the rest. Every other cell: phase 0 only.
void launch_step(DType dtype, const Params& p, int64_t step, int phase, cudaStream_t stream);
// Y_h / Y_c (each may be nullptr) from the final states; zeros for a sequence of length 0.
void launch_final(DType dtype, const Params& p, void* yh, void* yc, cudaStream_t stream);

}  // namespace kiln::cuda::recurrent
