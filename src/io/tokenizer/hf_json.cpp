// Tokenizer from a Hugging Face tokenizer.json (model.type "BPE" with a ByteLevel
// pre-tokenizer, optionally preceded by Split/Digits regexes) plus tokenizer_config.json for
// BOS/EOS, add_bos/add_eos and the chat template.
#include "core/error.h"
#include "io/tokenizer/vocab.h"
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace slimlm {

namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
}

std::string quote_regex(const std::string& s) {  // a literal for PCRE2
  std::string r;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) r += '\\';
    r += c;
  }
  return r;
}

// Appends the regexes of one pre-tokenizer; sets byte_level when a ByteLevel step is seen.
void add_pre(const json& p, const std::string& path, tok::PreConfig& cfg, bool& byte_level, bool& prefix_space) {
  if (p.is_null()) return;
  const std::string type = p.value("type", "");
  if (type == "Sequence") {
    for (const auto& q : p.at("pretokenizers")) add_pre(q, path, cfg, byte_level, prefix_space);
  } else if (type == "ByteLevel") {
    byte_level = true;
    prefix_space = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) cfg.regexes.push_back(tok::kGpt2Regex);
  } else if (type == "Split") {
    const std::string behavior = p.value("behavior", "Isolated");
    if (behavior != "Isolated") fail(path, ": unsupported Split behavior '", behavior, "'");
    if (p.value("invert", false)) fail(path, ": unsupported inverted Split pre-tokenizer");
    const json& pat = p.at("pattern");
    if (pat.contains("Regex")) cfg.regexes.push_back(pat.at("Regex").get<std::string>());
    else cfg.regexes.push_back(quote_regex(pat.at("String").get<std::string>()));
  } else if (type == "Digits") {
    cfg.regexes.push_back(p.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else {
    fail(path, ": unsupported pre-tokenizer type '", type, "'");
  }
}

// tokenizer_config.json stores special tokens as "text" or {"content": "text", ...}.
std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v.at("content").get<std::string>();
  return "";
}

// The model's vocabulary plus tokenizer.json's added tokens (special: control, else user-defined).
void read_vocab(const json& j, const json& m, const std::string& path, tok::VocabData& d) {
  for (const auto& [text, id] : m.at("vocab").items()) {
    const int64_t i = id.get<int64_t>();
    if (i < 0 || i > 10'000'000) fail(path, ": bad token id ", i, " for '", text, "'");
    if (size_t(i) >= d.tokens.size()) d.tokens.resize(size_t(i) + 1);
    d.tokens[size_t(i)] = text;
  }
  d.types.assign(d.tokens.size(), 1);
  if (j.contains("added_tokens")) {
    for (const auto& a : j.at("added_tokens")) {
      const int64_t i = a.at("id").get<int64_t>();
      if (i < 0 || i > 10'000'000) fail(path, ": bad added token id ", i);
      if (size_t(i) >= d.tokens.size()) { d.tokens.resize(size_t(i) + 1); d.types.resize(size_t(i) + 1, 1); }
      d.tokens[size_t(i)] = a.at("content").get<std::string>();
      d.types[size_t(i)] = a.value("special", false) ? 3 : 4;
    }
  }
}

// Merges as "a b" strings or as ["a", "b"] pairs.
void read_merges(const json& m, tok::VocabData& d) {
  for (const auto& e : m.at("merges")) {
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) d.merges.emplace_back("", "");
      else d.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      d.merges.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::string>());
    }
  }
}

std::optional<int32_t> id_of(const tok::VocabData& d, const std::string& t) {
  if (t.empty()) return std::nullopt;
  for (size_t i = 0; i < d.tokens.size(); ++i) if (d.tokens[i] == t) return int32_t(i);
  return std::nullopt;
}

// A TemplateProcessing post-processor that starts with a special token means "add BOS".
void read_post_processor(const json& p, tok::VocabData& d) {
  if (p.is_null()) return;
  if (p.value("type", "") == "Sequence") { for (const auto& q : p.at("processors")) read_post_processor(q, d); return; }
  if (p.value("type", "") != "TemplateProcessing") return;
  const json& single = p.at("single");
  if (!single.empty() && single.front().contains("SpecialToken")) {
    d.bos = id_of(d, single.front().at("SpecialToken").at("id").get<std::string>());
    d.add_bos = d.bos.has_value();
  }
}

// tokenizer_config.json: special tokens, add_bos/add_eos and the chat template.
void read_config(const std::string& config_path, tok::VocabData& d) {
  const json c = read_json(config_path);
  if (c.contains("bos_token")) if (auto id = id_of(d, token_content(c.at("bos_token")))) d.bos = id;
  if (c.contains("eos_token")) if (auto id = id_of(d, token_content(c.at("eos_token")))) d.eos = id;
  if (c.contains("unk_token")) if (auto id = id_of(d, token_content(c.at("unk_token")))) d.unk = id;
  if (c.contains("add_bos_token") && c.at("add_bos_token").is_boolean()) d.add_bos = c.at("add_bos_token").get<bool>();
  if (c.contains("add_eos_token") && c.at("add_eos_token").is_boolean()) d.add_eos = c.at("add_eos_token").get<bool>();
  if (c.contains("chat_template")) {
    const json& t = c.at("chat_template");
    if (t.is_string()) {
      d.chat_template = t.get<std::string>();
    } else if (t.is_array()) {
      for (const auto& e : t) if (e.value("name", "") == "default") d.chat_template = e.value("template", "");
    }
  }
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json(const std::string& json_path, const std::string& config_path) {
  const json j = read_json(json_path);
  try {
    const json& m = j.at("model");
    const std::string type = m.value("type", "");
    if (type != "BPE") fail(json_path, ": unsupported tokenizer model type '", type, "' (only BPE)");
    tok::VocabData d;
    d.model = "hf-bpe";
    read_vocab(j, m, json_path, d);
    read_merges(m, d);
    if (m.contains("unk_token") && m.at("unk_token").is_string()) {
      for (size_t i = 0; i < d.tokens.size(); ++i) if (d.tokens[i] == m.at("unk_token").get<std::string>()) d.unk = int32_t(i);
    }
    if (j.contains("normalizer") && !j.at("normalizer").is_null()) {
      const std::string nt = j.at("normalizer").value("type", "");
      if (nt != "NFC") fail(json_path, ": unsupported normalizer '", nt, "'");  // NFC: text assumed NFC
    }
    tok::PreConfig cfg;
    bool byte_level = false, prefix_space = false;
    add_pre(j.value("pre_tokenizer", json()), json_path, cfg, byte_level, prefix_space);
    if (!byte_level) fail(json_path, ": only byte-level BPE tokenizers are supported (no ByteLevel pre-tokenizer)");
    cfg.ignore_merges = m.value("ignore_merges", false);
    d.hf_pre = cfg;
    d.hf_add_prefix_space = prefix_space;
    read_post_processor(j.value("post_processor", json()), d);
    if (!config_path.empty()) read_config(config_path, d);
    return tok::make_bpe(std::move(d));
  } catch (const json::exception& e) {
    fail(json_path, ": unexpected tokenizer.json layout: ", e.what());
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind(json_path, 0) == 0) throw;
    fail(json_path, ": ", msg);
  }
}

}  // namespace slimlm
