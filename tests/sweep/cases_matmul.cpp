// kiln_backend_sweep cases: Gemm and MatMul. Gemm: transA/transB, alpha/beta, C absent, a constant row
// vector (the FC bias: cpu.gemm's bias path), a column, a scalar, a full [M, N] input, beta = 0, B constant
// (prepacked) or not, and one FC layer large enough to be threaded. MatMul: 2-D, 1-D on either side, a 2-D
// constant B under batched A (folded into one GEMM), batched with equal and broadcast batch dims, a
// constant batched B, and the PP-OCR recognizer's shapes (token projection, attention).
// For cuda.gemm / cuda.matmul (cuBLASLt) also: every C mode (bias epilogue with a constant or variable row,
// a row with beta != 1 broadcast into Y, a [1, 1] C, a 1-D C that is the whole [1, N]), K == 0, sizes
// whose leading dimensions break fp16's 16-byte alignment (odd M/N/K, both transposes), one tensor-core-sized
// GEMM; 1-D x 1-D, a 1-D A against batched B, a broadcast batch looped as several strided-batched calls that
// each fold into M, and one whose inner run is strided-batched with A broadcast. fp32 cases allow TF32 on
// CUDA (the default build option), as convolutions do.
#include "cases_util.h"

namespace kiln::sweep {
namespace {

using V = std::vector<int64_t>;

std::vector<Case> gemm_cases(const std::string&, DType dt) {
  struct Spec {
    std::string what;
    int64_t m, k, n;
    bool ta = false, tb = false;
    float alpha = 1.f, beta = 1.f;
    V c;  // empty: no C
    bool c_const = true, b_const = true;
  };
  const std::vector<Spec> specs{
      {"plain", 7, 33, 19, false, false, 1.f, 1.f, {}},
      {"FC transB +bias[N]", 2, 300, 50, false, true, 1.f, 1.f, {50}},
      {"transA transB alpha beta C[M,N] var", 6, 21, 11, true, true, 0.5f, 2.f, {6, 11}, false},
      {"C[M,1] const", 5, 16, 9, false, false, 1.f, 0.75f, {5, 1}},
      {"C scalar const", 4, 8, 13, false, true, 1.f, 1.f, {}, true},
      {"alpha C[1,N]", 3, 12, 10, false, false, 1.5f, 1.f, {1, 10}},
      {"beta 0", 3, 12, 10, false, false, 1.f, 0.f, {3, 10}, false},
      {"B variable transA", 9, 14, 6, true, false, 1.f, 1.f, {6}, false, false},
      {"FC 4096->1000 +bias", 1, 4096, 1000, false, true, 1.f, 1.f, {1000}},
      {"row C beta 0.5", 6, 10, 12, false, false, 1.f, 0.5f, {12}},
      {"C[1,1] transA", 7, 9, 5, true, false, 2.f, 1.f, {1, 1}},
      {"odd ld transA transB +bias var", 13, 7, 11, true, true, 0.75f, 1.f, {11}, false},
      {"odd ld transB C[M,N]", 9, 15, 17, false, true, 1.f, -1.f, {9, 17}},
      {"tensor cores +bias", 64, 96, 136, false, true, 1.f, 1.f, {136}},
      {"K 0 C[M,1]", 4, 0, 3, false, false, 1.f, 2.f, {4, 1}},
      {"K 0 no C", 4, 0, 3, false, true, 1.f, 1.f, {}},
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    const V a = s.ta ? V{s.k, s.m} : V{s.m, s.k}, b = s.tb ? V{s.n, s.k} : V{s.k, s.n};
    std::vector<Operand> in{input(dt, a), s.b_const ? weight(dt, b, {0.05, 0.5}) : input(dt, b)};
    const bool scalar_c = s.what == "C scalar const";
    if (!s.c.empty() || scalar_c) in.push_back(s.c_const ? weight(dt, s.c) : input(dt, s.c));
    Attributes at =
        attrs({{"transA", int64_t{s.ta}}, {"transB", int64_t{s.tb}}, {"alpha", s.alpha}, {"beta", s.beta}});
    std::string label = s.what + " a" + dims_str(a) + " b" + dims_str(b);
    if (in.size() > 2) label += " c" + dims_str(s.c);
    Case c = make_case(label, std::move(in), std::move(at), 13);
    c.flops = 2.0 * static_cast<double>(s.m * s.n * s.k);
    c.tf32 = true;
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Case> matmul_cases(const std::string&, DType dt) {
  struct Spec {
    std::string what;
    V a, b;
    bool b_const = false;
  };
  const std::vector<Spec> specs{
      {"2-D", {5, 17}, {17, 9}},
      {"1-D A", {8}, {8, 5}},
      {"1-D B", {2, 6, 8}, {8}},
      {"batched A, const 2-D B", {2, 3, 7, 16}, {16, 10}, true},
      {"batched", {2, 3, 6, 8}, {2, 3, 8, 5}},
      {"broadcast batch", {3, 1, 6, 8}, {1, 4, 8, 5}},
      {"rank 3 vs 2-D var B", {4, 6, 8}, {8, 5}},
      {"const batched B", {4, 6, 8}, {4, 8, 5}, true},
      {"broadcast A to batched B", {6, 8}, {3, 8, 5}},
      {"rec projection", {1, 40, 120}, {120, 360}, true},
      {"rec attention", {1, 8, 40, 15}, {1, 8, 15, 40}},
      {"1-D x 1-D", {13}, {13}},
      {"1-D A, batched B", {7}, {2, 3, 7, 5}},
      {"batched A, 1-D B odd", {3, 5, 9}, {9}},
      {"outer loop, folded inner", {2, 3, 4, 5}, {2, 1, 5, 6}},
      {"outer loop, broadcast A inner", {4, 1, 3, 8}, {4, 5, 8, 2}},
      {"odd ld batched", {3, 7, 13}, {3, 13, 9}},
      {"tensor cores batched", {2, 64, 72}, {2, 72, 40}},
      {"K 0", {2, 4, 0}, {2, 0, 3}},
  };
  std::vector<Case> out;
  for (const Spec& s : specs) {
    Case c = make_case(s.what + " a" + dims_str(s.a) + " b" + dims_str(s.b),
                       {input(dt, s.a), s.b_const ? weight(dt, s.b, {0.05, 0.5}) : input(dt, s.b)}, {}, 13);
    const int64_t k = s.a.back(), n = s.b.size() == 1 ? 1 : s.b.back();
    c.flops = 2.0 * static_cast<double>(std::max(product(s.a) / std::max(k, int64_t{1}), int64_t{1}) * n * k);
    c.tf32 = true;
    out.push_back(std::move(c));
  }
  return out;
}

KILN_SWEEP_CASES({.domain = "", .ops = {"Gemm"}, .dtypes = float_dtypes(), .cases = gemm_cases});
KILN_SWEEP_CASES({.domain = "", .ops = {"MatMul"}, .dtypes = float_dtypes(), .cases = matmul_cases});

}  // namespace
}  // namespace kiln::sweep
