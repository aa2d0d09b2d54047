#include "io/gguf.h"
#include "core/dtype_custom.h"
#include "core/error.h"
#include <cstring>
#include <limits>

namespace slimlm::gguf {

namespace {
constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxDims = 4;

size_t scalar_size(VType t) {
  switch (t) {
    case VType::U8: case VType::I8: case VType::BOOL: return 1;
    case VType::U16: case VType::I16: return 2;
    case VType::U32: case VType::I32: case VType::F32: return 4;
    case VType::U64: case VType::I64: case VType::F64: return 8;
    default: return 0;
  }
}

// Bounds-checked little-endian cursor over the mapped file.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  size_t pos() const { return pos_; }
  void need(uint64_t k, const char* what) const {
    if (k > n_ - pos_) fail(path_, ": truncated file (reading ", what, " at byte ", pos_, ")");
  }
  template <class T> T get(const char* what) {
    need(sizeof(T), what); T v; std::memcpy(&v, p_ + pos_, sizeof(T)); pos_ += sizeof(T); return v;
  }
  std::string str(const char* what) {
    uint64_t len = get<uint64_t>(what);
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }
 private:
  const uint8_t* p_; size_t n_; size_t pos_ = 0; const std::string& path_;
};

Value read_value(Reader& r, VType t, int depth, const std::string& key) {
  Value v; v.type = t;
  switch (t) {
    case VType::U8: v.u = r.get<uint8_t>("u8"); break;
    case VType::I8: v.i = r.get<int8_t>("i8"); break;
    case VType::U16: v.u = r.get<uint16_t>("u16"); break;
    case VType::I16: v.i = r.get<int16_t>("i16"); break;
    case VType::U32: v.u = r.get<uint32_t>("u32"); break;
    case VType::I32: v.i = r.get<int32_t>("i32"); break;
    case VType::F32: v.f = r.get<float>("f32"); break;
    case VType::BOOL: v.u = r.get<uint8_t>("bool") != 0; break;
    case VType::STRING: v.s = r.str("string"); break;
    case VType::U64: v.u = r.get<uint64_t>("u64"); break;
    case VType::I64: v.i = r.get<int64_t>("i64"); break;
    case VType::F64: v.f = r.get<double>("f64"); break;
    case VType::ARRAY: {
      if (depth > 0) fail("metadata key '", key, "': nested arrays are not supported");
      uint32_t et = r.get<uint32_t>("array type");
      if (et > uint32_t(VType::F64)) fail("metadata key '", key, "': unknown array element type ", et);
      v.elem = VType(et);
      uint64_t n = r.get<uint64_t>("array length");
      // each element needs at least one byte (strings at least 8): reject absurd lengths early
      size_t min_el = v.elem == VType::STRING ? 8 : std::max<size_t>(1, scalar_size(v.elem));
      r.need(n * min_el / min_el == n ? n * min_el : std::numeric_limits<uint64_t>::max(), "array");
      v.arr.reserve(size_t(n));
      for (uint64_t k = 0; k < n; ++k) v.arr.push_back(read_value(r, v.elem, depth + 1, key));
      break;
    }
    default: fail("metadata key '", key, "': unknown value type ", uint32_t(t));
  }
  return v;
}

void put_value(AtomicFile& f, const Value& v) {
  auto put = [&](auto x) { f.write(&x, sizeof(x)); };
  switch (v.type) {
    case VType::U8: put(uint8_t(v.u)); break;
    case VType::I8: put(int8_t(v.i)); break;
    case VType::U16: put(uint16_t(v.u)); break;
    case VType::I16: put(int16_t(v.i)); break;
    case VType::U32: put(uint32_t(v.u)); break;
    case VType::I32: put(int32_t(v.i)); break;
    case VType::F32: put(float(v.f)); break;
    case VType::BOOL: put(uint8_t(v.u ? 1 : 0)); break;
    case VType::STRING: put(uint64_t(v.s.size())); f.write(v.s.data(), v.s.size()); break;
    case VType::U64: put(uint64_t(v.u)); break;
    case VType::I64: put(int64_t(v.i)); break;
    case VType::F64: put(double(v.f)); break;
    case VType::ARRAY:
      put(uint32_t(v.elem)); put(uint64_t(v.arr.size()));
      for (const auto& e : v.arr) put_value(f, e);
      break;
  }
}
}  // namespace

