// kiln_backend_sweep — every registered kernel factory of a device against the reference kernel
// (docs/backend_sweep.md).
//
//   kiln_backend_sweep [--device=cpu|cuda] [--filter=OP] [--perf] [--seed=N] [--threads=N] [--no-tf32]
//                      [--verbose] [--list] [--supports-only]
//
// For each factory in backend::registered_kernels() of the device: the case generator of its op makes
// cases (one node; per dtype a few shapes and attribute variants); each case the factory supports() runs
// through create() (and through every tactic a variant source names) and is compared with the reference.
// One line per (factory, dtype, case). A factory that supports none of its cases, or whose op has no
// generator, fails the sweep: no kernel goes untested. Exit status 1 on any failure.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "device/device_backend.h"
#include "sweep.h"

namespace {

using namespace kiln;
using namespace kiln::sweep;

struct Args {
  std::string device = "cpu", filter;
  bool perf = false, verbose = false, list = false, tf32 = true, supports_only = false;
  uint64_t seed = 20261201;
  int threads = 2;
};

void usage(FILE* f) {
  std::fprintf(
      f,
      "usage: kiln_backend_sweep [--device=cpu|cuda] [--filter=OP] [--perf] [--seed=N] [--threads=N]\n"
      "                          [--no-tf32] [--verbose] [--list] [--supports-only]\n"
      "  --filter=OP  only factories whose op or kernel name contains OP\n"
      "  --perf       time every case (us, GB/s, GFLOP/s)\n"
      "  --seed=N     base of the per-case seeds (each case's seed is printed)\n"
      "  --threads=N  LayerDesc.threads for CPU kernels (default 2)\n"
      "  --no-tf32    CUDA fp32 convolutions in strict fp32 (tolerance 1e-5 instead of 2e-3)\n"
      "  --verbose    also list the cases a kernel does not support\n"
      "  --list       list the device's registered factories and whether a generator covers them\n"
      "  --supports-only  build every case, ask supports() and run the reference, but no kernel: checks\n"
      "               that every factory is exercised by some case without the device (no GPU needed)\n");
}

bool parse(int argc, char** argv, Args& a) {
  for (int k = 1; k < argc; ++k) {
    std::string s = argv[k];
    std::string value;
    auto opt = [&](const char* name) {
      const std::string n = name;
      if (s == n && k + 1 < argc) {
        value = argv[++k];
        return true;
      }
      if (s.rfind(n + "=", 0) == 0) {
        value = s.substr(n.size() + 1);
        return true;
      }
      return false;
    };
    if (opt("--device"))
      a.device = value;
    else if (opt("--filter"))
      a.filter = value;
    else if (opt("--seed"))
      a.seed = std::strtoull(value.c_str(), nullptr, 0);
    else if (opt("--threads"))
      a.threads = std::max(1, std::atoi(value.c_str()));
    else if (s == "--perf")
      a.perf = true;
    else if (s == "--no-tf32")
      a.tf32 = false;
    else if (s == "--verbose" || s == "-v")
      a.verbose = true;
    else if (s == "--list")
      a.list = true;
    else if (s == "--supports-only")
      a.supports_only = true;
    else if (s == "--help" || s == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "kiln_backend_sweep: unknown argument '%s'\n", s.c_str());
      usage(stderr);
      return false;
    }
  }
  return true;
}

// A case's seed: the base seed mixed with the case's identity (FNV-1a), so --filter reproduces it.
uint64_t case_seed(uint64_t base, const std::string& identity) {
  uint64_t h = 1469598103934665603ull ^ base;
  for (unsigned char ch : identity) h = (h ^ ch) * 1099511628211ull;
  return h;
}

std::string op_label(const backend::KernelFactory& f) {
  return f.domain.empty() ? f.op : f.domain + "." + f.op;
}

std::string perf_columns(const Outcome& o, const Built& b, const Case& c) {
  if (o.us <= 0) return "";
  char buf[96];
  const double s = o.us * 1e-6;
  int n =
      std::snprintf(buf, sizeof buf, "  %9.1f us %8.2f GB/s", o.us, static_cast<double>(b.bytes) / s * 1e-9);
  if (c.flops > 0)
    std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), " %9.1f GFLOP/s", c.flops / s * 1e-9);
  return buf;
}

