// `kiln exec` — build (or load) an engine, run it on given or random inputs and time it, like trtexec.
//
//   kiln exec --onnx=model.onnx --shapes=input:1x3x192x640 --saveEngine=model.kiln
//   kiln exec --loadEngine=model.kiln --loadInputs=input:x.npy --saveOutputs=out/ --dumpProfile
//
// Flag names and the performance summary's wording follow trtexec so scripts written for it carry over.
// On CPU an inference is one synchronous ExecutionContext::run(): no transfers and no separate enqueue, so
// latency, enqueue time and compute time are the same measurement. On CUDA, H2D / GPU Compute / D2H are device
// event times of each run and Latency is the host's end-to-end time of run().
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "commands.h"
#include "kiln/engine.h"
#include "kiln/error.h"
#include "kiln/onnx.h"
#include "kiln/plugin.h"
#include "kiln/tensor_io.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct ExecArgs {
  std::string onnx, load_engine, save_engine, shapes, load_inputs, save_outputs, export_times, export_profile;
  std::vector<std::string> plugins, skip_rewrites;
  std::vector<std::string> min_shapes, opt_shapes, max_shapes;  // the k-th of each makes profile k
  std::string device = "cpu";
  int iterations = 10;
  double warm_up_ms = 200;
  double duration_s = 3;
  int threads = 0;
  bool dump_profile = false;
  bool verbose = false;
  bool fp16 = false, bf16 = false, tf32 = true, use_cuda_graph = true, no_data_transfers = false;
  bool allow_host_fallback = false;
  std::string timing_cache;
};

// "name:value[,name:value]". Names may themselves hold ':' (TF-style "x:0"), so the split point is the
// last ':' whose left side is a known name, else `fallback_last ? last : first` ':'. trtexec's optional
// quotes around names ('x':...) are dropped.
std::vector<std::pair<std::string, std::string>> parse_pairs(const std::string& flag, const std::string& spec,
                                                             const std::set<std::string>& names, bool fallback_last) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(spec);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    size_t split = fallback_last ? item.rfind(':') : item.find(':');
    for (size_t k = item.find(':'); k != std::string::npos; k = item.find(':', k + 1))
      if (names.count(item.substr(0, k))) split = k;
    if (split == std::string::npos || split == 0 || split + 1 == item.size())
      throw Error(flag + ": expected name:value, got '" + printable(item) + "'");
    std::string name = item.substr(0, split);
    if (name.size() >= 2 && name.front() == '\'' && name.back() == '\'') name = name.substr(1, name.size() - 2);
    for (const auto& [seen, value] : out)
      if (seen == name) throw Error(flag + ": input '" + printable(name) + "' is given twice");
    out.emplace_back(name, item.substr(split + 1));
  }
  return out;
}

// "1x3x192x640": every dim a decimal number; an empty dim ("1x3x", "x3", "1xx3") is an error, and so is a shape
// whose element count overflows.
std::vector<int64_t> parse_dims(const std::string& name, const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error("--shapes: input '" + printable(name) + "': bad shape '" + printable(text) + "' (" + why +
                 "; expected e.g. 1x3x192x640)");
  };
  std::vector<int64_t> dims;
  size_t begin = 0;
  while (true) {
    const size_t end = std::min(text.find('x', begin), text.size());
    const std::string d = text.substr(begin, end - begin);
    if (d.empty() || d.find_first_not_of("0123456789") != std::string::npos || d.size() > 15)
      throw bad(d.empty() ? "empty dimension" : "'" + printable(d) + "' is not a dimension");
    dims.push_back(std::stoll(d));
    if (end == text.size()) break;
    begin = end + 1;
  }
  if (!checked_numel(dims)) throw bad("its element count overflows 64 bits");
  return dims;
}

