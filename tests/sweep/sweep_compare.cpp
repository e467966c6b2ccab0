// kiln_backend_sweep: how a kernel's output is judged against the reference's — relative L2 within a
// tolerance per dtype and device, no NaN where the reference has none, and bit equality for data movement.
#include <cmath>
#include <cstring>

#include "sweep.h"

namespace kiln::sweep {
namespace {

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

double tolerance(DType dtype, const std::string& device, const Case& c, const BuildOptions& options) {
  if (c.exact || !dtype_is_float(dtype)) return 0;
  const bool cuda = device == "cuda";
  switch (dtype) {
    case DType::Float16:
      return cuda ? 5e-3 : 2e-3;
    case DType::BFloat16:
      return 1e-2;
    default:
      // TF32 keeps 10 mantissa bits of each product's operands: ~1e-3 relative per term.
      if (cuda && c.tf32 && options.tf32) return 2e-3;
      return 1e-5;
  }
}

std::string compare(const TensorData& got, const TensorData& want, bool exact, double tol, double& err) {
  err = 0;
  if (got.dtype() != want.dtype())
    return std::string("dtype ") + dtype_name(got.dtype()) + ", the reference's " + dtype_name(want.dtype());
  if (got.dims() != want.dims())
    return "shape " + dims_str(got.dims()) + ", the reference's " + dims_str(want.dims());
  const int64_t n = want.numel();
  const size_t es = dtype_size(want.dtype());
  const bool floating = dtype_is_float(want.dtype());
  if (exact || !floating) {
    const auto* g = static_cast<const unsigned char*>(got.raw());
    const auto* w = static_cast<const unsigned char*>(want.raw());
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; ++i)
      if (std::memcmp(g + i * es, w + i * es, es) != 0 && bad++ == 0) first = i;
    if (!bad) return "";
    err = INFINITY;
    return std::to_string(bad) + "/" + std::to_string(n) + " elements differ (exact); first at " +
           std::to_string(first) + ": got " + fmt(got.as_double(first)) + ", expected " +
           fmt(want.as_double(first));
  }
  double num = 0, den = 0;
  int64_t nan_extra = 0, nan_missing = 0, inf_bad = 0, first_nan = -1, first_inf = -1;
  for (int64_t i = 0; i < n; ++i) {
    const double a = got.as_double(i), b = want.as_double(i);
    if (std::isnan(b) || std::isnan(a)) {
      if (std::isnan(a) && !std::isnan(b) && nan_extra++ == 0) first_nan = i;
      if (!std::isnan(a) && std::isnan(b)) ++nan_missing;
      continue;
    }
    if (std::isinf(a) || std::isinf(b)) {
      if (a != b && inf_bad++ == 0) first_inf = i;
      continue;
    }
    num += (a - b) * (a - b);
    den += b * b;
  }
  err = std::sqrt(num / std::max(den, 1e-30));
  if (nan_extra) {
    err = NAN;
    return std::to_string(nan_extra) + "/" + std::to_string(n) +
           " NaN where the reference has none (first at " + std::to_string(first_nan) + ", expected " +
           fmt(want.as_double(first_nan)) + ")";
  }
  if (nan_missing) return std::to_string(nan_missing) + " finite values where the reference has NaN";
  if (inf_bad)
    return std::to_string(inf_bad) + " infinities differ (first at " + std::to_string(first_inf) + ": got " +
           fmt(got.as_double(first_inf)) + ", expected " + fmt(want.as_double(first_inf)) + ")";
  if (!(err <= tol)) return "rel L2 " + fmt(err) + " > " + fmt(tol);
  return "";
}

}  // namespace kiln::sweep
