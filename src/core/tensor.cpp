#include "core/tensor.h"
#include "core/dtype_custom.h"
#include "core/dtype_sparse.h"
#include "core/error.h"

namespace slimlm {

std::vector<float> Tensor::to_f32() const {
  std::vector<float> out(static_cast<size_t>(nelements()));
  const size_t rb = row_bytes(type, cols());
  for (int64_t r = 0; r < rows(); ++r) row_to_f32(type, data + size_t(r) * rb, out.data() + size_t(r * cols()), cols());
  if (outliers) outliers->add_dense(out.data());
  return out;
}

Tensor Tensor::from_f32(std::string name, std::vector<int64_t> ne, const float* src, DType type) {
  Tensor t;
  t.name = std::move(name);
  t.type = type;
  t.ne = std::move(ne);
  const bool sparse = is_sparse(type);  // exact encodings of rows that fit the pattern
  if (is_custom(type) && !sparse) fail("tensor '", t.name, "': ", type_name(type), " weights are made by `slimlm quantize`, not by rounding");
  if (!sparse && !traits(type).from_f32) fail("cannot write tensors of type ", traits(type).name);
  const size_t rb = row_bytes(type, t.cols());
  auto buf = std::make_shared<std::vector<uint8_t>>(rb * size_t(t.rows()));
  for (int64_t r = 0; r < t.rows(); ++r) {
    const float* s = src + r * t.cols();
    uint8_t* d = buf->data() + size_t(r) * rb;
    if (!sparse) { traits(type).from_f32(s, d, t.cols()); continue; }
    try {
      sparse_row_from_f32(custom_layout(type), s, d, t.cols());
    } catch (const Error& e) {
      fail("tensor '", t.name, "' row ", r, ": ", e.what());
    }
  }
  t.data = buf->data();
  t.nbytes = buf->size();
  t.keep = buf;
  return t;
}

}  // namespace slimlm
