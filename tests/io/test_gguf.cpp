// GGUF reader/writer: real files survive read -> write -> read unchanged (metadata order, types,
// values, tensor bytes) and rewriting is deterministic; every metadata type, custom alignment and
// versions 2/3 round-trip; corrupt files (hand-built byte by byte) are refused with a one-line
// slimlm::Error and never crash, including a valid file truncated at every header byte.
#include "core/error.h"
#include "io/gguf.h"
#include "test_util.h"
#include <cstring>
#include <fstream>
#include <limits>

using namespace slimlm;
using namespace slimlm::test;
using gguf::Value;
using gguf::VType;
using namespace std::string_literals;

namespace {

std::vector<uint8_t> read_bytes(const std::string& path, size_t limit = SIZE_MAX) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() > limit) b.resize(limit);
  return b;
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// Deep, exact equality of two metadata values (floats compared bit for bit).
::testing::AssertionResult same_value(const Value& a, const Value& b) {
  if (a.type != b.type) return ::testing::AssertionFailure() << "type " << int(a.type) << " vs " << int(b.type);
  switch (a.type) {
    case VType::STRING:
      if (a.s != b.s) return ::testing::AssertionFailure() << "string '" << a.s << "' vs '" << b.s << "'";
      break;
    case VType::F32: case VType::F64:
      if (std::memcmp(&a.f, &b.f, sizeof a.f) != 0) return ::testing::AssertionFailure() << a.f << " vs " << b.f;
      break;
    case VType::ARRAY:
      if (a.elem != b.elem || a.arr.size() != b.arr.size())
        return ::testing::AssertionFailure() << "array elem/size differ";
      for (size_t k = 0; k < a.arr.size(); ++k)
        if (auto r = same_value(a.arr[k], b.arr[k]); !r) return r << " at [" << k << "]";
      break;
    default:
      if (a.u != b.u || a.i != b.i) return ::testing::AssertionFailure() << a.to_string() << " vs " << b.to_string();
  }
  return ::testing::AssertionSuccess();
}

void expect_same_file(const gguf::File& a, const gguf::File& b) {
  ASSERT_EQ(a.kv().size(), b.kv().size());
  for (size_t k = 0; k < a.kv().size(); ++k) {
    EXPECT_EQ(a.kv()[k].first, b.kv()[k].first) << "key order differs at " << k;
    EXPECT_TRUE(same_value(a.kv()[k].second, b.kv()[k].second)) << a.kv()[k].first;
  }
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t k = 0; k < a.tensors().size(); ++k) {
    const auto &x = a.tensors()[k], &y = b.tensors()[k];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.ne, y.ne) << x.name;
    EXPECT_EQ(x.type, y.type) << x.name;
    ASSERT_EQ(x.nbytes, y.nbytes) << x.name;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << "tensor bytes differ: " << x.name;
  }
}

void rewrite(const gguf::File& f, const std::string& out, uint32_t version = 3) {
  gguf::Writer w = gguf::writer_from(f);
  for (const auto& t : f.tensors()) w.add_tensor(t.name, t.type, t.ne, t.data, t.nbytes);
  w.write(out, version);
}

// Little-endian byte builder for hand-made (possibly corrupt) GGUF files.
struct Bytes {
  std::vector<uint8_t> b;
  template <class T> Bytes& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) { put(uint64_t(s.size())); b.insert(b.end(), s.begin(), s.end()); return *this; }
  Bytes& kv_u32(const std::string& k, uint32_t v) { str(k).put(uint32_t(VType::U32)).put(v); return *this; }
  Bytes& kv_str(const std::string& k, const std::string& v) { str(k).put(uint32_t(VType::STRING)).str(v); return *this; }
};

struct TSpec {
  std::string name;
  std::vector<uint64_t> ne;  // n_dims = ne.size()
  uint32_t type = 0;         // f32
  uint64_t offset = 0;
};

constexpr uint32_t kMagic = 0x46554747;

// A GGUF file: header, `n_kv` raw key/value records, tensor infos, padding to 32, `data_bytes`.
std::vector<uint8_t> raw_gguf(const Bytes& kvs, uint64_t n_kv, const std::vector<TSpec>& ts, size_t data_bytes,
                              uint32_t version = 3, uint32_t magic = kMagic) {
  Bytes h;
  h.put(magic).put(version).put(uint64_t(ts.size())).put(n_kv);
  h.b.insert(h.b.end(), kvs.b.begin(), kvs.b.end());
  for (const auto& t : ts) {
    h.str(t.name).put(uint32_t(t.ne.size()));
    for (uint64_t d : t.ne) h.put(d);
    h.put(t.type).put(t.offset);
  }
  h.b.resize((h.b.size() + 31) / 32 * 32 + data_bytes, 0x5a);
  return h.b;
}

