#include "core/mmap.h"
#include "core/error.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace slimlm {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { ::close(fd); fail(path, ": not a regular file"); }
  size_ = size_t(st.st_size);
  if (size_ == 0) { ::close(fd); fail(path, ": file is empty"); }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) fail(path, ": mmap failed: ", std::strerror(errno));
  data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  tmp_ = cat(path, ".tmp.", ::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail(path, ": cannot write: ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_) { std::fclose(f_); std::remove(tmp_.c_str()); }
}

void AtomicFile::write(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, f_) != n) fail(path_, ": write failed: ", std::strerror(errno));
}

void AtomicFile::commit() {
  if (std::fflush(f_) != 0 || std::fclose(f_) != 0) { f_ = nullptr; std::remove(tmp_.c_str()); fail(path_, ": write failed"); }
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    fail(path_, ": cannot rename temporary file: ", std::strerror(errno));
  }
}

}  // namespace slimlm
