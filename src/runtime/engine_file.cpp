// Engine files (the format only): a versioned header with a checksum, JSON metadata (layers and their
// kernels), then the optimized graph as ONNX bytes (weights included). Loading hands the recorded kernels to
// the planner, which re-creates them by name; it does not re-run the optimizer.
//
//   offset 0  "KILNENG\0"         magic
//          8  u32 format version   (kFormatVersion)
//         12  u32 reserved (0)
//         16  u64 metadata bytes
//         24  u64 model bytes
//         32  u64 FNV-1a 64 of metadata+model
//         40  metadata JSON, then the ONNX model
#include "runtime/engine_file.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "builder/planner.h"
#include "ir/file_util.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"
#include "runtime/dynamic_shapes.h"

namespace kiln {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderBytes = 40;

uint64_t fnv1a(const std::string& a, const std::string& b) {
  uint64_t h = 1469598103934665603ull;
  for (const std::string* s : {&a, &b})
    for (unsigned char c : *s) h = (h ^ c) * 1099511628211ull;
  return h;
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
template <typename T>
T get(const std::string& in, size_t offset) {
  T v;
  std::memcpy(&v, in.data() + offset, sizeof(T));
  return v;
}

std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

bool from_hex(const std::string& hex, std::string& out) {
  if (hex.size() % 2) return false;
  auto value = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = value(hex[i]), lo = value(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
  }
  return true;
}

// Typed access to the metadata: a missing field takes its default, a field of another type is an error naming
// it (nlohmann's own type errors would reach the user as "[json.exception.type_error.302] ...").
class Meta {
 public:
  Meta(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) fail("", "is not a JSON object");
  }
  std::string str(const char* key, const std::string& fallback) const {
    if (!j_.contains(key)) return fallback;
    if (!j_[key].is_string()) fail(key, "is not a string");
    return j_[key].get<std::string>();
  }
  int64_t integer(const char* key, int64_t fallback) const {
    if (!j_.contains(key)) return fallback;
    if (!j_[key].is_number_integer()) fail(key, "is not an integer");
    return j_[key].get<int64_t>();
  }
  bool boolean(const char* key, bool fallback) const {
    if (!j_.contains(key)) return fallback;
    if (!j_[key].is_boolean()) fail(key, "is not true or false");
    return j_[key].get<bool>();
  }
  std::vector<std::string> strings(const char* key) const {
    std::vector<std::string> out;
    if (!j_.contains(key)) return out;
    if (!j_[key].is_array()) fail(key, "is not a list");
    for (const auto& v : j_[key]) {
      if (!v.is_string()) fail(key, "holds something other than strings");
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  const nlohmann::json& array(const char* key) const {
    if (!j_.contains(key) || !j_[key].is_array()) fail(key, "is missing or not a list");
    return j_[key];
  }
  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    throw Error(where_ + (key.empty() ? "" : " field '" + key + "'") + " " + why);
  }

 private:
  const nlohmann::json& j_;
  std::string where_;
};

// The engine-file fields that choose how kernels run: each one checked against what a build can record.
void read_options(const Meta& meta, BuildOptions& o, bool threads_given) {
  o.device = meta.str("device", "cpu");
  if (o.device.empty() || o.device.size() > 32)
    meta.fail("device", "'" + printable(o.device) + "' is not a device name");
  const int64_t threads = meta.integer("threads", 1);
  if (threads < 0 || threads > kMaxThreads)
    meta.fail("threads",
              std::to_string(threads) + " is out of range [0, " + std::to_string(kMaxThreads) + "]");
  if (!threads_given) o.threads = static_cast<int>(threads);
  if (o.threads == 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.tf32 = meta.boolean("tf32", true);
  const std::string precision = meta.str("precision", "float32");
  if (precision == "float32")
    o.precision = DType::Float;
  else if (precision == "float16")
    o.precision = DType::Float16;
  else if (precision == "bfloat16")
    o.precision = DType::BFloat16;
  else
    meta.fail("precision", "'" + printable(precision) + "' is not float32, float16 or bfloat16");
}

nlohmann::json profiles_json(const DynamicShapes& d) {
  nlohmann::json out = nlohmann::json::array();
  for (const OptimizationProfile& p : d.profiles) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, r] : p) j[name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
    out.push_back(j);
  }
  return out;
}

std::vector<int64_t> read_dims(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array() || j.size() > 64) throw Error(where + " is not a list of dims");
  std::vector<int64_t> dims;
  for (const auto& v : j) {
    if (!v.is_number_integer()) throw Error(where + " holds something other than integers");
    dims.push_back(v.get<int64_t>());
  }
  return dims;
}

