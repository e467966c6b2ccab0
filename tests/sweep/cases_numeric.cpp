// kiln_backend_sweep cases for the generic numeric CUDA kernels (numeric_*_cuda.cu): the dtypes the float
// and int32/int64 generators of the same ops leave out — bool, int8, int16, the unsigned integers, float64 —
// and Cast/CastLike between every pair of numeric dtypes, Pow with mixed base/exponent dtypes, BitShift, and
// Clip with min/max as graph inputs, constants or absent. Integer operands are small whole numbers, divisors
// are non-zero, and Pow results stay inside the base's range (a float out of an integer's range is undefined
// in C++, so the reference has no defined answer there).
#include "cases_util.h"

namespace kiln::sweep {
namespace {

const std::vector<DType>& numeric_dtypes() {
  static const std::vector<DType> v{DType::Bool,   DType::Int8,    DType::Int16,    DType::Int32,
                                    DType::Int64,  DType::UInt8,   DType::UInt16,   DType::UInt32,
                                    DType::UInt64, DType::Float16, DType::BFloat16, DType::Float,
                                    DType::Double};
  return v;
}
// The integers other generators leave out, and float64.
const std::vector<DType>& extra_dtypes() {
  static const std::vector<DType> v{DType::Int8,   DType::Int16,  DType::UInt8, DType::UInt16,
                                    DType::UInt32, DType::UInt64, DType::Double};
  return v;
}

bool is_unsigned(DType t) {
  return t == DType::UInt8 || t == DType::UInt16 || t == DType::UInt32 || t == DType::UInt64;
}

// Small whole numbers (lo..hi, clamped at 0 for unsigned types), or the float default for float dtypes.
Fill whole(DType t, double lo, double hi) {
  if (dtype_is_float(t) && t != DType::Double) return {};
  if (t == DType::Double) return {lo, hi, false, false};
  return {is_unsigned(t) && lo < 0 ? 0 : lo, hi, false, true};
}

// Two-operand broadcast shapes: same, scalar constant, variable [1], general, rank 6, empty, large.
std::vector<Case> two_operand(DType dt, Fill fa, Fill fb, Attributes a = {}) {
  auto two = [&](std::string label, Operand x, Operand y) { return make_case(std::move(label), {x, y}, a); };
  const std::vector<int64_t> s{2, 3, 17, 19}, big{2, 16, 64, 64};
  return {
      two("same " + dims_str(s), input(dt, s, fa), input(dt, s, fb)),
      two("scalar const b " + dims_str(s), input(dt, s, fa), weight(dt, {}, fb)),
      two("scalar var a[1] " + dims_str(s), input(dt, {1}, fa), input(dt, s, fb)),
      two("general [4,1,5]x[3,1]", input(dt, {4, 1, 5}, fa), input(dt, {3, 1}, fb)),
      two("rank6 [2,1,3,1,2,5]x[1,2,1,4,1,5]", input(dt, {2, 1, 3, 1, 2, 5}, fa),
          input(dt, {1, 2, 1, 4, 1, 5}, fb)),
      two("empty [0,3]x[3]", input(dt, {0, 3}, fa), input(dt, {3}, fb)),
      two("channel [1,16,1,1] " + dims_str(big), input(dt, big, fa), input(dt, {1, 16, 1, 1}, fb)),
  };
}

// ----------------------------------------------------------------------------------------- Cast
std::vector<Case> cast_cases(const std::string& op, DType from) {
  std::vector<Case> out;
  const std::vector<int64_t> x{2, 3, 17, 19};
  for (DType to : numeric_dtypes()) {
    // Floats into integers: fractional values inside every target's range (truncation shows); negative
    // ones only into signed targets. Integers and bool: the sweep's default wide fill (wrapping shows).
    Fill f{};
    if (dtype_is_float(from) && !dtype_is_float(to) && to != DType::Bool)
      f = is_unsigned(to) ? Fill{0.0, 100.0, true} : Fill{0.0, 100.0, false};
    auto make = [&](const std::string& what, Fill fill, Operand like) {
      const std::string label = what + dtype_name(to) + " " + dims_str(x);
      Case c = op == "Cast" ? make_case("to " + label, {input(from, x, fill)},
                                        attrs({{"to", static_cast<int64_t>(to)}}))
                            : make_case("like " + label, {input(from, x, fill), std::move(like)});
      c.exact = true;  // one conversion, rounding to nearest even, as the reference
      return c;
    };
    out.push_back(make("", f, weight(to, {1})));
    if (op == "CastLike") out.push_back(make("graph input ", f, input(to, {1})));
    if (dtype_is_float(from) && dtype_is_float(to))  // subnormals and past float16's range
      out.push_back(make("wide range ", Fill{1e-7, 1e5}, weight(to, {1})));
  }
  return out;
}

// -------------------------------------------------------------------------------------- binary
std::vector<Case> arith_cases(const std::string& op, DType dt) {
  const bool divide = op == "Div" || op == "Mod";
  if (dt == DType::Bool && divide) return {};  // division by false: the reference fails
  const Fill a = whole(dt, -20, 20);
  const Fill b = divide ? (dtype_is_float(dt) ? Fill{0.5, 2.0, false} : whole(dt, 1, 9)) : whole(dt, -9, 9);
  std::vector<Case> out;
  for (int64_t fmod : op == "Mod" ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{-1}) {
    Attributes at = fmod < 0 ? Attributes{} : attrs({{"fmod", fmod}});
    for (Case& c : two_operand(dt, a, b, at)) {
      if (fmod >= 0) c.label += fmod ? " fmod" : " sign of divisor";
      out.push_back(std::move(c));
    }
    if (divide && !is_unsigned(dt) && dt != DType::Bool)  // a negative divisor: the sign rules
      out.push_back(
          make_case("divisor -3", {input(dt, {3, 7}, a), weight(dt, {}, Fill{-3, -3, false, true})}, at));
  }
  return out;
}

std::vector<Case> shift_cases(const std::string&, DType dt) {
  const int64_t bits = static_cast<int64_t>(dtype_size(dt)) * 8;
  std::vector<Case> out;
  for (const char* dir : {"LEFT", "RIGHT"})
    for (Case& c : two_operand(dt, whole(dt, 0, 250), whole(dt, 0, static_cast<double>(bits + 2)),
                               attrs({{"direction", std::string(dir)}}))) {
      c.label += std::string(" ") + dir;
      out.push_back(std::move(c));
    }
  return out;
}

// Max, Min, Sum: one input, two broadcasting, four, eight.
std::vector<Case> variadic_cases(const std::string&, DType dt) {
  const Fill f = whole(dt, -20, 20);
  const std::vector<int64_t> x{2, 3, 17, 19};
  std::vector<Case> out{
      make_case("one " + dims_str(x), {input(dt, x, f)}),
      make_case(
          "four broadcast [2,1,5,1],[1,3,1,7],[7],[]",
          {input(dt, {2, 1, 5, 1}, f), input(dt, {1, 3, 1, 7}, f), input(dt, {7}, f), input(dt, {}, f)}),
      make_case("eight [3,5,7]", std::vector<Operand>(8, input(dt, {3, 5, 7}, f))),
  };
  for (Case& c : two_operand(dt, f, f)) out.push_back(std::move(c));
  return out;
}

// ----------------------------------------------------------------------------------------- Pow
std::vector<Case> pow_cases(const std::string&, DType dt) {
  const std::vector<int64_t> x{2, 3, 17, 19};
  std::vector<Case> out;
  auto pow = [&](std::string label, Operand base, Operand e) {
    out.push_back(make_case(std::move(label), {std::move(base), std::move(e)}));
  };
  if (dtype_is_float(dt)) {
    const Fill base{0.5, 2.0, true};
    for (DType e : {DType::Int32, DType::Int64, DType::UInt32, DType::UInt64})
      pow(std::string("exponent ") + dtype_name(e), input(dt, x, base),
          input(e, {17, 19}, whole(e, is_unsigned(e) ? 0 : -3, 5)));
    if (dt == DType::Double) {
      pow("same dtype", input(dt, x, base), input(dt, x, Fill{0.2, 2.0}));
      pow("exponent float", input(dt, x, base), input(DType::Float, {19}, Fill{0.2, 2.0}));
    }
  } else {
    // |base| <= 3, exponent 0..3: results within int8 (27).
    const Fill base = whole(dt, -3, 3), e_int{0, 3, false, true};
    pow("same dtype", input(dt, x, base), input(dt, x, e_int));
    for (DType e : {DType::Int64, DType::Float, DType::Double})
      pow(std::string("whole exponent ") + dtype_name(e), input(dt, x, base), input(e, {17, 19}, e_int));
    // A fractional exponent: a non-negative base (a negative one would give NaN).
    pow("float exponent", input(dt, x, whole(dt, 0, 3)), input(DType::Float, {19}, Fill{0.2, 2.0, true}));
    pow("general [2,1,5,1]x[1,3,1,7]", input(dt, {2, 1, 5, 1}, base),
        input(DType::Int32, {1, 3, 1, 7}, e_int));
  }
  return out;
}

// ---------------------------------------------------------------------------------------- unary
std::vector<Case> unary_cases(const std::string& op, DType dt) {
  const bool floats_only = op != "Neg" && op != "Abs" && op != "Sign" && op != "Relu";
  if (floats_only && dt != DType::Double) return {};
  const bool positive = op == "Sqrt" || op == "Log";
  const Fill f = dt == DType::Double ? Fill{0.1, 3.0, positive} : whole(dt, -50, 50);
  return {make_case("[2,3,17,19]", {input(dt, {2, 3, 17, 19}, f)}),
          make_case("[1030]", {input(dt, {1030}, f)}), make_case("empty [0,4]", {input(dt, {0, 4}, f)})};
}

std::vector<Case> clip_cases(const std::string&, DType dt) {
  const std::vector<int64_t> x{2, 3, 17, 19};
  const Fill f = whole(dt, -50, 50), lo = whole(dt, -30, -5), hi = whole(dt, 5, 30);
  const Fill lo_u = whole(dt, 5, 20), hi_u = whole(dt, 25, 45);  // unsigned: bounds inside 0..50
  const Fill& l = is_unsigned(dt) ? lo_u : lo;
  const Fill& h = is_unsigned(dt) ? hi_u : hi;
  std::vector<Case> out{
      make_case("min max graph inputs", {input(dt, x, f), input(dt, {}, l), input(dt, {}, h)}),
      make_case("min max constants", {input(dt, x, f), weight(dt, {}, l), weight(dt, {1}, h)}),
      make_case("max only", {input(dt, x, f), absent(), input(dt, {}, h)}),
      make_case("min only", {input(dt, x, f), input(dt, {1}, l)}),
      make_case("none", {input(dt, x, f)}),
  };
  if (dtype_is_float(dt))
    out.push_back(
        make_case("opset 6 attributes", {input(dt, x, f)}, attrs({{"min", -0.5f}, {"max", 0.75f}}), 6));
  return out;
}

std::vector<DType> with_bool(std::vector<DType> v) {
  v.insert(v.begin(), DType::Bool);
  return v;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"Cast", "CastLike"}, .dtypes = numeric_dtypes(), .cases = cast_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Add", "Sub", "Mul", "Div"},
                  .dtypes = with_bool(extra_dtypes()),
                  .cases = arith_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Mod"},
                  .dtypes = {DType::Int8, DType::Int16, DType::UInt8, DType::UInt16, DType::UInt32,
                             DType::UInt64},
                  .cases = arith_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"BitShift"},
                  .dtypes = {DType::UInt8, DType::UInt16, DType::UInt32, DType::UInt64},
                  .cases = shift_cases});
