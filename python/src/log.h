// kiln._kiln: kiln's one-line warnings go to Python's logging (logger "kiln"), never straight to stderr.
#pragma once
#include <nanobind/nanobind.h>

#include <string>
#include <vector>

#include "kiln/onnx.h"

namespace kiln::py {

// Needs the GIL.
inline void log_warning(const std::string& message) {
  nanobind::module_::import_("logging").attr("getLogger")("kiln").attr("warning")(message);
}

// Import options that collect the importer's warnings into `sink` (import runs without the GIL); log them
// with log_warnings once it is held again.
inline ImportOptions collecting_warnings(std::vector<std::string>& sink) {
  ImportOptions options;
  options.on_warning = [&sink](const std::string& w) { sink.push_back(w); };
  return options;
}

inline void log_warnings(const std::vector<std::string>& warnings) {
  for (const std::string& w : warnings) log_warning(w);
}

}  // namespace kiln::py
