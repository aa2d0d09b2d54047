// Codecs and slimlm's custom formats: bit packing, type ids, encode -> decode equals the
// quantizer's own dequantized values, and the NF grid against QLoRA's published NF4 table.
#include "core/dtype_custom.h"
#include "core/error.h"
#include "quant/codec.h"
#include <gtest/gtest.h>
#include <random>

using namespace slimlm;

TEST(CustomFormat, PackUnpackRoundTripsEveryWidthAndRaggedLength) {
  std::mt19937 rng(7);
  for (int bits = 2; bits <= 8; ++bits)
    for (int64_t n : {1, 2, 3, 7, 8, 9, 31, 33, 127, 576}) {
      std::vector<uint8_t> codes(static_cast<size_t>(n)), back(static_cast<size_t>(n), 0xff);
      for (auto& c : codes) c = uint8_t(rng() & ((1u << bits) - 1));
      std::vector<uint8_t> packed((size_t(n) * bits + 7) / 8 + 1, 0xee);
      pack_codes(codes.data(), n, bits, packed.data());
      EXPECT_EQ(packed.back(), 0xee) << "wrote past the packed size";
      unpack_codes(packed.data(), n, bits, back.data());
      EXPECT_EQ(codes, back) << bits << " bits, n=" << n;
    }
}

TEST(CustomFormat, TypeIdsEncodeTheLayout) {
  for (CustomLayout l : {CustomLayout{CustomKind::Uniform, 4, false, 128}, CustomLayout{CustomKind::Uniform, 3, true, 64},
                         CustomLayout{CustomKind::Codebook, 4, false, 0}, CustomLayout{CustomKind::Grid, 4, false, 64}}) {
    const DType t = custom_type(l);
    EXPECT_TRUE(is_custom(t));
    EXPECT_TRUE(valid_custom_id(uint32_t(t)));
    EXPECT_EQ(custom_layout(t), l);
  }
  EXPECT_EQ(type_name(custom_type({CustomKind::Uniform, 4, false, 128})), "u4g128");
  EXPECT_THROW(custom_type({CustomKind::Uniform, 9, false, 128}), Error);
  EXPECT_THROW(custom_type({CustomKind::Uniform, 4, false, 0}), Error);
  EXPECT_FALSE(valid_custom_id(0x80000000u));
  EXPECT_FALSE(is_custom(DType::Q4_K));
  // u4g128 on a 576-wide row: 5 groups (last one 64 wide): 5 scales + 5 zeros + 288 code bytes
  EXPECT_EQ(row_bytes(custom_type({CustomKind::Uniform, 4, false, 128}), 576), 5u * 3 + 288);
}

TEST(CustomFormat, NfGridMatchesQloraNf4) {
  const float nf4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                         -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                         0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                         0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
  const auto& g = nf_grid(4);
  ASSERT_EQ(g.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(g[size_t(i)], nf4[i], 2e-6) << i;
  EXPECT_EQ(nf_grid(3).size(), 8u);
}

TEST(Codec, EncodedRowsDecodeToTheQuantizersValues) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 0.05f);
  for (const char* name : {"u4g128", "s4g128", "u3g64", "s3g128", "u2g64", "u8g32", "u4g7", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"}) {
    auto c = quant::make_codec(name);
    for (int64_t n : {int64_t(64), int64_t(576)}) {
      std::vector<quant::RowQuant> rows;
      std::vector<float> w(static_cast<size_t>(n));
      for (int r = 0; r < 3; ++r) {
        for (auto& v : w) v = nd(rng);
        if (r == 1) w[5] = 0.9f;  // an outlier
        if (r == 2) for (auto& v : w) v = std::fabs(v);  // one-signed row
        rows.push_back(quant::rtn_row(*c, w.data(), n, nullptr));
        // round-to-nearest: no value is farther than half a step from its code; symmetric grids
        // have one level less on the side opposite the largest magnitude (up to one step there)
        const auto& rq = rows.back();
        const std::string nm = name;
        const float steps = nm[0] == 's' || nm == "q4_0" || nm == "q5_0" ? 1.0f : 0.5f;
        for (int64_t i = 0; i < n; ++i) {
          const auto& f = rq.fits[size_t(i / c->group())];
          EXPECT_LE(std::fabs(rq.deq[size_t(i)] - w[size_t(i)]), std::fabs(f.scale) * steps + 1e-3f * std::fabs(w[size_t(i)]) + 1e-7f)
              << name << " n=" << n << " i=" << i;
        }
      }
      const std::vector<uint8_t> bytes = quant::encode_matrix(*c, rows, n);
      std::vector<float> back(static_cast<size_t>(n));
      for (size_t r = 0; r < rows.size(); ++r) {
        row_to_f32(c->type(), bytes.data() + r * row_bytes(c->type(), n), back.data(), n);
        EXPECT_EQ(back, rows[r].deq) << name << " row " << r;
      }
    }
  }
}

TEST(Codec, BadSpecsAreErrors) {
  EXPECT_THROW(quant::make_codec("u9g128"), Error);
  EXPECT_THROW(quant::make_codec("q8_K"), Error);  // an activation type, not a weight codec
  EXPECT_THROW(quant::make_codec("u4g0"), Error);
  auto c = quant::make_codec("q4_0");
  std::vector<float> w(40, 0.1f);
  EXPECT_THROW(quant::rtn_row(*c, w.data(), 40, nullptr), Error);
}
