// Block formats against an independent reference: fixtures written by gguf-py (numpy) through
// scripts/make-block-fixtures.py must match bit for bit, in both directions. Plus properties:
// quantization rounds to the nearest grid value, f16/bf16 round to nearest even, zeros stay zero.
#include "core/dtype.h"
#include "core/dtype_blocks.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace slimlm {
namespace {

// ---- fixture files (format: docstring of scripts/make-block-fixtures.py)
struct Record {
  std::string tag;
  uint32_t kind = 0;  // 0: bytes -> f32 (dequant), 1: f32 -> bytes (quant)
  uint32_t n_blocks = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> values;
};

struct Fixture {
  uint32_t type = 0, block = 0, block_bytes = 0;
  std::vector<Record> records;
};

struct Reader {
  std::vector<uint8_t> data;
  size_t at = 0;
  bool take(void* dst, size_t n) {
    if (data.size() - at < n) return false;
    std::memcpy(dst, data.data() + at, n);
    at += n;
    return true;
  }
  uint32_t u32() { uint32_t v = 0; if (!take(&v, 4)) throw std::runtime_error("truncated"); return v; }
};

Fixture load_fixture(std::string name) {
  for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  const std::string path = std::string(SLIMLM_SOURCE_DIR) + "/tests/data/blocks/" + name + ".bin";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + " (scripts/make-block-fixtures.py)");
  Reader r{std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {})};
  char magic[4];
  if (!r.take(magic, 4) || std::memcmp(magic, "SLBK", 4) != 0 || r.u32() != 1)
    throw std::runtime_error(path + ": not a version-1 block fixture");
  Fixture f;
  f.type = r.u32(); f.block = r.u32(); f.block_bytes = r.u32();
  const uint32_t n_records = r.u32();
  for (uint32_t i = 0; i < n_records; ++i) {
    Record rec;
    char tag[32];
    if (!r.take(tag, 32)) throw std::runtime_error(path + ": truncated record");
    rec.tag.assign(tag, strnlen(tag, 32));
    rec.kind = r.u32();
    rec.n_blocks = r.u32();
    rec.bytes.resize(size_t(rec.n_blocks) * f.block_bytes);
    rec.values.resize(size_t(rec.n_blocks) * f.block);
    const bool ok = rec.kind == 0
        ? r.take(rec.bytes.data(), rec.bytes.size()) && r.take(rec.values.data(), rec.values.size() * 4)
        : r.take(rec.values.data(), rec.values.size() * 4) && r.take(rec.bytes.data(), rec.bytes.size());
    if (!ok || rec.kind > 1) throw std::runtime_error(path + ": bad record '" + rec.tag + "'");
    f.records.push_back(std::move(rec));
  }
  if (r.at != r.data.size()) throw std::runtime_error(path + ": trailing bytes");
  return f;
}

