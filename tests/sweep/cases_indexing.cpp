// kiln_backend_sweep cases: indexing and replication — Gather, GatherElements, GatherND, ScatterND,
// ScatterElements / Scatter (each reduction), Expand, Tile, Split, Trilu. Indices are drawn whole within
// their axis, negative ones included, as device inputs (int64 and int32) and as constants; scatter indices
// repeat so the order in which updates land shows. Every dtype class a bit-moving kernel takes (8- to
// 64-bit); outputs must equal the reference's bit for bit.
#include <algorithm>

#include "cases_util.h"

namespace kiln::sweep {
namespace {

const std::vector<DType>& data_dtypes() {
  static const std::vector<DType> v{DType::Float, DType::Float16, DType::BFloat16, DType::Double,
                                    DType::Int32, DType::Int64,   DType::Bool};
  return v;
}

// Whole numbers in [-n, n): every valid index of an axis of size n, from either end.
Fill within(int64_t n) {
  return {static_cast<double>(-n), static_cast<double>(n - 1), false, true};
}

Operand indices(const std::vector<int64_t>& dims, int64_t n, DType t = DType::Int64) {
  return input(t, dims, within(n));
}

std::vector<Case> exact_all(std::vector<Case> cases) {
  for (Case& c : cases) c.exact = true;
  return cases;
}

// ---------------------------------------------------------------------------------------------- Gather
std::vector<Case> gather_cases(const std::string& op, DType dt) {
  auto axis = [](int64_t a) { return attrs({{"axis", a}}); };
  const std::vector<int64_t> x{5, 7, 9};
  if (op == "Gather")
    return exact_all({
        make_case("[5,7,9] axis 0 idx[3,4]", {input(dt, x), indices({3, 4}, 5)}, axis(0)),
        make_case("[5,7,9] axis 1 idx int32 [6]", {input(dt, x), indices({6}, 7, DType::Int32)}, axis(1)),
        make_case("[5,7,9] axis -1 idx[2,3]", {input(dt, x), indices({2, 3}, 9)}, axis(-1)),
        make_case("[5,7,9] axis 1 scalar idx", {input(dt, x), indices({}, 7)}, axis(1)),
        make_case("[5,7,9] axis 2 const idx[4]", {input(dt, x), weight(DType::Int64, {4}, within(9))},
                  axis(2)),
        make_case("[5,7,9] axis 1 empty idx[0]", {input(dt, x), indices({0}, 7)}, axis(1)),
        make_case("embedding [1000,256] idx[4,128]", {input(dt, {1000, 256}), indices({4, 128}, 1000)},
                  axis(0)),
    });
  if (op == "GatherElements")
    return exact_all({
        make_case("[4,5,6] axis 1 idx[4,3,6]", {input(dt, {4, 5, 6}), indices({4, 3, 6}, 5)}, axis(1)),
        make_case("[4,5,6] axis 0 idx[2,5,6]", {input(dt, {4, 5, 6}), indices({2, 5, 6}, 4)}, axis(0)),
        make_case("[4,5,6] axis -1 idx int32 [4,5,2]",
                  {input(dt, {4, 5, 6}), indices({4, 5, 2}, 6, DType::Int32)}, axis(-1)),
        make_case("[4,5,6] axis 2 smaller idx[3,2,9]", {input(dt, {4, 5, 6}), indices({3, 2, 9}, 6)},
                  axis(2)),
        make_case("[64,300] axis 1 idx[64,200]", {input(dt, {64, 300}), indices({64, 200}, 300)}, axis(1)),
    });
  // GatherND: one range for every tuple entry, that of the smallest axis they index.
  auto nd = [&](std::string label, std::vector<int64_t> data, std::vector<int64_t> idx, int64_t n, int64_t b,
                DType it = DType::Int64) {
    return make_case(std::move(label), {input(dt, data), indices(idx, n, it)}, attrs({{"batch_dims", b}}));
  };
  return exact_all({
      nd("[4,5,6] idx[3,2]", {4, 5, 6}, {3, 2}, 4, 0),
      nd("[4,5,6] idx int32 [2,3,3] (elements)", {4, 5, 6}, {2, 3, 3}, 4, 0, DType::Int32),
      nd("[4,5,6] idx[5,1]", {4, 5, 6}, {5, 1}, 4, 0),
      nd("batch_dims 1 [2,5,6] idx[2,4,1]", {2, 5, 6}, {2, 4, 1}, 5, 1),
      nd("batch_dims 2 [2,3,5,4] idx[2,3,2,1]", {2, 3, 5, 4}, {2, 3, 2, 1}, 5, 2),
      nd("rows [100,64] idx[50,1]", {100, 64}, {50, 1}, 100, 0),
  });
}

// -------------------------------------------------------------------------------------------- Scatter
std::vector<Case> scatter_cases(const std::string& op, DType dt) {
  std::vector<std::string> reductions{"none"};
  if (op != "Scatter") reductions = {"none", "add", "mul", "max", "min"};
  const int64_t opset = op == "Scatter" ? 10 : 18;
  std::vector<Case> out;
  for (const std::string& red : reductions) {
    auto one = [&](std::string label, std::vector<Operand> in, int64_t axis = 0) {
      Attributes a = attrs({{"reduction", red}});
      if (op == "Scatter") a = {};
      if (op != "ScatterND") a.set("axis", axis);
      out.push_back(make_case(label + " " + red, std::move(in), std::move(a), opset));
    };
    if (op == "ScatterND") {
      // Repeated tuples (few distinct values), slices of every size, the two-pass path of none included.
      one("[4,5,6] idx[3,1] upd[3,5,6]", {input(dt, {4, 5, 6}), indices({3, 1}, 4), input(dt, {3, 5, 6})});
      one("[4,5,6] idx[10,3] upd[10]", {input(dt, {4, 5, 6}), indices({10, 3}, 4), input(dt, {10})});
      one("[4,5,6] idx int32 [2,3,2] upd[2,3,6]",
          {input(dt, {4, 5, 6}), indices({2, 3, 2}, 4, DType::Int32), input(dt, {2, 3, 6})});
      one("[64,256] idx[200,1] upd[200,256]",
          {input(dt, {64, 256}), indices({200, 1}, 64), input(dt, {200, 256})});
      one("[8,9] const idx[3,2] upd[3]",
          {input(dt, {8, 9}), weight(DType::Int64, {3, 2}, within(8)), input(dt, {3})});
    } else {
      one("[4,5,6] axis 1 idx[4,3,6]", {input(dt, {4, 5, 6}), indices({4, 3, 6}, 5), input(dt, {4, 3, 6})},
          1);
      one("[4,5,6] axis 0 idx[6,5,6]", {input(dt, {4, 5, 6}), indices({6, 5, 6}, 4), input(dt, {6, 5, 6})},
          0);
      one("[4,5,6] axis -1 idx int32 [2,5,3]",
          {input(dt, {4, 5, 6}), indices({2, 5, 3}, 6, DType::Int32), input(dt, {2, 5, 3})}, -1);
      one("[32,100] axis 1 idx[30,150]",
          {input(dt, {32, 100}), indices({30, 150}, 100), input(dt, {30, 150})}, 1);
    }
  }
  return exact_all(out);
}

// ------------------------------------------------------------------------------------------ Expand, Tile
std::vector<Case> replicate_cases(const std::string& op, DType dt) {
  struct R {
    std::vector<int64_t> x, arg;
  };
  std::vector<R> specs;
  if (op == "Expand")
    specs = {{{3, 1}, {2, 3, 4}}, {{1, 5}, {4, 1}},     {{2, 1, 6}, {2, 7, 6}}, {{5}, {3, 5}},
             {{3, 4}, {3, 4}},    {{64, 1}, {64, 128}}, {{1}, {1, 64, 128}},    {{2, 1, 1, 3}, {2, 4, 5, 3}},
             {{0, 1}, {0, 5}}};
  else
    specs = {{{2, 3}, {2, 3}},   {{2, 3, 4}, {1, 2, 1}}, {{1, 5}, {4, 1}}, {{3, 1, 2}, {1, 4, 2}},
             {{64, 32}, {2, 2}}, {{2, 0, 3}, {2, 2, 2}}, {{2, 3}, {1, 1}}, {{1, 1}, {3, 7}}};
  std::vector<Case> out;
  for (const R& s : specs)
    out.push_back(make_case(dims_str(s.x) + (op == "Expand" ? " to " : " repeats ") + dims_str(s.arg),
                            {input(dt, s.x), ints(s.arg)}));
  return exact_all(out);
}

// ----------------------------------------------------------------------------------------------- Split
std::vector<Case> split_cases(const std::string&, DType dt) {
  auto split = [&](std::string label, std::vector<Operand> in, size_t outputs, Attributes a, int64_t opset) {
    Case c = make_case(std::move(label), std::move(in), std::move(a), opset);
    c.outputs = outputs;
    return c;
  };
  auto axis = [](int64_t a) { return attrs({{"axis", a}}); };
  return exact_all({
      split("[6,4] axis 0 [2,4]", {input(dt, {6, 4}), ints({2, 4})}, 2, axis(0), 13),
      split("[3,10,5] axis 1 [3,3,4]", {input(dt, {3, 10, 5}), ints({3, 3, 4})}, 3, axis(1), 13),
      split("[3,8] axis -1 equal", {input(dt, {3, 8})}, 2, axis(-1), 13),
      split("[2,7,3] axis 1 num_outputs 3", {input(dt, {2, 7, 3})}, 3,
            attrs({{"axis", int64_t{1}}, {"num_outputs", int64_t{3}}}), 18),
      split("opset11 [2,3,4] axis 1 attr [1,2]", {input(dt, {2, 3, 4})}, 2,
            attrs({{"axis", int64_t{1}}, {"split", std::vector<int64_t>{1, 2}}}), 11),
      split("[1,64,64,64] axis 1 [32,32]", {input(dt, {1, 64, 64, 64}), ints({32, 32})}, 2, axis(1), 13),
      split("[4,4] axis 0 [0,4]", {input(dt, {4, 4}), ints({0, 4})}, 2, axis(0), 13),
  });
}

// ----------------------------------------------------------------------------------------------- Trilu
std::vector<Case> trilu_cases(const std::string&, DType dt) {
  auto upper = [](int64_t u) { return attrs({{"upper", u}}); };
  return exact_all({
      make_case("[5,7] upper", {input(dt, {5, 7})}),
      make_case("[2,5,7] lower k=1", {input(dt, {2, 5, 7}), scalar(DType::Int64, 1)}, upper(0)),
      make_case("[3,4,4] upper k=-2", {input(dt, {3, 4, 4}), scalar(DType::Int64, -2)}, upper(1)),
      make_case("[6,3] lower k=-1 on the device",
                {input(dt, {6, 3}), input(DType::Int64, {}, Fill{-1, -1, false, true})}, upper(0)),
      make_case("[2,3,64,96] upper k=5", {input(dt, {2, 3, 64, 96}), scalar(DType::Int64, 5)}),
      make_case("[4,6] lower k=100", {input(dt, {4, 6}), scalar(DType::Int64, 100)}, upper(0)),
  });
}

KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Gather", "GatherElements", "GatherND"},
                  .dtypes = data_dtypes(),
                  .cases = gather_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"ScatterND", "ScatterElements", "Scatter"},
                  .dtypes = data_dtypes(),
                  .cases = scatter_cases});
KILN_SWEEP_CASES(
    {.domain = "", .ops = {"Expand", "Tile"}, .dtypes = data_dtypes(), .cases = replicate_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Split"}, .dtypes = data_dtypes(), .cases = split_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Trilu"}, .dtypes = data_dtypes(), .cases = trilu_cases});

}  // namespace
}  // namespace kiln::sweep
