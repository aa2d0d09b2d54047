// oracle_dump: llama.cpp's answers on a text, for slimlm's oracle tests (tests/data/oracle).
// Uses only llama.cpp's public C API (llama.h); built against the peer build that
// scripts/peer-llamacpp.sh makes, not part of slimlm's own build.
//
//   oracle_dump tok    OUT.ids  -m MODEL -f TEXT [-t N]
//     the ids llama-perplexity tokenizes TEXT into (file minus one trailing '\n',
//     add_special=true, parse_special=false), as decimal numbers joined by single spaces
//     (so sha256sum OUT.ids is the sha256_ids of <model>.wiki.tokens.json)
//   oracle_dump logits OUT.bin CHUNKS -m MODEL -f TEXT [-c 512] [-b 512] [-t N]
//                      [-ctk f16|f32] [-ctv f16|f32] [-fa auto|on|off]
//     llama-perplexity's protocol on the first CHUNKS windows of c tokens (KV cache cleared,
//     BOS replacing the first token if the model adds BOS, one batch per window, positions
//     c/2 .. c-2 scored against the next token); one record per scored position
//     (layout in tests/data/oracle/README.md) and "ppl=... +/- ... top1=..." on stdout.
#include "llama.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kTop = 10;

struct Options {
  std::string mode, out, model, text;
  int chunks = 0, ctx = 512, batch = 0, threads = 2;
  ggml_type type_k = GGML_TYPE_F16, type_v = GGML_TYPE_F16;
  llama_flash_attn_type fa = LLAMA_FLASH_ATTN_TYPE_AUTO;
};

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

int to_int(const std::string& flag, const std::string& v) {
  try {
    size_t used = 0;
    int n = std::stoi(v, &used);
    if (used == v.size() && n > 0) return n;
  } catch (const std::exception&) {
  }
  fail(flag + " wants a positive integer, got '" + v + "'");
}

ggml_type to_cache_type(const std::string& flag, const std::string& v) {
  if (v == "f16") return GGML_TYPE_F16;
  if (v == "f32") return GGML_TYPE_F32;
  fail(flag + " wants f16 or f32, got '" + v + "'");
}

llama_flash_attn_type to_fa(const std::string& v) {
  if (v == "auto") return LLAMA_FLASH_ATTN_TYPE_AUTO;
  if (v == "on") return LLAMA_FLASH_ATTN_TYPE_ENABLED;
  if (v == "off") return LLAMA_FLASH_ATTN_TYPE_DISABLED;
  fail("-fa wants auto, on or off, got '" + v + "'");
}

Options parse(int argc, char** argv) {
  Options o;
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() < 2 || (a[0] != "tok" && a[0] != "logits")) fail("usage: oracle_dump tok|logits OUT [CHUNKS] -m MODEL -f TEXT ...");
  o.mode = a[0];
  o.out = a[1];
  size_t i = 2;
  if (o.mode == "logits") {
    if (a.size() < 3) fail("logits wants OUT CHUNKS");
    o.chunks = to_int("CHUNKS", a[2]);
    i = 3;
  }
  for (; i < a.size(); i += 2) {
    if (i + 1 >= a.size()) fail(a[i] + " wants a value");
    const std::string& f = a[i];
    const std::string& v = a[i + 1];
    if (f == "-m") o.model = v;
    else if (f == "-f") o.text = v;
    else if (f == "-c") o.ctx = to_int(f, v);
    else if (f == "-b") o.batch = to_int(f, v);
    else if (f == "-t") o.threads = to_int(f, v);
    else if (f == "-ctk") o.type_k = to_cache_type(f, v);
    else if (f == "-ctv") o.type_v = to_cache_type(f, v);
    else if (f == "-fa") o.fa = to_fa(v);
    else fail("unknown flag " + f);
  }
  if (o.model.empty() || o.text.empty()) fail("-m MODEL and -f TEXT are required");
  if (o.batch == 0) o.batch = o.ctx;
  if (o.batch != o.ctx) fail("-b must equal -c (one window per decode, as llama-perplexity -b 512 -c 512)");
  return o;
}

// llama-perplexity's -f: the file verbatim, minus exactly one trailing '\n'.
std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text) {
  std::vector<llama_token> ids(text.size() + 2);
  int32_t n = llama_tokenize(vocab, text.data(), int32_t(text.size()), ids.data(), int32_t(ids.size()), true, false);
  if (n < 0) {
    ids.resize(size_t(-n));
    n = llama_tokenize(vocab, text.data(), int32_t(text.size()), ids.data(), int32_t(ids.size()), true, false);
  }
  if (n < 0) fail("tokenization failed");
  ids.resize(size_t(n));
  return ids;
}

// Writes to PATH.tmp, then renames, so a failed run leaves no half file behind.
void write_file(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    if (!out) fail("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename " + tmp + " to " + path);
}

struct Model {
  llama_model* model = nullptr;
  llama_context* ctx = nullptr;
  ~Model() {
    if (ctx) llama_free(ctx);
    if (model) llama_model_free(model);
  }
};

// The context llama-perplexity creates for -c C -b C -t N (common_context_params_to_llama with
// the tool's defaults): one sequence, n_ubatch 512, swa_full off, the given KV types and FA mode.
void load(Model& m, const Options& o) {
  m.model = llama_model_load_from_file(o.model.c_str(), llama_model_default_params());
  if (!m.model) fail("cannot load " + o.model);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = uint32_t(o.ctx);
  cp.n_batch = uint32_t(o.batch);
  cp.n_ubatch = 512;
  cp.n_seq_max = 1;
  cp.n_threads = cp.n_threads_batch = o.threads;
  cp.flash_attn_type = o.fa;
  cp.type_k = o.type_k;
  cp.type_v = o.type_v;
  cp.swa_full = false;
  cp.kv_unified = false;
  cp.no_perf = true;
  m.ctx = llama_init_from_model(m.model, cp);
  if (!m.ctx) fail("cannot create a llama.cpp context");
}

