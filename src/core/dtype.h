// Storage formats as a table: one row per format (f32, f16, bf16, GGUF block formats).
// Adding a format is adding a row in dtype.cpp plus its to_f32/from_f32 in dtype_blocks.cpp.
// Type ids equal ggml's, so GGUF files map directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace slimlm {

enum class DType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I32 = 26,   // ggml's GGML_TYPE_I32: index tensors (outlier CSR); readable as f32, not a weight type
  BF16 = 30,
};

using ToF32Fn = void (*)(const void* src, float* dst, int64_t n);    // n: multiple of block
using FromF32Fn = void (*)(const float* src, void* dst, int64_t n);  // nullptr: not writable

struct TypeTraits {
  const char* name;      // ggml name, e.g. "q4_K"
  DType type;
  int block;             // elements per block
  size_t block_bytes;    // bytes per block
  ToF32Fn to_f32;        // exact dequantization
  FromF32Fn from_f32;    // round-to-nearest quantization (nullptr if unsupported)
};

// Row of the table for `t`, or nullptr if slimlm does not know the type.
const TypeTraits* find_type(uint32_t ggml_id);
const TypeTraits& traits(DType t);
DType type_from_name(const std::string& name);  // throws Error for unknown names
// Bytes needed for n elements (n must be a multiple of the block size; throws otherwise).
size_t row_bytes(DType t, int64_t n);
// Name and row dequantization for every type, ggml's and slimlm's own (core/dtype_custom.h).
std::string type_name(DType t);
void row_to_f32(DType t, const void* src, float* dst, int64_t n);

// Scalar helpers used by the block formats and kernels.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even
inline float f16_round(float x) { return f16_to_f32(f32_to_f16(x)); }  // x as stored in f16
inline void put_f16(uint8_t* p, float x) { const uint16_t h = f32_to_f16(x); std::memcpy(p, &h, 2); }
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16; float f; __builtin_memcpy(&f, &u, 4); return f;
}
uint16_t f32_to_bf16(float f);  // round to nearest even, NaN preserved

}  // namespace slimlm
