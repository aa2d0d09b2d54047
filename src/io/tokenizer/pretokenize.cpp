// Pre-tokenization: lenient UTF-8 decoding, the GPT-2 byte map, PCRE2 regex splitting and the
// regexes llama.cpp uses for each `tokenizer.ggml.pre` name (the same patterns, run by PCRE2
// with \s rewritten to Unicode White_Space, which is what llama.cpp's own matcher uses).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "io/tokenizer/pretokenize.h"
#include "core/error.h"
#include <array>
#include <pcre2.h>

namespace slimlm::tok {

std::string cpt_to_utf8(uint32_t c) {
  std::string r;
  if (c > 0x10FFFF) c = 0xFFFD;
  if (c < 0x80) {
    r.push_back(char(c));
  } else if (c < 0x800) {
    r.push_back(char(0xC0 | (c >> 6)));
    r.push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    r.push_back(char(0xE0 | (c >> 12)));
    r.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    r.push_back(char(0x80 | (c & 0x3F)));
  } else {
    r.push_back(char(0xF0 | (c >> 18)));
    r.push_back(char(0x80 | ((c >> 12) & 0x3F)));
    r.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    r.push_back(char(0x80 | (c & 0x3F)));
  }
  return r;
}

uint32_t next_cpt(std::string_view s, size_t& i) {
  const uint8_t b = uint8_t(s[i]);
  const size_t n = std::min(utf8_len(char(b)), s.size() - i);
  uint32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (uint8_t(s[i + k]) & 0x3F);
  i += n;
  return c;
}

// llama.cpp's decoder: checks lead/continuation bits only (no overlong or surrogate check).
std::string normalize_utf8(std::string_view in) {
  auto cont = [&](size_t k) { return k < in.size() && (uint8_t(in[k]) & 0xC0) == 0x80; };
  // Fast path: nothing to change when every sequence is well formed and shortest.
  std::string out;
  bool changed = false;
  size_t i = 0;
  while (i < in.size()) {
    const uint8_t b = uint8_t(in[i]);
    size_t n = 0;
    uint32_t c = 0;
    if (b < 0x80) { n = 1; c = b; }
    else if ((b & 0xE0) == 0xC0 && cont(i + 1)) { n = 2; c = ((b & 0x1Fu) << 6) | (uint8_t(in[i + 1]) & 0x3F); }
    else if ((b & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
      n = 3; c = ((b & 0x0Fu) << 12) | ((uint8_t(in[i + 1]) & 0x3Fu) << 6) | (uint8_t(in[i + 2]) & 0x3F);
    } else if ((b & 0xF8) == 0xF0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      n = 4; c = ((b & 0x07u) << 18) | ((uint8_t(in[i + 1]) & 0x3Fu) << 12) |
                 ((uint8_t(in[i + 2]) & 0x3Fu) << 6) | (uint8_t(in[i + 3]) & 0x3F);
    }
    std::string enc;
    if (n == 0) { enc = "\xEF\xBF\xBD"; n = 1; }
    else if (c >= 0xD800 && c <= 0xDFFF && n == 3) enc = std::string(in.substr(i, 3));  // kept as is
    else enc = cpt_to_utf8(c);
    if (!changed && enc != in.substr(i, n)) {
      changed = true;
      out.assign(in.substr(0, i));
    }
    if (changed) out += enc;
    i += n;
  }
  return changed ? out : std::string(in);
}

namespace {

struct ByteMap {
  std::array<std::string, 256> fwd;
  std::array<int, 512> back{};
  ByteMap() {
    back.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t c = printable ? uint32_t(b) : uint32_t(256 + n++);
      fwd[size_t(b)] = cpt_to_utf8(c);
      back[c] = b;
    }
  }
};
const ByteMap& byte_map() { static const ByteMap m; return m; }

// Unicode White_Space, the set llama.cpp uses for \s (PCRE2's UCP \s differs slightly).
constexpr const char* kWs = "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
                            "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// \s -> White_Space class; \p{Lu}/\p{Ll}/... -> \p{L} (llama.cpp collapses letter subclasses).
std::string rewrite_pattern(const std::string& p) {
  std::string r;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char d = p[i + 1];
      if (d == 's') { r += in_class ? std::string(kWs) : cat("[", kWs, "]"); ++i; continue; }
      if (d == 'S' && !in_class) { r += cat("[^", kWs, "]"); ++i; continue; }
      if (d == 'p' && p.compare(i, 4, "\\p{L") == 0 && i + 5 < p.size() && p[i + 4] != '}' && p[i + 5] == '}') {
        r += "\\p{L}"; i += 5; continue;
      }
      r += c; r += d; ++i; continue;
    }
    if (c == '[' && !in_class) { in_class = true; r += c; if (i + 1 < p.size() && p[i + 1] == '^') { r += '^'; ++i; } if (i + 1 < p.size() && p[i + 1] == ']') { r += ']'; ++i; } continue; }
    if (c == ']' && in_class) in_class = false;
    r += c;
  }
  return r;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().fwd[b]; }
int unicode_to_byte(uint32_t cpt) { return cpt < 512 ? byte_map().back[cpt] : -1; }

std::string byte_encode(std::string_view raw) {
  std::string r;
  r.reserve(raw.size() * 2);
  for (char c : raw) r += byte_map().fwd[uint8_t(c)];
  return r;
}

