// KV-cache quantization: each cached key/value head vector (one token, one KV head) is stored
// as f16, int8 (symmetric, one f32 scale) or int4 (asymmetric, f16 scale and minimum per 32
// values), so long contexts take 2x / 3.8x / 6.4x less memory than f32 (head_dim 64).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace slimlm {

enum class KvType { F32, F16, Q8, Q4 };

KvType parse_kv_type(const std::string& s);  // "f32" | "f16" | "q8" | "q4"; Error otherwise
const char* kv_type_name(KvType t);
// Bytes of one stored head vector of d floats.
size_t kv_record_bytes(KvType t, int64_t d);
// Quantizes d floats into one record / dequantizes one record into d floats.
void kv_store(KvType t, const float* x, int64_t d, uint8_t* rec);
void kv_load(KvType t, const uint8_t* rec, int64_t d, float* x);

}  // namespace slimlm
