// safetensors write -> read round trip and corrupt headers; a Hugging Face llama folder built
// here from the llama2.c stories260K model (names, [out,in] shapes, rotate-half q/k rows) loads
// through load_model and gives the llama2.c model's logits; f16/bf16 folders match slimlm's own
// f16/bf16 GGUF conversion; broken folders are refused with a one-line slimlm::Error.
#include "core/error.h"
#include "io/safetensors.h"
#include "model/forward.h"
#include "model/model.h"
#include "test_util.h"
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

using namespace slimlm;
using namespace slimlm::test;
namespace fs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& s) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << s;
}

// A raw safetensors file: 8-byte header length (or `hlen`), header text, then `data` bytes.
std::string st_raw(const std::string& header, size_t data, uint64_t hlen = ~uint64_t(0)) {
  if (hlen == ~uint64_t(0)) hlen = header.size();
  std::string s(reinterpret_cast<const char*>(&hlen), 8);
  return s + header + std::string(data, '\x01');
}

std::string st_error(const std::string& bytes) {
  const std::string p = temp_path("corrupt.safetensors");
  write_text(p, bytes);
  try {
    safetensors::File::open(p);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a slimlm::Error: ") + e.what() + ">";
  }
  return "<no error>";
}

#define EXPECT_ONE_LINE_ERROR(msg, fragment)                                      \
  do {                                                                            \
    const std::string m_ = (msg);                                                 \
    EXPECT_FALSE(m_.starts_with("<")) << m_;                                      \
    EXPECT_NE(m_.find(fragment), std::string::npos) << "message: " << m_;         \
    EXPECT_EQ(m_.find('\n'), std::string::npos) << "multi-line message: " << m_;  \
  } while (0)

std::vector<uint8_t> encode(const std::vector<float>& v, DType t) {
  std::vector<uint8_t> out(v.size() * (t == DType::F32 ? 4 : 2));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::F32) { std::memcpy(&out[i * 4], &v[i], 4); continue; }
    const uint16_t h = t == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
    std::memcpy(&out[i * 2], &h, 2);
  }
  return out;
}

// Writes model `m` (loaded from llama2.c) as a Hugging Face llama folder. Matrices are stored
// as `mat` in PyTorch [out, in] order, norms as f32; names in `skip` are left out.
struct HfExport {
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<safetensors::WriteEntry> entries;
  void add(const std::string& name, const Tensor& t, DType type, int64_t permute_heads = 0) {
    std::vector<float> v = t.to_f32();
    if (permute_heads > 0) {
      // Inverse of hf.cpp's permute_rows: slimlm row h*hd + 2i + j (adjacent RoPE pairs) is HF
      // row h*hd + j*half + i (rotate-half).
      const int64_t rows = t.rows(), cols = t.cols(), hd = rows / permute_heads, half = hd / 2;
      std::vector<float> hf(v.size());
      for (int64_t h = 0; h < permute_heads; ++h)
        for (int64_t j = 0; j < 2; ++j)
          for (int64_t i = 0; i < half; ++i)
            std::copy_n(&v[size_t((h * hd + 2 * i + j) * cols)], cols, &hf[size_t((h * hd + j * half + i) * cols)]);
      v = hf;
    }
    bufs.push_back(encode(v, type));
    std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());
    entries.push_back({name, type, shape, bufs.back().data(), bufs.back().size()});
  }
};

nlohmann::json llama_config(const Model& m) {
  const HParams& hp = m.hp;
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", hp.n_embd},
          {"intermediate_size", hp.n_ff}, {"num_hidden_layers", hp.n_layer}, {"num_attention_heads", hp.n_head},
          {"num_key_value_heads", hp.n_head_kv}, {"vocab_size", hp.n_vocab}, {"max_position_embeddings", hp.n_ctx_train},
          {"rms_norm_eps", hp.norm_eps}, {"rope_theta", hp.rope_theta}, {"tie_word_embeddings", true},
          {"torch_dtype", "float32"}};
}

