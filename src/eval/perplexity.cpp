#include "core/error.h"
#include "core/progress.h"
#include "eval/eval.h"
#include "model/forward.h"
#include "model/sampler.h"
#include <algorithm>
#include <cmath>
#include <limits>

namespace slimlm::eval {

double logsumexp(const float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  return mx + std::log(s);
}

namespace {
struct Stats {  // running mean and standard error
  double sum = 0, sum2 = 0; int64_t n = 0;
  void add(double v) { sum += v; sum2 += v * v; ++n; }
  double mean() const { return n ? sum / double(n) : 0; }
  double err() const {
    if (n < 2) return 0;
    const double m = mean();
    return std::sqrt(std::max(0.0, sum2 / double(n) - m * m) / double(n - 1));
  }
};

// KL(p_ref || p) for one position, from raw logits.
double kl_div(const float* ref, const float* cur, int64_t n) {
  const double lr = logsumexp(ref, n), lc = logsumexp(cur, n);
  double kl = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = double(ref[i]) - lr, b = double(cur[i]) - lc;
    kl += std::exp(a) * (a - b);
  }
  return std::max(0.0, kl);
}
}  // namespace

PplResult perplexity(const Model& m, const std::vector<int32_t>& tokens, const PplOptions& o, const Model* ref) {
  if (o.ctx < 4) fail("--ctx must be at least 4");
  if (ref && ref->hp.n_vocab != m.hp.n_vocab)
    fail("reference model has vocabulary ", ref->hp.n_vocab, ", model has ", m.hp.n_vocab, ": not comparable");
  PplResult r;
  r.ctx = o.ctx;
  r.n_tokens = int64_t(tokens.size());
  r.n_chunks = r.n_tokens / o.ctx;
  if (o.max_chunks > 0) r.n_chunks = std::min(r.n_chunks, o.max_chunks);
  if (r.n_chunks == 0) fail("need at least ", o.ctx, " tokens for one window of --ctx ", o.ctx, ", got ", r.n_tokens);
  r.has_ref = ref != nullptr;
  const int64_t V = m.hp.n_vocab, first = o.ctx / 2;
  const bool bos = m.tok && m.tok->add_bos();
  Session s(m, o.ctx, o.kv);
  std::unique_ptr<Session> rs = ref ? std::make_unique<Session>(*ref, o.ctx) : nullptr;
  std::vector<float> logits, rlogits;
  Stats nll, ref_nll, kld;
  int64_t agree = 0;
  Progress bar("perplexity", r.n_chunks, o.progress);
  for (int64_t c = 0; c < r.n_chunks; ++c) {
    std::vector<int32_t> w(tokens.begin() + c * o.ctx, tokens.begin() + (c + 1) * o.ctx);
    if (bos) w[0] = m.tok->bos();
    s.reset();
    s.forward(w.data(), o.ctx, first, logits);
    if (rs) { rs->reset(); rs->forward(w.data(), o.ctx, first, rlogits); }
    for (int64_t j = first; j < o.ctx - 1; ++j) {
      const float* lg = logits.data() + (j - first) * V;
      const int32_t next = w[size_t(j + 1)];
      nll.add(logsumexp(lg, V) - lg[next]);
      if (o.on_scored) o.on_scored(c, j, lg);
      if (rs) {
        const float* rl = rlogits.data() + (j - first) * V;
        ref_nll.add(logsumexp(rl, V) - rl[next]);
        const double kl = kl_div(rl, lg, V);
        kld.add(kl);
        r.kld_max = std::max(r.kld_max, kl);
        agree += Sampler::argmax(rl, V) == Sampler::argmax(lg, V);
        for (int64_t i = 0; i < V; ++i) {
          const double d = std::fabs(double(rl[i]) - lg[i]);
          if (d > r.max_abs_logit_diff) { r.max_abs_logit_diff = d; r.max_diff_pos = c * o.ctx + j; }
        }
      }
    }
    bar.update(c + 1, cat("ppl ", std::exp(nll.mean())));
  }
  bar.finish();
  r.n_scored = nll.n;
  r.nll_mean = nll.mean();
  r.ppl = std::exp(nll.mean());
  r.ppl_err = r.ppl * nll.err();
  if (rs) {
    r.ref_ppl = std::exp(ref_nll.mean());
    r.kld_mean = kld.mean();
    r.kld_err = kld.err();
    r.top1_agree = double(agree) / double(kld.n);
  }
  return r;
}

std::vector<TokenScore> per_token(const Model& m, const std::vector<int32_t>& ids) {
  if (ids.empty()) fail("no token ids given");
  const int64_t n = int64_t(ids.size()), V = m.hp.n_vocab;
  Session s(m, n);
  std::vector<float> logits;
  s.forward(ids.data(), n, 0, logits);
  std::vector<TokenScore> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* lg = logits.data() + i * V;
    TokenScore& t = out[size_t(i)];
    t.id = ids[size_t(i)];
    t.argmax = Sampler::argmax(lg, V);
    t.max_logit = lg[t.argmax];
    t.logprob_next = i + 1 < n ? float(double(lg[ids[size_t(i + 1)]]) - logsumexp(lg, V))
                               : std::numeric_limits<float>::quiet_NaN();
  }
  return out;
}

}  // namespace slimlm::eval