std::vector<OptimizationProfile> read_profiles(const nlohmann::json& j, const std::string& path) {
  if (!j.is_array() || j.empty()) throw Error(path + ": engine metadata field 'profiles' is not a list of profiles");
  std::vector<OptimizationProfile> out;
  for (size_t p = 0; p < j.size(); ++p) {
    const std::string where = path + ": engine profile " + std::to_string(p);
    if (!j[p].is_object()) throw Error(where + " is not a JSON object");
    OptimizationProfile profile;
    for (const auto& [name, r] : j[p].items()) {
      if (!r.is_object() || !r.contains("min") || !r.contains("opt") || !r.contains("max"))
        throw Error(where + " input '" + printable(name) + "' needs min, opt and max");
      profile[name] = {read_dims(r["min"], where + " min"), read_dims(r["opt"], where + " opt"),
                       read_dims(r["max"], where + " max")};
    }
    out.push_back(std::move(profile));
  }
  return out;
}

}  // namespace

void write_engine_file(const EnginePlan& plan, const DynamicShapes* dynamic, const std::string& device_info,
                       const std::string& path) {
  nlohmann::json meta;
  meta["kiln_version"] = "0.1.0";
  meta["device"] = plan.options.device;
  meta["threads"] = plan.options.threads;
  meta["precision"] = dtype_name(plan.options.precision);
  meta["tf32"] = plan.options.tf32;
  // The GPU, its compute capability and the library versions the kernels were chosen (timed) for.
  if (const std::string& d = device_info; !d.empty()) meta["device_info"] = nlohmann::json::parse(d);
  nlohmann::json layers = nlohmann::json::array();
  for (const PlannedLayer& l : plan.layers) {
    nlohmann::json entry = {
        {"name", l.info.name}, {"op", l.info.op}, {"kernel", l.info.kernel}, {"fused", l.info.fused}};
    // Kernel state (a plugin's serialize(), a chosen tactic) restores the kernel on load without redoing
    // work.
    if (l.kernel)
      if (std::string state = l.kernel->serialize(); !state.empty()) entry["state"] = to_hex(state);
    layers.push_back(std::move(entry));
  }
  meta["layers"] = layers;
  if (dynamic) {
    meta["profiles"] = profiles_json(*dynamic);
    meta["max_activation_bytes"] = dynamic->max_arena_bytes;
    meta["max_total_activation_bytes"] = dynamic->max_total_bytes;
  }
  // Names may hold any bytes (ONNX does not enforce UTF-8): invalid sequences are replaced, not thrown on.
  const std::string meta_bytes = meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string model = export_onnx_bytes(dynamic ? *dynamic->generic : *plan.graph);

  std::string header(kMagic, sizeof(kMagic));
  put<uint32_t>(header, kFormatVersion);
  put<uint32_t>(header, 0);
  put<uint64_t>(header, meta_bytes.size());
  put<uint64_t>(header, model.size());
  put<uint64_t>(header, fnv1a(meta_bytes, model));

  write_file_atomically(path, header + meta_bytes, model.data(), model.size(), "engine file");
}

namespace {

// A dynamic engine: its generic graph and profiles; the opt-shape plan is made again with the kernels the
// file records by layer name (a layer whose kernel no longer fits is chosen anew).
LoadedEngine read_dynamic(std::unique_ptr<Graph> generic, const nlohmann::json& meta, const Meta& top,
                          const BuildOptions& options, const std::string& path) {
  auto d = std::make_unique<DynamicShapes>();
  d->profiles = read_profiles(meta["profiles"], path);
  d->options = options;
  d->options.profiles = d->profiles;
  d->generic = std::move(generic);
  check_profiles(*d->generic, d->options);  // against the stored graph: a tampered range fails here
  d->options.profiles.clear();
  // Reports only (what the build measured at each profile's max shape); the plans are made again.
  const int64_t max_bytes = top.integer("max_activation_bytes", 0);
  const int64_t max_total = top.integer("max_total_activation_bytes", 0);
  if (max_bytes < 0) top.fail("max_activation_bytes", "is negative");
  if (max_total < 0) top.fail("max_total_activation_bytes", "is negative");
  d->max_arena_bytes = static_cast<size_t>(max_bytes);
  d->max_total_bytes = static_cast<size_t>(max_total);
  KernelHints recorded;
  for (const auto& layer : top.array("layers")) {
    const Meta entry(layer, path + ": engine layer");
    std::string state;
    if (!from_hex(entry.str("state", ""), state))
      throw Error(path + ": layer '" + printable(entry.str("name", "")) + "' has a corrupt kernel state");
    recorded[entry.str("name", "")] = {entry.str("kernel", ""), state};
  }
  plan_primary(*d, &recorded);
  d->options.log = nullptr;
  LoadedEngine e;
  e.plan = d->primary;
  e.dynamic = std::move(d);
  return e;
}

}  // namespace

