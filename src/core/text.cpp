#include "core/text.h"
#include "core/error.h"
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace slimlm {

namespace {
int utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xe) return 3;
  if ((c >> 3) == 0x1e) return 4;
  return 0;
}
}  // namespace

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int n = utf8_len(c);
    if (n == 0 || i + size_t(n) > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (int k = 1; k < n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + size_t(k)]);
      if ((d >> 6) != 0x2) return false;
      cp = cp << 6 | (d & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += size_t(n);
  }
  return true;
}

size_t complete_utf8_prefix(const std::string& s) {
  // walk back over at most 3 continuation bytes to the last lead byte
  size_t i = s.size();
  for (int back = 0; back < 4 && i > 0; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c >> 6) != 0x2) {  // lead or ASCII byte at i-1
      const int n = utf8_len(c);
      return (n != 0 && s.size() - (i - 1) < size_t(n)) ? i - 1 : s.size();
    }
    --i;
  }
  return s.size();
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int32_t> parse_ids(const std::string& s, const std::string& what) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (std::isspace(static_cast<unsigned char>(s[i])) || s[i] == ',')) ++i;
    if (i == s.size()) break;
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    const bool sep = j == s.size() || std::isspace(static_cast<unsigned char>(s[j])) || s[j] == ',';
    if (j == i || !sep || j - i > 9) fail(what, ": '", s.substr(i, std::min<size_t>(20, s.size() - i)), "' is not a token id");
    ids.push_back(int32_t(std::stol(s.substr(i, j - i))));
    i = j;
  }
  if (ids.empty()) fail(what, ": no token ids");
  return ids;
}

}  // namespace slimlm
