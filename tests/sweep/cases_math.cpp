// kiln_backend_sweep cases: Einsum, Det, DFT, STFT and MelWeightMatrix, in float, 16-bit float and double
// (Einsum and MelWeightMatrix also in integers). Einsum: matrix products, transposes, sums to a vector and to
// a scalar, diagonals (a repeated letter, with and without "..."), the implicit output (no "->"), ellipsis
// broadcast, three operands, a long reduction, an empty output and an empty reduction. Det: single and
// batched matrices from 1x1 up, pivoting (random values), singular matrices, 0x0 and many small matrices.
// DFT: every axis, forward and inverse, real and complex, one-sided, dft_length padding and truncating, the
// axis as opset 20's input. STFT: frame_length with and without a window, two-sided complex signals, one
// frame covering the signal, many frames. MelWeightMatrix: the ONNX test's parameters and larger ones.
// The scalars the CUDA kernels read on the device (dft_length, frame_step, frame_length, MelWeightMatrix's)
// are constants here: inference needs them for a static output shape, and the kernels read them from device
// memory either way.
#include "cases_util.h"

namespace kiln::sweep {
namespace {

const std::vector<DType>& real_dtypes() {
  static const std::vector<DType> v{DType::Float, DType::Float16, DType::BFloat16, DType::Double};
  return v;
}
const std::vector<DType>& real_and_int_dtypes() {
  static const std::vector<DType> v{DType::Float,  DType::Float16, DType::BFloat16,
                                    DType::Double, DType::Int32,   DType::Int64};
  return v;
}
bool is_half(DType dt) {
  return dt == DType::Float16 || dt == DType::BFloat16;
}

// ------------------------------------------------------------------------------------------------ Einsum
std::vector<Case> einsum_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  auto add = [&](const std::string& eq, std::vector<std::vector<int64_t>> shapes, Fill fill = {}) {
    std::vector<Operand> ins;
    std::string label = eq;
    for (auto& s : shapes) {
      label.append(1, ' ').append(dims_str(s));
      ins.push_back(input(dt, std::move(s), fill));
    }
    out.push_back(make_case(label, std::move(ins), attrs({{"equation", eq}}), 12));
  };
  add("bij, bjk -> bik", {{5, 2, 3}, {5, 3, 4}});
  add("ij->ji", {{3, 4}});
  add("ij->ji", {{300, 257}});  // many blocks
  add("ij->i", {{3, 4}});
  add("i,i", {{5}, {5}});  // a scalar output
  add("ijk->", {{4, 5, 6}});
  add("...ii ->...i", {{3, 5, 5}});
  add("ii", {{6, 6}});             // the trace: a repeated letter is summed
  add("ij,jk", {{4, 3}, {3, 5}});  // implicit output: "ik"
  add("a...b,b->a...", {{3, 2, 4, 5}, {5}});
  add("...ij,...jk->...ik", {{2, 1, 3, 4}, {3, 4, 5}});  // ellipsis dims broadcast
  add("ij,jk,kl->il", {{3, 4}, {4, 5}, {5, 2}});
  add("ik,kj->ij", {{7, 1000}, {1000, 9}}, {0.1, 1.0});  // a long reduction
  add("bii->bi", {{2, 7, 7}});
  add("ij->i", {{0, 4}});  // empty output
  add("ij->i", {{3, 0}});  // empty reduction: zeros
  add("i,j->ij", {{6}, {1}});
  return out;
}

// --------------------------------------------------------------------------------------------------- Det
std::vector<Case> det_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  auto add = [&](std::vector<int64_t> dims, Fill fill = {}, const std::string& what = "") {
    out.push_back(make_case(dims_str(dims) + what, {input(dt, dims, fill)}, {}, 11));
  };
  add({2, 2});
  add({3, 2, 2});
  add({1, 1});
  add({4, 3, 3});
  add({2, 3, 6, 6});
  add({300, 4, 4});                                // many matrices: several blocks
  add({2, 0, 0});                                  // 0x0: determinant 1
  add({0, 3, 3});                                  // no matrices
  add({3, 4, 4}, {-1, 1, false, true}, " whole");  // small whole numbers: zero pivots, singular matrices
  add({2, 3, 3}, {0, 0, false, true}, " zeros");   // singular at the first column
  if (!is_half(dt)) add({2, 20, 20});              // determinants past float16's range
  return out;
}