std::string joined(const std::set<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// --minShapes/--optShapes/--maxShapes: the k-th occurrence of each flag makes optimization profile k, and the
// three must name the same inputs.
std::vector<OptimizationProfile> parse_profiles(const ExecArgs& a, const std::set<std::string>& names) {
  const size_t n = a.opt_shapes.size();
  if (a.min_shapes.size() != n || a.max_shapes.size() != n)
    throw Error("--minShapes, --optShapes and --maxShapes must be given together, once per profile (got " +
                std::to_string(a.min_shapes.size()) + ", " + std::to_string(n) + ", " +
                std::to_string(a.max_shapes.size()) + ")");
  std::vector<OptimizationProfile> profiles(n);
  for (size_t k = 0; k < n; ++k) {
    const std::pair<const char*, const std::string*> flags[] = {
        {"--minShapes", &a.min_shapes[k]}, {"--optShapes", &a.opt_shapes[k]}, {"--maxShapes", &a.max_shapes[k]}};
    std::vector<int64_t> ShapeRange::*points[] = {&ShapeRange::min, &ShapeRange::opt, &ShapeRange::max};
    for (int f = 0; f < 3; ++f)
      for (const auto& [name, text] : parse_pairs(flags[f].first, *flags[f].second, names, true)) {
        if (!names.count(name))
          throw Error(std::string(flags[f].first) + ": no input '" + printable(name) + "' (inputs: " + joined(names) + ")");
        if (f > 0 && !profiles[k].count(name))
          throw Error(std::string(flags[f].first) + ": input '" + printable(name) + "' has no --minShapes in profile " +
                      std::to_string(k));
        profiles[k][name].*points[f] = parse_dims(name, text);
      }
    for (const auto& [name, range] : profiles[k])
      if (range.opt.empty() || range.max.empty())
        throw Error("profile " + std::to_string(k) + ": input '" + printable(name) + "' needs --minShapes, --optShapes and --maxShapes");
  }
  return profiles;
}

std::string dims_str(const std::vector<int64_t>& dims) { return to_string(make_shape(dims)); }

// Uniform [-1, 1) for floats; integers and bools get 0 or 1, which stays a valid index, axis or count for
// the shape-like inputs integer tensors usually are.
TensorData random_input(const TensorInfo& info, uint32_t seed) {
  TensorData t(info.dtype, info.dims);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::uniform_int_distribution<int> bit(0, 1);
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (info.dtype) {
      case DType::Float: t.data<float>()[i] = u(rng); break;
      case DType::Double: t.data<double>()[i] = u(rng); break;
      case DType::Float16: t.data<uint16_t>()[i] = float_to_half(u(rng)); break;
      case DType::BFloat16: t.data<uint16_t>()[i] = float_to_bfloat16(u(rng)); break;
      case DType::Int8: case DType::UInt8: case DType::Bool: t.data<uint8_t>()[i] = static_cast<uint8_t>(bit(rng)); break;
      case DType::Int16: case DType::UInt16: t.data<uint16_t>()[i] = static_cast<uint16_t>(bit(rng)); break;
      case DType::Int32: case DType::UInt32: t.data<uint32_t>()[i] = static_cast<uint32_t>(bit(rng)); break;
      case DType::Int64: case DType::UInt64: t.data<uint64_t>()[i] = static_cast<uint64_t>(bit(rng)); break;
      default: throw Error("input '" + info.name + "': cannot generate random " + dtype_name(info.dtype) +
                           " values; pass it with --loadInputs");
    }
  }
  return t;
}

// Output names become file names: anything but [A-Za-z0-9._-] turns into '_', and clashes get a suffix.
std::string file_stem(const std::string& name, std::set<std::string>& used) {
  std::string s = name;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  if (s.empty() || s == "." || s == "..") s = "output";
  std::string stem = s;
  for (int k = 2; !used.insert(stem).second; ++k) stem = s + "_" + std::to_string(k);
  return stem;
}

// One array element per line: readable, and compact for the hundreds of thousands of runs a small model gets.
void write_json(const std::string& path, const nlohmann::json& array) {
  std::ofstream f(path, std::ios::trunc);
  f << "[";
  for (size_t k = 0; k < array.size(); ++k) f << (k ? ",\n  " : "\n  ") << array[k].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  f << "\n]\n";
  if (!f.flush()) throw Error(path + ": cannot write the file");
}

