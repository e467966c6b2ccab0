// kiln — writing files so that a reader never sees a half-written one.
#pragma once
#include <cstddef>
#include <string>

namespace kiln {

// Writes `head` then `tail_len` bytes of `tail` to a temporary file beside `path`, then renames it over
// `path`. Throws kiln::Error "<path>: cannot write the <what>" on failure, leaving no temporary file behind.
void write_file_atomically(const std::string& path, const std::string& head, const void* tail,
                           size_t tail_len, const char* what);

}  // namespace kiln