Value Value::of_strs(const std::vector<std::string>& v) {
  Value x; x.type = VType::ARRAY; x.elem = VType::STRING;
  for (const auto& s : v) x.arr.push_back(of_str(s));
  return x;
}
Value Value::of_f32s(const std::vector<float>& v) {
  Value x; x.type = VType::ARRAY; x.elem = VType::F32;
  for (float s : v) x.arr.push_back(of_f32(s));
  return x;
}
Value Value::of_i32s(const std::vector<int32_t>& v) {
  Value x; x.type = VType::ARRAY; x.elem = VType::I32;
  for (int32_t s : v) x.arr.push_back(of_i32(s));
  return x;
}

bool Value::is_int() const {
  switch (type) {
    case VType::U8: case VType::I8: case VType::U16: case VType::I16: case VType::U32:
    case VType::I32: case VType::U64: case VType::I64: case VType::BOOL: return true;
    default: return false;
  }
}

int64_t Value::as_int() const {
  switch (type) {
    case VType::U8: case VType::U16: case VType::U32: case VType::BOOL: return int64_t(u);
    case VType::U64:
      if (u > uint64_t(std::numeric_limits<int64_t>::max())) fail("integer value ", u, " out of range");
      return int64_t(u);
    case VType::I8: case VType::I16: case VType::I32: case VType::I64: return i;
    default: fail("expected an integer value");
  }
}

double Value::as_float() const { return is_float() ? f : double(as_int()); }

std::string Value::to_string(size_t max_items) const {
  switch (type) {
    case VType::STRING: return s.size() > 80 ? cat('"', s.substr(0, 77), "...\"") : cat('"', s, '"');
    case VType::F32: case VType::F64: return cat(f);
    case VType::BOOL: return u ? "true" : "false";
    case VType::ARRAY: {
      std::string out = "[";
      for (size_t k = 0; k < arr.size() && k < max_items; ++k) out += (k ? ", " : "") + arr[k].to_string();
      if (arr.size() > max_items) out += cat(", ... (", arr.size(), " items)");
      return out + "]";
    }
    default: return cat(as_int());
  }
}

int64_t TensorInfo::nelements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::unique_ptr<File> File::open(const std::string& path) {
  auto f = std::unique_ptr<File>(new File());
  f->map_ = std::make_unique<MappedFile>(path);
  Reader r(f->map_->data(), f->map_->size(), path);
  if (f->map_->size() < 4 || r.get<uint32_t>("magic") != kMagic) fail(path, ": not a GGUF file (bad magic)");
  f->version_ = r.get<uint32_t>("version");
  if (f->version_ != 2 && f->version_ != 3)
    fail(path, ": unsupported GGUF version ", f->version_, " (supported: 2, 3)");
  uint64_t n_tensors = r.get<uint64_t>("tensor count"), n_kv = r.get<uint64_t>("kv count");
  if (n_tensors > f->map_->size() / 24 || n_kv > f->map_->size() / 12)
    fail(path, ": corrupt header (", n_tensors, " tensors, ", n_kv, " keys in ", f->map_->size(), " bytes)");
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.str("metadata key");
    uint32_t t = r.get<uint32_t>("value type");
    if (t > uint32_t(VType::F64)) fail(path, ": metadata key '", key, "' has unknown type ", t);
    Value v = read_value(r, VType(t), 0, key);
    if (f->kv_index_.count(key)) fail(path, ": duplicate metadata key '", key, "'");
    f->kv_index_[key] = f->kv_.size();
    f->kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const Value* a = f->find("general.alignment")) {
    int64_t al = a->is_int() ? a->as_int() : 0;
    // The spec requires a multiple of 8; smaller ones would leave f32 data misaligned.
    if (al < 8 || (al & (al - 1)) != 0 || al > 65536) fail(path, ": invalid general.alignment ", a->to_string());
    f->alignment_ = uint32_t(al);
  }
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    t.name = r.str("tensor name");
    uint32_t nd = r.get<uint32_t>("tensor dims");
    if (nd == 0 || nd > kMaxDims) fail(path, ": tensor '", t.name, "' has ", nd, " dimensions (1..4 allowed)");
    int64_t total = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      uint64_t v = r.get<uint64_t>("tensor dim");
      if (v == 0 || v > (uint64_t(1) << 40) || uint64_t(total) > (uint64_t(1) << 42) / v)
        fail(path, ": tensor '", t.name, "' has an absurd dimension ", v);
      t.ne.push_back(int64_t(v));
      total *= int64_t(v);
    }
    uint32_t ty = r.get<uint32_t>("tensor type");
    const TypeTraits* tt = find_type(ty);
    if (!tt && !valid_custom_id(ty)) fail(path, ": tensor '", t.name, "' has unsupported type id ", ty);
    t.type = DType(ty);
    if (tt && t.ne[0] % tt->block != 0)
      fail(path, ": tensor '", t.name, "' row length ", t.ne[0], " is not a multiple of ", tt->name, " block ", tt->block);
    t.nbytes = row_bytes(t.type, t.ne[0]) * size_t(total / t.ne[0]);
    t.offset = r.get<uint64_t>("tensor offset");
    if (t.offset % f->alignment_ != 0) fail(path, ": tensor '", t.name, "' offset ", t.offset, " is not aligned");
    if (f->tensor_index_.count(t.name)) fail(path, ": duplicate tensor '", t.name, "'");
    f->tensor_index_[t.name] = f->tensors_.size();
    f->tensors_.push_back(std::move(t));
  }
  size_t data_start = (r.pos() + f->alignment_ - 1) / f->alignment_ * f->alignment_;
  size_t avail = f->map_->size() >= data_start ? f->map_->size() - data_start : 0;
  for (auto& t : f->tensors_) {
    if (t.offset > avail || t.nbytes > avail - t.offset)
      fail(path, ": tensor '", t.name, "' data (offset ", t.offset, ", ", t.nbytes, " bytes) lies past the end of the file");
    t.data = f->map_->data() + data_start + t.offset;
  }
  return f;
}

