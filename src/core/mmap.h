// Read-only memory mapping of a whole file (weights stay in the page cache, not copied),
// and atomic output: write to PATH.tmp.<pid>, then rename over PATH.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace slimlm {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error (missing, unreadable, empty)
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Writes bytes produced by `fill` to a temporary file next to `path` and renames it into
// place only if `fill` returns without throwing. The callback gets a FILE*.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();  // removes the temporary if commit() was not reached
  std::FILE* get() { return f_; }
  void write(const void* p, size_t n);
  void commit();
 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

}  // namespace slimlm
