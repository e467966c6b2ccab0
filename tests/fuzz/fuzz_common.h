// kiln — shared helpers of the libFuzzer targets (tests/fuzz/fuzz_*.cpp; scripts/sanitize.sh, docs/fuzzing.md).
//
// Policy: anything an input file can cause must surface as a one-line kiln::Error. Any other exception escaping
// the API under test (std::bad_alloc, std::out_of_range, nlohmann::json errors, ...) is a bug: the target prints
// it and aborts, so libFuzzer records the input as a crash. Memory use is bounded by libFuzzer's -rss_limit_mb /
// -malloc_limit_mb (set by scripts/sanitize.sh).
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <typeinfo>

#include "kiln/error.h"
#include "kiln/tensor_data.h"

namespace kiln_fuzz {

// A private directory per fuzzing process (libFuzzer -jobs/-fork run several), removed at exit.
inline const std::string& temp_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kiln_fuzz_XXXXXX";
    if (!mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string keep = tmpl;
    std::atexit([] { std::system(("rm -rf '" + keep + "'").c_str()); });
    return tmpl;
  }();
  return dir;
}

// An empty directory: external-data references in fuzzed models resolve here and find nothing.
inline const std::string& empty_dir() {
  static const std::string dir = [] {
    std::string d = temp_dir() + "/empty";
    if (mkdir(d.c_str(), 0700) != 0) {
      std::perror("mkdir");
      std::abort();
    }
    return d;
  }();
  return dir;
}

inline std::string write_temp(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!f) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// Runs `body`; kiln::Error is an accepted rejection, anything else aborts (a finding).
template <typename F>
void expect_only_kiln_errors(const char* what, F&& body) {
  try {
    body();
  } catch (const kiln::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz %s: non-kiln exception escaped: %s: %s\n", what, typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz %s: unknown exception escaped\n", what);
    std::abort();
  }
}

}  // namespace kiln_fuzz

// kiln's own memory limit (kiln::set_max_memory) below libFuzzer's -malloc_limit_mb=1024: sizes a file declares
// beyond it must be refused with a kiln::Error before anything is allocated.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  kiln::set_max_memory(uint64_t{512} << 20);
  return 0;
}