std::string ms(double v) {
  std::ostringstream s;
  s << std::setprecision(6) << v;
  return s.str();
}

std::string human_bytes(size_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  for (; v >= 1024 && u < 3; ++u) v /= 1024;
  std::ostringstream s;
  s << std::setprecision(u ? 4 : 12) << v << " " << units[u];
  return s.str();
}

// trtexec's percentile: the sample with (1 - p/100) of the samples above it.
double percentile(const std::vector<double>& sorted, double p) {
  const int all = static_cast<int>(sorted.size());
  const int exclude = static_cast<int>((1 - p / 100) * all);
  return sorted[static_cast<size_t>(std::max(all - 1 - exclude, 0))];
}

std::string stats_line(const char* title, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  const size_t n = v.size();
  const double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return std::string(title) + ": min = " + ms(v.front()) + " ms, max = " + ms(v.back()) + " ms, mean = " +
         ms(sum / static_cast<double>(n)) + " ms, median = " + ms(median) + " ms, percentile(90%) = " +
         ms(percentile(v, 90)) + " ms, percentile(95%) = " + ms(percentile(v, 95)) + " ms, percentile(99%) = " +
         ms(percentile(v, 99)) + " ms";
}

void print_kernels(const Engine& engine, bool verbose) {
  std::map<std::string, int> per_kernel;
  for (const LayerInfo& l : engine.layers()) ++per_kernel[l.kernel];
  std::cout << "Kernels (" << engine.layers().size() << " layers):";
  for (const auto& [kernel, n] : per_kernel) std::cout << " " << kernel << "=" << n;
  std::cout << "\n";
  if (!verbose) return;
  for (const LayerInfo& l : engine.layers()) {
    std::cout << "  " << l.name << " (" << l.op << ") -> " << l.kernel << (l.tactic.empty() ? "" : " [" + l.tactic + "]");
    if (l.fused.size() > 1 || (l.fused.size() == 1 && l.fused[0] != l.name)) {
      std::cout << "  [fused:";
      for (const std::string& f : l.fused) std::cout << " " << f;
      std::cout << "]";
    }
    std::cout << "\n";
  }
}

void print_profile(const std::vector<LayerInfo>& layers, const std::vector<double>& avg_ms, int runs) {
  double total = 0;
  for (double t : avg_ms) total += t;
  size_t wn = 5, wo = 2, wk = 6;
  auto kernel_of = [](const LayerInfo& l) { return l.tactic.empty() ? l.kernel : l.kernel + " [" + l.tactic + "]"; };
  for (const LayerInfo& l : layers)
    wn = std::max(wn, l.name.size()), wo = std::max(wo, l.op.size()), wk = std::max(wk, kernel_of(l).size());
  std::cout << "\n=== Profile (" << runs << " iterations) ===\n"
            << std::left << std::setw(static_cast<int>(wn)) << "Layer" << "  " << std::setw(static_cast<int>(wo)) << "Op"
            << "  " << std::setw(static_cast<int>(wk)) << "Kernel" << std::right << std::setw(12) << "Avg(ms)"
            << std::setw(9) << "Time(%)" << "  Fused\n";
  for (size_t k = 0; k < avg_ms.size(); ++k) {
    const LayerInfo& l = layers[k];
    std::string fused;
    for (const std::string& f : l.fused) fused += (fused.empty() ? "" : ",") + f;
    std::cout << std::left << std::setw(static_cast<int>(wn)) << l.name << "  " << std::setw(static_cast<int>(wo))
              << l.op << "  " << std::setw(static_cast<int>(wk)) << kernel_of(l) << std::right << std::fixed
              << std::setprecision(6) << std::setw(12) << avg_ms[k] << std::setprecision(1) << std::setw(9)
              << (total > 0 ? 100 * avg_ms[k] / total : 0.0) << "  " << fused << "\n"
              << std::defaultfloat;
  }
  std::cout << std::left << std::setw(static_cast<int>(wn + wo + wk + 4)) << "Total" << std::right << std::fixed
            << std::setprecision(6) << std::setw(12) << total << std::setprecision(1) << std::setw(9) << 100.0
            << "\n" << std::defaultfloat;
}