// --------------------------------------------------------------------------------------------------- DFT
std::vector<Case> dft_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  auto add = [&](std::vector<int64_t> dims, int64_t axis, int64_t onesided, int64_t inverse,
                 std::optional<Operand> length = std::nullopt, const std::string& what = "") {
    std::vector<Operand> ins{input(dt, dims)};
    if (length) ins.push_back(*length);
    out.push_back(make_case(dims_str(dims) + " axis " + std::to_string(axis) + (onesided ? " onesided" : "") +
                                (inverse ? " inverse" : "") + what,
                            std::move(ins),
                            attrs({{"axis", axis}, {"onesided", onesided}, {"inverse", inverse}}), 17));
  };
  add({1, 10, 10, 1}, 1, 0, 0);
  add({1, 10, 10, 1}, 2, 0, 0);
  add({1, 10, 10, 2}, 1, 0, 1);
  add({1, 10, 10, 2}, -2, 0, 0);
  add({8, 3, 1}, 0, 0, 1);
  add({2, 9, 3, 1}, 1, 1, 0);  // one-sided, odd length
  add({2, 8, 2}, 1, 1, 0);     // one-sided, complex input
  add({3, 300, 2}, 1, 0, 0);   // a long transform, several blocks
  add({2, 10, 1}, 1, 0, 0, scalar(DType::Int64, 16), " dft_length 16 (padded)");
  add({2, 10, 2}, 1, 0, 1, scalar(DType::Int32, 7), " dft_length 7 (truncated)");
  add({3, 12, 4, 1}, 1, 1, 0, scalar(DType::Int32, 15, false), " dft_length 15");
  // Opset 20: the axis is input 2 (default -2).
  for (std::optional<int64_t> axis : {std::optional<int64_t>{}, std::optional<int64_t>{0}})
    out.push_back(make_case(std::string("[6,5,1] opset 20 axis ") + (axis ? "0" : "default"),
                            {input(dt, {6, 5, 1}), absent(), axis ? scalar(DType::Int64, *axis) : absent()},
                            attrs({{"inverse", int64_t{0}}}), 20));
  return out;
}

// -------------------------------------------------------------------------------------------------- STFT
std::vector<Case> stft_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  // frame_step, then a window of `window` samples (0: none) and frame_length (0: none).
  auto add = [&](std::vector<int64_t> signal, int64_t step, int64_t window, int64_t frame, int64_t onesided,
                 DType scalar_type = DType::Int64) {
    std::vector<Operand> ins{input(dt, signal), scalar(scalar_type, static_cast<double>(step))};
    ins.push_back(window ? input(dt, {window}) : absent());
    if (frame) ins.push_back(scalar(scalar_type, static_cast<double>(frame)));
    out.push_back(make_case(dims_str(signal) + " step " + std::to_string(step) + " window " +
                                std::to_string(window) + " frame " + std::to_string(frame) +
                                (onesided ? " onesided" : ""),
                            std::move(ins), attrs({{"onesided", onesided}}), 17));
  };
  add({1, 128, 1}, 8, 0, 16, 1);  // the ONNX tests' shapes
  add({1, 128, 1}, 8, 16, 0, 1);
  add({3, 100, 1}, 3, 10, 10, 0, DType::Int32);
  add({2, 100, 2}, 7, 9, 0, 0);    // complex, odd frame
  add({2, 16, 1}, 5, 0, 16, 1);    // one frame is the whole signal
  add({2, 1000, 1}, 7, 64, 0, 1);  // many frames, several blocks
  return out;
}

// ------------------------------------------------------------------------------------------ MelWeightMatrix
std::vector<Case> mel_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  auto add = [&](int64_t mels, int64_t dft_length, int64_t rate, double lo, double hi, DType ints,
                 DType reals) {
    out.push_back(
        make_case("mels " + std::to_string(mels) + " dft_length " + std::to_string(dft_length) + " rate " +
                      std::to_string(rate) + " edges " + std::to_string(lo) + ".." + std::to_string(hi) +
                      " " + dtype_name(ints) + "/" + dtype_name(reals),
                  {scalar(ints, static_cast<double>(mels)), scalar(ints, static_cast<double>(dft_length)),
                   scalar(ints, static_cast<double>(rate)), scalar(reals, lo), scalar(reals, hi)},
                  attrs({{"output_datatype", static_cast<int64_t>(dt)}}), 17));
  };
  add(8, 16, 8192, 0, 4096, DType::Int64, DType::Float);  // the ONNX test's parameters
  add(40, 512, 16000, 20, 8000, DType::Int32, DType::Float);
  add(10, 63, 22050, 100.5, 5000, DType::Int64, DType::Double);
  add(128, 1024, 16000, 0, 8000, DType::Int32, DType::Float16);  // many blocks
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"Einsum"}, .dtypes = real_and_int_dtypes(), .cases = einsum_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Det"}, .dtypes = real_dtypes(), .cases = det_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"DFT"}, .dtypes = real_dtypes(), .cases = dft_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"STFT"}, .dtypes = real_dtypes(), .cases = stft_cases});
KILN_SWEEP_CASES(
    {.domain = "", .ops = {"MelWeightMatrix"}, .dtypes = real_and_int_dtypes(), .cases = mel_cases});

}  // namespace
}  // namespace kiln::sweep
