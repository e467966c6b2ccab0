// The device registry: each backend registers its DeviceBackend from a static initializer.
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>

#include "device/device_backend.h"
#include "kiln/error.h"

namespace kiln {
namespace {

std::mutex& backends_mutex() {
  static std::mutex m;
  return m;
}
// A deque: pointers handed out by find_device_backend stay valid when a later registration adds a device.
std::deque<DeviceBackend>& backends() {
  static std::deque<DeviceBackend> list;
  return list;
}

}  // namespace

void Executor::set_input_device(size_t, const void*, const std::vector<int64_t>&, void*) {
  throw Error("this executor takes host memory only");
}
void Executor::copy_output_to_device(size_t, void*, void*) {
  throw Error("this executor gives host memory only");
}

bool register_device_backend(DeviceBackend backend) {
  std::lock_guard<std::mutex> lock(backends_mutex());
  for (const DeviceBackend& b : backends())
    if (b.name == backend.name) {
      std::fprintf(stderr, "kiln: device '%s' registered twice\n", b.name.c_str());
      std::abort();
    }
  backends().push_back(std::move(backend));
  return true;
}

const DeviceBackend* find_device_backend(const std::string& name) {
  std::lock_guard<std::mutex> lock(backends_mutex());
  for (const DeviceBackend& b : backends())
    if (b.name == name) return &b;
  return nullptr;
}

std::vector<std::string> device_names() {
  std::lock_guard<std::mutex> lock(backends_mutex());
  std::vector<std::string> names;
  for (const DeviceBackend& b : backends()) names.push_back(b.name);
  return names;
}

}  // namespace kiln
