// Dynamic engines: profile checks at run time, and plans specialized per input shape (dynamic_shapes.h).
#include "runtime/dynamic_shapes.h"

#include <algorithm>

namespace kiln {
namespace {

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s;
  for (int64_t v : dims) {
    if (!s.empty()) s += 'x';
    s += std::to_string(v);
  }
  return s;
}

BuildOptions with_shapes(const BuildOptions& base, const ShapeMap& dims) {
  BuildOptions o = base;
  for (const auto& [name, d] : dims) o.input_shapes[name] = d;
  return o;
}

}  // namespace

std::string shape_key(const ShapeMap& dims) {
  std::string key;
  for (const auto& [name, d] : dims) key += name + ":" + dims_text(d) + ";";
  return key;
}

size_t find_profile(const std::vector<OptimizationProfile>& profiles, const ShapeMap& dims) {
  for (size_t p = 0; p < profiles.size(); ++p) {
    bool inside = true;
    for (const auto& [name, range] : profiles[p]) {
      auto it = dims.find(name);
      if (it == dims.end() || it->second.size() != range.min.size()) {
        inside = false;
        break;
      }
      for (size_t k = 0; k < range.min.size() && inside; ++k)
        inside = range.min[k] <= it->second[k] && it->second[k] <= range.max[k];
    }
    if (inside) return p;
  }
  // Name the first input and dim that no profile allows (or, when each fits some profile but no profile fits
  // them all, the combination).
  for (const auto& [name, d] : dims) {
    for (size_t k = 0; k < d.size(); ++k) {
      std::string ranges;
      bool allowed = false;
      for (size_t p = 0; p < profiles.size(); ++p) {
        auto it = profiles[p].find(name);
        if (it == profiles[p].end() || it->second.min.size() != d.size()) continue;
        allowed = allowed || (it->second.min[k] <= d[k] && d[k] <= it->second.max[k]);
        ranges += std::string(ranges.empty() ? "" : ", ") + "profile " + std::to_string(p) + ": " +
                  std::to_string(it->second.min[k]) + ".." + std::to_string(it->second.max[k]);
      }
      if (!allowed && !ranges.empty())
        throw Error("input '" + name + "' dim " + std::to_string(k) + " = " + std::to_string(d[k]) +
                    " is outside every profile (" + ranges + ")");
    }
  }
  throw Error("input shapes " + shape_key(dims) + " are not inside any one profile");
}

void plan_primary(DynamicShapes& d, const KernelHints* recorded) {
  const ShapeMap opt = profile_point(d.profiles.at(0), &ShapeRange::opt);
  build_log(d.options, "profile 0: planning at the opt shape " + shape_key(opt));
  d.primary = build_plan(*d.generic, with_shapes(d.options, opt), recorded);
  d.primary_key = shape_key(opt);
  d.hints = kernel_hints(*d.primary);
  d.max_arena_bytes = std::max(d.max_arena_bytes, d.primary->arena_bytes);
  d.max_total_bytes = std::max(d.max_total_bytes, d.primary->total_activation_bytes);
}

std::shared_ptr<EnginePlan> build_dynamic(const Graph& source, const BuildOptions& options,
                                          DynamicShapes& d) {
  check_profiles(source, options);
  d.profiles = options.profiles;
  d.options = options;
  d.options.profiles.clear();
  d.generic = generic_graph(source, d.options);
  d.options.input_shapes.clear();  // generic_graph applied them
  plan_primary(d, nullptr);
  for (size_t p = 0; p < d.profiles.size(); ++p)
    for (auto point : {&ShapeRange::min, &ShapeRange::opt, &ShapeRange::max}) {
      const ShapeMap dims = profile_point(d.profiles[p], point);
      if (shape_key(dims) == d.primary_key) continue;
      build_log(options, "profile " + std::to_string(p) + ": checking " + shape_key(dims));
      std::shared_ptr<EnginePlan> plan = specialized_plan(d, dims);
      if (point != &ShapeRange::max) continue;
      d.max_arena_bytes = std::max(d.max_arena_bytes, plan->arena_bytes);
      d.max_total_bytes = std::max(d.max_total_bytes, plan->total_activation_bytes);
    }
  d.options.log = nullptr;  // plans made later, at run time, are not build progress
  return d.primary;
}

std::shared_ptr<EnginePlan> specialized_plan(DynamicShapes& d, const ShapeMap& dims) {
  const std::string key = shape_key(dims);
  if (key == d.primary_key) return d.primary;
  std::lock_guard<std::mutex> lock(d.mutex);
  for (auto it = d.plans.begin(); it != d.plans.end(); ++it)
    if (it->first == key) {
      d.plans.splice(d.plans.begin(), d.plans, it);  // most recent first
      return d.plans.front().second;
    }
  // Planned under the lock: contexts asking for the same new shape wait for one plan instead of each making
  // their own.
  std::shared_ptr<EnginePlan> plan = build_plan(*d.generic, with_shapes(d.options, dims), &d.hints);
  d.plans.emplace_front(key, plan);
  if (d.plans.size() > kMaxSpecializedPlans) d.plans.pop_back();  // contexts running it keep their copy
  return plan;
}

}  // namespace kiln