std::string make_hf_dir(const Model& m, const std::string& name, DType mat, const std::set<std::string>& skip = {},
                        const std::string& config = "") {
  const std::string dir = temp_path(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_text(dir + "/config.json", config.empty() ? llama_config(m).dump(2) : config);
  HfExport ex;
  ex.bufs.reserve(4 + m.blocks.size() * 9);  // entries point into bufs: no reallocation
  auto add = [&](const std::string& n, const Tensor& t, DType type, int64_t heads = 0) {
    if (!skip.count(n)) ex.add(n, t, type, heads);
  };
  add("model.embed_tokens.weight", m.tok_embd, mat);
  for (size_t l = 0; l < m.blocks.size(); ++l) {
    const Block& b = m.blocks[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", b.attn_norm, DType::F32);
    add(p + "self_attn.q_proj.weight", b.wq, mat, m.hp.n_head);
    add(p + "self_attn.k_proj.weight", b.wk, mat, m.hp.n_head_kv);
    add(p + "self_attn.v_proj.weight", b.wv, mat);
    add(p + "self_attn.o_proj.weight", b.wo, mat);
    add(p + "post_attention_layernorm.weight", b.ffn_norm, DType::F32);
    add(p + "mlp.gate_proj.weight", b.w_gate, mat);
    add(p + "mlp.up_proj.weight", b.w_up, mat);
    add(p + "mlp.down_proj.weight", b.w_down, mat);
  }
  add("model.norm.weight", m.out_norm, DType::F32);
  safetensors::write(dir + "/model.safetensors", ex.entries);
  return dir;
}

const std::vector<int32_t> kIds = {1, 461, 17, 300, 42, 7, 99, 256, 3, 511, 128, 64};

std::vector<float> logits_of(const Model& m) {
  Session s(m, 64);
  std::vector<float> lg;
  s.forward(kIds.data(), int64_t(kIds.size()), 0, lg);
  return lg;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  return d;
}

std::string load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a slimlm::Error: ") + e.what() + ">";
  }
  return "<no error>";
}

}  // namespace

// ---------------------------------------------------------------- safetensors

TEST(Safetensors, RoundTripF32F16BF16) {
  std::vector<float> a = {1.f, -2.5f, 3.25f, 0.f, 1e-3f, 65504.f};
  auto ba = encode(a, DType::F32), bh = encode(a, DType::F16), bb = encode(a, DType::BF16);
  std::vector<uint8_t> odd = encode({7.f, 8.f, 9.f}, DType::F16);  // 6 bytes: offsets stay exact
  const std::string p = temp_path("rt.safetensors");
  safetensors::write(p, {{"a.f32", DType::F32, {2, 3}, ba.data(), ba.size()},
                         {"b.f16", DType::F16, {6}, bh.data(), bh.size()},
                         {"odd", DType::F16, {3}, odd.data(), odd.size()},
                         {"c.bf16", DType::BF16, {3, 1, 2}, bb.data(), bb.size()}});
  auto f = safetensors::File::open(p);
  ASSERT_EQ(f->tensors().size(), 4u);
  struct Want { const char* name; DType t; std::vector<int64_t> shape; const std::vector<uint8_t>* bytes; };
  for (const Want& w : {Want{"a.f32", DType::F32, {2, 3}, &ba}, Want{"b.f16", DType::F16, {6}, &bh},
                        Want{"odd", DType::F16, {3}, &odd}, Want{"c.bf16", DType::BF16, {3, 1, 2}, &bb}}) {
    const safetensors::Entry* e = f->find(w.name);
    ASSERT_NE(e, nullptr) << w.name;
    EXPECT_EQ(e->type, w.t) << w.name;
    EXPECT_EQ(e->shape, w.shape) << w.name;
    ASSERT_EQ(e->nbytes, w.bytes->size()) << w.name;
    EXPECT_EQ(std::memcmp(e->data, w.bytes->data(), e->nbytes), 0) << w.name;
  }
  // the values decode back (f16 and bf16 round to nearest)
  const uint16_t* h = reinterpret_cast<const uint16_t*>(f->find("b.f16")->data);
  EXPECT_EQ(f16_to_f32(h[2]), 3.25f);
  EXPECT_EQ(f16_to_f32(h[5]), 65504.f);
  EXPECT_EQ(f->find("missing"), nullptr);
}