uint32_t bits_of(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
float float_of(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

std::string describe(float f) {
  char s[64];
  std::snprintf(s, sizeof s, "%.9g (0x%08x)", double(f), bits_of(f));
  return s;
}

// ---- bit-exact against the fixtures, for every type in the table
class BlockFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(BlockFixture, MatchesReferenceBitForBit) {
  const TypeTraits& tt = traits(type_from_name(GetParam()));
  const Fixture f = load_fixture(GetParam());
  ASSERT_EQ(f.type, uint32_t(tt.type));
  ASSERT_EQ(f.block, uint32_t(tt.block));
  ASSERT_EQ(f.block_bytes, tt.block_bytes);
  int n_dequant = 0, n_quant = 0;
  for (const Record& rec : f.records) {
    SCOPED_TRACE(std::string(tt.name) + " record '" + rec.tag + "'");
    const int64_t n = int64_t(rec.values.size());
    if (rec.kind == 0) {
      ++n_dequant;
      // Misaligned source (offset 1) and a canary past the end of the output.
      std::vector<uint8_t> src(rec.bytes.size() + 1);
      std::memcpy(src.data() + 1, rec.bytes.data(), rec.bytes.size());
      std::vector<float> got(size_t(n) + 1, float_of(0x7fc0beef));
      tt.to_f32(src.data() + 1, got.data(), n);
      EXPECT_EQ(bits_of(got[size_t(n)]), 0x7fc0beefu) << "wrote past n";
      int shown = 0;
      for (int64_t i = 0; i < n && shown < 5; ++i) {
        if (bits_of(got[size_t(i)]) == bits_of(rec.values[size_t(i)])) continue;
        ADD_FAILURE() << "element " << i << " (block " << i / tt.block << "): expected "
                      << describe(rec.values[size_t(i)]) << ", got " << describe(got[size_t(i)]);
        ++shown;
      }
    } else {
      ++n_quant;
      ASSERT_NE(tt.from_f32, nullptr) << "fixture has quantization records";
      std::vector<uint8_t> got(rec.bytes.size() + 2, 0xA5);
      tt.from_f32(rec.values.data(), got.data() + 1, n);
      EXPECT_EQ(got[0], 0xA5);
      EXPECT_EQ(got.back(), 0xA5) << "wrote past the last block";
      int shown = 0;
      for (size_t i = 0; i < rec.bytes.size() && shown < 5; ++i) {
        if (got[i + 1] == rec.bytes[i]) continue;
        ADD_FAILURE() << "byte " << i << " (block " << i / tt.block_bytes << ", offset "
                      << i % tt.block_bytes << "): expected " << int(rec.bytes[i]) << ", got "
                      << int(got[i + 1]);
        ++shown;
      }
    }
  }
  EXPECT_GE(n_dequant, 2) << "fixture lacks dequantization records";
  if (tt.from_f32) {
    EXPECT_GE(n_quant, 5) << "fixture lacks quantization records";
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, BlockFixture,
                         ::testing::Values("f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1",
                                           "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "q8_K"),
                         [](const auto& info) { return std::string(info.param); });

// ---- quantize then dequantize: every value lands on the grid point nearest to it
struct Grid {
  const char* name;
  int kmin, kmax;  // integer codes; value = k * d (+ m for the asymmetric formats)
  bool has_min;
};

class RoundTrip : public ::testing::TestWithParam<Grid> {};

float f16_at(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return f16_to_f32(h); }

TEST_P(RoundTrip, NearestGridPointWithinHalfStep) {
  const Grid g = GetParam();
  const TypeTraits& tt = traits(type_from_name(g.name));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int blocks = 64;
  std::vector<float> x(size_t(blocks) * tt.block), y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float scale = std::ldexp(1.0f, int(i / tt.block % 16) - 8);  // 2^-8 … 2^7 per block
    x[i] = normal(rng) * scale + (i / tt.block % 3 == 0 ? scale : 0.0f);
  }
  std::vector<uint8_t> q(row_bytes(tt.type, int64_t(x.size())));
  tt.from_f32(x.data(), q.data(), int64_t(x.size()));
  tt.to_f32(q.data(), y.data(), int64_t(y.size()));
  for (int b = 0; b < blocks; ++b) {
    const uint8_t* blk = q.data() + size_t(b) * tt.block_bytes;
    const float d = f16_at(blk), m = g.has_min ? f16_at(blk + 2) : 0.0f;
    // The quantizer rounds with the exact scale; the block stores it (and m) as f16.
    const float slack = float(g.kmax - g.kmin + 1) * std::fabs(d) * 0x1p-10f + std::fabs(m) * 0x1p-10f;
    const float lo = std::fmin(g.kmin * d + m, g.kmax * d + m), hi = std::fmax(g.kmin * d + m, g.kmax * d + m);
    for (int j = 0; j < tt.block; ++j) {
      const size_t i = size_t(b) * tt.block + size_t(j);
      float best = INFINITY;
      for (int k = g.kmin; k <= g.kmax; ++k) best = std::fmin(best, std::fabs(x[i] - (float(k) * d + m)));
      const float err = std::fabs(x[i] - y[i]);
      ASSERT_LE(err, best + slack) << g.name << " block " << b << " element " << j << ": x " << x[i]
                                   << " -> " << y[i] << ", nearest grid point is " << best << " away";
      if (x[i] >= lo && x[i] <= hi) {
        ASSERT_LE(err, 0.5f * std::fabs(d) + slack) << g.name << " block " << b << " element " << j;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Legacy, RoundTrip,
                         ::testing::Values(Grid{"q4_0", -8, 7, false}, Grid{"q4_1", 0, 15, true},
                                           Grid{"q5_0", -16, 15, false}, Grid{"q5_1", 0, 31, true},
                                           Grid{"q8_0", -127, 127, false}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- all-zero input quantizes to zero scales and dequantizes to exact zeros
TEST(DtypeBlocks, ZeroBlocksStayZero) {
  for (const char* name : {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"}) {
    const TypeTraits& tt = traits(type_from_name(name));
    const int64_t n = 256;
    std::vector<float> x(n, 0.0f), y(n, 1.0f);
    std::vector<uint8_t> q(row_bytes(tt.type, n), 0xFF);
    tt.from_f32(x.data(), q.data(), n);
    tt.to_f32(q.data(), y.data(), n);
    // ±0: q4_0/q5_0 store d = max / -8 = -0 for a zero block, as ggml does (pinned by fixtures).
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[size_t(i)], 0.0f) << name << " element " << i;
    if (tt.block > 1) {
      for (size_t b = 0; b < q.size(); b += tt.block_bytes)
        ASSERT_EQ(f16_at(q.data() + b), 0.0f) << name << " scale of block " << b / tt.block_bytes;
    }
  }
}

// ---- f16 / bf16 conversions of single values
uint16_t to_f16(float f) { uint16_t h; blocks::f16_from_f32_row(&f, &h, 1); return h; }
uint16_t to_bf16(float f) { uint16_t h; blocks::bf16_from_f32_row(&f, &h, 1); return h; }
float from_f16(uint16_t h) { float f; blocks::f16_to_f32_row(&h, &f, 1); return f; }
float from_bf16(uint16_t h) { float f; blocks::bf16_to_f32_row(&h, &f, 1); return f; }

// Midpoints between neighbours (exact in f32) round to the even one; anything off the midpoint
// to the nearer one. Covers subnormals (h < 0x400 / 0x80) and the carry into the exponent.
template <class To, class From>
void check_nearest_even(To to, From from, uint16_t last_finite) {
  for (uint32_t h = 0; h < last_finite; ++h) {
    const float a = from(uint16_t(h)), b = from(uint16_t(h + 1));
    ASSERT_EQ(to(a), h);
    ASSERT_EQ(to(-a), h | 0x8000);
    const float mid = a + (b - a) / 2;
    ASSERT_EQ(to(mid), (h & 1) ? h + 1 : h) << "tie above 0x" << std::hex << h;
    ASSERT_EQ(to(std::nextafter(mid, 0.0f)), h) << "below the tie above 0x" << std::hex << h;
    ASSERT_EQ(to(std::nextafter(mid, INFINITY)), h + 1) << "above the tie above 0x" << std::hex << h;
  }
}

TEST(DtypeBlocks, F16RoundsToNearestEven) {
  check_nearest_even(to_f16, from_f16, 0x7BFF);
  EXPECT_EQ(to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(to_f16(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(to_f16(65520.0f), 0x7C00);  // the tie with the next binade goes to inf
  EXPECT_EQ(to_f16(1e30f), 0x7C00);
  EXPECT_EQ(to_f16(-1e30f), 0xFC00);
  EXPECT_EQ(to_f16(INFINITY), 0x7C00);
  EXPECT_EQ(to_f16(-INFINITY), 0xFC00);
  EXPECT_EQ(to_f16(-0.0f), 0x8000);
  EXPECT_EQ(to_f16(0x1p-25f), 0x0000);              // half the smallest subnormal: tie to even 0
  EXPECT_EQ(to_f16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(to_f16(1e-30f), 0x0000);
  EXPECT_EQ(to_f16(0x1p-14f - 0x1p-26f), 0x0400);   // rounds up into the smallest normal
  for (uint32_t nan : {0x7FC00000u, 0x7F800001u, 0xFFC12345u}) {
    const uint16_t h = to_f16(float_of(nan));
    EXPECT_EQ(h & 0x7C00, 0x7C00);
    EXPECT_NE(h & 0x03FF, 0) << "NaN must stay NaN";
    EXPECT_EQ(h & 0x8000, (nan >> 16) & 0x8000);
    EXPECT_TRUE(std::isnan(from_f16(h)));
  }
  EXPECT_EQ(from_f16(0x0001), 0x1p-24f);
  EXPECT_EQ(from_f16(0x7C00), INFINITY);
}

TEST(DtypeBlocks, Bf16RoundsToNearestEven) {
  check_nearest_even(to_bf16, from_bf16, 0x7F7F);
  EXPECT_EQ(to_bf16(float_of(0x7F7F7FFFu)), 0x7F7F);
  EXPECT_EQ(to_bf16(float_of(0x7F7F8000u)), 0x7F80);  // tie above the largest finite: inf
  EXPECT_EQ(to_bf16(INFINITY), 0x7F80);
  EXPECT_EQ(to_bf16(-INFINITY), 0xFF80);
  EXPECT_EQ(to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(to_bf16(float_of(0x00008000u)), 0x0000);  // f32 subnormal tie: to even
  EXPECT_EQ(to_bf16(float_of(0x00018000u)), 0x0002);
  EXPECT_EQ(to_bf16(float_of(0x7F800001u)), 0x7FC0);  // signalling NaN comes out quiet
  EXPECT_EQ(to_bf16(float_of(0xFFC12345u)), 0xFFC1);
  EXPECT_EQ(to_bf16(float_of(0x7FFFFFFFu)), 0x7FFF);  // no carry out of a NaN payload
  EXPECT_EQ(bits_of(from_bf16(0x7FC1)), 0x7FC10000u);
}

}  // namespace
}  // namespace slimlm
