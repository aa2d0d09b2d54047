// Small text helpers shared by the CLI and loaders: UTF-8 validation, reading whole files,
// parsing token-id lists ("1,2,3" or whitespace-separated).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace slimlm {

bool valid_utf8(const std::string& s);
// Length of the longest prefix of s that ends on a UTF-8 character boundary.
size_t complete_utf8_prefix(const std::string& s);
std::string read_text_file(const std::string& path);  // throws Error
std::vector<int32_t> parse_ids(const std::string& s, const std::string& what);  // throws Error

}  // namespace slimlm
