// kiln_backend_sweep cases: tensors generated from scalars (Range, EyeLike, ConstantOfShape, the Hann /
// Hamming / Blackman windows), running sums (CumSum), OneHot and ReverseSequence, in float, 16-bit float,
// double and integer dtypes. Everything but the windows (cosines in double, which libraries may round a last
// bit apart) must equal the reference bit for bit: the kernels do the reference's arithmetic in its order.
#include "cases_util.h"

namespace kiln::sweep {
namespace {

const std::vector<DType>& generate_dtypes() {
  static const std::vector<DType> v{DType::Float,  DType::Float16, DType::BFloat16,
                                    DType::Double, DType::Int32,   DType::Int64};
  return v;
}

Case exact(Case c) {
  c.exact = true;
  return c;
}

// ------------------------------------------------------------------------------------------------ Range
std::vector<Case> range_cases(const std::string&, DType dt) {
  auto range = [&](double start, double limit, double delta) {
    return exact(make_case("start " + std::to_string(start) + " limit " + std::to_string(limit) + " delta " +
                               std::to_string(delta),
                           {scalar(dt, start), scalar(dt, limit), scalar(dt, delta)}, {}, 11));
  };
  std::vector<Case> out{range(0, 10, 1), range(3, -7, -2), range(-5, 1000, 3), range(5, 5, 1)};
  if (dtype_is_float(dt)) {
    out.push_back(range(0.25, 7.1, 0.3));
    out.push_back(range(-1.5, 3000.2, 0.37));  // i * delta rounds: a fused multiply-add would differ
    out.push_back(range(10, -2, -0.7));
  } else {
    out.push_back(range(-100000, 100000, 7));
  }
  return out;
}

// ---------------------------------------------------------------------------- EyeLike, ConstantOfShape
std::vector<Case> eye_like_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  for (int64_t k : {int64_t{0}, int64_t{2}, int64_t{-3}, int64_t{9}, int64_t{-20}})
    out.push_back(
        exact(make_case("[5,7] k=" + std::to_string(k), {input(dt, {5, 7})}, attrs({{"k", k}}), 9)));
  out.push_back(exact(make_case("[300,257] k=1", {input(dt, {300, 257})}, attrs({{"k", int64_t{1}}}), 9)));
  for (DType to : {DType::Float, DType::Float16, DType::Int8, DType::Bool, DType::Double})
    out.push_back(exact(make_case(std::string("[4,4] dtype ") + dtype_name(to), {input(dt, {4, 4})},
                                  attrs({{"dtype", static_cast<int64_t>(to)}}), 9)));
  return out;
}

std::vector<Case> constant_of_shape_cases(const std::string&, DType dt) {
  TensorData v(dt, {1});
  std::vector<Case> out{
      exact(make_case("[3,4,5] default 0", {ints({3, 4, 5})}, {}, 9)),
      exact(make_case("[0,4] empty", {ints({0, 4})}, {}, 9)),
  };
  for (auto [dims, value] : {std::pair{std::vector<int64_t>{3, 4, 5}, -2.0}, {{1000, 33}, 3.0}, {{7}, 0.0}}) {
    const Operand s = scalar(dt, value, false);
    out.push_back(exact(make_case(dims_str(dims) + " value " + std::to_string(value), {ints(dims)},
                                  attrs({{"value", *s.value}}), 9)));
  }
  return out;
}

// ------------------------------------------------------------------------------------------- windows
std::vector<Case> window_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  for (int64_t size : {int64_t{1}, int64_t{2}, int64_t{10}, int64_t{1001}})
    for (int64_t periodic : {int64_t{0}, int64_t{1}})
      out.push_back(
          make_case("size " + std::to_string(size) + " periodic " + std::to_string(periodic),
                    {scalar(size % 2 ? DType::Int64 : DType::Int32, static_cast<double>(size))},
                    attrs({{"periodic", periodic}, {"output_datatype", static_cast<int64_t>(dt)}})));
  return out;
}