std::vector<uint8_t> valid_raw() {  // one f32 tensor of 8 floats: accepted (checks the builder itself)
  Bytes kv;
  kv.kv_str("general.architecture", "llama");
  return raw_gguf(kv, 1, {{"w", {4, 2}, 0, 0}}, 32);
}

// Writes `bytes` and opens them; returns the error message, or a marker if none / another kind.
std::string open_error(const std::vector<uint8_t>& bytes) {
  const std::string p = temp_path("corrupt.gguf");
  write_bytes(p, bytes);
  try {
    gguf::File::open(p);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a slimlm::Error: ") + e.what() + ">";
  }
  return "<no error>";
}

#define EXPECT_REJECTED(bytes, fragment)                                                  \
  do {                                                                                    \
    const std::string msg_ = open_error(bytes);                                           \
    EXPECT_NE(msg_.find(fragment), std::string::npos) << "message: " << msg_;             \
    EXPECT_EQ(msg_.find('\n'), std::string::npos) << "multi-line message: " << msg_;     \
  } while (0)

}  // namespace

// ---------------------------------------------------------------- real files

class GgufRealFile : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufRealFile, RoundTripKeepsEverythingAndIsDeterministic) {
  const std::string src = model_path(GetParam());
  SLIMLM_REQUIRE_FILE(src);
  auto f = gguf::File::open(src);
  ASSERT_GT(f->kv().size(), 10u);
  ASSERT_GT(f->tensors().size(), 10u);
  const std::string a = temp_path("rt_a.gguf"), b = temp_path("rt_b.gguf");
  rewrite(*f, a, f->version());
  auto fa = gguf::File::open(a);
  EXPECT_EQ(fa->version(), f->version());
  EXPECT_EQ(fa->alignment(), f->alignment());
  expect_same_file(*f, *fa);
  rewrite(*fa, b, fa->version());
  const auto ba = read_bytes(a), bb = read_bytes(b);
  EXPECT_TRUE(ba == bb) << "read->write->read->write is not byte-identical";
  // Both files were written by llama.cpp's gguf writer, whose layout (metadata in order, tensor
  // infos, pad to alignment, each tensor's data padded to alignment) slimlm's writer follows,
  // so the rewrite reproduces the original byte for byte.
  EXPECT_TRUE(ba == read_bytes(src)) << "rewrite differs from the original file";
  std::filesystem::remove(a);
  std::filesystem::remove(b);
}

INSTANTIATE_TEST_SUITE_P(Models, GgufRealFile, ::testing::Values(kSmol, kGemma));

// ---------------------------------------------------------------- writer

