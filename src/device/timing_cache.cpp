#include "device/timing_cache.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ir/file_util.h"
#include "kiln/error.h"
#include "kiln/tensor_data.h"

namespace kiln {

namespace {
constexpr const char* kFormat = "kiln-timing-cache-1";
}

TimingCache::TimingCache(std::string path) : path_(std::move(path)) {
  std::ifstream f(path_);
  if (!f) return;  // a new cache
  std::error_code ec;
  if (const auto bytes = std::filesystem::file_size(path_, ec); !ec)
    check_memory(bytes, path_ + ": reading the timing cache");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  // Checked field by field: nlohmann's own type errors would reach the user as "[json.exception...]".
  if (j.is_discarded() || !j.is_object() || !j.contains("format") || j["format"] != kFormat ||
      !j.contains("entries") || !j["entries"].is_object())
    throw Error(path_ + ": not a kiln timing cache (delete it to start a new one)");
  for (const auto& [key, value] : j["entries"].items())
    if (value.is_string()) entries_[key] = value.get<std::string>();
}

std::optional<std::string> TimingCache::find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second;
}

void TimingCache::put(const std::string& key, const std::string& choice) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_[key] = choice;
  dirty_ = true;
}

void TimingCache::save() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (path_.empty() || !dirty_) return;
  nlohmann::json j = {{"format", kFormat}, {"entries", entries_}};
  write_file_atomically(path_, j.dump(1) + "\n", nullptr, 0, "timing cache");
}

}  // namespace kiln
