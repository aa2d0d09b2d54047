#include "io/safetensors.h"
#include "core/error.h"
#include <cstring>
#include <nlohmann/json.hpp>

namespace slimlm::safetensors {

namespace {
DType parse_dtype(const std::string& s, const std::string& path, const std::string& name) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  fail(path, ": tensor '", name, "' has unsupported dtype ", s, " (supported: F32, F16, BF16)");
}
const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    default: fail("safetensors can only hold f32, f16 and bf16 tensors, not ", type_name(t));
  }
}
}  // namespace

std::shared_ptr<File> File::open(const std::string& path) {
  auto f = std::make_shared<File>();
  f->map_ = std::make_unique<MappedFile>(path);
  const size_t size = f->map_->size();
  if (size < 8) fail(path, ": truncated safetensors file");
  uint64_t hlen;
  std::memcpy(&hlen, f->map_->data(), 8);
  if (hlen > size - 8 || hlen > (uint64_t(100) << 20)) fail(path, ": corrupt safetensors header length ", hlen);
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(f->map_->data() + 8, f->map_->data() + 8 + hlen);
  } catch (const std::exception& e) {
    fail(path, ": corrupt safetensors header (", e.what(), ")");
  }
  if (!h.is_object()) fail(path, ": safetensors header is not a JSON object");
  const uint8_t* base = f->map_->data() + 8 + hlen;
  const size_t avail = size - 8 - size_t(hlen);
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const auto& v = it.value();
    try {
      Entry e;
      e.type = parse_dtype(v.at("dtype").get<std::string>(), path, it.key());
      int64_t n = 1;
      for (const auto& d : v.at("shape")) {
        const int64_t x = d.get<int64_t>();
        if (x < 0 || x > (int64_t(1) << 40) || (x && n > (int64_t(1) << 42) / x)) fail(path, ": tensor '", it.key(), "' has an absurd shape");
        e.shape.push_back(x);
        n *= x;
      }
      const auto& off = v.at("data_offsets");
      const uint64_t a = off.at(0).get<uint64_t>(), b = off.at(1).get<uint64_t>();
      if (a > b || b > avail) fail(path, ": tensor '", it.key(), "' data lies past the end of the file");
      e.nbytes = size_t(b - a);
      if (e.nbytes != size_t(n) * traits(e.type).block_bytes)
        fail(path, ": tensor '", it.key(), "' has ", e.nbytes, " bytes, its shape needs ", size_t(n) * traits(e.type).block_bytes);
      e.data = base + a;
      f->tensors_[it.key()] = std::move(e);
    } catch (const nlohmann::json::exception& ex) {
      fail(path, ": tensor '", it.key(), "' has a malformed header entry (", ex.what(), ")");
    }
  }
  return f;
}

const Entry* File::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void write(const std::string& path, const std::vector<WriteEntry>& tensors) {
  nlohmann::json h = nlohmann::json::object();
  uint64_t off = 0;
  for (const auto& t : tensors) {
    h[t.name] = {{"dtype", dtype_name(t.type)}, {"shape", t.shape}, {"data_offsets", {off, off + t.nbytes}}};
    off += t.nbytes;
  }
  std::string hs = h.dump();
  hs.append((8 - hs.size() % 8) % 8, ' ');
  AtomicFile f(path);
  const uint64_t n = hs.size();
  f.write(&n, 8);
  f.write(hs.data(), hs.size());
  for (const auto& t : tensors) f.write(t.data, t.nbytes);
  f.commit();
}

}  // namespace slimlm::safetensors
