// The shared tokenizer base: token attributes and special ids as llama.cpp's loader derives
// them, splitting special tokens out of the text (longest first, as llama.cpp does), and the
// encode skeleton (BOS, fragments, EOS) around the subclass's fragment encoder.
#include "io/tokenizer/vocab.h"
#include "core/error.h"
#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>

namespace slimlm::tok {

namespace {

// Token texts llama.cpp treats as end of generation (and forces to control type).
const char* const kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~["};

uint64_t hash_text(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t(s.size()) * 0xFF51AFD7ED558CCDull);
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  h = (h ^ v) * 0x94D049BB133111EBull;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 32);
}

}  // namespace

void TokenIndex::build(const std::vector<std::string>& keys) {
  keys_ = &keys;
  size_t cap = 16;
  while (cap < keys.size() * 2) cap *= 2;
  slots_.assign(cap, 0);
  mask_ = cap - 1;
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint64_t h = hash_text(keys[i]);
    for (uint64_t k = h & mask_;; k = (k + 1) & mask_) {
      const uint64_t e = slots_[k];
      if (e == 0 || ((e >> 32) == (h >> 32) && keys[size_t(uint32_t(e)) - 1] == keys[i])) {
        slots_[k] = (h >> 32 << 32) | uint64_t(i + 1);
        break;
      }
    }
  }
}

int32_t TokenIndex::find(std::string_view s) const {
  if (!keys_) return -1;
  const uint64_t h = hash_text(s);
  for (uint64_t k = h & mask_;; k = (k + 1) & mask_) {
    const uint64_t e = slots_[k];
    if (e == 0) return -1;
    if ((e >> 32) == (h >> 32) && (*keys_)[size_t(uint32_t(e)) - 1] == s) return int32_t(uint32_t(e)) - 1;
  }
}

void VocabTokenizer::init_vocab(VocabData& d, bool bpe) {
  init_attributes(d);
  ids_.build(tokens_);
  eog_ids_ = end_of_generation(init_special_ids(d, bpe));
  for (size_t i = 0; i < tokens_.size(); ++i) {  // keep the public types in step with the attributes
    if (attr_[i] & kControl) types_[i] = 3;
    else if (attr_[i] == kUserDefined) types_[i] = 4;
    else if (attr_[i] == kNormal && types_[i] == 4) types_[i] = 1;
  }
  chat_template_ = d.chat_template;
  build_special_trie();
  set_strip_attributes(d);
}

void VocabTokenizer::init_attributes(VocabData& d) {
  const size_t n = d.tokens.size();
  if (n == 0) fail("tokenizer: empty vocabulary");
  tokens_ = std::move(d.tokens);
  for (size_t i = 0; i < n; ++i) {
    if (tokens_[i].empty()) tokens_[i] = cat("[EMPTY_", i, "]");
  }
  types_ = d.types;
  if (types_.size() < n) types_.resize(n, 1);
  attr_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    switch (types_[i]) {
      case 1: attr_[i] = kNormal; break;
      case 2: attr_[i] = kUnknown; break;
      case 3: attr_[i] = kControl; break;
      case 4: attr_[i] = kUserDefined; break;
      case 5: attr_[i] = kUnused; break;
      case 6: attr_[i] = kByte; break;
      default: attr_[i] = 0; break;
    }
  }
}

