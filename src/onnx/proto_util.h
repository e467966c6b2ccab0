// Helpers shared by the ONNX importer and exporter.
#pragma once
#include <exception>
#include <string>

#include "kiln/error.h"

namespace kiln::onnx_io {

// Runs `f`, making every failure a one-line kiln::Error that starts with `where` (names read from a file
// may hold line breaks; they are escaped).
template <typename F>
inline auto guarded(const std::string& where, F&& f) {
  auto one_line = [&](std::string msg) {
    if (!msg.starts_with(where + ": ")) msg = where + ": " + msg;
    for (size_t k = 0; (k = msg.find_first_of("\r\n", k)) != std::string::npos;)
      msg.replace(k, 1, msg[k] == '\n' ? "\\n" : "\\r");
    return Error(msg);
  };
  try {
    return f();
  } catch (const std::exception& e) {
    throw one_line(e.what());
  }
}

}  // namespace kiln::onnx_io
