// SentencePiece BPE as llama.cpp runs it (Llama-2, Gemma): spaces become U+2581, an optional
// space prefix, then the adjacent pair whose joined text is the best-scoring vocabulary token
// merges first (leftmost on ties); characters no token covers fall back to <0xXX> byte tokens.
#include "core/error.h"
#include "io/tokenizer/vocab.h"
#include <queue>

namespace slimlm::tok {

namespace {

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(VocabData& d);

 protected:
  void encode_fragment(std::string_view text, bool after_special, std::vector<int32_t>& out) const override;
  std::string make_piece(int32_t id) const override;

 private:
  std::vector<float> scores_;
  std::array<int32_t, 256> byte_ids_{};
};

SpmTokenizer::SpmTokenizer(VocabData& d) {
  scores_ = d.scores;
  if (scores_.size() < d.tokens.size()) scores_.resize(d.tokens.size(), 0.0f);
  init_vocab(d, false);
  add_bos_ = d.add_bos.value_or(true);
  add_eos_ = d.add_eos.value_or(false);
  add_space_prefix_ = d.add_space_prefix.value_or(true);
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    int32_t id = find_token(std::string_view(buf, 6));
    if (id < 0) { const char c = char(b); id = find_token(std::string_view(&c, 1)); }
    byte_ids_[size_t(b)] = id;
  }
  build_pieces();
}

void SpmTokenizer::encode_fragment(std::string_view raw, bool after_special, std::vector<int32_t>& out) const {
  std::string text;
  text.reserve(raw.size() + 8);
  if (add_space_prefix_ && after_special) text += "\xE2\x96\x81";
  for (char c : raw) { if (c == ' ') text += "\xE2\x96\x81"; else text += c; }

  struct Sym { int32_t prev, next; uint32_t begin, len; };
  std::vector<Sym> syms;
  syms.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = std::min(utf8_len(text[i]), text.size() - i);
    const int32_t idx = int32_t(syms.size());
    syms.push_back({idx - 1, i + n == text.size() ? -1 : idx + 1, uint32_t(i), uint32_t(n)});
    i += n;
  }
  if (syms.empty()) return;
  struct Bigram { float score; int32_t left, right; uint32_t size; };
  auto worse = [](const Bigram& x, const Bigram& y) {
    return x.score < y.score || (x.score == y.score && x.left > y.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(worse)> q(worse);
  const std::string_view tv(text);
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = syms[size_t(l)].len + syms[size_t(r)].len;
    const int32_t id = find_token(tv.substr(syms[size_t(l)].begin, size));
    if (id < 0) return;
    q.push({scores_[size_t(id)], l, r, size});
  };
  for (int32_t i = 1; i < int32_t(syms.size()); ++i) try_add(i - 1, i);
  while (!q.empty()) {
    const Bigram g = q.top();
    q.pop();
    Sym& L = syms[size_t(g.left)];
    Sym& R = syms[size_t(g.right)];
    if (L.len == 0 || R.len == 0 || L.len + R.len != g.size) continue;  // outdated
    L.len += R.len;
    R.len = 0;
    L.next = R.next;
    if (R.next >= 0) syms[size_t(R.next)].prev = g.left;
    try_add(L.prev, g.left);
    try_add(g.left, L.next);
  }
  for (int32_t i = 0; i >= 0; i = syms[size_t(i)].next) {
    const std::string_view s = tv.substr(syms[size_t(i)].begin, syms[size_t(i)].len);
    const int32_t id = find_token(s);
    if (id >= 0) { out.push_back(id); continue; }
    for (char c : s) {  // byte fallback
      const int32_t b = byte_ids_[uint8_t(c)];
      if (b >= 0) out.push_back(b);
      else if (unk_ >= 0) out.push_back(unk_);
    }
  }
}

std::string SpmTokenizer::make_piece(int32_t id) const {
  const uint8_t a = attr_[size_t(id)];
  const std::string& t = tokens_[size_t(id)];
  if (a & (kUnknown | kControl | kUserDefined)) return t;
  if (a & kNormal) {
    std::string r;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t.compare(i, 3, "\xE2\x96\x81") == 0) { r += ' '; i += 2; } else r += t[i];
    }
    return r;
  }
  return (a & kByte) ? byte_token_piece(t) : "";
}

}  // namespace

std::unique_ptr<Tokenizer> make_spm(VocabData d) { return std::make_unique<SpmTokenizer>(d); }

}  // namespace slimlm::tok