VocabTokenizer::SpecialIds VocabTokenizer::init_special_ids(const VocabData& d, bool bpe) {
  const size_t n = tokens_.size();
  auto valid = [&](std::optional<int32_t> v, int32_t dflt) -> int32_t {
    int32_t id = dflt;
    if (id >= int32_t(n)) id = -1;
    if (v && *v >= 0 && *v < int32_t(n)) id = *v;
    return id;
  };
  // llama.cpp's defaults when the metadata has no id: SPM 1/2/0, BPE 11/11/none.
  bos_ = valid(d.bos, bpe ? 11 : 1);
  eos_ = valid(d.eos, bpe ? 11 : 2);
  unk_ = valid(d.unk, bpe ? -1 : 0);
  if (d.model == "gemma4" || d.model == "hf-bpe") {
    bos_ = valid(d.bos, -1); eos_ = valid(d.eos, -1); unk_ = valid(d.unk, -1);
  }
  SpecialIds sp{valid(d.eot, -1), valid(d.eom, -1), valid(d.fim_pad, -1), valid(d.fim_rep, -1), valid(d.fim_sep, -1)};
  int32_t fim_pre = valid(d.fim_pre, -1), fim_suf = valid(d.fim_suf, -1), fim_mid = valid(d.fim_mid, -1);

  // Auto-detection by text (llama.cpp iterates a hash map; the lowest id wins here).
  auto detect = [&](int32_t& id, std::initializer_list<const char*> names) {
    if (id >= 0) return;
    for (const char* name : names) {
      const int32_t t = find_token(name);
      if (t >= 0 && (id < 0 || t < id)) id = t;
    }
    if (id >= 0) attr_[size_t(id)] |= kControl;
  };
  detect(sp.eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                  "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                  "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
                  "<end_of_utterance>"});
  detect(sp.eom, {"<|eom_id|>"});
  detect(fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                   "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
                   "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"});
  detect(fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                   "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>", "<SUF>",
                   "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"});
  detect(fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                   "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
                   "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"});
  detect(sp.fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
  detect(sp.fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  detect(sp.fim_sep, {"<|file_sep|>"});

  for (size_t i = 0; i < n; ++i) {
    if ((attr_[i] & kControl) && tokens_[i].find("unused") != std::string::npos) attr_[i] |= kUnused;
  }
  return sp;
}

std::vector<int32_t> VocabTokenizer::end_of_generation(const SpecialIds& sp) {
  std::vector<int32_t> eog;
  for (int32_t id : {sp.fim_pad, sp.fim_rep, sp.fim_sep}) if (id >= 0) eog.push_back(id);
  for (const char* name : kEogTexts) {
    const int32_t t = find_token(name);
    if (t >= 0) { eog.push_back(t); attr_[size_t(t)] |= kControl; }
  }
  for (const char* name : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {  // gpt-oss
    const int32_t t = find_token(name);
    if (t >= 0) attr_[size_t(t)] = kUserDefined;
  }
  for (int32_t id : {eos_, sp.eot, sp.eom}) if (id >= 0) eog.push_back(id);
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  auto has = [&](const char* t) { for (int32_t id : eog) if (tokens_[size_t(id)] == t) return id; return -1; };
  // o200k_harmony / solar-open: "<|end|>" is not end of generation there.
  const int32_t end_id = has("<|end|>");
  if (end_id >= 0 && ((has("<|return|>") >= 0 && (has("<|call|>") >= 0 || has("<|calls|>") >= 0)) ||
                      ((has("<|call|>") >= 0 || has("<|calls|>") >= 0) && has("<|flush|>") >= 0))) {
    eog.erase(std::find(eog.begin(), eog.end(), end_id));
    attr_[size_t(end_id)] = kUserDefined;
  }
  const int32_t s_id = has("</s>");  // gemma4 / plamo2: a normal "</s>"
  if (s_id >= 0 && (has("<|tool_response>") >= 0 || has("<|plamo:eos|>") >= 0)) {
    eog.erase(std::find(eog.begin(), eog.end(), s_id));
    attr_[size_t(s_id)] = kNormal;
  }
  return eog;
}

// llama.cpp sets these by model name, as GGUF has no field for them.
void VocabTokenizer::set_strip_attributes(const VocabData& d) {
  auto contains_any = [](const std::string& s, std::initializer_list<const char*> subs) {
    for (const char* x : subs) if (s.find(x) != std::string::npos) return true;
    return false;
  };
  auto set = [&](const char* text, uint8_t bit, bool on) {
    const int32_t id = find_token(text);
    if (id < 0) return;
    if (on) attr_[size_t(id)] |= bit; else attr_[size_t(id)] &= uint8_t(~bit);
  };
  std::string name = d.name;
  for (char& c : name) c = char(std::tolower(uint8_t(c)));
  if (contains_any(d.pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains_any(d.arch, {"nomic-bert-moe", "jina-bert-v3"})) {
    set("<mask>", kLstrip, true);
  } else if (contains_any(name, {"phi-3", "phi3"})) {
    for (size_t i = 0; i < tokens_.size(); ++i) if (special_rank_[i] >= 0) attr_[i] |= kRstrip;
    set("</s>", kRstrip, true);
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) set(t, kRstrip, false);
  } else if (contains_any(name, {"modern-bert"})) {
    set("[MASK]", kLstrip, true);
  }
  any_strip_ = false;
  for (uint8_t a : attr_) if (a & (kLstrip | kRstrip)) any_strip_ = true;
}

// llama.cpp tries special tokens longest first; each token takes every non-overlapping
// occurrence left to right in text not yet claimed by an earlier one. Its order comes from
// std::sort on ids by length, repeated here identically (ties resolve the same way).
void VocabTokenizer::build_special_trie() {
  std::vector<int32_t> order;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (attr_[i] & (kControl | kUserDefined | kUnknown)) order.push_back(int32_t(i));
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return tokens_[size_t(a)].size() > tokens_[size_t(b)].size();
  });
  special_rank_.assign(tokens_.size(), -1);
  special_lengths_.clear();
  trie_.assign(1, TrieNode{});
  trie_root_.fill(-1);
  for (size_t r = 0; r < order.size(); ++r) {
    const int32_t id = order[r];
    special_rank_[size_t(id)] = int32_t(r);
    const std::string& t = tokens_[size_t(id)];
    if (special_lengths_.empty() || special_lengths_.back() != t.size()) special_lengths_.push_back(uint32_t(t.size()));
    int32_t node = 0;
    for (size_t k = 0; k < t.size(); ++k) {
      const uint8_t c = uint8_t(t[k]);
      int32_t next = -1;
      if (node == 0) {
        next = trie_root_[c];
      } else {
        for (auto& [ch, child] : trie_[size_t(node)].kids) if (ch == c) { next = child; break; }
      }
      if (next < 0) {
        next = int32_t(trie_.size());
        trie_.push_back(TrieNode{});
        trie_.back().depth = uint32_t(k + 1);
        if (node == 0) trie_root_[c] = next;
        else trie_[size_t(node)].kids.emplace_back(c, next);
      }
      node = next;
    }
    if (trie_[size_t(node)].token < 0) trie_[size_t(node)].token = id;
  }
  // Link terminals to their nearest terminal ancestor (parents come before children).
  std::vector<int32_t> nearest(trie_.size(), -1);  // deepest terminal at or above each node
  for (size_t v = 0; v < trie_.size(); ++v) {
    if (trie_[v].token >= 0) nearest[v] = int32_t(v);
    auto visit = [&](int32_t child) {
      trie_[size_t(child)].shorter = nearest[v];
      nearest[size_t(child)] = nearest[v];
    };
    if (v == 0) { for (int32_t c : trie_root_) if (c >= 0) visit(c); }
    else for (auto& kc : trie_[v].kids) visit(kc.second);
  }
}