const Value* File::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string File::get_str(const std::string& key) const {
  auto v = opt_str(key);
  if (!v) fail(path(), ": missing metadata key '", key, "'");
  return *v;
}
int64_t File::get_int(const std::string& key) const {
  auto v = opt_int(key);
  if (!v) fail(path(), ": missing metadata key '", key, "'");
  return *v;
}
double File::get_float(const std::string& key) const {
  auto v = opt_float(key);
  if (!v) fail(path(), ": missing metadata key '", key, "'");
  return *v;
}
std::optional<int64_t> File::opt_int(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_int()) fail(path(), ": metadata key '", key, "' is not an integer");
  return v->as_int();
}
std::optional<double> File::opt_float(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_int() && !v->is_float()) fail(path(), ": metadata key '", key, "' is not a number");
  return v->as_float();
}
std::optional<std::string> File::opt_str(const std::string& key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != VType::STRING) fail(path(), ": metadata key '", key, "' is not a string");
  return v->s;
}

void Writer::set(const std::string& key, Value v) {
  for (auto& kv : kv_) if (kv.first == key) { kv.second = std::move(v); return; }
  kv_.emplace_back(key, std::move(v));
}

void Writer::remove(const std::string& key) {
  std::erase_if(kv_, [&](const auto& kv) { return kv.first == key; });
}

void Writer::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t nbytes) {
  SLIMLM_ASSERT(!ne.empty() && ne.size() <= kMaxDims);
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  if (row_bytes(type, ne[0]) * size_t(rows) != nbytes) fail("tensor '", name, "': size does not match its shape");
  tensors_.push_back({name, type, std::move(ne), data, nbytes});
}

void Writer::write(const std::string& path, uint32_t version) const {
  uint32_t align = 32;
  for (const auto& kv : kv_)
    if (kv.first == "general.alignment") {  // same rule as the reader; 0 would divide by zero
      const int64_t a = kv.second.is_int() ? kv.second.as_int() : 0;
      if (a < 8 || (a & (a - 1)) != 0 || a > 65536) fail(path, ": invalid general.alignment ", kv.second.to_string());
      align = uint32_t(a);
    }
  AtomicFile f(path);
  auto put = [&](auto x) { f.write(&x, sizeof(x)); };
  auto put_str = [&](const std::string& s) { put(uint64_t(s.size())); f.write(s.data(), s.size()); };
  put(kMagic); put(version); put(uint64_t(tensors_.size())); put(uint64_t(kv_.size()));
  size_t pos = 24;
  for (const auto& [k, v] : kv_) { put_str(k); put(uint32_t(v.type)); put_value(f, v); }
  std::vector<uint64_t> offsets;
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    put_str(t.name); put(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) put(uint64_t(d));
    put(uint32_t(t.type)); put(off);
    offsets.push_back(off);
    off += (t.nbytes + align - 1) / align * align;
  }
  pos = size_t(std::ftell(f.get()));
  static const uint8_t zeros[65536] = {};
  f.write(zeros, (align - pos % align) % align);
  for (const auto& t : tensors_) {
    f.write(t.data, t.nbytes);
    f.write(zeros, (align - t.nbytes % align) % align);
  }
  f.commit();
}

Writer writer_from(const File& file) {
  Writer w;
  for (const auto& [k, v] : file.kv()) w.set(k, v);
  return w;
}

}  // namespace slimlm::gguf