TEST(Safetensors, CorruptHeadersThrow) {
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  EXPECT_EQ(st_error(st_raw(ok, 16)), "<no error>");  // the builder makes valid files
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F32",)", 16)), "corrupt");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw("{\n\"w\": nope\n}", 16)), "corrupt");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw("[1, 2]", 0)), "not a JSON object");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(ok, 16, 1000)), "header length");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(ok, 16, ~uint64_t(0) - 1)), "header length");
  EXPECT_ONE_LINE_ERROR(st_error(std::string("\x04\0\0", 3)), "truncated");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(ok, 8)), "past the end");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999]}})", 8)),
                        "past the end");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)), "past the end");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", 16)),
                        "shape needs");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}})", 16)),
                        "shape needs");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", 16)), "dtype");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", 16)), "dtype");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,16]}})", 16)), "shape");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}})", 16)),
                        "shape");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", 16)), "malformed");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F32","shape":["x"],"data_offsets":[0,16]}})", 16)), "malformed");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", 16)), "malformed");
  EXPECT_ONE_LINE_ERROR(st_error(st_raw(R"({"w":7})", 16)), "malformed");
}

// ---------------------------------------------------------------- Hugging Face folders

TEST(HfFolder, Stories260KAsHuggingFaceLlamaGivesTheSameLogits) {
  SLIMLM_REQUIRE_FILE(stories());
  auto ref = load_model(stories());
  const std::string dir = make_hf_dir(*ref, "hf-f32", DType::F32);
  auto hf = load_model(dir);
  EXPECT_EQ(hf->format, "hf");
  EXPECT_EQ(hf->hp.n_embd, 64);
  EXPECT_EQ(hf->hp.n_head_kv, ref->hp.n_head_kv);
  EXPECT_EQ(hf->output.data, hf->tok_embd.data);  // tied: no lm_head.weight
  const auto a = logits_of(*ref), b = logits_of(*hf);
  EXPECT_LT(max_diff(a, b), 1e-5);
}

TEST(HfFolder, WithoutTheInverseRopePermutationLogitsDiffer) {
  // Guards the test above from passing vacuously: a folder whose q/k rows are NOT in HF's
  // rotate-half order must give different logits.
  SLIMLM_REQUIRE_FILE(stories());
  auto ref = load_model(stories());
  const std::string dir = temp_path("hf-noperm");
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_text(dir + "/config.json", llama_config(*ref).dump());
  HfExport ex;
  ex.bufs.reserve(64);
  ex.add("model.embed_tokens.weight", ref->tok_embd, DType::F32);
  ex.add("model.norm.weight", ref->out_norm, DType::F32);
  for (size_t l = 0; l < ref->blocks.size(); ++l) {
    const Block& b = ref->blocks[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::pair<const char*, const Tensor*> ts[] = {
        {"input_layernorm", &b.attn_norm}, {"self_attn.q_proj", &b.wq}, {"self_attn.k_proj", &b.wk},
        {"self_attn.v_proj", &b.wv}, {"self_attn.o_proj", &b.wo}, {"post_attention_layernorm", &b.ffn_norm},
        {"mlp.gate_proj", &b.w_gate}, {"mlp.up_proj", &b.w_up}, {"mlp.down_proj", &b.w_down}};
    for (const auto& [n, t] : ts) ex.add(p + n + ".weight", *t, DType::F32);
  }
  safetensors::write(dir + "/model.safetensors", ex.entries);
  auto hf = load_model(dir);
  const auto a = logits_of(*ref), b = logits_of(*hf);
  double mean_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) mean_diff += std::fabs(a[i] - b[i]) / double(a.size());
  RecordProperty("mean_abs_logit_diff", std::to_string(mean_diff));
  EXPECT_GT(mean_diff, 0.5);  // measured ~2.9
}

