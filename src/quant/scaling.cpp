// Per-input-channel scaling shared by AWQ and SmoothQuant: every weight that reads a site is
// multiplied by diag(s) on the right, and diag(s)⁻¹ is folded into the op that produces the
// site's input, so the block computes the same function (W·diag(s))(diag(s)⁻¹ x) = W x:
//   q/k/v input  <- attn_norm weight / s        gate/up input <- ffn_norm weight / s
//   o input      <- rows of v (and bv) / s      down input    <- rows of up / s
// (down's input is act(gate)·up, linear in up; o's input is softmax-weighted v rows, linear in v.
// With grouped-query attention one v row feeds n_head / n_head_kv heads, so their s must agree.)
#include "core/error.h"
#include "quant/methods.h"

namespace slimlm::quant {

namespace {
Tensor divided(const Tensor& t, const std::vector<float>& s, int64_t n) {  // element j / s[j], j < n
  std::vector<float> v = t.to_f32();
  SLIMLM_ASSERT(int64_t(v.size()) == n);
  for (size_t j = 0; j < v.size(); ++j) v[j] /= s[j];
  return Tensor::from_f32(t.name, t.ne, v.data());
}
}  // namespace

ScaledBlock f32_weights(Block& b) {
  ScaledBlock out;
  for (int s = 0; s < kLinearSites; ++s)
    for (Tensor* t : site_weights(b, LinearSite(s))) out.w[s].push_back(t->to_f32());
  return out;
}

bool tied_across_kv_groups(const HParams& hp, const std::vector<float>& s) {
  const int64_t D = hp.head_dim, group = hp.n_head / hp.n_head_kv;
  for (int64_t h = 0; h < hp.n_head; ++h)
    for (int64_t d = 0; d < D; ++d)
      if (s[size_t(h * D + d)] != s[size_t((h / group) * group * D + d)]) return false;
  return true;
}

void apply_input_scales(Block& b, const HParams& hp, ScaledBlock& sb, LinearSite site, const std::vector<float>& s) {
  const int si = int(site);
  const int64_t k = int64_t(s.size());
  for (auto& w : sb.w[si]) {
    SLIMLM_ASSERT(int64_t(w.size()) % k == 0);
    const int64_t rows = int64_t(w.size()) / k;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < k; ++j) w[size_t(r * k + j)] *= s[size_t(j)];
  }
  // Rows of a fold target `w` (row length E) divided by s_row(r).
  auto divide_rows = [&](std::vector<float>& w, int64_t n_rows, auto s_row) {
    const int64_t E = int64_t(w.size()) / n_rows;
    for (int64_t r = 0; r < n_rows; ++r)
      for (int64_t i = 0; i < E; ++i) w[size_t(r * E + i)] /= s_row(r);
  };
  switch (site) {
    case LinearSite::AttnIn: b.attn_norm = divided(b.attn_norm, s, k); break;
    case LinearSite::FfnIn: b.ffn_norm = divided(b.ffn_norm, s, k); break;
    case LinearSite::FfnDown: divide_rows(sb.w[int(LinearSite::FfnIn)][1], k, [&](int64_t r) { return s[size_t(r)]; }); break;
    case LinearSite::AttnOut: {
      SLIMLM_ASSERT(tied_across_kv_groups(hp, s));
      const int64_t D = hp.head_dim, group = hp.n_head / hp.n_head_kv, kv = hp.n_head_kv * D;
      // v row kvh·D + d feeds o's columns h·D + d for the `group` heads h of kv head kvh.
      std::vector<float> sv(static_cast<size_t>(kv));
      for (int64_t r = 0; r < kv; ++r) sv[size_t(r)] = s[size_t((r / D) * group * D + r % D)];
      divide_rows(sb.w[int(LinearSite::AttnIn)][2], kv, [&](int64_t r) { return sv[size_t(r)]; });
      if (!b.bv.empty()) b.bv = divided(b.bv, sv, kv);
      break;
    }
  }
  sb.scale[si] = s;
}

}  // namespace slimlm::quant