TEST(GgufWriter, EveryMetadataTypeRoundTrips) {
  auto sc = [](VType t, uint64_t u, int64_t i, double f) { Value v; v.type = t; v.u = u; v.i = i; v.f = f; return v; };
  auto arr = [](VType elem, std::vector<Value> xs) { Value v; v.type = VType::ARRAY; v.elem = elem; v.arr = std::move(xs); return v; };
  std::vector<std::pair<std::string, Value>> kv = {
      {"t.u8", sc(VType::U8, 255, 0, 0)},
      {"t.i8", sc(VType::I8, 0, -128, 0)},
      {"t.u16", sc(VType::U16, 65535, 0, 0)},
      {"t.i16", sc(VType::I16, 0, -32768, 0)},
      {"t.u32", sc(VType::U32, 4294967295u, 0, 0)},
      {"t.i32", sc(VType::I32, 0, std::numeric_limits<int32_t>::min(), 0)},
      {"t.f32", sc(VType::F32, 0, 0, double(-1.5e-39f))},  // a subnormal float
      {"t.bool", sc(VType::BOOL, 1, 0, 0)},
      {"t.bool0", sc(VType::BOOL, 0, 0, 0)},
      {"t.string", Value::of_str("héllo\0world with a NUL"s)},
      {"t.empty", Value::of_str("")},
      {"t.u64", sc(VType::U64, std::numeric_limits<uint64_t>::max(), 0, 0)},
      {"t.i64", sc(VType::I64, 0, std::numeric_limits<int64_t>::min(), 0)},
      {"t.f64", sc(VType::F64, 0, 0, 3.141592653589793238)},
      {"a.u8", arr(VType::U8, {sc(VType::U8, 0, 0, 0), sc(VType::U8, 200, 0, 0)})},
      {"a.i8", arr(VType::I8, {sc(VType::I8, 0, -5, 0), sc(VType::I8, 0, 127, 0)})},
      {"a.u16", arr(VType::U16, {sc(VType::U16, 1, 0, 0), sc(VType::U16, 60000, 0, 0)})},
      {"a.i16", arr(VType::I16, {sc(VType::I16, 0, -300, 0)})},
      {"a.u32", arr(VType::U32, {sc(VType::U32, 7, 0, 0), sc(VType::U32, 3000000000u, 0, 0)})},
      {"a.i32", Value::of_i32s({-1, 0, 1, 2147483647})},
      {"a.f32", Value::of_f32s({0.1f, -0.0f, 1e30f})},
      {"a.bool", arr(VType::BOOL, {sc(VType::BOOL, 1, 0, 0), sc(VType::BOOL, 0, 0, 0)})},
      {"a.string", Value::of_strs({"a", "", "ccc", std::string(300, 'x')})},
      {"a.u64", arr(VType::U64, {sc(VType::U64, uint64_t(1) << 63, 0, 0)})},
      {"a.i64", arr(VType::I64, {sc(VType::I64, 0, -(int64_t(1) << 62), 0)})},
      {"a.f64", arr(VType::F64, {sc(VType::F64, 0, 0, 1e300), sc(VType::F64, 0, 0, -2.5)})},
      {"a.empty", arr(VType::U32, {})},
  };
  const float w[6] = {1, 2, 3, 4, 5, 6};
  for (uint32_t version : {2u, 3u}) {
    gguf::Writer wr;
    for (const auto& [k, v] : kv) wr.set(k, v);
    wr.add_tensor("w", DType::F32, {3, 2}, w, sizeof w);
    const std::string p = temp_path("types.gguf");
    wr.write(p, version);
    auto f = gguf::File::open(p);
    EXPECT_EQ(f->version(), version);
    ASSERT_EQ(f->kv().size(), kv.size());
    for (size_t k = 0; k < kv.size(); ++k) {
      EXPECT_EQ(f->kv()[k].first, kv[k].first);
      EXPECT_TRUE(same_value(f->kv()[k].second, kv[k].second)) << kv[k].first << " (v" << version << ")";
    }
    ASSERT_NE(f->tensor("w"), nullptr);
    EXPECT_EQ(std::memcmp(f->tensor("w")->data, w, sizeof w), 0);
  }
}

TEST(GgufWriter, CustomAlignmentIsRespected) {
  std::vector<float> a(3, 1.f), b(5, 2.f), c(64, 3.f);
  for (uint32_t align : {8u, 64u, 256u}) {
    gguf::Writer wr;
    wr.set("general.alignment", Value::of_u32(align));
    wr.set("general.name", Value::of_str("odd"));  // odd-sized header
    wr.add_tensor("a", DType::F32, {3}, a.data(), 12);
    wr.add_tensor("b", DType::F32, {5}, b.data(), 20);
    wr.add_tensor("c", DType::F32, {32, 2}, c.data(), 256);
    const std::string p = temp_path("align.gguf");
    wr.write(p);
    auto f = gguf::File::open(p);
    EXPECT_EQ(f->alignment(), align);
    const uint8_t* first = f->tensors()[0].data;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % align, 0u) << "data section unaligned";
    for (const auto& t : f->tensors()) {
      EXPECT_EQ(t.offset % align, 0u) << t.name << " at alignment " << align;
      EXPECT_EQ(size_t(t.data - first) % align, 0u) << t.name;
    }
    EXPECT_EQ(std::memcmp(f->tensor("b")->data, b.data(), 20), 0);
    EXPECT_EQ(std::memcmp(f->tensor("c")->data, c.data(), 256), 0);
  }
}

TEST(GgufWriter, RejectsInvalidAlignmentInsteadOfCrashing) {
  float x[2] = {1, 2};
  for (uint32_t align : {0u, 3u, 4u, 1u << 20}) {
    gguf::Writer wr;
    wr.set("general.alignment", Value::of_u32(align));
    wr.add_tensor("x", DType::F32, {2}, x, sizeof x);
    const std::string p = temp_path("badalign.gguf");
    EXPECT_THROW(wr.write(p), Error) << "alignment " << align;
    EXPECT_FALSE(std::filesystem::exists(p));
  }
}