std::vector<VocabTokenizer::SpecialStart> VocabTokenizer::special_starts(std::string_view text) const {
  std::vector<SpecialStart> starts;
  for (size_t p = 0; p < text.size(); ++p) {
    int32_t node = trie_root_[uint8_t(text[p])], last = -1;
    for (size_t k = p + 1; node >= 0; ++k) {
      if (trie_[size_t(node)].token >= 0) last = node;
      if (k >= text.size()) break;
      const uint8_t c = uint8_t(text[k]);
      int32_t next = -1;
      for (auto& [ch, child] : trie_[size_t(node)].kids) if (ch == c) { next = child; break; }
      node = next;
    }
    if (last >= 0) starts.push_back({uint32_t(p), last});
  }
  return starts;
}

std::vector<VocabTokenizer::Fragment> VocabTokenizer::partition(std::string_view text, bool parse_special) const {
  std::vector<SpecialStart> starts = special_starts(text);
  std::vector<Fragment> hits;
  if (!starts.empty()) {
    // Longest length first; within a length, llama.cpp's token order, then left to right.
    // Each start walks down its chain of shorter terminals once over all lengths.
    struct Cand { int32_t rank; uint32_t pos; int32_t id; };
    std::vector<Cand> cand, sorted;
    std::vector<uint8_t> taken(text.size(), 0);
    for (uint32_t len : special_lengths_) {
      cand.clear();
      size_t w = 0;
      for (SpecialStart s : starts) {
        const TrieNode& nd = trie_[size_t(s.node)];
        if (nd.depth == len) {
          const int32_t id = nd.token;
          if (parse_special || !(attr_[size_t(id)] & (kControl | kUnknown))) cand.push_back({special_rank_[size_t(id)], s.pos, id});
          s.node = nd.shorter;
        }
        if (s.node >= 0) starts[w++] = s;
      }
      starts.resize(w);
      // Candidates arrive in position order: a counting sort on rank keeps it within a rank.
      int32_t lo = INT32_MAX, hi = -1;
      for (const Cand& c : cand) { lo = std::min(lo, c.rank); hi = std::max(hi, c.rank); }
      if (hi > lo) {
        std::vector<uint32_t> at(size_t(hi - lo) + 2, 0);
        for (const Cand& c : cand) ++at[size_t(c.rank - lo) + 1];
        for (size_t i = 1; i < at.size(); ++i) at[i] += at[i - 1];
        sorted.resize(cand.size());
        for (const Cand& c : cand) sorted[at[size_t(c.rank - lo)]++] = c;
        cand.swap(sorted);
      }
      for (const Cand& c : cand) {
        // Claimed spans are at least `len` long, so one overlapping covers an end of this one
        // (whitespace eaten by a strip attribute can be shorter: then look at every byte).
        if (taken[c.pos] || taken[c.pos + len - 1]) continue;
        if (any_strip_ && std::memchr(taken.data() + c.pos, 1, len)) continue;
        std::memset(taken.data() + c.pos, 1, len);
        hits.push_back({c.pos, c.pos + len, c.id});
        const uint8_t a = attr_[size_t(c.id)];
        auto ws = [&](size_t i) { return !taken[i] && std::strchr(" \t\n\v\f\r", text[i]) && text[i] != 0; };
        if (a & kLstrip) {
          size_t b = c.pos;
          while (b > 0 && ws(b - 1)) taken[--b] = 1;
          if (b < c.pos) hits.push_back({b, c.pos, -2});
        }
        if (a & kRstrip) {
          size_t e = c.pos + len;
          while (e < text.size() && ws(e)) taken[e++] = 1;
          if (e > c.pos + len) hits.push_back({c.pos + len, e, -2});
        }
      }
      if (starts.empty()) break;
    }
    std::sort(hits.begin(), hits.end(), [](const Fragment& a, const Fragment& b) { return a.begin < b.begin; });
  }
  std::vector<Fragment> frags;
  size_t at = 0;
  for (const Fragment& h : hits) {
    if (h.begin > at) frags.push_back({at, h.begin, -1});
    if (h.id >= 0) frags.push_back(h);  // -2: whitespace eaten by a strip attribute
    at = h.end;
  }
  if (at < text.size()) frags.push_back({at, text.size(), -1});
  return frags;
}

std::vector<int32_t> VocabTokenizer::encode(const std::string& text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  bool after_special = true;
  for (const Fragment& f : partition(text, parse_special)) {
    if (f.id >= 0) {
      out.push_back(f.id);
      after_special = true;
    } else {
      encode_fragment(std::string_view(text).substr(f.begin, f.end - f.begin), after_special, out);
      after_special = false;
    }
  }
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

void VocabTokenizer::build_pieces() {
  pieces_.resize(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) pieces_[i] = make_piece(int32_t(i));
}

std::string VocabTokenizer::token_to_piece(int32_t id) const {
  if (id < 0 || size_t(id) >= pieces_.size()) fail("token id ", id, " out of range [0, ", pieces_.size(), ")");
  return pieces_[size_t(id)];
}

}  // namespace slimlm::tok
