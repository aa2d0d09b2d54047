// Pre-tokenization for byte-level BPE: UTF-8 decoding with llama.cpp's leniency, the GPT-2
// byte<->unicode map, PCRE2 regex splitting (a chain of patterns, each refining the pieces of
// the last) and the table of regexes per GGUF `tokenizer.ggml.pre` name.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slimlm::tok {

// Re-encodes `in` the way llama.cpp reads UTF-8: a malformed byte becomes U+FFFD (EF BF BD),
// overlong forms are re-encoded shortest; surrogates are kept. Valid UTF-8 comes back unchanged.
std::string normalize_utf8(std::string_view in);
// Byte length of the UTF-8 sequence starting with byte `c` (1 for continuation/invalid bytes).
inline size_t utf8_len(char c) {
  static const uint8_t k[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return k[uint8_t(c) >> 4];
}
std::string cpt_to_utf8(uint32_t cpt);
// Decodes one codepoint from valid UTF-8 at s[i], advancing i.
uint32_t next_cpt(std::string_view s, size_t& i);

// GPT-2's reversible byte -> printable codepoint map ("Ġ" for ' ', "Ċ" for '\n', ...).
const std::string& byte_to_unicode(uint8_t b);
// Inverse; returns -1 for a codepoint outside the map.
int unicode_to_byte(uint32_t cpt);
std::string byte_encode(std::string_view raw);  // every byte through byte_to_unicode

// A chain of PCRE2 regexes (UTF + UCP). Each regex splits every piece produced by the previous
// one into matches and the unmatched gaps between them (both kept, as llama.cpp does).
// `\s`/`\S` are rewritten to Unicode White_Space so they match llama.cpp's definition.
class RegexSplitter {
 public:
  explicit RegexSplitter(const std::vector<std::string>& patterns);  // throws Error on a bad regex
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;
  // `text` must come from normalize_utf8. Returns the pieces as byte ranges of `text`.
  std::vector<std::string_view> split(std::string_view text) const;
  bool empty() const { return codes_.empty(); }

 private:
  std::vector<void*> codes_;  // pcre2_code_8*
};

// What a GGUF `tokenizer.ggml.pre` name selects in llama.cpp's BPE tokenizer.
struct PreConfig {
  std::vector<std::string> regexes;
  bool byte_encode = true;      // GPT-2 byte->unicode mapping of each word
  bool ignore_merges = false;   // a word that is a whole token skips the merges
  bool default_add_bos = false; // overridden by tokenizer.ggml.add_bos_token when present
  bool escape_spaces = false;   // ' ' -> U+2581 before splitting (SPM-style BPE)
};
std::optional<PreConfig> pre_config(const std::string& pre);

// The GPT-2 pattern (Hugging Face ByteLevel pre-tokenizer with use_regex).
extern const char* const kGpt2Regex;

}  // namespace slimlm::tok
