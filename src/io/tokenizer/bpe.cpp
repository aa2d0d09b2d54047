// Byte-level BPE (GPT-2 family: SmolLM2, Qwen, Llama-3; also tokenizer.json BPE models):
// regex pre-tokenization, GPT-2 byte mapping, then merges lowest rank first (leftmost on ties)
// inside each word, with merges resolved on interned symbol ids rather than strings.
#include "core/error.h"
#include "io/tokenizer/vocab.h"
#include <mutex>
#include <queue>

namespace slimlm::tok {

namespace {

class BpeTokenizer final : public VocabTokenizer {
 public:
  explicit BpeTokenizer(VocabData& d);

 protected:
  void encode_fragment(std::string_view text, bool after_special, std::vector<int32_t>& out) const override;
  std::string make_piece(int32_t id) const override;

 private:
  int32_t intern(const std::string& s);
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  void push_bytes(std::string_view s, std::vector<int32_t>& out) const;

  std::unique_ptr<RegexSplitter> splitter_;
  PreConfig cfg_;
  bool prefix_space_ = false;                 // tokenizer.json ByteLevel add_prefix_space
  bool newline_words_whole_ = false;          // gemma4: a run of '\n' that is a token stays whole
  StrMap<int32_t> sym_ids_;                   // every string that takes part in a merge
  std::vector<int32_t> sym_token_;            // symbol id -> token id (or -1)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a,b) -> (rank, a+b)
  mutable std::mutex cache_mu_;
  mutable StrMap<std::vector<int32_t>> cache_;  // word -> ids (words repeat a lot in text)
};

BpeTokenizer::BpeTokenizer(VocabData& d) {
  if (d.hf_pre) {
    cfg_ = *d.hf_pre;
    prefix_space_ = d.hf_add_prefix_space;
  } else {
    auto c = pre_config(d.model == "gemma4" ? std::string("gemma4") : d.pre);
    if (!c) fail("unknown pre-tokenizer type '", d.pre, "'");
    cfg_ = *c;
  }
  newline_words_whole_ = d.model == "gemma4" || d.pre == "gemma4" || d.pre == "granite-embed-multi-311m";
  init_vocab(d, true);
  add_bos_ = d.add_bos.value_or(cfg_.default_add_bos);
  if (newline_words_whole_) add_bos_ = true;  // llama.cpp's override for Gemma 4
  add_eos_ = d.add_eos.value_or(false);
  splitter_ = std::make_unique<RegexSplitter>(cfg_.regexes);

  for (size_t i = 0; i < tokens_.size(); ++i) intern(tokens_[i]);
  merges_.reserve(d.merges.size());
  for (size_t r = 0; r < d.merges.size(); ++r) {
    const auto& [a, b] = d.merges[r];
    const int32_t ia = intern(a), ib = intern(b), iab = intern(a + b);
    const uint64_t key = (uint64_t(uint32_t(ia)) << 32) | uint32_t(ib);
    merges_.emplace(key, std::make_pair(int32_t(r), iab));  // the first (lowest) rank wins
  }
  build_pieces();
}

int32_t BpeTokenizer::intern(const std::string& s) {
  auto [it, added] = sym_ids_.emplace(s, int32_t(sym_token_.size()));
  if (added) sym_token_.push_back(find_token(s));
  return it->second;
}

void BpeTokenizer::push_bytes(std::string_view s, std::vector<int32_t>& out) const {
  static const char* hex = "0123456789ABCDEF";
  for (char c : s) {
    int32_t id;
    if (cfg_.byte_encode) {
      id = find_token(std::string_view(&c, 1));
    } else {
      const uint8_t b = uint8_t(c);
      const char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
      id = find_token(std::string_view(buf, 6));
    }
    if (id >= 0) out.push_back(id);
  }
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (cfg_.ignore_merges || (newline_words_whole_ && word.find_first_not_of('\n') == std::string_view::npos)) {
    const int32_t id = find_token(word);
    if (id >= 0) { out.push_back(id); return; }
  }
  struct Sym { int32_t sym, prev, next; uint32_t begin, len; };
  std::vector<Sym> syms;
  for (size_t i = 0; i < word.size();) {
    const size_t n = std::min(utf8_len(word[i]), word.size() - i);
    auto it = sym_ids_.find(word.substr(i, n));
    const int32_t idx = int32_t(syms.size());
    syms.push_back({it == sym_ids_.end() ? -1 : it->second, idx - 1, i + n == word.size() ? -1 : idx + 1,
                    uint32_t(i), uint32_t(n)});
    i += n;
  }
  struct Bigram { int32_t rank, left, right, a, b, ab; };
  auto worse = [](const Bigram& x, const Bigram& y) {
    return x.rank > y.rank || (x.rank == y.rank && x.left > y.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> q(worse);
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0 || syms[size_t(l)].sym < 0 || syms[size_t(r)].sym < 0) return;
    const int32_t a = syms[size_t(l)].sym, b = syms[size_t(r)].sym;
    auto it = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
    if (it != merges_.end()) q.push({it->second.first, l, r, a, b, it->second.second});
  };
  for (int32_t i = 1; i < int32_t(syms.size()); ++i) try_add(i - 1, i);
  while (!q.empty()) {
    const Bigram g = q.top();
    q.pop();
    Sym& L = syms[size_t(g.left)];
    Sym& R = syms[size_t(g.right)];
    if (L.len == 0 || R.len == 0 || L.sym != g.a || R.sym != g.b) continue;  // outdated
    L.len += R.len;
    L.sym = g.ab;
    R.len = 0;
    L.next = R.next;
    if (R.next >= 0) syms[size_t(R.next)].prev = g.left;
    try_add(L.prev, g.left);
    try_add(g.left, L.next);
  }
  for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) {
    const Sym& s = syms[size_t(i)];
    const int32_t id = s.sym >= 0 ? sym_token_[size_t(s.sym)] : -1;
    if (id >= 0) out.push_back(id);
    else push_bytes(word.substr(s.begin, s.len), out);
  }
}

void BpeTokenizer::encode_fragment(std::string_view raw, bool after_special, std::vector<int32_t>& out) const {
  std::string text = normalize_utf8(raw);
  if (cfg_.escape_spaces) {
    std::string esc;
    for (char c : text) { if (c == ' ') esc += "\xE2\x96\x81"; else esc += c; }
    text.swap(esc);
  }
  if (prefix_space_ && after_special && !text.empty() && text[0] != ' ') text.insert(0, " ");
  const auto words = splitter_->split(text);
  std::string enc;
  for (std::string_view w : words) {
    std::string_view word = w;
    if (cfg_.byte_encode) {
      enc = byte_encode(w);
      word = enc;
    }
    {
      std::lock_guard<std::mutex> lock(cache_mu_);
      auto it = cache_.find(word);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    const size_t before = out.size();
    encode_word(word, out);
    if (word.size() <= 64) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (cache_.size() > 200000) cache_.clear();
      cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + long(before), out.end()));
    }
  }
}

std::string BpeTokenizer::make_piece(int32_t id) const {
  const uint8_t a = attr_[size_t(id)];
  const std::string& t = tokens_[size_t(id)];
  if (a & (kUnknown | kControl | kUserDefined)) return t;
  if (a & kNormal) {
    if (cfg_.escape_spaces) {
      std::string r;
      for (size_t i = 0; i < t.size(); ++i) {
        if (t.compare(i, 3, "\xE2\x96\x81") == 0) { r += ' '; i += 2; } else r += t[i];
      }
      return r;
    }
    if (!cfg_.byte_encode) return t;
    std::string r;
    for (size_t i = 0; i < t.size();) {
      const size_t start = i;
      const int b = unicode_to_byte(next_cpt(t, i));
      if (b >= 0) r += char(b); else r.append(t, start, i - start);
    }
    return r;
  }
  return (a & kByte) ? byte_token_piece(t) : "";
}

}  // namespace

std::unique_ptr<Tokenizer> make_bpe(VocabData d) { return std::make_unique<BpeTokenizer>(d); }

}  // namespace slimlm::tok