RegexSplitter::RegexSplitter(const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) {
    const std::string q = rewrite_pattern(p);
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(q.data()), q.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof(msg));
      for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
      fail("tokenizer regex '", p, "': ", reinterpret_cast<const char*>(msg), " at offset ", off);
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if unavailable
    codes_.push_back(code);
  }
}

RegexSplitter::~RegexSplitter() {
  for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
}

std::vector<std::string_view> RegexSplitter::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  // PCRE2 needs valid UTF-8: a kept surrogate (3 bytes) is matched as U+FFFD (3 bytes too).
  std::string subject(text);
  for (size_t i = 0; i + 2 < subject.size(); ++i) {
    if (uint8_t(subject[i]) == 0xED && uint8_t(subject[i + 1]) >= 0xA0) {
      subject[i] = char(0xEF); subject[i + 1] = char(0xBF); subject[i + 2] = char(0xBD);
    }
  }
  std::vector<std::pair<size_t, size_t>> cur = {{0, text.size()}}, next;
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  for (void* vc : codes_) {
    const pcre2_code* code = static_cast<const pcre2_code*>(vc);
    next.clear();
    for (auto [beg, len] : cur) {
      const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data() + beg);
      size_t pos = 0, prev_end = 0;
      while (pos < len) {
        const int rc = pcre2_match(code, s, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) {  // empty match: step one character
          pos = ms + utf8_len(subject[beg + ms]);
          continue;
        }
        if (ms > prev_end) next.emplace_back(beg + prev_end, ms - prev_end);
        next.emplace_back(beg + ms, me - ms);
        prev_end = pos = me;
      }
      if (prev_end < len) next.emplace_back(beg + prev_end, len - prev_end);
    }
    cur.swap(next);
  }
  pcre2_match_data_free(md);
  pieces.reserve(cur.size());
  for (auto [b, l] : cur) pieces.emplace_back(text.data() + b, l);
  return pieces;
}

const char* const kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// The regexes below are those of the models' tokenizer.json files, as llama.cpp adapts them
// (case-insensitive groups spelled out, possessive quantifiers made greedy).
#define CONTRACTIONS R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))"
const char* kGpt2NoTail = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
const char* kLlama3 = CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen2 = CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen35 = CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kUfakzeka = R"([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kSeedCoder = CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kBailing = R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
const char* kBloom = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kGpt4o =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+)" CONTRACTIONS
    R"(?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*)" CONTRACTIONS
    R"(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kDeepseek3 =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
#undef CONTRACTIONS

bool in(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names) if (s == n) return true;
  return false;
}

}  // namespace

std::optional<PreConfig> pre_config(const std::string& pre) {
  PreConfig c;
  if (pre.empty() || pre == "default") {
    c.regexes = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2NoTail, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else if (in(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                      "lfm2", "jina-v5-nano"})) {
    c.regexes = {kLlama3}; c.ignore_merges = true; c.default_add_bos = true;
  } else if (in(pre, {"dbrx", "smaug-bpe", "chatglm-bpe"})) {
    c.regexes = {kLlama3};
  } else if (in(pre, {"glm4", "glm5"})) {
    c.regexes = {kLlama3}; c.ignore_merges = true;
  } else if (pre == "deepseek-coder") {
    c.regexes = {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", "[一-龥ࠀ-一가-퟿]+", R"(\p{N})"};
  } else if (in(pre, {"deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"})) {
    c.regexes = {R"(\p{N}{1,3})", "[一-龥぀-ゟ゠-ヿ]+", kDeepseek3};
  } else if (pre == "falcon") {
    c.regexes = {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2NoTail, "[0-9][0-9][0-9]"};
  } else if (in(pre, {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                      "a.x-4.0", "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe",
                      "mpt", "olmo", "jais", "exaone4", "trillion", "granite-docling"})) {
    c.regexes = {kGpt2NoTail};
  } else if (in(pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
                      "minerva-7b", "mellum2"})) {
    c.regexes = {R"(\p{N})", kGpt2NoTail};
  } else if (in(pre, {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "megrez",
                      "solar-open", "grok-2"})) {
    c.regexes = {kQwen2};
  } else if (pre == "qwen35") {
    c.regexes = {kQwen35};
  } else if (pre == "ufakzeka") {
    c.regexes = {kUfakzeka};
  } else if (pre == "laguna") {
    c.regexes = {"[^\\n]+|[\\n]+", kQwen2};
  } else if (in(pre, {"poro-chat", "bloom", "gpt3-finnish"})) {
    c.regexes = {kBloom};
  } else if (pre == "viking") {
    c.regexes = {kBloom, R"(\p{N})"};
  } else if (pre == "tekken") {
    c.regexes = {kTekken}; c.ignore_merges = true; c.default_add_bos = true;
  } else if (in(pre, {"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"})) {
    c.regexes = {kGpt4o};
  } else if (pre == "seed-coder") {
    c.regexes = {kSeedCoder};
  } else if (in(pre, {"bailingmoe", "bailingmoe2", "llada-moe"})) {
    c.regexes = {kBailing};
  } else if (in(pre, {"gemma4", "granite-embed-multi-311m"})) {
    c.regexes = {"[^\\n]+|[\\n]+"}; c.byte_encode = false; c.escape_spaces = true; c.default_add_bos = true;
  } else {
    return std::nullopt;
  }
  return c;
}

}  // namespace slimlm::tok