struct Totals {
  int factories = 0, cases = 0, covered = 0, failures = 0, unexercised = 0, skipped_plugins = 0, refused = 0;
  bool stopped = false;             // a fatal device error ended the sweep early
  std::vector<std::string> failed;  // one line each, repeated at the end
};

void record_failure(Totals& t, const std::string& line) {
  std::printf("%s\n", line.c_str());
  t.failed.push_back(line);
  ++t.failures;
}

// One generated case of factory `f`: build the layer, ask supports(), then run it through create() and every
// variant. Returns how many runs it made (0: refused, or the case itself failed).
int sweep_case(const backend::KernelFactory& f, const Case& c, DType dt, const Args& a,
               const Settings& settings, Totals& t, int& refused) {
  const uint64_t seed =
      case_seed(a.seed, f.device + "|" + f.name + "|" + op_label(f) + "|" + dtype_name(dt) + "|" + c.label);
  char head[160];
  std::snprintf(head, sizeof head, "%-22s %-24s %-8s %-46s", f.name.c_str(), op_label(f).c_str(),
                dtype_name(dt), c.label.c_str());
  // First the layer alone (supports() needs no values), then inputs and the reference for a case that runs.
  auto build = [&](bool values, Built& b) {
    try {
      b = build_case(f.op, f.domain, c, seed, a.threads, &settings.options, values);
      return true;
    } catch (const std::exception& e) {
      record_failure(t, std::string("FAIL ") + head + " case error (generator bug): " + e.what());
      return false;
    }
  };
  Built b;
  if (!build(false, b)) return 0;
  bool supported = false;
  try {
    supported = f.supports(b.desc);
  } catch (const std::exception& e) {
    record_failure(t, std::string("FAIL ") + head + " supports() threw: " + e.what());
    return 0;
  }
  if (!supported) {
    ++refused;
    if (a.verbose) std::printf("  -  %s not supported\n", head);
    return 0;
  }
  if (!build(true, b)) return 0;  // the reference runs in --supports-only too: it checks the generator
  if (a.supports_only) {
    std::printf("OK   %s supported\n", head);
    ++t.cases;
    return 1;
  }
  int runs = 0;
  for (const Variant& v : variants_for(f, b.desc)) {
    const Outcome o = a.device == "cuda" ? run_on_cuda(b, v, c, settings) : run_on_cpu(b, v, c, settings);
    ++t.cases;
    ++runs;
    char err[32], seed_hex[24];
    std::snprintf(err, sizeof err, "%.2e", o.err);
    std::snprintf(seed_hex, sizeof seed_hex, "%016llx", static_cast<unsigned long long>(seed));
    const std::string what = v.label.empty() ? o.describe : v.label;
    const std::string line = std::string(o.ok ? "PASS " : "FAIL ") + head + " err " + err + " seed " +
                             seed_hex + (what.empty() ? "" : " [" + what + "]") +
                             (o.ok ? perf_columns(o, b, c) : "  " + o.message);
    if (o.ok)
      std::printf("%s\n", line.c_str());
    else
      record_failure(t, line);
    if (o.fatal) {
      t.stopped = true;
      break;
    }
  }
  return runs;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) {
    if (!s.empty()) s += ',';
    s += x;
  }
  return s.empty() ? std::string("-") : s;
}

