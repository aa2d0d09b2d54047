// int8: x ≈ s·q, q = round(x / s) ∈ [-127, 127], s = max|x| / 127 (per token, per head).
// int4: in groups of 32 along the head vector, x ≈ s·q + m, q = round((x − m) / s) ∈ [0, 15],
// m = min x, s = (max x − min x) / 15, s and m stored as f16 (4 bytes per 32 values, as
// q4_1 does); two codes per byte, low nibble first. A head of 64 takes 40 bytes (f32: 256).
#include "model/kv_cache.h"
#include "core/dtype.h"
#include "core/error.h"
#include <algorithm>
#include <cmath>
#include <cstring>

namespace slimlm {

namespace {
constexpr int64_t kQ4Group = 32;
}

KvType parse_kv_type(const std::string& s) {
  if (s == "f32") return KvType::F32;
  if (s == "f16") return KvType::F16;
  if (s == "q8" || s == "int8") return KvType::Q8;
  if (s == "q4" || s == "int4") return KvType::Q4;
  fail("unknown KV-cache type '", s, "' (known: f32, f16, q8, q4)");
}

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::Q8: return "q8";
    case KvType::Q4: return "q4";
  }
  return "?";
}

size_t kv_record_bytes(KvType t, int64_t d) {
  switch (t) {
    case KvType::F32: return size_t(d) * 4;
    case KvType::F16: return size_t(d) * 2;
    case KvType::Q8: return size_t(d) + 4;
    case KvType::Q4: return size_t(d + 1) / 2 + 4 * size_t((d + kQ4Group - 1) / kQ4Group);
  }
  return 0;
}

void kv_store(KvType t, const float* x, int64_t d, uint8_t* rec) {
  switch (t) {
    case KvType::F32: std::memcpy(rec, x, size_t(d) * 4); return;
    case KvType::F16: {
      auto* h = reinterpret_cast<uint16_t*>(rec);
      for (int64_t i = 0; i < d; ++i) h[i] = f32_to_f16(x[i]);
      return;
    }
    case KvType::Q8: {
      float amax = 0;
      for (int64_t i = 0; i < d; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0.0f;
      std::memcpy(rec, &s, 4);
      auto* q = reinterpret_cast<int8_t*>(rec + 4);
      for (int64_t i = 0; i < d; ++i) q[i] = int8_t(std::lrintf(x[i] * inv));
      return;
    }
    case KvType::Q4: {
      const int64_t ng = (d + kQ4Group - 1) / kQ4Group;
      auto* sm = reinterpret_cast<uint16_t*>(rec);  // per group: f16 scale, f16 minimum
      uint8_t* q = rec + 4 * ng;
      std::memset(q, 0, size_t(d + 1) / 2);
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t i0 = g * kQ4Group, i1 = std::min(d, i0 + kQ4Group);
        float lo = x[i0], hi = x[i0];
        for (int64_t i = i0 + 1; i < i1; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
        sm[2 * g] = f32_to_f16((hi - lo) / 15.0f);
        sm[2 * g + 1] = f32_to_f16(lo);
        const float s = f16_to_f32(sm[2 * g]), m = f16_to_f32(sm[2 * g + 1]), inv = s > 0 ? 1.0f / s : 0.0f;
        for (int64_t i = i0; i < i1; ++i) {
          const int c = std::clamp(int(std::lrintf((x[i] - m) * inv)), 0, 15);
          q[i / 2] |= uint8_t(c << (4 * (i & 1)));
        }
      }
      return;
    }
  }
}

void kv_load(KvType t, const uint8_t* rec, int64_t d, float* x) {
  switch (t) {
    case KvType::F32: std::memcpy(x, rec, size_t(d) * 4); return;
    case KvType::F16: {
      const auto* h = reinterpret_cast<const uint16_t*>(rec);
      for (int64_t i = 0; i < d; ++i) x[i] = f16_to_f32(h[i]);
      return;
    }
    case KvType::Q8: {
      float s;
      std::memcpy(&s, rec, 4);
      const auto* q = reinterpret_cast<const int8_t*>(rec + 4);
      for (int64_t i = 0; i < d; ++i) x[i] = s * float(q[i]);
      return;
    }
    case KvType::Q4: {
      const int64_t ng = (d + kQ4Group - 1) / kQ4Group;
      const auto* sm = reinterpret_cast<const uint16_t*>(rec);
      const uint8_t* q = rec + 4 * ng;
      for (int64_t g = 0; g < ng; ++g) {
        const float s = f16_to_f32(sm[2 * g]), m = f16_to_f32(sm[2 * g + 1]);
        for (int64_t i = g * kQ4Group; i < std::min(d, (g + 1) * kQ4Group); ++i)
          x[i] = s * float((q[i / 2] >> (4 * (i & 1))) & 15) + m;
      }
      return;
    }
  }
}

}  // namespace slimlm
