#include "model/sparsify.h"
#include "core/dtype_custom.h"
#include "core/dtype_sparse.h"
#include "core/error.h"
#include <algorithm>
#include <cstdio>

namespace slimlm {

SparseOptions parse_sparse_mode(const std::string& s) {
  SparseOptions o;
  if (s == "auto") return o;
  if (s == "bitmap") { o.mode = SparseMode::Bitmap; return o; }
  int n = 0, m = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%d:%d%c", &n, &m, &tail) != 2)
    fail("unknown --sparse '", s, "' (known: N:M such as 2:4 or 4:8, bitmap, auto)");
  nm_type(n, m);  // range check
  o.mode = SparseMode::NM;
  o.keep = n;
  o.m = m;
  return o;
}

namespace {
// The sparse type `t` qualifies for (or F32 as "none").
DType sparse_choice(const std::vector<float>& w, int64_t cols, int64_t rows, const SparseOptions& o) {
  if (o.mode != SparseMode::Bitmap) {
    bool fits = true;
    for (int64_t r = 0; r < rows && fits; ++r) fits = max_group_nonzeros(w.data() + r * cols, cols, o.m) <= o.keep;
    if (fits) return nm_type(o.keep, o.m);
    if (o.mode == SparseMode::NM) return DType::F32;
  }
  int64_t most = 0, nz = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = count_nonzeros(w.data() + r * cols, cols);
    most = std::max(most, c);
    nz += c;
  }
  const double sparsity = 1.0 - double(nz) / double(std::max<int64_t>(1, cols * rows));
  return sparsity >= o.min_sparsity ? bitmap_type(std::max<int64_t>(1, most)) : DType::F32;
}
}  // namespace

SparseStats sparsify_model(Model& m, DType type, const SparseOptions& o) {
  SparseStats st;
  const bool tied = m.output.data == m.tok_embd.data;
  m.tok_embd = convert_tensor(m.tok_embd, type);
  m.output = tied ? m.tok_embd : convert_tensor(m.output, type);
  m.out_norm = convert_tensor(m.out_norm, type);
  for (Block& b : m.blocks) {
    for (Tensor* t : {&b.attn_norm, &b.bq, &b.bk, &b.bv, &b.q_norm, &b.k_norm, &b.attn_post_norm, &b.ffn_norm, &b.ffn_post_norm})
      *t = convert_tensor(*t, type);
    for (Tensor* t : b.linears()) {
      if (t->empty()) continue;
      Tensor dense = convert_tensor(*t, type);
      st.linear_bytes_dense += dense.nbytes;
      const std::vector<float> w = t->to_f32();
      const DType s = sparse_choice(w, t->cols(), t->rows(), o);
      if (s == DType::F32 || (custom_layout(s).kind == CustomKind::Bitmap && row_bytes(s, t->cols()) >= row_bytes(dense.type, t->cols()))) {
        *t = dense;
        ++st.n_dense;
      } else {
        *t = Tensor::from_f32(t->name, t->ne, w.data(), s);
        ++(custom_layout(s).kind == CustomKind::NM ? st.n_nm : st.n_bitmap);
      }
      st.linear_bytes += t->nbytes;
    }
  }
  return st;
}

}  // namespace slimlm
