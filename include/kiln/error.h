// kiln — errors. Every failure a user can cause reaches them as one line naming where it happened.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln {

// One-line, user-facing error. `what()` is the full message (context first, e.g.
// "model.onnx: node 'conv1' (Conv): weight must be 4-D").
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Text that came from a file or a user, made safe to put in a message: non-printable and non-ASCII bytes
// become \xNN escapes (a terminal never receives raw bytes), and anything past `max_bytes` is cut with
// "...(N more bytes)" (a 5 MB field never becomes a 5 MB message). The CLI passes every message through it
// once more, with a larger budget, where errors leave the process.
std::string printable(std::string_view text, size_t max_bytes = 200);

}  // namespace kiln