// ---------------------------------------------------------------- corrupt files

TEST(GgufCorrupt, BuilderMakesAValidFile) {
  EXPECT_EQ(open_error(valid_raw()), "<no error>");
}

TEST(GgufCorrupt, WrongMagicAndVersion) {
  Bytes kv;
  EXPECT_REJECTED(raw_gguf(kv, 0, {}, 0, 3, 0x58554747), "magic");
  EXPECT_REJECTED(raw_gguf(kv, 0, {}, 0, 1), "version");
  EXPECT_REJECTED(raw_gguf(kv, 0, {}, 0, 4), "version");
  EXPECT_REJECTED(raw_gguf(kv, 0, {}, 0, 0x03000000), "version");  // big-endian file
  EXPECT_REJECTED((std::vector<uint8_t>{'G', 'G'}), "magic");
  EXPECT_REJECTED(std::vector<uint8_t>{}, "empty");
}

TEST(GgufCorrupt, TruncatedAtEveryHeaderByteAndInTheData) {
  // A small valid file with metadata of several types and tensors of several formats; the last
  // tensor's size is a multiple of 32 so that any cut before the end loses tensor bytes.
  gguf::Writer wr;
  wr.set("general.architecture", Value::of_str("llama"));
  wr.set("x.count", Value::of_u32(7));
  wr.set("x.list", Value::of_strs({"alpha", "beta", "", "gamma"}));
  wr.set("x.f", Value::of_f32s({1.f, 2.f, 3.f}));
  std::vector<float> f32(96, 0.5f);
  std::vector<uint8_t> q8(34 * 4, 1), f16(64, 2);
  wr.add_tensor("blk.0.a", DType::F32, {32, 3}, f32.data(), 384);
  wr.add_tensor("blk.0.q", DType::Q8_0, {64, 2}, q8.data(), q8.size());
  wr.add_tensor("blk.0.h", DType::F16, {32}, f16.data(), 64);
  const std::string p = temp_path("small.gguf");
  wr.write(p);
  const auto full = read_bytes(p);
  auto f = gguf::File::open(p);
  // Locate the data section from the file itself: the first tensor is 96 floats of 0.5.
  size_t start = 0;
  while (start + 4 <= full.size() && std::memcmp(&full[start], f32.data(), 4) != 0) ++start;
  ASSERT_LT(start, full.size());
  ASSERT_EQ(start % 32, 0u);
  ASSERT_EQ(full.size(), start + f->tensors().back().offset + 64);
  int cuts = 0;
  for (size_t n = 0; n < full.size(); n += (n < start + 8 ? 1 : 37)) {
    const std::string msg = open_error(std::vector<uint8_t>(full.begin(), full.begin() + long(n)));
    ASSERT_FALSE(msg.starts_with("<")) << "cut at " << n << ": " << msg;
    ASSERT_EQ(msg.find('\n'), std::string::npos) << msg;
    ++cuts;
  }
  const std::string last = open_error(std::vector<uint8_t>(full.begin(), full.end() - 1));
  EXPECT_NE(last.find("past the end"), std::string::npos) << last;
  EXPECT_GT(cuts, int(start));
}

TEST(GgufCorrupt, TensorInfoErrors) {
  Bytes kv;
  auto one = [&](TSpec t, size_t data = 64) { return raw_gguf(kv, 0, {std::move(t)}, data); };
  EXPECT_REJECTED(one({"w", {4, 2}, 0, 1024}), "past the end");
  EXPECT_REJECTED(one({"w", {4, 2}, 0, uint64_t(1) << 62}), "past the end");
  EXPECT_REJECTED(one({"w", {4, 2}, 0, 32}, 48), "past the end");  // 32 bytes at 32 in a 48-byte section
  EXPECT_REJECTED(one({"w", {4, 2}, 0, 4}), "aligned");
  EXPECT_REJECTED(one({"w", {uint64_t(1) << 50}, 0, 0}), "absurd");
  EXPECT_REJECTED(one({"w", {1u << 30, 1u << 30}, 0, 0}), "absurd");  // each fine, the product is not
  EXPECT_REJECTED(one({"w", {4, 0}, 0, 0}), "absurd");
  EXPECT_REJECTED(one({"w", {}, 0, 0}), "dimensions");
  EXPECT_REJECTED(one({"w", {1, 1, 1, 1, 1}, 0, 0}), "dimensions");
  EXPECT_REJECTED(one({"w", {4, 2}, 99, 0}), "type id");
  EXPECT_REJECTED(one({"w", {4, 2}, 4, 0}), "type id");  // removed Q4_2
  EXPECT_REJECTED(one({"w", {33, 2}, 8, 0}), "multiple");  // q8_0 row of 33
  EXPECT_REJECTED(one({"w", {100, 1}, 12, 0}), "multiple");  // q4_K row of 100
  EXPECT_REJECTED(raw_gguf(kv, 0, {{"w", {4}, 0, 0}, {"w", {4}, 0, 32}}, 64), "duplicate");
}

