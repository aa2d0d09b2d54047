#include "core/dtype.h"
#include "core/dtype_blocks.h"
#include "core/dtype_custom.h"
#include "core/error.h"
#include <cmath>
#include <cstring>

namespace slimlm {

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
  if (exp == 0) {
    if (man == 0) { u = sign; }
    else {  // subnormal: normalize
      int e = -1;
      do { man <<= 1; ++e; } while (!(man & 0x400));
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f; std::memcpy(&f, &u, 4); return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u; std::memcpy(&u, &f, 4);
  const uint16_t sign = (u >> 16) & 0x8000;
  uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0);  // inf/nan
  if (a >= 0x477ff000u) return sign | 0x7c00;  // overflow (>= 65520 rounds to inf)
  if (a < 0x38800000u) {  // subnormal or zero in f16
    float af; std::memcpy(&af, &a, 4);
    // value / 2^-24, rounded to nearest even
    float q = af * 16777216.0f;
    return sign | uint16_t(std::nearbyint(q));
  }
  uint32_t mant = a & 0x7fffff, exp = (a >> 23) - 127 + 15;
  uint32_t h = exp << 10 | mant >> 13;
  uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // carry into exponent is correct
  return sign | uint16_t(h);
}

uint16_t f32_to_bf16(float f) {
  uint32_t u; std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

namespace {
const TypeTraits kTable[] = {
    {"f32", DType::F32, 1, 4, blocks::f32_to_f32, blocks::f32_from_f32},
    {"f16", DType::F16, 1, 2, blocks::f16_to_f32_row, blocks::f16_from_f32_row},
    {"bf16", DType::BF16, 1, 2, blocks::bf16_to_f32_row, blocks::bf16_from_f32_row},
    {"i32", DType::I32, 1, 4, blocks::i32_to_f32_row, nullptr},
    {"q4_0", DType::Q4_0, 32, 18, blocks::q4_0_to_f32, blocks::q4_0_from_f32},
    {"q4_1", DType::Q4_1, 32, 20, blocks::q4_1_to_f32, blocks::q4_1_from_f32},
    {"q5_0", DType::Q5_0, 32, 22, blocks::q5_0_to_f32, blocks::q5_0_from_f32},
    {"q5_1", DType::Q5_1, 32, 24, blocks::q5_1_to_f32, blocks::q5_1_from_f32},
    {"q8_0", DType::Q8_0, 32, 34, blocks::q8_0_to_f32, blocks::q8_0_from_f32},
    {"q2_K", DType::Q2_K, 256, 84, blocks::q2_k_to_f32, nullptr},
    {"q3_K", DType::Q3_K, 256, 110, blocks::q3_k_to_f32, nullptr},
    {"q4_K", DType::Q4_K, 256, 144, blocks::q4_k_to_f32, nullptr},
    {"q5_K", DType::Q5_K, 256, 176, blocks::q5_k_to_f32, nullptr},
    {"q6_K", DType::Q6_K, 256, 210, blocks::q6_k_to_f32, nullptr},
    {"q8_K", DType::Q8_K, 256, 292, blocks::q8_k_to_f32, nullptr},
};
}  // namespace

const TypeTraits* find_type(uint32_t id) {
  for (const auto& t : kTable) if (uint32_t(t.type) == id) return &t;
  return nullptr;
}

const TypeTraits& traits(DType t) {
  const TypeTraits* tt = find_type(uint32_t(t));
  SLIMLM_ASSERT(tt != nullptr);
  return *tt;
}

DType type_from_name(const std::string& name) {
  for (const auto& t : kTable) {
    std::string a = t.name, b = name;
    for (auto& c : a) c = char(std::tolower(c));
    for (auto& c : b) c = char(std::tolower(c));
    if (a == b) return t.type;
  }
  fail("unknown tensor type '", name, "' (known: f32 f16 bf16 i32 q4_0 q4_1 q5_0 q5_1 q8_0 q2_K..q6_K)");
}

std::string type_name(DType t) {
  if (is_custom(t)) return custom_name(custom_layout(t));
  return traits(t).name;
}

void row_to_f32(DType t, const void* src, float* dst, int64_t n) {
  if (is_custom(t)) return custom_row_to_f32(custom_layout(t), static_cast<const uint8_t*>(src), dst, n);
  traits(t).to_f32(src, dst, n);
}

size_t row_bytes(DType t, int64_t n) {
  if (is_custom(t)) return custom_row_bytes(custom_layout(t), n);
  const TypeTraits& tt = traits(t);
  if (n < 0 || n % tt.block != 0)
    fail("row of ", n, " elements is not a multiple of ", tt.name, "'s block size ", tt.block);
  return size_t(n / tt.block) * tt.block_bytes;
}

}  // namespace slimlm
