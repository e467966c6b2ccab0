// kiln_backend_sweep on a host device: the kernel runs on host views of the case's inputs (constants as the
// CPU executor passes them) into NaN-poisoned outputs, and must match the reference and leave its inputs as
// they were.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "sweep.h"

namespace kiln::sweep {
namespace {

backend::TensorView view_of(const TensorData& t) {
  if (t.empty_type()) return {};
  return {t.dtype(), t.dims(), const_cast<void*>(t.raw())};
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Outcome run_on_cpu(const Built& b, const Variant& v, const Case& c, const Settings& s) {
  Outcome o;
  std::unique_ptr<backend::Kernel> kernel;
  try {
    kernel = v.create(b.desc);
    if (!kernel) throw Error("create() returned no kernel");
    o.describe = kernel->describe();
  } catch (const std::exception& e) {
    o.message = std::string("create() threw: ") + e.what();
    return o;
  }
  std::vector<TensorData> before;  // a kernel must not write to its inputs
  for (const TensorData& t : b.inputs) before.push_back(t.empty_type() ? TensorData() : t.clone());
  std::vector<TensorData> outputs;
  std::vector<backend::TensorView> in_views, out_views;
  for (const TensorData& t : b.inputs) in_views.push_back(view_of(t));
  for (const TensorData& want : b.expected) {
    TensorData t(want.dtype(), want.dims());
    std::memset(t.raw(), 0xFF, t.nbytes());  // NaN in every float dtype: an element never written shows
    outputs.push_back(t);
    out_views.push_back(view_of(t));
  }
  try {
    kernel->run(in_views, out_views);
  } catch (const std::exception& e) {
    o.message = std::string("run() threw: ") + e.what();
    return o;
  }
  for (size_t k = 0; k < b.inputs.size(); ++k)
    if (!b.inputs[k].empty_type() && !b.inputs[k].same_values(before[k])) {
      o.message = "the kernel wrote to its input " + std::to_string(k);
      return o;
    }
  for (size_t k = 0; k < outputs.size(); ++k) {
    double err = 0;
    const std::string why =
        compare(outputs[k], b.expected[k], c.exact, tolerance(outputs[k].dtype(), "cpu", c, s.options), err);
    o.err = std::isnan(err) || std::isnan(o.err) ? NAN : std::max(o.err, err);
    if (!why.empty()) {
      o.message = (outputs.size() > 1 ? "output " + std::to_string(k) + ": " : "") + why;
      return o;
    }
  }
  o.ok = true;
  if (s.perf) {
    kernel->run(in_views, out_views);  // warm
    const double t0 = seconds_now();
    int reps = 0;
    do {
      kernel->run(in_views, out_views);
      ++reps;
    } while (seconds_now() - t0 < 0.05 && reps < 1000);
    o.us = (seconds_now() - t0) / reps * 1e6;
  }
  return o;
}

}  // namespace kiln::sweep
