// RTN: round-to-nearest with per-group min–max ranges — the baseline every calibrated method
// is measured against (e.g. GPTQ paper, Table 2 "RTN"). w_q = s · (clamp(⌊w/s⌉ + z, 0, 2^b − 1) − z).
#include "core/error.h"
#include "quant/methods.h"
#include <cstring>

namespace slimlm::quant {

std::vector<float> QMatrix::deq() const {
  std::vector<float> out(size_t(rows * cols));
  for (int64_t i = 0; i < rows; ++i) std::memcpy(out.data() + i * cols, r[size_t(i)].deq.data(), size_t(cols) * 4);
  return out;
}

Tensor to_tensor(const QMatrix& q, const Codec& c, const Tensor& like) {
  SLIMLM_ASSERT(q.rows == like.rows() && q.cols == like.cols());
  auto buf = std::make_shared<std::vector<uint8_t>>(encode_matrix(c, q.r, q.cols));
  Tensor t;
  t.name = like.name;
  t.ne = like.ne;
  t.type = c.type();
  t.data = buf->data();
  t.nbytes = buf->size();
  t.keep = buf;
  return t;
}

Tensor f32_view(const float* data, int64_t rows, int64_t cols) {
  Tensor t;
  t.type = DType::F32;
  t.ne = {cols, rows};
  t.data = reinterpret_cast<const uint8_t*>(data);
  t.nbytes = size_t(rows * cols) * 4;
  return t;
}

QMatrix rtn(const float* w, int64_t rows, int64_t cols, const Codec& c, const std::vector<float>* clip) {
  QMatrix q;
  q.rows = rows; q.cols = cols;
  q.r.resize(size_t(rows));
  const int64_t ng = (cols + c.group() - 1) / c.group();
  if (!c.tail_ok() && cols % c.fit_span() != 0) fail(c.name(), " needs rows that are a multiple of ", c.fit_span(), ", not ", cols);
  if (clip) SLIMLM_ASSERT(int64_t(clip->size()) == rows * ng);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) q.r[size_t(i)] = rtn_row(c, w + i * cols, cols, clip ? clip->data() + i * ng : nullptr);
  return q;
}

}  // namespace slimlm::quant
