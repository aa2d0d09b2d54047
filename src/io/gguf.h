// GGUF v2/v3 reader (mmap, every metadata type, alignment, strict validation) and writer
// (atomic, preserves key order and value types, so read -> write -> read is byte-identical).
// Spec: docs/formats.md. Tensor dims are in ggml order: ne[0] is the contiguous (row) length.
#pragma once
#include "core/dtype.h"
#include "core/mmap.h"
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace slimlm::gguf {

enum class VType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

// One metadata value. Scalars keep their original type tag; arrays hold elements of one type.
struct Value {
  VType type = VType::U32;
  VType elem = VType::U8;         // for ARRAY
  uint64_t u = 0;                 // unsigned ints and bool
  int64_t i = 0;                  // signed ints
  double f = 0;                   // f32/f64
  std::string s;                  // STRING
  std::vector<Value> arr;         // ARRAY

  static Value of_u32(uint32_t v) { Value x; x.type = VType::U32; x.u = v; return x; }
  static Value of_i32(int32_t v) { Value x; x.type = VType::I32; x.i = v; return x; }
  static Value of_f32(float v) { Value x; x.type = VType::F32; x.f = v; return x; }
  static Value of_bool(bool v) { Value x; x.type = VType::BOOL; x.u = v; return x; }
  static Value of_str(std::string v) { Value x; x.type = VType::STRING; x.s = std::move(v); return x; }
  static Value of_strs(const std::vector<std::string>& v);
  static Value of_f32s(const std::vector<float>& v);
  static Value of_i32s(const std::vector<int32_t>& v);

  bool is_int() const;
  bool is_float() const { return type == VType::F32 || type == VType::F64; }
  int64_t as_int() const;      // throws unless an integer or bool
  double as_float() const;     // ints convert too
  std::string to_string(size_t max_items = 8) const;  // for `slimlm info`
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  DType type = DType::F32;
  uint64_t offset = 0;      // relative to the data section
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int64_t nelements() const;
};

class File {
 public:
  static std::unique_ptr<File> open(const std::string& path);  // throws Error on bad input
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::vector<std::pair<std::string, Value>>& kv() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const Value* find(const std::string& key) const;
  const TensorInfo* tensor(const std::string& name) const;
  const std::string& path() const { return map_->path(); }
  size_t file_size() const { return map_->size(); }

  // Typed getters: throw Error naming the key when missing or of the wrong type.
  std::string get_str(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::optional<int64_t> opt_int(const std::string& key) const;
  std::optional<double> opt_float(const std::string& key) const;
  std::optional<std::string> opt_str(const std::string& key) const;

 private:
  std::unique_ptr<MappedFile> map_;
  uint32_t version_ = 0, alignment_ = 32;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t> kv_index_, tensor_index_;
  std::vector<TensorInfo> tensors_;
};

// Builds a GGUF file: metadata in insertion order, tensors in insertion order.
class Writer {
 public:
  void set(const std::string& key, Value v);  // replaces an existing key in place
  void remove(const std::string& key);
  // `data` must stay valid until write(); its size must equal row_bytes(type, ne[0]) * rows.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t nbytes);
  void write(const std::string& path, uint32_t version = 3) const;  // atomic
 private:
  std::vector<std::pair<std::string, Value>> kv_;
  struct T { std::string name; DType type; std::vector<int64_t> ne; const void* data; size_t nbytes; };
  std::vector<T> tensors_;
};

// A writer pre-filled with every key of `f` (for re-writing a file with new tensors).
Writer writer_from(const File& f);

}  // namespace slimlm::gguf
