// SHA-256 (FIPS 180-4) for checksums: model files, reference token streams in tests.
// Incremental: update() any number of times, then hex_digest() once.
// Small and dependency-free; not constant-time (never used on secrets).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace slimlm {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex_digest();  // finalizes; call once

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);

}  // namespace slimlm
