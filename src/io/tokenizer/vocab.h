// Internal to the tokenizer: the vocabulary as read from GGUF or tokenizer.json, the shared
// base class (token attributes, special-token splitting, end-of-generation set, piece cache)
// and the two algorithms built on it: byte-level BPE (bpe.cpp) and SentencePiece (spm.cpp).
#pragma once
#include "io/tokenizer/pretokenize.h"
#include "io/tokenizer/tokenizer.h"
#include <array>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace slimlm::tok {

// Everything a tokenizer is built from, independent of the file format.
struct VocabData {
  std::string model;               // "gpt2", "llama", "gemma4" (GGUF names); "hf-bpe"
  std::string pre;                 // GGUF tokenizer.ggml.pre
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;      // GGUF token types; empty = all normal
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  std::optional<int32_t> bos, eos, eot, eom, unk, sep, pad;
  std::optional<int32_t> fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
  std::optional<bool> add_bos, add_eos, add_space_prefix;
  std::string chat_template;
  std::string name, arch;          // general.name / general.architecture (strip attributes)
  // tokenizer.json only: an explicit pre-tokenizer instead of a `pre` name.
  std::optional<PreConfig> hf_pre;
  bool hf_add_prefix_space = false;
};

// Heterogeneous string-keyed hash map (lookups by string_view without allocating).
struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StrMap = std::unordered_map<std::string, V, SvHash, std::equal_to<>>;

// Open-addressing index from token text to id over a vector of strings it does not own;
// about twice as fast as std::unordered_map on a 262k vocabulary (fewer cache misses).
class TokenIndex {
 public:
  void build(const std::vector<std::string>& keys);  // a later duplicate wins
  int32_t find(std::string_view s) const;
 private:
  const std::vector<std::string>* keys_ = nullptr;
  std::vector<uint64_t> slots_;  // (hash high 32 bits << 32) | (id + 1); 0 = empty
  uint64_t mask_ = 0;
};

// llama.cpp token attributes (a token can carry several, e.g. user-defined + control).
enum Attr : uint8_t {
  kNormal = 1, kUnknown = 2, kControl = 4, kUserDefined = 8, kUnused = 16, kByte = 32,
  kLstrip = 64, kRstrip = 128,  // a special token eats the ASCII whitespace before / after it
};

class VocabTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(const std::string& text, bool add_special, bool parse_special) const override;
  std::string token_to_piece(int32_t id) const override;

 protected:
  // Fills the base members and attributes from `d` following llama.cpp's loader: default
  // special ids for the model type, tokens recognised by their text (EOT, FIM, EOG) forced
  // to control, "unused" control tokens, the special-token trie. `bpe` selects defaults.
  void init_vocab(VocabData& d, bool bpe);
  // Builds the token -> piece cache; call after the subclass is ready for make_piece.
  void build_pieces();
  int32_t find_token(std::string_view s) const { return ids_.find(s); }
  // Encodes raw text between special tokens; `after_special` is true at the start of the
  // input and after a special token (SentencePiece's space prefix depends on it).
  virtual void encode_fragment(std::string_view text, bool after_special, std::vector<int32_t>& out) const = 0;
  virtual std::string make_piece(int32_t id) const = 0;

  std::vector<uint8_t> attr_;
  TokenIndex ids_;

 private:
  struct Fragment { size_t begin, end; int32_t id; };  // id < 0: raw text
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  // Positions where some special token starts, with the longest one's trie node.
  struct SpecialStart { uint32_t pos; int32_t node; };
  std::vector<SpecialStart> special_starts(std::string_view text) const;
  // Steps of init_vocab: tokens, types and attributes from `d`; the special ids (bos/eos/unk
  // set here; the end-of-generation candidates returned); the end-of-generation list.
  struct SpecialIds { int32_t eot, eom, fim_pad, fim_rep, fim_sep; };
  void init_attributes(VocabData& d);
  SpecialIds init_special_ids(const VocabData& d, bool bpe);
  std::vector<int32_t> end_of_generation(const SpecialIds& sp);
  void build_special_trie();
  void set_strip_attributes(const VocabData& d);
  bool any_strip_ = false;

  // Trie of special-token texts; `shorter` links a terminal node to the nearest terminal
  // ancestor, so all special tokens starting at a position form one chain.
  struct TrieNode {
    std::vector<std::pair<uint8_t, int32_t>> kids;
    int32_t token = -1, shorter = -1;
    uint32_t depth = 0;
  };
  std::vector<TrieNode> trie_;
  std::array<int32_t, 256> trie_root_{};
  std::vector<int32_t> special_rank_;     // per token: position in llama.cpp's special order
  std::vector<uint32_t> special_lengths_; // distinct special-token lengths, longest first
  std::vector<std::string> pieces_;
};

// The byte a byte-fallback token such as "<0x0A>" stands for, or "" if `t` is not one.
inline std::string byte_token_piece(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return "";
  return std::string(1, char(std::stoi(t.substr(3, 2), nullptr, 16)));
}

std::unique_ptr<Tokenizer> make_bpe(VocabData d);  // "gpt2", "gemma4", "hf-bpe"
std::unique_ptr<Tokenizer> make_spm(VocabData d);  // "llama"

}  // namespace slimlm::tok
