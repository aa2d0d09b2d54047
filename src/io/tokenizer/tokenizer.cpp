// Tokenizer entry points: building one from GGUF metadata (tokenizer.ggml.*), decoding ids
// back to text, the end-of-generation test and chat rendering (ChatML, Gemma, Llama-2/3 turns
// recognised from the model's chat template, or from its special tokens when it has none).
#include "io/tokenizer/tokenizer.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/tokenizer/vocab.h"
#include <algorithm>

namespace slimlm {

namespace {

std::optional<int32_t> opt_id(const gguf::File& f, const char* key) {
  const gguf::Value* v = f.find(key);
  if (!v || !v->is_int()) return std::nullopt;
  return int32_t(v->as_int());
}

std::optional<bool> opt_bool(const gguf::File& f, const char* key) {
  const gguf::Value* v = f.find(key);
  if (!v || !v->is_int()) return std::nullopt;
  return v->as_int() != 0;
}

const gguf::Value* array_of(const gguf::File& f, const char* key, bool required) {
  const gguf::Value* v = f.find(key);
  if (!v) {
    if (required) fail(f.path(), ": metadata key '", key, "' is missing");
    return nullptr;
  }
  if (v->type != gguf::VType::ARRAY) fail(f.path(), ": metadata key '", key, "' is not an array");
  return v;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& f) {
  tok::VocabData d;
  const gguf::Value* model = f.find("tokenizer.ggml.model");
  if (!model || model->type != gguf::VType::STRING) fail(f.path(), ": no tokenizer.ggml.model in metadata");
  d.model = model->s;
  const bool bpe = d.model == "gpt2" || d.model == "gemma4";
  if (!bpe && d.model != "llama") fail(f.path(), ": unknown tokenizer model '", d.model, "'");
  if (const gguf::Value* p = f.find("tokenizer.ggml.pre"); p && p->type == gguf::VType::STRING) d.pre = p->s;

  const gguf::Value* toks = array_of(f, "tokenizer.ggml.tokens", true);
  if (toks->elem != gguf::VType::STRING) fail(f.path(), ": tokenizer.ggml.tokens is not a string array");
  d.tokens.reserve(toks->arr.size());
  for (const auto& t : toks->arr) d.tokens.push_back(t.s);
  const size_t n = d.tokens.size();
  if (const gguf::Value* s = array_of(f, "tokenizer.ggml.scores", false)) {
    if (s->arr.size() < n) fail(f.path(), ": tokenizer.ggml.scores has ", s->arr.size(), " entries for ", n, " tokens");
    d.scores.reserve(n);
    for (size_t i = 0; i < n; ++i) d.scores.push_back(float(s->arr[i].as_float()));
  }
  if (const gguf::Value* t = array_of(f, "tokenizer.ggml.token_type", false)) {
    if (t->arr.size() < n) fail(f.path(), ": tokenizer.ggml.token_type has ", t->arr.size(), " entries for ", n, " tokens");
    d.types.reserve(n);
    for (size_t i = 0; i < n; ++i) d.types.push_back(int32_t(t->arr[i].as_int()));
  }
  if (bpe) {
    const gguf::Value* m = array_of(f, "tokenizer.ggml.merges", true);
    d.merges.reserve(m->arr.size());
    for (const auto& e : m->arr) {
      const size_t sp = e.s.find(' ', 1);  // llama.cpp: a merge without a space is ("", "")
      if (sp == std::string::npos) d.merges.emplace_back("", "");
      else d.merges.emplace_back(e.s.substr(0, sp), e.s.substr(sp + 1));
    }
  }
  d.bos = opt_id(f, "tokenizer.ggml.bos_token_id");
  d.eos = opt_id(f, "tokenizer.ggml.eos_token_id");
  d.eot = opt_id(f, "tokenizer.ggml.eot_token_id");
  d.eom = opt_id(f, "tokenizer.ggml.eom_token_id");
  d.unk = opt_id(f, "tokenizer.ggml.unknown_token_id");
  d.sep = opt_id(f, "tokenizer.ggml.seperator_token_id");
  d.pad = opt_id(f, "tokenizer.ggml.padding_token_id");
  d.fim_pre = opt_id(f, "tokenizer.ggml.fim_pre_token_id");
  if (!d.fim_pre) d.fim_pre = opt_id(f, "tokenizer.ggml.prefix_token_id");
  d.fim_suf = opt_id(f, "tokenizer.ggml.fim_suf_token_id");
  if (!d.fim_suf) d.fim_suf = opt_id(f, "tokenizer.ggml.suffix_token_id");
  d.fim_mid = opt_id(f, "tokenizer.ggml.fim_mid_token_id");
  if (!d.fim_mid) d.fim_mid = opt_id(f, "tokenizer.ggml.middle_token_id");
  d.fim_pad = opt_id(f, "tokenizer.ggml.fim_pad_token_id");
  d.fim_rep = opt_id(f, "tokenizer.ggml.fim_rep_token_id");
  d.fim_sep = opt_id(f, "tokenizer.ggml.fim_sep_token_id");
  d.add_bos = opt_bool(f, "tokenizer.ggml.add_bos_token");
  d.add_eos = opt_bool(f, "tokenizer.ggml.add_eos_token");
  d.add_space_prefix = opt_bool(f, "tokenizer.ggml.add_space_prefix");
  if (const gguf::Value* c = f.find("tokenizer.chat_template"); c && c->type == gguf::VType::STRING) {
    d.chat_template = c->s;
  }
  if (const gguf::Value* v = f.find("general.name"); v && v->type == gguf::VType::STRING) d.name = v->s;
  if (const gguf::Value* v = f.find("general.architecture"); v && v->type == gguf::VType::STRING) d.arch = v->s;
  try {
    return bpe ? tok::make_bpe(std::move(d)) : tok::make_spm(std::move(d));
  } catch (const Error& e) {
    fail(f.path(), ": ", e.what());
  }
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab()) fail("decode: token id ", id, " out of range [0, ", n_vocab(), ")");
    const int32_t t = types_[size_t(id)];
    if (t == 2 || t == 3) continue;  // unknown and control tokens are not text
    std::string piece = token_to_piece(id);
    if (first && add_space_prefix_ && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    first = false;
    out += piece;
  }
  return out;
}

bool Tokenizer::is_eog(int32_t id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

namespace {

enum class ChatStyle { chatml, gemma, llama2, llama3 };

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The system prompt a ChatML template inserts when the conversation has none
// (SmolLM2: "{% if loop.first and messages[0]['role'] != 'system' %}...<|im_start|>system\n...").
std::string default_system(const std::string& tmpl) {
  const size_t cond = tmpl.find("['role'] != 'system'");
  if (cond == std::string::npos) return "";
  const std::string open = "<|im_start|>system\n";
  const size_t b = tmpl.find(open, cond);
  if (b == std::string::npos) return "";
  const size_t e = tmpl.find("<|im_end|>", b + open.size());
  const size_t endif = tmpl.find("{% endif", cond);
  if (e == std::string::npos || e > endif) return "";
  const std::string s = tmpl.substr(b + open.size(), e - b - open.size());
  return s.find("{{") == std::string::npos ? s : "";
}

}  // namespace

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& msgs) const {
  auto has_token = [&](const char* t) { return std::find(tokens_.begin(), tokens_.end(), t) != tokens_.end(); };
  const std::string& tp = chat_template_;
  ChatStyle style;
  if (tp.find("<|im_start|>") != std::string::npos) style = ChatStyle::chatml;
  else if (tp.find("<start_of_turn>") != std::string::npos) style = ChatStyle::gemma;
  else if (tp.find("<|start_header_id|>") != std::string::npos) style = ChatStyle::llama3;
  else if (tp.find("[INST]") != std::string::npos) style = ChatStyle::llama2;
  else if (!tp.empty()) fail("unsupported chat template (not ChatML, Gemma, Llama-2 or Llama-3 style)");
  else if (has_token("<|im_start|>")) style = ChatStyle::chatml;
  else if (has_token("<start_of_turn>")) style = ChatStyle::gemma;
  else if (has_token("<|start_header_id|>")) style = ChatStyle::llama3;
  else style = ChatStyle::llama2;

  std::string out;
  switch (style) {
    case ChatStyle::chatml: {
      const std::string sys = default_system(tp);
      if (!sys.empty() && (msgs.empty() || msgs[0].role != "system")) {
        out += "<|im_start|>system\n" + sys + "<|im_end|>\n";
      }
      for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      out += "<|im_start|>assistant\n";
      break;
    }
    case ChatStyle::gemma: {  // BOS comes from encode(add_special); system text opens the first user turn
      std::string prefix;
      for (size_t i = 0; i < msgs.size(); ++i) {
        const auto& m = msgs[i];
        if (m.role == "system") { prefix += trim(m.content) + "\n\n"; continue; }
        const std::string role = m.role == "assistant" ? "model" : m.role;
        out += "<start_of_turn>" + role + "\n" + prefix + trim(m.content) + "<end_of_turn>\n";
        prefix.clear();
      }
      out += "<start_of_turn>model\n";
      break;
    }
    case ChatStyle::llama3: {  // <|begin_of_text|> comes from encode(add_special)
      for (const auto& m : msgs) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
      }
      out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
    case ChatStyle::llama2: {  // the first <s> comes from encode(add_special)
      std::string sys;
      bool first_turn = true;
      for (const auto& m : msgs) {
        if (m.role == "system") { sys = "<<SYS>>\n" + trim(m.content) + "\n<</SYS>>\n\n"; continue; }
        if (m.role == "assistant") { out += " " + trim(m.content) + " </s>"; continue; }
        if (!first_turn) out += "<s>";
        out += "[INST] " + sys + trim(m.content) + " [/INST]";
        sys.clear();
        first_turn = false;
      }
      break;
    }
  }
  return out;
}

}  // namespace slimlm
