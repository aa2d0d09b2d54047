// safetensors reader (mmap; header JSON validated: dtypes, shapes, offsets inside the file)
// and writer (atomic). Shapes are in PyTorch order (outermost first), unlike GGUF.
#pragma once
#include "core/dtype.h"
#include "core/mmap.h"
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace slimlm::safetensors {

struct Entry {
  DType type;                 // F32, F16 or BF16
  std::vector<int64_t> shape;  // PyTorch order
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

class File {
 public:
  static std::shared_ptr<File> open(const std::string& path);  // throws Error
  const std::map<std::string, Entry>& tensors() const { return tensors_; }
  const Entry* find(const std::string& name) const;
  const std::string& path() const { return map_->path(); }
 private:
  std::unique_ptr<MappedFile> map_;
  std::map<std::string, Entry> tensors_;
};

struct WriteEntry { std::string name; DType type; std::vector<int64_t> shape; const void* data; size_t nbytes; };
void write(const std::string& path, const std::vector<WriteEntry>& tensors);

}  // namespace slimlm::safetensors
