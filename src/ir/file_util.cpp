// Atomic file writes (a temporary beside the target, then rename).
#include "ir/file_util.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kiln/error.h"

namespace kiln {

void write_file_atomically(const std::string& path, const std::string& a, const void* b, size_t b_len,
                           const char* what) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(a.data(), static_cast<std::streamsize>(a.size()));
    if (b_len) f.write(static_cast<const char*>(b), static_cast<std::streamsize>(b_len));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw Error(path + ": cannot write the " + what);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write the " + what + ": " + ec.message());
  }
}

}  // namespace kiln