KILN_SWEEP_CASES(
    {.domain = "", .ops = {"Max", "Min"}, .dtypes = with_bool(extra_dtypes()), .cases = variadic_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"Sum"}, .dtypes = numeric_dtypes(), .cases = variadic_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Pow"},
                  .dtypes = {DType::Int8, DType::Int16, DType::Int32, DType::Int64, DType::UInt8,
                             DType::UInt16, DType::UInt32, DType::UInt64, DType::Float16, DType::BFloat16,
                             DType::Float, DType::Double},
                  .cases = pow_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Neg", "Abs", "Sign", "Relu", "Sqrt", "Exp", "Log", "Ceil", "Floor", "Round",
                          "Reciprocal"},
                  .dtypes = {DType::Int8, DType::Int16, DType::Int32, DType::Int64, DType::UInt8,
                             DType::UInt16, DType::UInt32, DType::UInt64, DType::Double},
                  .cases = unary_cases});
KILN_SWEEP_CASES({.domain = "",
                  .ops = {"Clip"},
                  .dtypes = {DType::Int8, DType::Int16, DType::Int32, DType::Int64, DType::UInt8,
                             DType::UInt16, DType::UInt32, DType::UInt64, DType::Float16, DType::Float,
                             DType::Double},
                  .cases = clip_cases});

}  // namespace
}  // namespace kiln::sweep
