// kiln — errors. Every failure a user can cause reaches them as one line naming where it happened.
#pragma once
#include <stdexcept>
#include <string>

namespace kiln {

// One-line, user-facing error. `what()` is the full message (context first, e.g.
// "model.onnx: node 'conv1' (Conv): weight must be 4-D").
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace kiln