int run_exec(const ExecArgs& a) {
  if (a.onnx.empty() == a.load_engine.empty()) throw Error("exactly one of --onnx and --loadEngine is required");
  if (a.fp16 && a.bf16) throw Error("--fp16 and --bf16 exclude each other");
  if (a.iterations < 1) throw Error("--iterations must be at least 1");
  if (a.duration_s < 0 || a.warm_up_ms < 0) throw Error("--duration and --warmUp must not be negative");
  if (a.threads < 0 || a.threads > kMaxThreads)
    throw Error("--threads must be in [0, " + std::to_string(kMaxThreads) + "] (0: every core), not " +
                std::to_string(a.threads));

  for (const std::string& lib : a.plugins) {
    load_plugin_library(lib);
    std::cout << "Loaded plugin library " << lib << std::endl;
  }

  BuildOptions options;
  options.device = a.device;
  options.threads = a.threads;
  options.verbose = a.verbose;
  options.skip_rewrites = a.skip_rewrites;
  options.precision = a.fp16 ? DType::Float16 : a.bf16 ? DType::BFloat16 : DType::Float;
  options.tf32 = a.tf32;
  options.allow_host_fallback = a.allow_host_fallback;
  options.timing_cache_file = a.timing_cache;
  options.log = [](const std::string& line) { std::cout << line << std::endl; };  // flushed: progress as it comes

  std::map<std::string, TensorData> loaded;  // --loadInputs files read for their shape, by path: read once
  std::map<std::string, std::vector<int64_t>> run_shapes;  // a dynamic engine's --shapes: what to run
  std::unique_ptr<Engine> engine;
  if (!a.onnx.empty()) {
    std::unique_ptr<Graph> graph = import_onnx(a.onnx);
    std::set<std::string> names;
    for (const Tensor* t : graph->inputs) names.insert(t->name);
    options.profiles = parse_profiles(a, names);
    // With profiles, --shapes picks the shapes to run (trtexec's rule); without, it fixes them for the build.
    auto& shapes = options.profiles.empty() ? options.input_shapes : run_shapes;
    for (const auto& [name, text] : parse_pairs("--shapes", a.shapes, names, true)) {
      if (!names.count(name)) throw Error("--shapes: the model has no input '" + printable(name) + "' (inputs: " + joined(names) + ")");
      shapes[name] = parse_dims(name, text);
    }
    // An input given as a file fixes its own shape: a dynamic model needs no --shapes for it (trtexec derives
    // shapes from --loadInputs the same way). --shapes wins where both are given.
    for (const auto& [name, file] : parse_pairs("--loadInputs", a.load_inputs, names, false)) {
      const auto it = std::find_if(graph->inputs.begin(), graph->inputs.end(),
                                   [&, &name = name](const Tensor* t) { return t->name == name; });
      if (it == graph->inputs.end() || (*it)->has_static_shape() || options.input_shapes.count(name) ||
          !options.profiles.empty())
        continue;
      loaded.emplace(file, read_tensor_file(file));
      options.input_shapes[name] = loaded.at(file).dims();
    }
    std::cout << "Building the engine from " << a.onnx << "\n";
    engine = Engine::build(*graph, options);
  } else {
    std::cout << "Loading the engine from " << a.load_engine << "\n";
    engine = Engine::load(a.load_engine, options);
    std::set<std::string> names;
    for (const TensorInfo& t : engine->inputs()) names.insert(t.name);
    if (!a.opt_shapes.empty() || !a.min_shapes.empty() || !a.max_shapes.empty())
      throw Error("--minShapes/--optShapes/--maxShapes build an engine; a loaded engine has its profiles");
    // A loaded engine with fixed shapes: --shapes may only restate them. A dynamic one: the shapes to run.
    for (const auto& [name, text] : parse_pairs("--shapes", a.shapes, names, true)) {
      const auto it = std::find_if(engine->inputs().begin(), engine->inputs().end(),
                                   [&, &name = name](const TensorInfo& t) { return t.name == name; });
      if (it == engine->inputs().end())
        throw Error("--shapes: the engine has no input '" + printable(name) + "' (inputs: " + joined(names) + ")");
      if (!engine->profiles().empty()) {
        run_shapes[name] = parse_dims(name, text);
        continue;
      }
      if (parse_dims(name, text) != it->dims)
        throw Error("--shapes: input '" + printable(name) + "' is " + dims_str(it->dims) + " in " + a.load_engine + ", not " +
                    text + "; rebuild the engine from the ONNX model");
    }
  }
  if (!a.save_engine.empty()) {
    engine->save(a.save_engine);
    std::cout << "Engine saved to " << a.save_engine << "\n";
  }
  print_kernels(*engine, a.verbose);
  const auto& profiles = engine->profiles();
  for (size_t k = 0; k < profiles.size(); ++k) {
    std::cout << "Profile " << k << ":";
    for (const auto& [name, r] : profiles[k])
      std::cout << " " << name << " min " << dims_str(r.min) << " opt " << dims_str(r.opt) << " max " << dims_str(r.max);
    std::cout << "\n";
  }
  const size_t planned = engine->planned_activation_bytes(), total = engine->total_activation_bytes();
  std::cout << "Activation memory: " << human_bytes(planned) << " planned, " << human_bytes(total) << " without reuse ("
            << (total ? 100 * planned / total : 100) << "%)\n";
  // A device with memory of its own describes itself (GPU, library versions); the host device does not.
  const std::string device_info = engine->device_description();
  const bool on_device = !device_info.empty();
  if (on_device) {
    const MemoryReport m = engine->memory();
    std::cout << "Device: " << device_info << "\n"
              << "Precision: " << dtype_name(engine->options().precision)
              << (engine->options().precision == DType::Float ? (engine->options().tf32 ? " (TF32 allowed)" : " (strict, no TF32)") : "")
              << "\nDevice memory: " << human_bytes(m.weights) << " weights + " << human_bytes(m.activations)
              << " activations + " << human_bytes(m.workspace) << " workspace = "
              << human_bytes(m.weights + m.activations + m.workspace) << " planned peak per context\n";
  }

  auto ctx = engine->create_context();
  std::set<std::string> input_set;
  for (const TensorInfo& t : engine->inputs()) input_set.insert(t.name);
  std::map<std::string, std::string> files;
  for (auto& [name, file] : parse_pairs("--loadInputs", a.load_inputs, input_set, false)) {
    if (!input_set.count(name))
      throw Error("--loadInputs: the engine has no input '" + printable(name) + "' (inputs: " + joined(input_set) + ")");
    files[name] = file;
  }
  uint32_t seed = 1234;  // fixed: reruns see the same random inputs
  for (TensorInfo in : engine->inputs()) {
    auto it = files.find(in.name);
    // A dynamic input runs at its --shapes, else at the first profile's opt shape (a file brings its own).
    if (auto r = run_shapes.find(in.name); r != run_shapes.end())
      in.dims = r->second;
    else if (!profiles.empty() && profiles[0].count(in.name))
      in.dims = profiles[0].at(in.name).opt;
    std::cout << "Input " << in.name << ": " << dtype_name(in.dtype) << " " << dims_str(in.dims) << " from "
              << (it == files.end() ? std::string("random values") : it->second) << "\n";
    if (it == files.end()) {
      ctx->set_input(in.name, random_input(in, seed++));
      continue;
    }
    auto held = loaded.find(it->second);  // read once: the build may have needed its shape already
    TensorData value = held != loaded.end() ? std::move(held->second) : read_tensor_file(it->second);
    try {
      ctx->set_input(in.name, value);
    } catch (const Error& e) {
      throw Error(it->second + ": " + e.what());
    }
  }

  const bool profiling = a.dump_profile || !a.export_profile.empty();
  ctx->set_use_graph(a.use_cuda_graph);
  ctx->set_data_transfers(!a.no_data_transfers);
  const auto since = [](Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); };
  int warm_runs = 0;
  for (auto t0 = Clock::now(); since(t0) < a.warm_up_ms; ++warm_runs) ctx->run();
  std::cout << "Warmup completed " << warm_runs << " queries over " << a.warm_up_ms << " ms\n";

  ctx->set_profiling(profiling);
  struct Timing { double start, end; RunTimes device; };
  std::vector<Timing> times;
  std::vector<double> layer_sum;  // sized by the first run: a dynamic engine's plan depends on the shapes
  const auto t0 = Clock::now();
  while (static_cast<int>(times.size()) < a.iterations || since(t0) < a.duration_s * 1000) {
    const double start = since(t0);
    ctx->run();
    times.push_back({start, since(t0), ctx->last_run_times()});
    if (profiling) {
      layer_sum.resize(ctx->layer_times_ms().size(), 0.0);
      for (size_t k = 0; k < layer_sum.size(); ++k) layer_sum[k] += ctx->layer_times_ms()[k];
    }
  }
  const int runs = static_cast<int>(times.size());

  if (!a.save_outputs.empty()) {
    std::error_code ec;
    fs::create_directories(a.save_outputs, ec);
    if (ec) throw Error(a.save_outputs + ": cannot create the directory: " + ec.message());
    std::set<std::string> used;
    for (const TensorInfo& out : engine->outputs()) {
      const std::string path = (fs::path(a.save_outputs) / (file_stem(out.name, used) + ".npy")).string();
      const TensorData& value = ctx->output(out.name);
      write_npy(path, value);
      std::cout << "Output " << out.name << ": " << dtype_name(out.dtype) << " " << dims_str(value.dims()) << " saved to "
                << path << "\n";
    }
  }

  std::vector<double> latency, h2d, compute, d2h;
  double compute_total = 0;
  for (const Timing& t : times) {
    latency.push_back(t.end - t.start);
    h2d.push_back(t.device.h2d_ms);
    d2h.push_back(t.device.d2h_ms);
    compute.push_back(on_device ? t.device.compute_ms : t.end - t.start);
    compute_total += compute.back();
  }
  const double wall_ms = times.back().end - times.front().start;
  std::cout << "\n=== Performance summary ===\n"
            << "Timing trace has " << runs << " queries over " << ms(wall_ms / 1000) << " s\n"
            << "Throughput: " << ms(wall_ms > 0 ? runs / (wall_ms / 1000) : 0) << " qps\n"
            << stats_line("Latency", latency) << "\n";
  if (on_device) {
    std::cout << "CUDA graph: " << (a.use_cuda_graph && !profiling ? "on" : "off")
              << (a.no_data_transfers ? "; data transfers off (inputs uploaded once, outputs read at the end)" : "")
              << "\n"
              << stats_line("H2D Latency", h2d) << "\n"
              << stats_line("GPU Compute Time", compute) << "\n"
              << stats_line("D2H Latency", d2h) << "\n";
  } else {
    std::cout << stats_line("Enqueue Time", latency) << " (run() is synchronous on cpu: same as Latency)\n"
              << "H2D Latency: not applicable on cpu\n"
              << stats_line("Compute Time", latency) << "\n"
              << "D2H Latency: not applicable on cpu\n";
  }
  std::cout << "Total Host Walltime: " << ms(wall_ms / 1000) << " s\n"
            << "Total " << (on_device ? "GPU " : "") << "Compute Time: " << ms(compute_total / 1000) << " s\n";

  if (!a.export_times.empty()) {
    nlohmann::json j = nlohmann::json::array();
    for (const Timing& t : times)
      j.push_back({{"startMs", t.start}, {"endMs", t.end}, {"latencyMs", t.end - t.start},
                   {"h2dMs", t.device.h2d_ms}, {"computeMs", on_device ? t.device.compute_ms : t.end - t.start},
                   {"d2hMs", t.device.d2h_ms}});
    write_json(a.export_times, j);
  }
  if (profiling) {
    std::vector<double> avg(layer_sum.size());
    double sum = 0;
    for (size_t k = 0; k < avg.size(); ++k) sum += avg[k] = layer_sum[k] / runs;
    if (a.dump_profile) print_profile(ctx->layers(), avg, runs);
    if (!a.export_profile.empty()) {
      nlohmann::json j = nlohmann::json::array();
      for (size_t k = 0; k < avg.size(); ++k) {
        const LayerInfo& l = ctx->layers()[k];
        j.push_back({{"name", l.name}, {"op", l.op}, {"kernel", l.kernel}, {"tactic", l.tactic}, {"timeMs", layer_sum[k]},
                     {"averageMs", avg[k]}, {"percentage", sum > 0 ? 100 * avg[k] / sum : 0.0}});
      }
      write_json(a.export_profile, j);
    }
  }
  return 0;
}

}  // namespace