// ------------------------------------------------------------------------------------------------ CumSum
std::vector<Case> cumsum_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  auto add = [&](std::vector<int64_t> dims, int64_t axis, int64_t exclusive, int64_t reverse) {
    out.push_back(exact(make_case(dims_str(dims) + " axis " + std::to_string(axis) +
                                      (exclusive ? " exclusive" : "") + (reverse ? " reverse" : ""),
                                  {input(dt, dims), scalar(axis % 2 ? DType::Int32 : DType::Int64, axis)},
                                  attrs({{"exclusive", exclusive}, {"reverse", reverse}}), 14)));
  };
  for (int64_t ex : {0, 1})
    for (int64_t rev : {0, 1}) {
      add({3, 5, 7}, 1, ex, rev);
      add({3, 5, 7}, -1, ex, rev);
      add({9}, 0, ex, rev);
    }
  add({6, 4, 300}, 0, 0, 0);
  add({2, 5000}, 1, 1, 0);                        // a long line: the sum grows and rounds at every step
  add({}, 0, 0, 1);                               // a scalar is a one-element vector
  add({4, 0, 3}, 2, 0, 0);                        // empty
  for (int64_t axis : {int64_t{0}, int64_t{-2}})  // the axis as a graph input (device data)
    for (DType at : {DType::Int32, DType::Int64}) {
      const Fill fixed_axis{static_cast<double>(axis), static_cast<double>(axis), false, true};
      out.push_back(exact(make_case("[5,6,7] device axis " + std::to_string(axis) + " " + dtype_name(at),
                                    {input(dt, {5, 6, 7}), input(at, {}, fixed_axis)},
                                    attrs({{"reverse", int64_t{axis == 0}}}), 14)));
    }
  return out;
}

// ------------------------------------------------------------------------------------------------ OneHot
std::vector<Case> onehot_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  const int64_t depth = 6;
  // Whole indices from -depth - 2 to depth + 2: negative ones and ones out of range on both sides.
  const Fill around{-depth - 2.0, depth + 2.0, false, true};
  for (int64_t axis : {int64_t{-1}, int64_t{0}, int64_t{1}})
    out.push_back(exact(make_case("[4,5] depth 6 axis " + std::to_string(axis),
                                  {input(dt, {4, 5}, around), scalar(DType::Int64, depth), input(dt, {2})},
                                  attrs({{"axis", axis}}), 11)));
  out.push_back(exact(make_case(
      "[37,300] depth 6 values float",
      {input(dt, {37, 300}, around), scalar(DType::Float, depth), input(DType::Float, {2})}, {}, 11)));
  if (dtype_is_float(dt))  // fractional indices truncate toward zero
    out.push_back(exact(make_case("[8,9] fractional depth 3",
                                  {input(dt, {8, 9}, {0.1, 3.5}), scalar(dt, 3), input(DType::Int64, {2})},
                                  attrs({{"axis", int64_t{1}}}), 11)));
  return out;
}

// --------------------------------------------------------------------------------------- ReverseSequence
std::vector<Case> reverse_sequence_cases(const std::string&, DType dt) {
  std::vector<Case> out;
  auto add = [&](std::vector<int64_t> dims, int64_t time_axis) {
    const int64_t batch_axis = 1 - time_axis, steps = dims[static_cast<size_t>(time_axis)];
    const Fill lens{0, static_cast<double>(steps), false, true};  // every length in [0, steps]
    out.push_back(
        exact(make_case(dims_str(dims) + " time_axis " + std::to_string(time_axis),
                        {input(dt, dims), input(DType::Int64, {dims[static_cast<size_t>(batch_axis)]}, lens)},
                        attrs({{"time_axis", time_axis}, {"batch_axis", batch_axis}}), 10)));
  };
  add({4, 4}, 0);
  add({4, 4}, 1);
  add({7, 5, 3, 2}, 0);
  add({6, 9, 33}, 1);
  add({50, 8, 130}, 0);
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"Range"}, .dtypes = generate_dtypes(), .cases = range_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"EyeLike"}, .dtypes = generate_dtypes(), .cases = eye_like_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"ConstantOfShape"},
                  .dtypes = generate_dtypes(),
                  .cases = constant_of_shape_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"HannWindow", "HammingWindow", "BlackmanWindow"},
                  .dtypes = generate_dtypes(),
                  .cases = window_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"CumSum"}, .dtypes = generate_dtypes(), .cases = cumsum_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"OneHot"}, .dtypes = generate_dtypes(), .cases = onehot_cases});
KILN_SWEEP_CASES(
    {.domain = "", .ops = {"ReverseSequence"}, .dtypes = generate_dtypes(), .cases = reverse_sequence_cases});

}  // namespace
}  // namespace kiln::sweep
