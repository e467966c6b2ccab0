#include "kiln/error.h"

#include <algorithm>
#include <cstdio>

namespace kiln {
namespace {

// Length of the well-formed UTF-8 sequence at text[i] that is safe to print, or 0. C1 controls (U+0080..U+009F)
// count as unsafe: some terminals act on them.
size_t printable_utf8(std::string_view text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  const size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? (c < 0xf0 ? 3 : 0) : c >= 0xc2 ? 2 : 0;
  if (len == 0 || i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return 0;
  if (c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0) return 0;
  return len;
}

}  // namespace

std::string printable(std::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  for (; i < text.size() && i < max_bytes;) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      ++i;
    } else if (const size_t len = c >= 0x80 ? printable_utf8(text, i) : 0; len) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
    }
  }
  if (i < text.size()) out += "...(" + std::to_string(text.size() - i) + " more bytes)";
  return out;
}


}  // namespace kiln
