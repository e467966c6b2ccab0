// Det: the determinant of each square matrix in the last two dims of X [..., M, M], by LU decomposition with
// partial pivoting in double (the sign flips with every row swap), rounded once into X's float dtype.
#include <cmath>
#include <utility>

#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_det(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  if (dt != DType::Undefined && !dtype_is_float(dt))
    ctx.fail(std::string("X must be a float tensor, not ") + dtype_name(dt));
  auto x = in_shape(ctx, 0);
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  if (x->size() < 2) ctx.fail("X must be [..., M, M] (rank >= 2), got " + to_string(*x));
  const Dim &rows = (*x)[x->size() - 2], &cols = (*x)[x->size() - 1];
  if (rows.is_static() && cols.is_static() && rows.value != cols.value)
    ctx.fail("X's matrices must be square, got " + to_string(*x));
  set_out(ctx, 0, dt, Shape(x->begin(), x->end() - 2));
}

// Determinant of the m x m row-major matrix `a` (destroyed).
double determinant(double* a, int64_t m) {
  double det = 1;
  for (int64_t k = 0; k < m; ++k) {
    int64_t pivot = k;
    for (int64_t r = k + 1; r < m; ++r)
      if (std::fabs(a[r * m + k]) > std::fabs(a[pivot * m + k])) pivot = r;
    if (a[pivot * m + k] == 0) return 0;  // singular
    if (pivot != k) {
      for (int64_t c = 0; c < m; ++c) std::swap(a[k * m + c], a[pivot * m + c]);
      det = -det;
    }
    det *= a[k * m + k];
    for (int64_t r = k + 1; r < m; ++r) {
      const double f = a[r * m + k] / a[k * m + k];
      for (int64_t c = k; c < m; ++c) a[r * m + c] -= f * a[k * m + c];
    }
  }
  return det;
}

void det_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() < 2 || x.dims()[x.rank() - 1] != x.dims()[x.rank() - 2]) ctx.fail("X must be [..., M, M]");
  const int64_t m = x.dims().back();
  const std::vector<int64_t> batch_dims(x.dims().begin(), x.dims().end() - 2);
  std::vector<double> v = load_real(ctx, x), det(static_cast<size_t>(numel(batch_dims)));
  for (size_t b = 0; b < det.size(); ++b) det[b] = determinant(v.data() + static_cast<int64_t>(b) * m * m, m);
  ctx.out[0] = store_real(ctx, x.dtype(), batch_dims, det);
}

KILN_REGISTER_OP({.op = "Det", .since_opset = 11, .infer = infer_det, .reference = det_kernel});

}  // namespace
}  // namespace kiln::ops