TEST(GgufCorrupt, MetadataErrors) {
  {
    Bytes kv;  // a key whose length runs past the file
    kv.put(uint64_t(1) << 40);
    EXPECT_REJECTED(raw_gguf(kv, 1, {}, 0), "truncated");
  }
  {
    Bytes kv;  // a string value longer than the file
    kv.str("general.name").put(uint32_t(VType::STRING)).put(uint64_t(1000));
    EXPECT_REJECTED(raw_gguf(kv, 1, {}, 0), "truncated");
    Bytes kv2;
    kv2.str("general.name").put(uint32_t(VType::STRING)).put(~uint64_t(0));
    EXPECT_REJECTED(raw_gguf(kv2, 1, {}, 0), "truncated");
  }
  for (auto [elem, len] : std::vector<std::pair<VType, uint64_t>>{
           {VType::U32, uint64_t(1) << 60}, {VType::U32, uint64_t(1) << 63}, {VType::STRING, uint64_t(1) << 61},
           {VType::U8, uint64_t(1) << 40}, {VType::F64, ~uint64_t(0)}}) {
    Bytes kv;  // absurd array lengths: refused before allocating
    kv.str("tokenizer.ggml.tokens").put(uint32_t(VType::ARRAY)).put(uint32_t(elem)).put(len);
    EXPECT_REJECTED(raw_gguf(kv, 1, {}, 0), "");
  }
  {
    Bytes kv;  // nested array
    kv.str("a").put(uint32_t(VType::ARRAY)).put(uint32_t(VType::ARRAY)).put(uint64_t(1));
    kv.put(uint32_t(VType::U8)).put(uint64_t(1)).put(uint8_t(1));
    EXPECT_REJECTED(raw_gguf(kv, 1, {}, 0), "nested");
  }
  {
    Bytes kv;
    kv.str("a").put(uint32_t(13)).put(uint32_t(0));
    EXPECT_REJECTED(raw_gguf(kv, 1, {}, 0), "unknown type");
    Bytes kv2;
    kv2.str("a").put(uint32_t(VType::ARRAY)).put(uint32_t(77)).put(uint64_t(1));
    EXPECT_REJECTED(raw_gguf(kv2, 1, {}, 0), "unknown array element type");
  }
  {
    Bytes kv;
    kv.kv_u32("general.alignment", 32).kv_str("x", "y").kv_u32("general.alignment", 32);
    EXPECT_REJECTED(raw_gguf(kv, 3, {}, 0), "duplicate metadata key 'general.alignment'");
  }
  // The spec requires a multiple of 8: alignment 1 or 4 would leave f32 data misaligned (UB).
  for (uint32_t al : {0u, 1u, 3u, 4u, 24u, 1u << 20}) {
    Bytes kv;
    kv.kv_u32("general.alignment", al);
    EXPECT_REJECTED(raw_gguf(kv, 1, {}, 0), "alignment");
  }
  {
    Bytes kv;
    kv.kv_str("general.alignment", "32");
    EXPECT_REJECTED(raw_gguf(kv, 1, {}, 0), "alignment");
  }
  Bytes none;  // absurd counts
  EXPECT_REJECTED(raw_gguf(none, uint64_t(1) << 40, {}, 0), "corrupt header");
  Bytes kv;
  kv.kv_u32("a", 1);
  auto b = raw_gguf(kv, 1, {}, 0);
  std::memcpy(&b[8], "\xff\xff\xff\xff\xff\xff\x00\x00", 8);  // tensor count 2^48
  EXPECT_REJECTED(b, "corrupt header");
}
