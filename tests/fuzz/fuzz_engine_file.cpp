// libFuzzer target: Engine::load on a fuzzed engine file (written to a per-process temp file: the loader reads
// paths). Unless the header's reserved word (offset 12) is nonzero, the target first repairs the model length
// and the checksum (offsets 24 and 32; format in src/runtime/engine_file.cpp), so mutations of the metadata
// JSON and of the ONNX model get past the checksum and reach the parsers.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "kiln/engine.h"

namespace {

constexpr size_t kHeaderBytes = 40;

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> file(data, data + size);
  if (size >= kHeaderBytes) {
    uint32_t reserved;
    std::memcpy(&reserved, file.data() + 12, 4);
    if (reserved == 0) {
      uint64_t meta_len;
      std::memcpy(&meta_len, file.data() + 16, 8);
      if (meta_len > size - kHeaderBytes) meta_len = size - kHeaderBytes;
      const uint64_t model_len = size - kHeaderBytes - meta_len;
      const uint64_t sum = fnv1a(file.data() + kHeaderBytes, size - kHeaderBytes);
      std::memcpy(file.data() + 16, &meta_len, 8);
      std::memcpy(file.data() + 24, &model_len, 8);
      std::memcpy(file.data() + 32, &sum, 8);
    }
  }
  const std::string path = kiln_fuzz::write_temp("engine.kiln", file.data(), file.size());
  kiln_fuzz::expect_only_kiln_errors("engine_load", [&] {
    kiln::BuildOptions options;
    options.threads = 1;  // never what the file says: one fuzzing process, one core
    kiln::Engine::load(path, options);
  });
  return 0;
}
