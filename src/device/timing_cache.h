// kiln — timing cache: results of timed kernel choices (cuDNN algorithm, layout, ...) keyed by everything the
// choice depends on (device, library versions, shapes, precision), kept in a JSON file so a rebuild skips the
// timing (TensorRT's --timingCacheFile).
#pragma once
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace kiln {

class TimingCache {
 public:
  TimingCache() = default;
  // Reads `path` if it exists (an unreadable or foreign file is an error naming it); save() writes it back.
  explicit TimingCache(std::string path);
  std::optional<std::string> find(const std::string& key);
  void put(const std::string& key, const std::string& choice);
  void save() const;  // atomic; no-op without a path or when nothing changed
  size_t hits() const { return hits_; }
  size_t misses() const { return misses_; }
  size_t size() const { return entries_.size(); }

 private:
  std::string path_;
  std::map<std::string, std::string> entries_;
  mutable std::mutex mutex_;
  size_t hits_ = 0, misses_ = 0;
  bool dirty_ = false;
};

}  // namespace kiln