LoadedEngine read_engine_file(const std::string& path, const BuildOptions& options) {
  std::error_code ec;
  const auto file_bytes = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": cannot open the engine file: " + ec.message());
  check_memory(file_bytes, path + ": reading the engine file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open the engine file");
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    throw Error(path + ": not a kiln engine file");
  const uint32_t version = get<uint32_t>(bytes, 8);
  if (version != kFormatVersion)
    throw Error(path + ": engine format version " + std::to_string(version) + ", this kiln reads version " +
                std::to_string(kFormatVersion) + "; rebuild the engine");
  const uint64_t meta_len = get<uint64_t>(bytes, 16), model_len = get<uint64_t>(bytes, 24);
  if (meta_len > bytes.size() || model_len > bytes.size() ||
      kHeaderBytes + meta_len + model_len != bytes.size())
    throw Error(path + ": engine file is truncated or has trailing bytes");
  const std::string meta_bytes = bytes.substr(kHeaderBytes, meta_len);
  const std::string model = bytes.substr(kHeaderBytes + meta_len);
  if (fnv1a(meta_bytes, model) != get<uint64_t>(bytes, 32))
    throw Error(path + ": engine file is corrupt (checksum)");

  nlohmann::json meta = nlohmann::json::parse(meta_bytes, nullptr, false);
  if (meta.is_discarded()) throw Error(path + ": engine metadata is not valid JSON");
  const Meta top(meta, path + ": engine metadata");
  const nlohmann::json& layers = top.array("layers");

  auto plan = std::make_unique<EnginePlan>();
  plan->options = options;
  read_options(top, plan->options, options.threads != 0);
  Graph placeholder;
  placeholder.source = path;
  const DeviceBackend& device = check_device(placeholder, plan->options);
  if (device.check_compatible)
    device.check_compatible(meta.contains("device_info") ? meta["device_info"].dump() : "{}", path);
  ImportOptions embedded;
  embedded.allow_external_data = false;  // an engine file holds its weights; it never points at other files
  std::unique_ptr<Graph> graph =
      import_onnx_bytes(model, path, std::filesystem::path(path).parent_path().string(), embedded);
  if (meta.contains("profiles")) return read_dynamic(std::move(graph), meta, top, plan->options, path);
  plan->graph = std::move(graph);
  infer_shapes(*plan->graph);  // restores shapes of every tensor (and checks the graph is whole)
  if (layers.size() != plan->graph->num_nodes())
    throw Error(path + ": engine metadata lists " + std::to_string(layers.size()) + " layers for " +
                std::to_string(plan->graph->num_nodes()) + " nodes");
  RecordedKernels recorded{path, {}};  // per layer, the decoded kernel state
  for (size_t k = 0; k < layers.size(); ++k) {
    PlannedLayer layer;
    layer.node = plan->graph->nodes()[k].get();
    const Meta entry(layers[k], path + ": engine layer " + std::to_string(k));
    layer.info.name = entry.str("name", "");
    layer.info.op = entry.str("op", "");
    layer.info.kernel = entry.str("kernel", "");
    layer.info.fused = entry.strings("fused");
    const std::string state = entry.str("state", "");
    if (!from_hex(state, recorded.states.emplace_back()))
      throw Error(path + ": layer '" + printable(layer.info.name) + "' has a corrupt kernel state");
    plan->layers.push_back(std::move(layer));
  }
  finish_plan(*plan, &recorded);
  return {std::move(plan), nullptr};
}

}  // namespace kiln