Command add_exec(CLI::App& app) {
  auto a = std::make_shared<ExecArgs>();
  app.add_option("--onnx", a->onnx, "ONNX model to build the engine from");
  app.add_option("--loadEngine", a->load_engine, "Engine file to load instead of building");
  app.add_option("--saveEngine", a->save_engine, "Write the engine to this file");
  app.add_option("--shapes", a->shapes, "Input shapes: name:1x3x192x640[,name2:...]");
  app.add_option("--minShapes", a->min_shapes,
                 "Optimization profile: smallest input shapes, name:1x3x48x160[,...] (repeat the three flags for "
                 "more profiles)");
  app.add_option("--optShapes", a->opt_shapes, "Optimization profile: the shapes kernels are chosen for");
  app.add_option("--maxShapes", a->max_shapes, "Optimization profile: largest input shapes");
  app.add_option("--loadInputs", a->load_inputs, "Input values: name:file.npy|file.pb[,...]; others are random");
  app.add_option("--saveOutputs", a->save_outputs, "Directory for one .npy per output");
  app.add_option("--iterations", a->iterations, "Minimum number of timed inferences")->capture_default_str();
  app.add_option("--warmUp", a->warm_up_ms, "Warm-up time in ms")->capture_default_str();
  app.add_option("--duration", a->duration_s, "Minimum timed seconds")->capture_default_str();
  app.add_option("--device", a->device, "Device to build for: cpu or cuda")->capture_default_str();
  app.add_flag("--fp16", a->fp16, "Run float layers in fp16 (inputs/outputs stay fp32)");
  app.add_flag("--bf16", a->bf16, "Run float layers in bf16 (inputs/outputs stay fp32)");
  app.add_flag("--tf32,!--noTF32", a->tf32, "fp32 convolutions may use TF32 tensor cores (default on; --noTF32: strict fp32)");
  app.add_option("--timingCacheFile", a->timing_cache, "Read and write timed kernel choices here (fast rebuilds)");
  app.add_flag("--allowHostFallback", a->allow_host_fallback,
               "CUDA: run layers that have no CUDA kernel on the host (copied out and back) instead of failing");
  app.add_flag("--useCudaGraph,!--noCudaGraph", a->use_cuda_graph, "CUDA: replay inferences as a CUDA graph (default on)");
  app.add_flag("--noDataTransfers", a->no_data_transfers, "CUDA: no host<->device copies in the timed runs");
  app.add_option("--threads", a->threads, "CPU worker threads (0 = every core)")->capture_default_str();
  app.add_flag("--dumpProfile", a->dump_profile, "Print per-layer times averaged over the timed runs");
  app.add_option("--exportTimes", a->export_times, "Write per-inference times as JSON");
  app.add_option("--exportProfile", a->export_profile, "Write per-layer times as JSON");
  app.add_option("--plugins", a->plugins, "Plugin libraries to load (LIB.so[,LIB2.so])")->delimiter(',');
  std::string rewrites;
  for (const std::string& r : kiln::rewrite_names()) rewrites += (rewrites.empty() ? "" : ",") + r;
  app.add_option("--skipRewrites", a->skip_rewrites, "Rewrites not to apply: " + rewrites)->delimiter(',');
  app.add_flag("--verbose", a->verbose, "Print the build log in full and every layer's kernel");
  return [a] { return run_exec(*a); };
}

}  // namespace kiln::cli