class HfHalf : public ::testing::TestWithParam<DType> {};

TEST_P(HfHalf, LoadsAndMatchesTheSameTypeGguf) {
  SLIMLM_REQUIRE_FILE(stories());
  const DType t = GetParam();
  auto ref = load_model(stories());
  const std::string dir = make_hf_dir(*ref, std::string("hf-") + traits(t).name, t);
  auto hf = load_model(dir);
  EXPECT_EQ(hf->blocks[0].wq.type, t);
  EXPECT_EQ(hf->tok_embd.type, t);
  const auto a = logits_of(*ref), b = logits_of(*hf);
  EXPECT_GT(max_diff(a, b), 0.0) << "weights were rounded: logits cannot be identical";
  // Close to the f32 model: mean |logit difference| below 10 unit roundoffs of the type times
  // the mean |logit|. (A flat 1e-2 on the max is not attainable: this 64-wide model turns
  // f16/bf16 weight rounding alone into max logit differences of ~0.05/~0.3; measured means
  // are ~0.006/~0.06, i.e. 4x/3x under this bound. A wrong row order gives ~1 or more.)
  double mean_abs = 0, mean_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) mean_abs += std::fabs(a[i]), mean_diff += std::fabs(a[i] - b[i]);
  const double u = t == DType::F16 ? 0x1p-11 : 0x1p-8;
  EXPECT_LT(mean_diff, 10 * u * mean_abs);
  // slimlm's own conversion of the same model to the same type (GGUF writer + reader path)
  // holds the same rounded weights, so it must give the same logits.
  const std::string g = temp_path(std::string("hf-ref-") + traits(t).name + ".gguf");
  save_gguf(*ref, g, t);
  auto conv = load_model(g);
  EXPECT_LT(max_diff(b, logits_of(*conv)), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Types, HfHalf, ::testing::Values(DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(traits(info.param).name); });

TEST(HfFolder, BrokenFoldersGiveOneLineErrors) {
  SLIMLM_REQUIRE_FILE(stories());
  auto ref = load_model(stories());
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-missing", DType::F32, {"model.layers.3.mlp.up_proj.weight"})),
                        "model.layers.3.mlp.up_proj.weight");
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-nonorm", DType::F32, {"model.norm.weight"})), "model.norm.weight");
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-badjson", DType::F32, {}, "{\"model_type\": \"llama\",\n \"hidden")),
                        "config.json");
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-array", DType::F32, {}, "[1, 2, 3]")), "config.json");
  auto c = llama_config(*ref);
  c["model_type"] = "gpt2";
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-gpt2", DType::F32, {}, c.dump())), "gpt2");
  c = llama_config(*ref);
  c.erase("model_type");
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-notype", DType::F32, {}, c.dump())), "model_type");
  c = llama_config(*ref);
  c.erase("hidden_size");
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-nohidden", DType::F32, {}, c.dump())), "hidden_size");
  c = llama_config(*ref);
  c["hidden_size"] = "sixty-four";
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-strhidden", DType::F32, {}, c.dump())), "config.json");
  c = llama_config(*ref);
  c["hidden_size"] = 128;  // disagrees with the tensors
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-wrongdim", DType::F32, {}, c.dump())), "shape");
  c = llama_config(*ref);
  c["num_attention_heads"] = 0;
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-zeroheads", DType::F32, {}, c.dump())), "config.json");
  c = llama_config(*ref);
  c["num_key_value_heads"] = 3;
  EXPECT_ONE_LINE_ERROR(load_error(make_hf_dir(*ref, "hf-kv3", DType::F32, {}, c.dump())), "config.json");
  const std::string empty = temp_path("hf-empty");
  fs::create_directories(empty);
  write_text(empty + "/config.json", llama_config(*ref).dump());
  EXPECT_ONE_LINE_ERROR(load_error(empty), "safetensors");
  const std::string noconf = temp_path("hf-noconfig");
  fs::create_directories(noconf);
  EXPECT_ONE_LINE_ERROR(load_error(noconf), "config.json");
}