int run_tok(const Options& o, const llama_vocab* vocab) {
  const std::vector<llama_token> ids = tokenize(vocab, read_text(o.text));
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(ids[i]);
  }
  write_file(o.out, s);
  std::printf("n_tokens=%zu add_bos=%d bos_id=%d\n", ids.size(), int(llama_vocab_get_add_bos(vocab)),
              int(llama_vocab_bos(vocab)));
  return 0;
}

struct Scores {
  double nll = 0, nll2 = 0;
  size_t count = 0, top1 = 0;
};

template <class T> void put(std::string& out, T v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

// One scored position: log-softmax of the target as perplexity.cpp computes it (float max,
// double sum of expf(l - max)), the logsumexp, and the top-k logits (ties: lower id first).
void record(std::string& out, Scores& sc, const float* l, int n_vocab, uint32_t chunk, uint32_t pos, llama_token target) {
  float max = l[0];
  for (int i = 1; i < n_vocab; ++i) max = std::max(max, l[i]);
  double sum = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum += expf(l[i] - max);
  const double logprob = l[target] - max - std::log(sum);
  std::vector<uint32_t> ids(static_cast<size_t>(n_vocab));
  for (int i = 0; i < n_vocab; ++i) ids[size_t(i)] = uint32_t(i);
  std::partial_sort(ids.begin(), ids.begin() + kTop, ids.end(),
                    [l](uint32_t a, uint32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  put(out, chunk);
  put(out, pos);
  put(out, uint32_t(target));
  put(out, float(logprob));
  put(out, ids[0]);
  put(out, float(double(max) + std::log(sum)));
  for (uint32_t k = 0; k < kTop; ++k) {
    put(out, ids[k]);
    put(out, l[ids[k]]);
  }
  sc.nll -= logprob;
  sc.nll2 += logprob * logprob;
  sc.count += 1;
  sc.top1 += ids[0] == uint32_t(target);
}

// Decodes window `chunk` as llama-perplexity does and appends its records.
void score_window(Model& m, llama_batch& batch, const std::vector<llama_token>& tokens, int chunk, int n_ctx,
                  std::string& out, Scores& sc) {
  const llama_vocab* vocab = llama_model_get_vocab(m.model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  const int first = n_ctx / 2;
  const size_t start = size_t(chunk) * size_t(n_ctx);
  llama_memory_clear(llama_get_memory(m.ctx), true);
  batch.n_tokens = n_ctx;
  for (int k = 0; k < n_ctx; ++k) {
    batch.token[k] = (k == 0 && llama_vocab_get_add_bos(vocab)) ? llama_vocab_bos(vocab) : tokens[start + size_t(k)];
    batch.pos[k] = k;
    batch.n_seq_id[k] = 1;
    batch.seq_id[k][0] = 0;
    batch.logits[k] = k >= first;
  }
  if (llama_decode(m.ctx, batch) != 0) fail("llama_decode failed on window " + std::to_string(chunk));
  for (int j = first; j < n_ctx - 1; ++j)
    record(out, sc, llama_get_logits_ith(m.ctx, j), n_vocab, uint32_t(chunk), uint32_t(j), tokens[start + size_t(j) + 1]);
}

int run_logits(const Options& o, Model& m) {
  const std::vector<llama_token> tokens = tokenize(llama_model_get_vocab(m.model), read_text(o.text));
  const size_t n_max = tokens.size() / size_t(o.ctx);
  if (size_t(o.chunks) > n_max) fail("the text has only " + std::to_string(n_max) + " windows of " + std::to_string(o.ctx));
  std::string out;
  put(out, uint32_t(0));
  std::memcpy(out.data(), "SLOR", 4);
  put(out, uint32_t(1));
  put(out, uint32_t(o.chunks) * uint32_t(o.ctx - 1 - o.ctx / 2));
  put(out, kTop);
  Scores sc;
  llama_batch batch = llama_batch_init(o.ctx, 0, 1);
  for (int c = 0; c < o.chunks; ++c) {
    score_window(m, batch, tokens, c, o.ctx, out, sc);
    std::fprintf(stderr, "[%d]%.4f\n", c + 1, std::exp(sc.nll / double(sc.count)));
  }
  llama_batch_free(batch);
  write_file(o.out, out);
  const double nll = sc.nll / double(sc.count);
  const double var = sc.nll2 / double(sc.count) - nll * nll;
  const double ppl = std::exp(nll);
  std::printf("ppl=%.6f +/- %.6f top1=%.4f records=%zu\n", ppl, var > 0 ? std::sqrt(var / double(sc.count - 1)) * ppl : 0.0,
              double(sc.top1) / double(sc.count), sc.count);
  return 0;
}

// llama.cpp's warnings and errors only (a continuation line follows its message's level).
void quiet_log(ggml_log_level level, const char* text, void*) {
  static bool shown = false;
  if (level != GGML_LOG_LEVEL_CONT) shown = level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR;
  if (shown) std::fputs(text, stderr);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    Model m;
    load(m, o);
    const int rc = o.mode == "tok" ? run_tok(o, llama_model_get_vocab(m.model)) : run_logits(o, m);
    llama_backend_free();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "oracle_dump: %s\n", e.what());
    return 1;
  }
}
