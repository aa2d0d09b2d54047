#include "model/sampler.h"
#include "core/error.h"
#include <algorithm>
#include <cmath>

namespace slimlm {

Sampler::Sampler(SamplerParams p) : p_(p), rng_(p.seed) {
  if (p.temp < 0 || p.top_k < 0 || p.top_p <= 0 || p.top_p > 1 || p.min_p < 0 || p.min_p >= 1 || p.repeat_penalty <= 0)
    fail("invalid sampling parameters (need temp >= 0, top-k >= 0, 0 < top-p <= 1, 0 <= min-p < 1, repeat-penalty > 0)");
}

int32_t Sampler::argmax(const float* logits, int64_t n) {
  return int32_t(std::max_element(logits, logits + n) - logits);  // first maximum on ties
}

int32_t Sampler::sample(float* logits, int64_t n, const std::vector<int32_t>& history) {
  if (p_.repeat_penalty != 1.0f) {
    const size_t from = history.size() > size_t(p_.repeat_last_n) ? history.size() - size_t(p_.repeat_last_n) : 0;
    std::vector<int32_t> seen(history.begin() + long(from), history.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t id : seen)
      if (id >= 0 && id < n) logits[id] = logits[id] > 0 ? logits[id] / p_.repeat_penalty : logits[id] * p_.repeat_penalty;
  }
  if (p_.temp == 0) return argmax(logits, n);
  cand_.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) cand_[size_t(i)] = {logits[i], int32_t(i)};
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = size_t(n);
  if (p_.top_k > 0 && size_t(p_.top_k) < keep) {
    keep = size_t(p_.top_k);
    std::partial_sort(cand_.begin(), cand_.begin() + long(keep), cand_.end(), by_logit);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  cand_.resize(keep);
  // softmax with temperature over the kept candidates
  const float mx = cand_[0].first;
  double sum = 0;
  for (auto& c : cand_) { c.first = std::exp((c.first - mx) / p_.temp); sum += c.first; }
  for (auto& c : cand_) c.first = float(c.first / sum);
  // min-p: drop tokens whose probability is below min_p times the top one
  if (p_.min_p > 0) {
    const float cut = p_.min_p * cand_[0].first;
    size_t m = 1;
    while (m < cand_.size() && cand_[m].first >= cut) ++m;
    cand_.resize(m);
  }
  // top-p: smallest prefix whose mass reaches top_p
  if (p_.top_p < 1) {
    double acc = 0;
    size_t m = 0;
    while (m < cand_.size()) { acc += cand_[m].first; ++m; if (acc >= p_.top_p) break; }
    cand_.resize(m);
  }
  double total = 0;
  for (const auto& c : cand_) total += c.first;
  const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  double acc = 0;
  for (const auto& c : cand_) { acc += c.first; if (r < acc) return c.second; }
  return cand_.back().second;
}

}  // namespace slimlm