void sweep_factory(const backend::KernelFactory& f, const Args& a, const Settings& settings, Totals& t) {
  ++t.factories;
  const std::string who = f.name + " " + op_label(f);
  const std::vector<const Generator*> gens = find_generators(f.domain, f.op);
  if (gens.empty()) {
    if (f.name == "plugin") {
      std::printf("SKIP %-22s %-24s no case generator: a plugin needs one naming its oracle op\n",
                  f.name.c_str(), op_label(f).c_str());
      ++t.skipped_plugins;
      return;
    }
    record_failure(t, "FAIL " + who + ": registered kernel has no case generator (tests/sweep/cases_*.cpp)");
    ++t.unexercised;
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  int ran = 0, refused = 0;
  std::vector<std::string> dtypes_run, dtypes_refused;
  for (const Generator* gen : gens)
    for (DType dt : gen->dtypes) {
      int ran_dtype = 0;
      const std::vector<Case> cases = gen->cases(f.op, dt);
      for (const Case& c : cases) {
        ran_dtype += sweep_case(f, c, dt, a, settings, t, refused);
        if (t.stopped) return;
      }
      ran += ran_dtype;
      if (ran_dtype)
        dtypes_run.push_back(dtype_name(dt));
      else if (!cases.empty())
        dtypes_refused.push_back(dtype_name(dt));
    }
  t.refused += refused;
  t.covered += static_cast<int>(dtypes_run.size());
  std::printf(
      "  == %s: %d cases run (dtypes %s), %d generated cases not supported (dtypes never supported: %s); "
      "%.2f s\n",
      who.c_str(), ran, join(dtypes_run).c_str(), refused, join(dtypes_refused).c_str(),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (ran == 0) {
    record_failure(t, "FAIL " + who + ": registered kernel " + f.name + " for op " + op_label(f) +
                          " never exercised (supports() refused all " + std::to_string(refused) +
                          " generated cases)");
    ++t.unexercised;
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) return 2;
  if (a.device == "cuda" && !a.list && !a.supports_only) {
    const std::string why = cuda_unavailable_reason();
    if (!why.empty()) {
      std::printf("kiln_backend_sweep --device=cuda: skipped: %s\n", why.c_str());
      return 0;
    }
  } else if (a.device != "cpu" && a.device != "cuda") {
    const DeviceBackend* b = find_device_backend(a.device);
    if (!b || !b->host) {
      std::fprintf(stderr, "kiln_backend_sweep: no runner for device '%s' (cpu or cuda)\n", a.device.c_str());
      return 2;
    }
  }
  std::vector<const backend::KernelFactory*> factories;
  for (const backend::KernelFactory* f : backend::registered_kernels()) {
    if (f->device != a.device || f->name == "reference") continue;  // the reference is the oracle
    if (!a.filter.empty() && op_label(*f).find(a.filter) == std::string::npos &&
        f->name.find(a.filter) == std::string::npos)
      continue;
    factories.push_back(f);
  }
  if (a.list) {
    for (const backend::KernelFactory* f : factories)
      std::printf("%-22s %-28s priority %4d  %s\n", f->name.c_str(), op_label(*f).c_str(), f->priority,
                  find_generator(f->domain, f->op) ? "generator" : "NO GENERATOR");
    std::printf("%zu factories on %s\n", factories.size(), a.device.c_str());
    return 0;
  }

  Settings settings;
  settings.perf = a.perf;
  settings.threads = a.threads;
  settings.options.device = a.device;
  settings.options.threads = a.threads;
  settings.options.tf32 = a.tf32;
  std::printf(
      "kiln_backend_sweep --device=%s: %zu registered factories%s, seed %llu, threads %d%s%s\n",
      a.device.c_str(), factories.size(), a.filter.empty() ? "" : (" matching '" + a.filter + "'").c_str(),
      static_cast<unsigned long long>(a.seed), a.threads, a.device == "cuda" && !a.tf32 ? ", no TF32" : "",
      a.supports_only ? "; supports() only, nothing runs" : "");
  const auto t0 = std::chrono::steady_clock::now();
  Totals t;
  for (const backend::KernelFactory* f : factories) {
    sweep_factory(*f, a, settings, t);
    if (t.stopped) {
      std::printf(
          "STOP: the device cannot run anything more after that failure; later factories not swept\n");
      break;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (!t.failed.empty()) {
    std::printf("\nFailures:\n");
    for (const std::string& line : t.failed) std::printf("  %s\n", line.c_str());
  }
  std::printf("\n%d factories, %d cases (kernels x dtypes covered: %d), %d failures", t.factories, t.cases,
              t.covered, t.failures);
  if (t.unexercised) std::printf(" (%d factories never exercised)", t.unexercised);
  if (t.skipped_plugins) std::printf(", %d plugin factories skipped (no generator)", t.skipped_plugins);
  std::printf("; %d generated cases not supported; %.1f s\n", t.refused, secs);
  return t.failures ? 1 : 0;
}
